"""The official Supabase Realtime client (realtime==2.34.1, from supabase==2.34.1) against a
mini-baas tenant: database changes (made with psql and through the REST API), filters, policies,
broadcast, presence, a slow consumer, and a node restart with changes committed while it was down."""
import asyncio
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from realtime import AsyncRealtimeClient

from conftest import call, sql


def psql(database, statement):
    subprocess.run(["psql", database, "-qX", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)


def rest(tenant, method, path, body=None, token=None):
    request = urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("apikey", tenant["anonKey"])
    request.add_header("Authorization", f"Bearer {token or tenant['serviceKey']}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Prefer", "return=representation")
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


async def connect(tenant, key=None):
    client = AsyncRealtimeClient(f"{tenant['apiUrl']}/realtime/v1", key or tenant["anonKey"], auto_reconnect=False)
    await client.connect()
    return client


async def subscribe_changes(client, name, queue, **binding):
    channel = client.channel(name)
    channel.on_postgres_changes(binding.pop("event", "*"), callback=queue.put_nowait, **binding)
    states = []
    await channel.subscribe(lambda state, error: states.append((state, error)))
    assert states and states[-1][0] == "SUBSCRIBED", states
    return channel


async def refusal_of(channel):
    """Subscribes a channel the server must refuse; the reason the client reports."""
    states = []
    await channel.subscribe(lambda state, error: states.append((state, str(error))))
    assert states and states[-1][0] == "CHANNEL_ERROR", states
    return states[-1][1]


async def next_change(queue, timeout=10):
    payload = await asyncio.wait_for(queue.get(), timeout)
    return payload["data"]


async def nothing_more(queue, wait=1.0):
    await asyncio.sleep(wait)
    assert queue.empty(), [queue.get_nowait() for _ in range(queue.qsize())]


def sign_up(tenant, email):
    """A confirmed user of the tenant (auth autoconfirm on): its access token and id."""
    request = urllib.request.Request(f"{tenant['apiUrl']}/auth/v1/signup", method="POST",
                                     data=json.dumps({"email": email, "password": "password-123"}).encode())
    request.add_header("apikey", tenant["anonKey"])
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=15) as response:
        session = json.loads(response.read())
    return session["access_token"], session["user"]["id"]


async def subscribed_as(tenant, tokens, name, table):
    """One signed-in client per token, each subscribed to every change of the table: the clients
    and their queues."""
    clients, queues = [], []
    for token in tokens:
        client = await connect(tenant)
        await client.set_auth(token)
        queue = asyncio.Queue()
        await subscribe_changes(client, name, queue, table=table, schema="public")
        clients.append(client)
        queues.append(queue)
    return clients, queues


def test_changes_made_with_psql_and_through_rest_arrive_in_order(tenant):
    psql(tenant["database"], "alter table orgs replica identity full")

    async def scenario():
        client = await connect(tenant, tenant["serviceKey"])
        changes = asyncio.Queue()
        await subscribe_changes(client, "orgs", changes, table="orgs", schema="public")
        psql(tenant["database"], "insert into orgs (id, name) values (100, 'Initech Co')")
        inserted = await next_change(changes)
        assert inserted["type"] == "INSERT" and inserted["schema"] == "public" and inserted["table"] == "orgs"
        assert inserted["record"] == {"id": 100, "name": "Initech Co"}
        assert inserted["commit_timestamp"].startswith(time.strftime("%Y-"))
        assert {"name": "id", "type": "integer"} in inserted["columns"]
        psql(tenant["database"], "update orgs set name = 'Initrode' where id = 100")
        updated = await next_change(changes)
        assert updated["type"] == "UPDATE" and updated["record"]["name"] == "Initrode"
        assert updated["old_record"] == {"id": 100, "name": "Initech Co"}, "REPLICA IDENTITY FULL gives the whole old row"
        psql(tenant["database"], "delete from orgs where id = 100")
        deleted = await next_change(changes)
        assert deleted["type"] == "DELETE" and deleted["old_record"]["id"] == 100
        # Through mini-baas's own REST API, in commit order.
        rest(tenant, "POST", "orgs", {"id": 101, "name": "Hooli"})
        rest(tenant, "PATCH", "orgs?id=eq.101", {"name": "Hooli XYZ"})
        kinds = [(await next_change(changes))["type"] for _ in range(2)]
        assert kinds == ["INSERT", "UPDATE"]
        await client.close()

    asyncio.run(scenario())


