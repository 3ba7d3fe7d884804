"""MongoDB sources (contract ../shared/contracts/mongodb.md) against a real MongoDB wire server
(mongoeco, started by ./scripts/test): registration by sampling, the official supabase client
unchanged over collections, pymongo as the oracle of what was stored, typed values (ObjectId by
the field's sampled type, never by shape), injection kept literal, policies as $match, realtime
from REST writes, and a server that stops answering."""
import asyncio
import datetime
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from bson import Binary, Decimal128, ObjectId
from pymongo import MongoClient
from realtime import AsyncRealtimeClient
from supabase import create_client

from conftest import call


def mongo_url():
    url = os.environ.get("MINIBAAS_TEST_MONGO_URL")
    if not url:
        pytest.fail("MINIBAAS_TEST_MONGO_URL is not set: run ./scripts/test")
    return url


@pytest.fixture(scope="module")
def mongo():
    client = MongoClient(mongo_url(), serverSelectionTimeoutMS=5000)
    yield client
    client.close()


def seed(db):
    """A shop: users (with a unique email, nested address, tags, a mixed field), orders
    referencing users by ObjectId, products with string ids that look like ObjectIds."""
    users = db.users.insert_many([
        {"name": "ann", "age": 31, "email": "ann@x.io", "tags": ["a", "b"], "address": {"city": "Paris", "zip": "75001"},
         "joined": datetime.datetime(2024, 1, 2, 3, 4, 5, 123000), "score": 1, "ref": Binary.from_uuid(uuid.UUID("12345678-1234-5678-1234-567812345678"))},
        {"name": "bob", "age": 25, "email": "bob@x.io", "tags": ["b"], "score": "high"},
        {"name": "cy", "age": None, "email": "cy@x.io", "score": 2.5},
    ]).inserted_ids
    db.users.create_index("email", unique=True)
    db.orders.insert_many([
        {"user_id": users[0], "total": Decimal128("10.50"), "status": "paid"},
        {"user_id": users[0], "total": Decimal128("3.25"), "status": "new"},
        {"user_id": users[1], "total": Decimal128("7.00"), "status": "paid"},
    ])
    db.products.insert_many([
        {"_id": "507f1f77bcf86cd799439011", "title": "looks like an ObjectId", "sku": "507f1f77bcf86cd799439012"},
        {"_id": "p2", "title": "plain", "sku": "s2"},
    ])
    return users


def register(node, slug, body):
    try:
        return 201, call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, body)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture()
def shop(node, mongo):
    database = "shop_" + secrets.token_hex(4)
    users = seed(mongo[database])
    slug = "mg" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Mongo"})
    status, source = register(node, slug, {"name": "default", "kind": "mongodb", "url": mongo_url(), "database": database})
    assert status == 201, source
    yield {"slug": slug, "apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"], "anonKey": created["anonKey"],
           "db": mongo[database], "users": users, "source": source}
    mongo.drop_database(database)


def rest(tenant, method, path, body=None, key=None, prefer="return=representation", accept=None):
    request = urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("apikey", key or tenant["serviceKey"])
    request.add_header("Authorization", f"Bearer {key or tenant['serviceKey']}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Prefer", prefer)
    if accept:
        request.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            raw = response.read()
            return response.status, (raw.decode() if accept == "text/csv" else json.loads(raw or b"null"))
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_registration_samples_the_model(node, shop):
    source = shop["source"]
    assert source["kind"] == "mongodb" and source["schemas"] == [shop["db"].name]
    assert sorted(source["entities"]) == ["orders", "products", "users"]
    kinds = {(r["from"], r["to"], r["kind"]) for r in source["relations"]}
    assert ("orders", "users", "manyToOne") in kinds and ("users", "orders", "oneToMany") in kinds
    assert source["changeCapture"]["mode"] == "rest-writes"
    # The mixed field is reported with each type's share of the sample.
    [warning] = [w for w in source["warnings"] if w["field"] == "score"]
    assert warning["collection"] == "users" and warning["sampled"] == 3 and set(warning["types"]) == {"int", "string", "double"}
    model = call("GET", f"{node.base}/admin/v1/tenants/{shop['slug']}/schema", node.token)["sources"][0]["model"]
    users = next(e for e in model["entities"] if e["name"] == "users")
    columns = {c["name"]: c for c in users["columns"]}
    assert users["kind"] == "collection" and users["primaryKey"] == ["_id"]
    assert columns["_id"]["nativeType"] == "objectId" and columns["_id"]["nullable"] is False
    assert columns["age"]["type"] == "integer" and columns["age"]["nullable"] is True
    assert columns["address"]["type"] == "json" and columns["tags"]["nativeType"] == "array<string>"
    assert columns["joined"]["type"] == "datetime" and columns["ref"]["type"] == "uuid"
    assert any(k["columns"] == ["email"] for k in users["uniqueKeys"])
    products = next(e for e in model["entities"] if e["name"] == "products")
    assert {c["name"]: c["nativeType"] for c in products["columns"]}["_id"] == "string"


