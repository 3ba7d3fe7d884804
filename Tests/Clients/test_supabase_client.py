"""The official Supabase Python client (supabase==2.34.1) against a mini-baas tenant, unchanged."""
import subprocess

import pytest
from supabase import create_client
from openapi_spec_validator import validate
import json
import urllib.request

from conftest import sql


@pytest.fixture()
def client(tenant):
    return create_client(tenant["apiUrl"], tenant["serviceKey"])


def test_select_with_embed_filter_order_limit(client, tenant):
    result = (client.table("posts")
              .select("id,title,author:Authors!posts_author_id_fkey(FullName),labels(name)")
              .eq("published", True).gt("score", 7).order("id", desc=True).limit(2).execute())
    expected = sql(tenant["database"], """
        select p.id, p.title, json_build_object('FullName', a."FullName") as author,
               (select coalesce(json_agg(json_build_object('name', l.name)), '[]') from labels l
                join post_labels pl on pl.label_id = l.id where pl.post_id = p.id) as labels
        from posts p join "Authors" a on a."Id" = p.author_id
        where p.published and p.score > 7 order by p.id desc limit 2""")
    assert [(r["id"], r["title"], r["author"]) for r in result.data] == [(r["id"], r["title"], r["author"]) for r in expected]
    assert [sorted(l["name"] for l in r["labels"]) for r in result.data] == [sorted(l["name"] for l in r["labels"]) for r in expected]


def test_filters_the_client_offers(client, tenant):
    data = client.table("posts").select("id").in_("id", [1, 3, 5]).ilike("title", "%o%").order("id").execute().data
    assert data == sql(tenant["database"], "select id from posts where id in (1,3,5) and title ilike '%o%' order by id")
    data = client.table("posts").select("id").contains("tags", ["math"]).is_("editor_id", "null").order("id").execute().data
    assert data == sql(tenant["database"], "select id from posts where tags @> '{math}' and editor_id is null order by id")
    data = client.table("posts").select("id").or_("score.gte.10,title.eq.Compilers").order("id").execute().data
    assert data == sql(tenant["database"], "select id from posts where score >= 10 or title = 'Compilers' order by id")
    data = client.table("posts").select("id").not_.eq("author_id", 1).order("id").execute().data
    assert data == sql(tenant["database"], "select id from posts where author_id <> 1 order by id")


def test_insert_and_bulk_insert(client, tenant):
    one = client.table("labels").insert({"id": 50, "name": "fifty"}).execute()
    assert one.data == [{"id": 50, "name": "fifty"}]
    bulk = client.table("labels").insert([{"id": 51, "name": "a"}, {"id": 52, "name": "b"}]).execute()
    assert [r["id"] for r in bulk.data] == [51, 52]
    assert sql(tenant["database"], "select id, name from labels where id >= 50 order by id") == [
        {"id": 50, "name": "fifty"}, {"id": 51, "name": "a"}, {"id": 52, "name": "b"}]


def test_upsert_update_delete(client, tenant):
    client.table("labels").upsert({"id": 1, "name": "classic!"}).execute()
    client.table("labels").upsert([{"id": 60, "name": "new"}], on_conflict="id").execute()
    assert sql(tenant["database"], "select name from labels where id in (1, 60) order by id") == [{"name": "classic!"}, {"name": "new"}]
    updated = client.table("posts").update({"published": False}).eq("author_id", 2).execute()
    assert sorted(r["id"] for r in updated.data) == [3, 5]
    assert sql(tenant["database"], "select count(*) as n from posts where author_id = 2 and published") == [{"n": 0}]
    deleted = client.table("post_labels").delete().eq("post_id", 5).execute()
    assert len(deleted.data) == 2
    assert sql(tenant["database"], "select count(*) as n from post_labels where post_id = 5") == [{"n": 0}]


def test_rpc(client, tenant):
    assert client.rpc("add_numbers", {"a": 2, "b": 3}).execute().data == 5
    rows = client.rpc("posts_by", {"author": 1}).select("id").order("id").execute().data
    assert rows == sql(tenant["database"], "select id from posts where author_id = 1 order by id")


def test_count_single_and_csv(client, tenant):
    counted = client.table("posts").select("id", count="exact").eq("published", True).limit(1).execute()
    assert counted.count == sql(tenant["database"], "select count(*) as n from posts where published")[0]["n"]
    assert len(counted.data) == 1
    single = client.table("orgs").select("name").eq("id", 2).single().execute()
    assert single.data == {"name": "Globex"}
    csv = client.table("orgs").select("id,name").order("id").csv().execute()
    assert csv.data.strip().splitlines() == ["id,name", "1,Acme", "2,Globex"]


def test_errors_come_back_in_postgrest_shape(client):
    from postgrest.exceptions import APIError
    with pytest.raises(APIError) as caught:
        client.table("labels").insert({"id": 1, "name": "duplicate"}).execute()
    assert caught.value.code == "23505"
    with pytest.raises(APIError) as caught:
        client.table("nothing_here").select("*").execute()
    assert caught.value.code == "PGRST205"


def test_anon_key_is_refused_until_policies_exist(tenant):
    from postgrest.exceptions import APIError
    anon = create_client(tenant["apiUrl"], tenant["anonKey"])
    with pytest.raises(APIError) as caught:
        anon.table("orgs").select("*").execute()
    assert caught.value.code == "42501"


def test_openapi_document_is_valid(tenant):
    request = urllib.request.Request(tenant["apiUrl"] + "/rest/v1/", headers={"apikey": tenant["serviceKey"]})
    with urllib.request.urlopen(request, timeout=30) as response:
        document = json.loads(response.read())
    validate(document)
    assert "/posts" in document["paths"] and "/rpc/add_numbers" in document["paths"]


def test_a_supabase_project_without_its_database_url(node, tenant):
    """Another mini-baas tenant stands in for a Supabase project: registered with its URL and service
    key only, it is reached through its REST endpoint, and the official client works unchanged."""
    import secrets as _secrets
    from conftest import call as admin_call
    slug = "px" + _secrets.token_hex(4)
    created = admin_call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Proxy"})
    registered = admin_call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token,
                            {"name": "project", "kind": "supabase", "url": tenant["apiUrl"], "serviceKey": tenant["serviceKey"]})
    assert registered["proxy"] is True and "posts" in registered["entities"]
    client = create_client(created["apiUrl"], created["serviceKey"])
    data = client.table("posts").select("id,title").eq("published", True).order("id").execute().data
    assert data == sql(tenant["database"], "select id, title from posts where published order by id")
    counted = client.table("posts").select("id", count="exact").limit(1).execute()
    assert counted.count == sql(tenant["database"], "select count(*) as n from posts")[0]["n"]
    client.table("labels").insert({"id": 77, "name": "through the proxy"}).execute()
    assert sql(tenant["database"], "select name from labels where id = 77") == [{"name": "through the proxy"}]
    assert client.rpc("add_numbers", {"a": 2, "b": 3}).execute().data == 5
    with pytest.raises(Exception) as unknown:
        client.table("ghosts").select("*").execute()
    assert "PGRST205" in str(unknown.value)
    anon = create_client(created["apiUrl"], created["anonKey"])
    with pytest.raises(Exception) as refused:
        anon.table("posts").select("id").execute()
    assert "42501" in str(refused.value)