def test_filters_select_and_bad_bindings(tenant):
    async def scenario():
        client = await connect(tenant, tenant["serviceKey"])
        eq, listed, negated, combined = (asyncio.Queue() for _ in range(4))
        await subscribe_changes(client, "eq", eq, event="INSERT", table="orgs", schema="public", filter="name=eq.Acme Two")
        await subscribe_changes(client, "in", listed, event="INSERT", table="orgs", schema="public", filter="id=in.(201,203)")
        await subscribe_changes(client, "not", negated, event="INSERT", table="orgs", schema="public", filter="name=not.like.A*")
        await subscribe_changes(client, "and", combined, event="INSERT", table="orgs", schema="public",
                                filter="id=gte.202,name=ilike.%corp")
        psql(tenant["database"], "insert into orgs (id, name) values (201, 'Acme Two'), (202, 'Globex Corp'), (203, 'Umbrella')")
        assert (await next_change(eq))["record"] == {"id": 201, "name": "Acme Two"}
        assert sorted([(await next_change(listed))["record"]["id"] for _ in range(2)]) == [201, 203]
        assert sorted([(await next_change(negated))["record"]["id"] for _ in range(2)]) == [202, 203]
        assert (await next_change(combined))["record"]["id"] == 202
        for queue in (eq, listed, negated, combined):
            await nothing_more(queue, 0.3)

        # A select list narrows the record; a column that does not exist is refused at join.
        narrowed = asyncio.Queue()
        await subscribe_changes(client, "narrow", narrowed, event="INSERT", table="orgs", schema="public", select=["id"])
        psql(tenant["database"], "insert into orgs (id, name) values (204, 'Initech Two')")
        assert (await next_change(narrowed))["record"] == {"id": 204}
        for binding, reason in [({"filter": "nope=eq.1"}, "nope"), ({"filter": "id=between.1"}, "unknown operator"),
                                ({"table": "no_such_table"}, "no_such_table")]:
            channel = client.channel("bad" + reason)
            spec = {"table": "orgs", "schema": "public", **binding}
            channel.on_postgres_changes("*", callback=lambda p: None, **spec)
            assert reason in await refusal_of(channel)
        await client.close()

    asyncio.run(scenario())


def test_two_users_get_only_the_rows_and_columns_their_policies_allow(node, tenant):
    slug = tenant["slug"]
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/auth", node.token, {"autoconfirm": True, "siteUrl": "http://localhost"})
    psql(tenant["database"], "create table notes (id serial primary key, owner_id uuid not null, title text not null, secret text)")
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources/main/refresh", node.token, {})
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token, {"policies": [
        {"entity": "notes", "role": "authenticated", "action": "read", "columns": ["id", "owner_id", "title"],
         "when": {"owner_id": {"eq": {"var": "auth.uid"}}}},
    ]})

    ann_token, ann_id = sign_up(tenant, f"ann-{time.time_ns()}@example.com")
    bob_token, bob_id = sign_up(tenant, f"bob-{time.time_ns()}@example.com")

    async def scenario():
        (ann_client, bob_client), (ann, bob) = await subscribed_as(tenant, [ann_token, bob_token], "notes", "notes")
        psql(tenant["database"], f"insert into notes (owner_id, title, secret) values ('{ann_id}', 'ann 1', 's1'), "
                                 f"('{bob_id}', 'bob 1', 's2'), ('{ann_id}', 'ann 2', 's3')")
        ann_rows = [(await next_change(ann))["record"] for _ in range(2)]
        bob_rows = [(await next_change(bob))["record"] for _ in range(1)]
        assert [r["title"] for r in ann_rows] == ["ann 1", "ann 2"]
        assert [r["title"] for r in bob_rows] == ["bob 1"]
        assert all("secret" not in r for r in ann_rows + bob_rows), "a column the policy does not grant is never sent"
        await nothing_more(ann, 0.5)
        await nothing_more(bob, 0.1)
        # Asking for a column the policy withholds is refused; anon may not read notes at all.
        channel = ann_client.channel("secret")
        channel.on_postgres_changes("*", callback=lambda p: None, table="notes", schema="public", select=["secret"])
        assert "secret" in await refusal_of(channel)
        anon_client = await connect(tenant)
        channel = anon_client.channel("anon")
        channel.on_postgres_changes("*", callback=lambda p: None, table="notes", schema="public")
        assert "permission denied" in await refusal_of(channel)
        for client in (ann_client, bob_client, anon_client):
            await client.close()

    asyncio.run(scenario())