def test_bad_registrations_are_refused_and_nothing_is_stored(node, mongo):
    slug = "mgbad" + secrets.token_hex(3)
    call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Bad"})
    database = "bad_" + secrets.token_hex(3)
    mongo[database].things.insert_one({"x": 1})
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    cases = [
        ({"url": "postgres://x", "database": database}, 400, "MB330"),
        ({"url": "mongodb://127.0.0.1:notaport", "database": database}, 400, "MB330"),
        ({"url": mongo_url()}, 400, "MB330"),
        ({"url": f"mongodb://127.0.0.1:{dead_port}", "database": database}, 422, "MB331"),
        ({"url": mongo_url(), "database": "nothing_here_" + secrets.token_hex(3)}, 422, "MB333"),
        ({"url": mongo_url(), "database": database, "collections": ["things", "missing"]}, 422, "MB333"),
        ({"url": mongo_url(), "database": database, "relations": [{"name": "r", "from": "things.nope", "to": "things._id"}]}, 400, "MB339"),
        ({"url": mongo_url(), "database": database, "sampleSize": 0}, 400, "MB101"),
    ]
    for fields, status, code in cases:
        started = time.time()
        got, body = register(node, slug, {"name": "m", "kind": "mongodb", **fields})
        assert (got, body["code"]) == (status, code), (fields, body)
        assert time.time() - started < 15
    assert call("GET", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token) == []
    mongo.drop_database(database)


def test_the_supabase_client_reads_collections_unchanged(shop):
    client = create_client(shop["apiUrl"], shop["serviceKey"])
    users = client.table("users").select("name,age,city:address->>city,joined,ref").order("age", desc=True).execute().data
    # PostgreSQL's null placement (DESC puts nulls first); absent fields read as null.
    assert users == [
        {"name": "cy", "age": None, "city": None, "joined": None, "ref": None},
        {"name": "ann", "age": 31, "city": "Paris", "joined": "2024-01-02T03:04:05.123Z", "ref": "12345678-1234-5678-1234-567812345678"},
        {"name": "bob", "age": 25, "city": None, "joined": None, "ref": None},
    ]
    assert [u["name"] for u in client.table("users").select("name").order("age", nullsfirst=False).execute().data] == ["bob", "ann", "cy"]
    assert [u["name"] for u in client.table("users").select("name").gte("age", 25).lt("age", 31).execute().data] == ["bob"]
    assert [u["name"] for u in client.table("users").select("name").in_("name", ["ann", "cy"]).order("name").execute().data] == ["ann", "cy"]
    assert [u["name"] for u in client.table("users").select("name").is_("age", "null").execute().data] == ["cy"]
    assert [u["name"] for u in client.table("users").select("name").ilike("email", "%@X.IO").order("name").execute().data] == ["ann", "bob", "cy"]
    assert [u["name"] for u in client.table("users").select("name").like("name", "_o_").execute().data] == ["bob"]
    assert [u["name"] for u in client.table("users").select("name").or_("age.lt.30,age.is.null").order("name").execute().data] == ["bob", "cy"]
    # SQL's NOT: a null never matches a negated comparison.
    assert [u["name"] for u in client.table("users").select("name").not_.gt("age", 30).execute().data] == ["bob"]
    assert [u["name"] for u in client.table("users").select("name").neq("age", 31).execute().data] == ["bob"]
    assert [u["name"] for u in client.table("users").select("name").contains("tags", ["b"]).order("name").execute().data] == ["ann", "bob"]
    assert [u["name"] for u in client.table("users").select("name").eq("address->>city", "Paris").execute().data] == ["ann"]
    assert [u["name"] for u in client.table("users").select("name").match({"name": "bob"}).execute().data] == ["bob"]
    counted = client.table("users").select("name", count="exact").order("name").range(1, 1).execute()
    assert counted.count == 3 and counted.data == [{"name": "bob"}]
    assert client.table("users").select("email").eq("name", "ann").single().execute().data == {"email": "ann@x.io"}
    # Embedding both ways through the sampled reference, with filters on the embedded side.
    orders = client.table("orders").select("total,status,users(name)").order("total").execute().data
    assert orders == [{"total": 3.25, "status": "new", "users": {"name": "ann"}}, {"total": 7.00, "status": "paid", "users": {"name": "bob"}},
                      {"total": 10.50, "status": "paid", "users": {"name": "ann"}}]
    embedded = client.table("users").select("name,orders!inner(status)").eq("orders.status", "new").execute().data
    assert embedded == [{"name": "ann", "orders": [{"status": "new"}]}]
    status, csv = rest(shop, "GET", "users?select=name,age&order=name", accept="text/csv")
    assert status == 200 and csv.splitlines() == ["name,age", "ann,31", "bob,25", "cy,"]


def test_values_are_typed_by_the_sampled_field_never_by_shape(shop):
    ann = str(shop["users"][0])
    status, body = rest(shop, "GET", f"users?_id=eq.{ann}&select=name")
    assert (status, body) == (200, [{"name": "ann"}])
    status, body = rest(shop, "GET", "users?_id=eq.not-an-object-id")
    assert status == 400 and body["code"] == "MB336"
    status, body = rest(shop, "GET", "users?age=gt.abc")
    assert status == 400 and body["code"] == "MB336"
    # Strings that look like ObjectIds stay strings where the field holds strings.
    status, body = rest(shop, "GET", "products?_id=eq.507f1f77bcf86cd799439011&select=title,sku")
    assert body == [{"title": "looks like an ObjectId", "sku": "507f1f77bcf86cd799439012"}]
    status, body = rest(shop, "GET", "products?sku=eq.507f1f77bcf86cd799439012&select=_id")
    assert body == [{"_id": "507f1f77bcf86cd799439011"}]
    # The mixed field takes every reading of the operand.
    status, body = rest(shop, "GET", "users?score=eq.1&select=name")
    assert body == [{"name": "ann"}]
    status, body = rest(shop, "GET", "users?score=eq.high&select=name")
    assert body == [{"name": "bob"}]
    status, body = rest(shop, "GET", "users?name=fts.ann")
    assert status == 400 and body["code"] == "MB337"


def test_operators_in_values_stay_literal(shop):
    db = shop["db"]
    # A value crafted as a MongoDB operator is a string to compare, never an operator.
    for crafted in ['{"$ne":null}', "$where", "$name", "this.age > 0"]:
        status, body = rest(shop, "GET", "users?name=eq." + urllib.parse.quote(crafted))
        assert (status, body) == (200, []), crafted
    status, body = rest(shop, "GET", "users?name=like." + urllib.parse.quote(".*"))
    assert (status, body) == (200, [])
    status, body = rest(shop, "POST", "users", {"name": "$where", "email": "$x", "age": 1})
    assert status == 201
    stored = db.users.find_one({"email": "$x"})
    assert stored["name"] == "$where" and stored["age"] == 1
    # Keys MongoDB would read as operators or paths are refused, and nothing is stored.
    for bad, pointer in [({"$where": "1"}, "/address/$where"), ({"a.b": 1}, "/address/a.b"), ({"x": {"$gt": 1}}, "/address/x/$gt")]:
        status, body = rest(shop, "POST", "users", {"name": "bad", "email": "bad@x.io", "address": bad})
        assert status == 400 and body["code"] == "MB335" and pointer in body["details"], body
    assert db.users.count_documents({"name": "bad"}) == 0
    status, body = rest(shop, "GET", "users?select=name&name=match." + "a" * 600)
    assert status == 400 and body["code"] == "MB337"