def test_policies_through_a_relation_are_decided_by_the_database(node, tenant):
    # "Authors" are readable by a user when their org is named after the user's e-mail: the
    # change alone cannot tell, so each change is decided for every audience in one query.
    slug = tenant["slug"]
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/auth", node.token, {"autoconfirm": True, "siteUrl": "http://localhost"})
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token, {"policies": [
        {"entity": "Authors", "role": "authenticated", "action": "read", "columns": ["Id", "FullName", "org_id"],
         "when": {"orgs": {"name": {"eq": {"var": "auth.email"}}}}},
    ]})

    ann_mail, bob_mail = f"ann-{time.time_ns()}@example.com", f"bob-{time.time_ns()}@example.com"
    (ann_token, _), (bob_token, _) = sign_up(tenant, ann_mail), sign_up(tenant, bob_mail)
    psql(tenant["database"], f"insert into orgs (id, name) values (701, '{ann_mail}'), (702, '{bob_mail}')")

    async def scenario():
        (ann_client, bob_client), (ann, bob) = await subscribed_as(tenant, [ann_token, bob_token], "authors", "Authors")
        psql(tenant["database"], """insert into "Authors" ("FullName", org_id) values ('Ann A', 701), ('Bob B', 702), ('Ann C', 701), ('Nobody', null)""")
        ann_rows = [(await next_change(ann))["record"] for _ in range(2)]
        bob_rows = [(await next_change(bob))["record"] for _ in range(1)]
        assert [r["FullName"] for r in ann_rows] == ["Ann A", "Ann C"]
        assert [r["FullName"] for r in bob_rows] == ["Bob B"]
        assert all("mood" not in r for r in ann_rows + bob_rows), "columns the policy does not grant stay out"
        await nothing_more(ann, 0.5)
        await nothing_more(bob, 0.1)
        # Moving a row to Bob's org: Bob hears of it, Ann (whose org it left) does not.
        psql(tenant["database"], """update "Authors" set org_id = 702 where "FullName" = 'Ann C'""")
        moved = await next_change(bob)
        assert moved["type"] == "UPDATE" and moved["record"]["FullName"] == "Ann C"
        await nothing_more(ann, 0.5)
        for client in (ann_client, bob_client):
            await client.close()

    asyncio.run(scenario())


def test_broadcast_and_presence_between_clients(tenant):
    async def scenario():
        alice, bob = await connect(tenant), await connect(tenant)
        got_alice, got_bob = asyncio.Queue(), asyncio.Queue()
        room_a = alice.channel("room", {"config": {"broadcast": {"self": True, "ack": True}, "presence": {"key": "alice", "enabled": True}}})
        room_b = bob.channel("room", {"config": {"broadcast": {"self": False, "ack": False}, "presence": {"key": "bob", "enabled": True}}})
        room_a.on_broadcast("chat", got_alice.put_nowait)
        room_b.on_broadcast("chat", got_bob.put_nowait)
        synced = asyncio.Event()
        room_b.on_presence_sync(lambda: synced.set() if set(room_b.presence_state()) == {"alice", "bob"} else None)
        await room_a.subscribe()
        await room_b.subscribe()
        await room_a.send_broadcast("chat", {"text": "hello"})
        assert (await asyncio.wait_for(got_bob.get(), 5))["payload"] == {"text": "hello"}
        assert (await asyncio.wait_for(got_alice.get(), 5))["payload"] == {"text": "hello"}, "self: true echoes to the sender"
        await room_b.send_broadcast("chat", {"text": "hi"})
        assert (await asyncio.wait_for(got_alice.get(), 5))["payload"] == {"text": "hi"}
        await asyncio.sleep(0.3)
        assert got_bob.empty(), "self: false does not echo"

        await room_a.track({"status": "online"})
        await room_b.track({"status": "away"})
        await asyncio.wait_for(synced.wait(), 5)
        state = room_b.presence_state()
        assert state["alice"][0]["status"] == "online" and state["bob"][0]["status"] == "away"
        left = asyncio.Event()
        room_b.on_presence_leave(lambda key, current, gone: left.set() if key == "alice" else None)
        await alice.close()
        await asyncio.wait_for(left.wait(), 5)
        assert set(room_b.presence_state()) == {"bob"}
        await bob.close()

    asyncio.run(scenario())