def test_writes_through_the_supabase_client(shop):
    client = create_client(shop["apiUrl"], shop["serviceKey"])
    db = shop["db"]
    inserted = client.table("users").insert({"name": "dee", "age": 40, "email": "dee@x.io", "address": {"city": "Rome"}}).execute().data
    assert inserted[0]["name"] == "dee" and len(inserted[0]["_id"]) == 24
    stored = db.users.find_one({"_id": ObjectId(inserted[0]["_id"])})
    assert stored["age"] == 40 and isinstance(stored["_id"], ObjectId) and stored["address"] == {"city": "Rome"}
    bulk = client.table("users").insert([{"name": "eve", "email": "eve@x.io"}, {"name": "fay", "email": "fay@x.io"}]).execute().data
    assert [u["name"] for u in bulk] == ["eve", "fay"]
    # Orders reference users by ObjectId: the body's hex becomes an ObjectId because the field is one.
    order = client.table("orders").insert({"user_id": inserted[0]["_id"], "total": 12.25, "status": "new"}).execute().data[0]
    assert isinstance(db.orders.find_one({"_id": ObjectId(order["_id"])})["user_id"], ObjectId)
    assert str(db.orders.find_one({"_id": ObjectId(order["_id"])})["total"].to_decimal()) == "12.25"
    updated = client.table("users").update({"age": 41}).eq("name", "dee").execute().data
    assert updated[0]["age"] == 41 and db.users.find_one({"name": "dee"})["age"] == 41
    upserted = client.table("users").upsert([{"email": "dee@x.io", "name": "dee", "age": 42}, {"email": "gus@x.io", "name": "gus", "age": 9}],
                                            on_conflict="email").execute().data
    assert sorted(u["age"] for u in upserted) == [9, 42]
    assert db.users.count_documents({"email": "dee@x.io"}) == 1 and db.users.find_one({"email": "gus@x.io"})["age"] == 9
    deleted = client.table("users").delete().in_("name", ["eve", "fay"]).execute().data
    assert sorted(u["name"] for u in deleted) == ["eve", "fay"] and db.users.count_documents({"name": {"$in": ["eve", "fay"]}}) == 0
    # A duplicate key: 409 23505, and the bulk insert's earlier rows are not left behind.
    status, body = rest(shop, "POST", "users", [{"name": "hal", "email": "hal@x.io"}, {"name": "ann2", "email": "ann@x.io"}])
    assert status == 409 and body["code"] == "23505"
    assert db.users.count_documents({"email": "hal@x.io"}) == 0
    status, body = rest(shop, "POST", "users?on_conflict=name", {"name": "x", "email": "x@x.io"}, prefer="resolution=merge-duplicates")
    assert status == 400 and body["code"] == "MB338"
    status, body = rest(shop, "POST", "users", {"name": "x", "email": "x@x.io", "age": "old"})
    assert status == 400 and body["code"] == "MB336"
    status, body = rest(shop, "PATCH", "users?name=eq.ann", {"nickname": "a"})
    assert status == 400 and body["code"] == "PGRST204"
    # A singular PATCH touching several documents is refused before anything is written.
    status, body = rest(shop, "PATCH", "users?age=gt.0", {"age": 1}, accept="application/vnd.pgrst.object+json")
    assert status == 406 and body["code"] == "PGRST116"
    assert db.users.count_documents({"age": 1}) == 0


def test_policies_compile_into_match_documents(node, shop):
    db = shop["db"]
    ann, bob = shop["users"][0], shop["users"][1]
    call("PUT", f"{node.base}/admin/v1/tenants/{shop['slug']}/policies", node.token, {"policies": [
        {"entity": "users", "role": "anon", "action": "read", "columns": ["_id", "name", "age"], "when": {"age": {"gte": 30}}},
        {"entity": "orders", "role": "anon", "action": "read", "when": {"users": {"age": {"gte": 30}}}},
        {"entity": "orders", "role": "anon", "action": "create", "check": {"status": {"eq": "new"}}},
    ]})
    anon = shop["anonKey"]
    status, body = rest(shop, "GET", "users?select=name,age", key=anon)
    assert (status, body) == (200, [{"name": "ann", "age": 31}])
    status, body = rest(shop, "GET", "users?select=email", key=anon)
    assert status in (400, 401, 403) and "email" in json.dumps(body)
    # A rule over the related user, as a $lookup.
    status, body = rest(shop, "GET", "orders?select=status&order=status", key=anon)
    assert [o["status"] for o in body] == ["new", "paid"]
    status, body = rest(shop, "POST", "orders", {"user_id": str(bob), "total": 1, "status": "paid"}, key=anon)
    assert status in (401, 403) and body["code"] == "42501"
    assert db.orders.count_documents({"total": Decimal128("1")}) == 0
    status, body = rest(shop, "POST", "orders", {"user_id": str(ann), "total": 2, "status": "new"}, key=anon, prefer="return=minimal")
    assert status == 201 and db.orders.count_documents({"status": "new"}) == 2


def test_realtime_sees_writes_made_through_the_rest_api(shop):
    async def scenario():
        client = AsyncRealtimeClient(f"{shop['apiUrl']}/realtime/v1", shop["serviceKey"], auto_reconnect=False)
        await client.connect()
        queue = asyncio.Queue()
        channel = client.channel("users")
        channel.on_postgres_changes("*", schema=shop["db"].name, table="users", callback=queue.put_nowait)
        states = []
        await channel.subscribe(lambda state, error: states.append(state))
        assert states[-1] == "SUBSCRIBED", states
        await asyncio.to_thread(rest, shop, "POST", "users", {"name": "live", "email": "live@x.io", "age": 5})
        change = (await asyncio.wait_for(queue.get(), 10))["data"]
        assert change["type"] == "INSERT" and change["table"] == "users" and change["record"]["name"] == "live"
        assert len(change["record"]["_id"]) == 24
        await asyncio.to_thread(rest, shop, "PATCH", "users?name=eq.live", {"age": 6})
        change = (await asyncio.wait_for(queue.get(), 10))["data"]
        assert change["type"] == "UPDATE" and change["record"]["age"] == 6
        await asyncio.to_thread(rest, shop, "DELETE", "users?name=eq.live")
        change = (await asyncio.wait_for(queue.get(), 10))["data"]
        assert change["type"] == "DELETE"
        await client.close()

    asyncio.run(scenario())


def test_a_server_that_stops_answering_gets_a_clear_error(node):
    """A MongoDB server of its own, stopped while the source is in use: 503, no hang, and the
    source answers again once a server is back on the same port."""
    python, script = os.environ.get("MINIBAAS_TEST_MONGO_PYTHON"), os.environ.get("MINIBAAS_TEST_MONGO_SERVER")
    if not python or not script:
        pytest.fail("MINIBAAS_TEST_MONGO_PYTHON is not set: run ./scripts/test")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    def start():
        process = subprocess.Popen([python, script, str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout.readline().startswith("ready")
        return process

    server = start()
    try:
        url = f"mongodb://127.0.0.1:{port}"
        MongoClient(url).lone.things.insert_many([{"n": 1}, {"n": 2}])
        slug = "mgdown" + secrets.token_hex(3)
        created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Down"})
        status, _ = register(node, slug, {"name": "default", "kind": "mongodb", "url": url, "database": "lone"})
        assert status == 201
        tenant = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
        assert rest(tenant, "GET", "things?select=n&order=n") == (200, [{"n": 1}, {"n": 2}])
        server.kill()
        server.wait()
        started = time.time()
        status, body = rest(tenant, "GET", "things?select=n")
        assert status == 503 and body["code"] in ("MB602", "MB600"), body
        assert time.time() - started < 15
        status, body = rest(tenant, "POST", "things", {"n": 3})
        assert status == 503, body
        server = start()
        MongoClient(url).lone.things.insert_one({"n": 7})
        deadline = time.time() + 20
        while time.time() < deadline:
            status, body = rest(tenant, "GET", "things?select=n")
            if status == 200:
                break
            time.sleep(0.5)
        assert (status, body) == (200, [{"n": 7}])
    finally:
        server.kill()


def test_refresh_adds_what_new_documents_show_and_declared_relations_embed(node, mongo):
    database = "lib_" + secrets.token_hex(4)
    db = mongo[database]
    author = db.writers.insert_one({"name": "le guin"}).inserted_id
    db.books.insert_one({"title": "earthsea", "by": author})
    slug = "mgrel" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token,
                   {"slug": slug, "name": "Lib", "limits": {"maxBodyBytes": 32 << 20}})
    status, source = register(node, slug, {"name": "default", "kind": "mongodb", "url": mongo_url(), "database": database,
                                           "relations": [{"name": "books_by", "from": "books.by", "to": "writers._id"}]})
    assert status == 201, source
    assert {(r["from"], r["to"], r["constraint"]) for r in source["relations"]} == {("books", "writers", "books_by"), ("writers", "books", "books_by")}
    tenant = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
    assert rest(tenant, "GET", "books?select=title,writers(name)") == (200, [{"title": "earthsea", "writers": {"name": "le guin"}}])
    assert rest(tenant, "GET", "writers?select=name,books(title)") == (200, [{"name": "le guin", "books": [{"title": "earthsea"}]}])
    # A field the sample never saw is unknown until a refresh re-samples.
    db.books.insert_one({"title": "tehanu", "by": author, "year": 1990})
    status, body = rest(tenant, "GET", "books?select=title,year")
    assert status == 400 and body["code"] == "PGRST204"
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources/default/refresh", node.token)
    status, body = rest(tenant, "GET", "books?select=title,year&order=title")
    assert (status, body) == (200, [{"title": "earthsea", "year": None}, {"title": "tehanu", "year": 1990}])
    # Over 16 MiB as BSON: refused before it reaches the server, nothing stored.
    status, body = rest(tenant, "POST", "books", {"title": "x" * (17 << 20), "by": str(author)})
    assert status == 413 and body["code"] == "MB340"
    assert db.books.count_documents({}) == 2
    mongo.drop_database(database)