class RawSocketClient:
    """A WebSocket client that reads only when told to, on a socket with a small receive buffer:
    a consumer that really falls behind (the official client reads eagerly in the background)."""

    def __init__(self, url):
        import base64
        import os
        import socket
        from urllib.parse import urlparse
        parsed = urlparse(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.sock.connect((parsed.hostname, parsed.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1)
        assert self.buffer.startswith(b"HTTP/1.1 101"), self.buffer
        self.buffer = b""

    def send(self, text):
        import os
        import struct
        data, mask = text.encode(), os.urandom(4)
        header = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(data)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def messages(self, timeout=10):
        """Every text message until the server closes (or goes quiet)."""
        import struct
        self.sock.settimeout(timeout)
        while True:
            while True:
                frame = self.parse()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 0x8:
                    return
                if opcode == 0x1:
                    yield json.loads(payload)
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            self.buffer += chunk

    def parse(self):
        import struct
        if len(self.buffer) < 2:
            return None
        opcode, length, offset = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
        if length == 126:
            if len(self.buffer) < 4:
                return None
            length, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
        elif length == 127:
            if len(self.buffer) < 10:
                return None
            length, offset = struct.unpack(">Q", self.buffer[2:10])[0], 10
        if len(self.buffer) < offset + length:
            return None
        payload, self.buffer = self.buffer[offset:offset + length], self.buffer[offset + length:]
        return opcode, payload


def test_a_slow_consumer_is_told_and_disconnected_while_others_keep_up(node, tenant):
    call("PATCH", f"{node.base}/admin/v1/tenants/{tenant['slug']}", node.token,
         {"limits": {"realtime": {"outboundQueue": 20, "eventsPerSecond": 100000}}})
    ws_url = tenant["apiUrl"].replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={tenant['anonKey']}&vsn=1.0.0"
    slow = RawSocketClient(ws_url)
    slow.send(json.dumps({"topic": "realtime:firehose", "event": "phx_join", "ref": "1", "join_ref": "1",
                          "payload": {"config": {"broadcast": {"self": False}}}}))
    count, blob = 300, "x" * 60_000

    async def scenario():
        sender, reader = await connect(tenant), await connect(tenant)
        received = []
        done = asyncio.Event()
        listening = reader.channel("firehose")
        listening.on_broadcast("blob", lambda payload: (received.append(payload), len(received) == count and done.set()))
        talking = sender.channel("firehose")
        await listening.subscribe()
        await talking.subscribe()
        for index in range(count):
            await talking.send_broadcast("blob", {"n": index, "data": blob})
        await asyncio.wait_for(done.wait(), 60)
        assert [p["payload"]["n"] for p in received] == list(range(count)), "the fast reader misses nothing"
        await sender.close()
        await reader.close()

    asyncio.run(scenario())
    # The slow one, reading at last, finds what fitted in the buffers, then the notice, then the end.
    messages = list(slow.messages())
    assert messages[0]["event"] == "phx_reply" and messages[0]["payload"]["status"] == "ok"
    broadcasts = [m for m in messages if m["event"] == "broadcast"]
    assert len(broadcasts) < count, "it could not have kept up"
    notice = messages[-1]
    assert notice["event"] == "system" and notice["payload"]["status"] == "error", notice
    assert "not reading fast enough" in notice["payload"]["message"]


def test_changes_committed_while_the_node_was_down_arrive_after_restart(tenant):
    from conftest import Node
    own = Node()
    try:
        created = call("POST", f"{own.base}/admin/v1/tenants", own.token, {"slug": tenant["slug"] + "r", "name": "Restart"})
        call("POST", f"{own.base}/admin/v1/tenants/{created['slug']}/sources", own.token,
             {"name": "main", "kind": "postgres", "url": tenant["database"]})
        mine = {"apiUrl": created["apiUrl"], "anonKey": created["anonKey"], "serviceKey": created["serviceKey"]}

        async def subscribe_once():
            client = await connect(mine, mine["serviceKey"])
            queue = asyncio.Queue()
            await subscribe_changes(client, "orgs", queue, event="INSERT", table="orgs", schema="public")
            psql(tenant["database"], "insert into orgs (id, name) values (400, 'Before')")
            assert (await next_change(queue))["record"]["id"] == 400
            await client.close()

        asyncio.run(subscribe_once())
        own.stop()
        psql(tenant["database"], "insert into orgs (id, name) values (401, 'While down 1'), (402, 'While down 2')")
        psql(tenant["database"], "update orgs set name = 'While down 3' where id = 401")
        own = Node(data_dir=own.data_dir, token=own.token)
        mine["apiUrl"] = f"{own.base}/t/{created['slug']}"

        async def after_restart():
            client = await connect(mine, mine["serviceKey"])
            queue = asyncio.Queue()
            await subscribe_changes(client, "orgs", queue, table="orgs", schema="public")
            seen = [await next_change(queue) for _ in range(3)]
            assert [(c["type"], c["record"]["id"]) for c in seen] == [("INSERT", 401), ("INSERT", 402), ("UPDATE", 401)]
            await client.close()

        asyncio.run(after_restart())
    finally:
        own.stop()


def test_refused_connections_and_private_channels(tenant):
    async def scenario():
        bad = AsyncRealtimeClient(f"{tenant['apiUrl']}/realtime/v1", "not-a-key", auto_reconnect=False, max_retries=1)
        with pytest.raises(Exception):
            await bad.connect()
        client = await connect(tenant)
        channel = client.channel("secret-room", {"config": {"private": True, "broadcast": {"self": False, "ack": False},
                                                            "presence": {"key": "", "enabled": False}}})
        assert "private channels" in await refusal_of(channel)
        await client.close()

    asyncio.run(scenario())


def test_read_cache_hits_then_follows_direct_writes_and_answers_304(node, tenant):
    def get(path, headers=None):
        request = urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/{path}")
        request.add_header("apikey", tenant["anonKey"])
        request.add_header("Authorization", f"Bearer {tenant['serviceKey']}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, dict(response.headers), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), None

    def hits():
        with urllib.request.urlopen(f"{node.base}/metrics", timeout=15) as response:
            text = response.read().decode()
        line = next((l for l in text.splitlines() if l.startswith("minibaas_cache_hits_total") and f'tenant="{tenant["slug"]}"' in l), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    psql(tenant["database"], "insert into orgs (id, name) values (500, 'Cached')")
    status, headers, body = get("orgs?id=eq.500")
    assert status == 200 and body == [{"id": 500, "name": "Cached"}]
    before = hits()
    assert get("orgs?id=eq.500")[2] == body
    assert hits() == before + 1, "the second identical read is answered from the cache"
    etag = headers["ETag"]
    status, again, _ = get("orgs?id=eq.500", {"If-None-Match": etag})
    assert status == 304 and again["ETag"] == etag

    # A direct database write, with no change feed running: visible within a second.
    psql(tenant["database"], "update orgs set name = 'Changed' where id = 500")
    time.sleep(1.1)
    status, fresh, body = get("orgs?id=eq.500", {"If-None-Match": etag})
    assert status == 200 and body == [{"id": 500, "name": "Changed"}] and fresh["ETag"] != etag

    # A write through mini-baas drops the entries at once.
    assert get("orgs?id=eq.500")[2][0]["name"] == "Changed"
    rest(tenant, "PATCH", "orgs?id=eq.500", {"name": "Through REST"})
    assert get("orgs?id=eq.500")[2][0]["name"] == "Through REST"

    # With a change feed running, a direct write drops them as soon as the change arrives.
    async def with_feed():
        client = await connect(tenant, tenant["serviceKey"])
        changes = asyncio.Queue()
        await subscribe_changes(client, "orgs", changes, event="UPDATE", table="orgs", schema="public")
        assert get("orgs?id=eq.500")[2][0]["name"] == "Through REST"
        psql(tenant["database"], "update orgs set name = 'Via feed' where id = 500")
        await next_change(changes)
        await asyncio.sleep(0.05)
        assert get("orgs?id=eq.500")[2][0]["name"] == "Via feed"
        await client.close()

    asyncio.run(with_feed())
    # Another caller never gets this caller's entry: anon has no read policy on orgs here.
    request = urllib.request.Request(f"{tenant['apiUrl']}/rest/v1/orgs?id=eq.500")
    request.add_header("apikey", tenant["anonKey"])
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            assert response.status != 200, "anon must not be served the service role's cached rows"
    except urllib.error.HTTPError as error:
        assert error.code in (401, 403)


def test_without_logical_decoding_rest_writes_are_still_published(node, tenant):
    # A role without REPLICATION cannot read a slot: the source says so, and what is written
    # through the REST API still reaches subscribers.
    role = "plain_" + secrets.token_hex(4)
    psql(tenant["database"], f"create role {role} login; grant usage on schema public to {role}; "
                             f"grant all on all tables in schema public to {role}")
    url = tenant["database"].replace("//postgres@", f"//{role}@", 1)
    assert role in url
    slug = tenant["slug"] + "p"
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Plain"})
    summary = call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token,
                   {"name": "main", "kind": "postgres", "url": url})
    assert summary["changeCapture"]["mode"] == "rest-writes", summary["changeCapture"]
    assert "REPLICATION" in summary["changeCapture"]["reason"]
    mine = {"apiUrl": created["apiUrl"], "anonKey": created["anonKey"], "serviceKey": created["serviceKey"]}

    async def scenario():
        client = await connect(mine, mine["serviceKey"])
        queue = asyncio.Queue()
        await subscribe_changes(client, "orgs", queue, table="orgs", schema="public")
        rest(mine, "POST", "orgs", [{"id": 501, "name": "Rest One"}, {"id": 502, "name": "Rest Two"}])
        first, second = await next_change(queue), await next_change(queue)
        assert [(first["type"], first["record"]), (second["type"], second["record"])] == [
            ("INSERT", {"id": 501, "name": "Rest One"}), ("INSERT", {"id": 502, "name": "Rest Two"})]
        assert {"name": "name", "type": "text"} in first["columns"] and first["commit_timestamp"].startswith(time.strftime("%Y-"))
        # An upsert that meets an existing row is an update.
        request = urllib.request.Request(f"{mine['apiUrl']}/rest/v1/orgs", method="POST",
                                         data=json.dumps({"id": 501, "name": "Rest One Merged"}).encode())
        for header, value in {"apikey": mine["anonKey"], "Authorization": f"Bearer {mine['serviceKey']}",
                              "Content-Type": "application/json", "Prefer": "resolution=merge-duplicates"}.items():
            request.add_header(header, value)
        urllib.request.urlopen(request, timeout=15).read()
        merged = await next_change(queue)
        assert merged["type"] == "UPDATE" and merged["record"]["name"] == "Rest One Merged" and merged["old_record"] == {"id": 501}
        rest(mine, "PATCH", "orgs?id=eq.502", {"name": "Rest Two Patched"})
        patched = await next_change(queue)
        assert patched["type"] == "UPDATE" and patched["record"] == {"id": 502, "name": "Rest Two Patched"}
        rest(mine, "DELETE", "orgs?id=in.(501,502)")
        deleted = sorted([(await next_change(queue))["old_record"]["id"] for _ in range(2)])
        assert deleted == [501, 502]
        # A write made elsewhere cannot be seen without logical decoding — and is not invented.
        psql(tenant["database"], "insert into orgs (id, name) values (503, 'Direct')")
        await nothing_more(queue, 0.5)
        await client.close()

    asyncio.run(scenario())
    supervisor = call("GET", f"{node.base}/admin/v1/supervisor", node.token)
    entry = next(t for t in supervisor["tenants"] if t["slug"] == slug)
    assert "REPLICATION" in entry["changeCapture"]["main"] and "REST writes published" in entry["changeCapture"]["main"]
