"""Search-as-you-type at {apiUrl}/search/v1, judged by the official `meilisearch` client: indexes
over a PostgreSQL source and over an embedded (SQLite-hosted) tenant, kept in sync with REST and
SQL writes, policies bounding rows and columns, Meilisearch's error codes for bad input."""
import json
import subprocess
import time
import urllib.error
import urllib.request

import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError
from supabase import create_client

from conftest import call
from test_sqlite_hosted import EmbeddedNode


def psql(database, statement):
    subprocess.run(["psql", database, "-qc", statement], check=True, stdout=subprocess.DEVNULL)


def client(tenant, key=None):
    return meilisearch.Client(tenant["apiUrl"] + "/search/v1", key or tenant["serviceKey"])


def wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def ready_index(search, uid, **options):
    """Creates the index, waits for its build, and applies settings."""
    task = search.create_index(uid, options or None)
    done = search.wait_for_task(task.task_uid, timeout_in_ms=20_000)
    assert done.status == "succeeded", done
    return search.index(uid)


def searched(index, query, params=None):
    """Retries while the index is warming (its tree restarted after a policy change)."""
    deadline = time.time() + 20
    while True:
        try:
            return index.search(query, params or {})
        except MeilisearchApiError as error:
            if error.code != "MB887" or time.time() > deadline:
                raise
            time.sleep(0.1)


def raw(tenant, method, path, key=None, body=None):
    request = urllib.request.Request(f"{tenant['apiUrl']}/search/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def test_the_official_client_builds_searches_filters_and_pages(tenant):
    search = client(tenant)
    posts = ready_index(search, "posts")
    assert posts.get_stats().number_of_documents == 5
    task = posts.update_settings({"filterableAttributes": ["tags", "published", "author_id"], "sortableAttributes": ["score", "title"]})
    assert search.wait_for_task(task.task_uid).status == "succeeded"
    assert posts.get_settings()["filterableAttributes"] == ["tags", "published", "author_id"]

    # A typo and an unfinished last word, as someone types.
    typed = posts.search("computng machi")
    assert typed["hits"][0]["title"] == "Computing Machinery"
    assert typed["estimatedTotalHits"] >= 1
    # Filters, sort and facets over the same documents, counted exactly.
    found = posts.search("", {"filter": "published = true AND tags IN [math]", "sort": ["score:desc"], "facets": ["tags", "author_id"]})
    assert [hit["id"] for hit in found["hits"]] == [5, 1, 3]
    assert found["facetDistribution"]["tags"] == {"ai": 1, "history": 1, "math": 3}
    assert found["facetStats"]["author_id"] == {"min": 1, "max": 2}
    paged = posts.search("", {"hitsPerPage": 2, "page": 3, "sort": ["title:asc"]})
    assert paged["totalHits"] == 5 and paged["totalPages"] == 3 and [hit["title"] for hit in paged["hits"]] == ["Poetical Science"]
    highlighted = posts.search("poetic", {"attributesToHighlight": ["title"], "showRankingScore": True})
    assert highlighted["hits"][0]["_formatted"]["title"] == "<em>Poetic</em>al Science"
    assert 0 < highlighted["hits"][0]["_rankingScore"] <= 1
    # Multi-search answers per index; the index list and a task list read back.
    multi = search.multi_search([{"indexUid": "posts", "q": "compilers"}, {"indexUid": "posts", "q": "engine"}])
    assert [result["hits"][0]["id"] for result in multi["results"]] == [4, 1]
    assert [index.uid for index in search.get_indexes()["results"]] == ["posts"]
    assert search.get_tasks({"indexUids": ["posts"]}).results[0].type == "settingsUpdate"


def test_rows_written_through_rest_or_sql_are_found_and_deleted_rows_vanish(tenant):
    search = client(tenant)
    labels = ready_index(search, "labels")
    rest = create_client(tenant["apiUrl"], tenant["serviceKey"])
    started = time.time()
    rest.table("labels").insert({"id": 40, "name": "Quarterly roadmap"}).execute()
    wait_for(lambda: labels.search("roadmap")["hits"])
    rest_seconds = time.time() - started
    started = time.time()
    psql(tenant["database"], "insert into labels (id, name) values (41, 'Written in psql')")
    wait_for(lambda: labels.search("psql")["hits"])
    sql_seconds = time.time() - started
    psql(tenant["database"], "update labels set name = 'Renamed entirely' where id = 41")
    wait_for(lambda: not labels.search("psql")["hits"] and labels.search("renamed")["hits"])
    psql(tenant["database"], "delete from labels where id = 40")
    wait_for(lambda: not labels.search("roadmap")["hits"])
    assert labels.get_stats().number_of_documents == 4
    print(f"freshness: REST write {rest_seconds * 1000:.0f} ms, SQL write {sql_seconds * 1000:.0f} ms")
    assert rest_seconds < 1 and sql_seconds < 2, (rest_seconds, sql_seconds)


def test_policies_decide_which_rows_and_columns_a_role_searches(node, tenant):
    search = client(tenant)
    ready_index(search, "posts")
    search.index("posts").update_settings({"filterableAttributes": ["tags", "score"], "sortableAttributes": ["score"]})
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant['slug']}/policies", node.token, {"policies": [
        {"entity": "posts", "role": "anon", "action": "read", "columns": ["id", "title", "tags", "published"],
         "when": {"published": {"eq": True}}},
    ]})
    anon = client(tenant, tenant["anonKey"]).index("posts")
    seen = searched(anon, "", {"facets": ["tags"], "limit": 50})
    assert sorted(hit["id"] for hit in seen["hits"]) == [1, 3, 4, 5], "the draft is neither found nor counted"
    assert seen["estimatedTotalHits"] == 4 and seen["facetDistribution"]["tags"]["math"] == 3
    assert all(set(hit) <= {"id", "title", "tags", "published"} for hit in seen["hits"])
    # "Poetical Science" is the unpublished draft: its words find nothing.
    assert searched(anon, "poetical")["hits"] == []
    with pytest.raises(MeilisearchApiError) as refused:
        anon.search("", {"filter": "score > 5"})
    assert refused.value.status_code == 403 and refused.value.code == "MB884"
    with pytest.raises(MeilisearchApiError) as refused:
        anon.search("", {"sort": ["score:asc"]})
    assert refused.value.code == "MB884"
    with pytest.raises(MeilisearchApiError) as refused:
        client(tenant, tenant["anonKey"]).create_index("sneaky", {"entity": "labels"})
    assert refused.value.status_code == 403 and refused.value.code == "MB881"
    # The service role sees everything.
    assert searched(search.index("posts"), "poetical")["hits"][0]["score"] is None


def test_bad_input_answers_meilisearch_codes_and_changes_nothing(tenant):
    search = client(tenant)
    posts = ready_index(search, "posts")
    posts.update_settings({"filterableAttributes": ["tags"]})
    for uid, options, status, code in [
        ("posts", None, 409, "index_already_exists"),
        ("no such!", None, 400, "invalid_index_uid"),
        ("ghosts", None, 404, "MB880"),
        ("pairs", {"entity": "post_labels"}, 400, "MB882"),
        ("labelled", {"entity": "labels", "primaryKey": "name"}, 400, "MB882"),
    ]:
        with pytest.raises(MeilisearchApiError) as failed:
            search.create_index(uid, options)
        assert (failed.value.status_code, failed.value.code) == (status, code), uid
    assert [index.uid for index in search.get_indexes()["results"]] == ["posts"], "nothing half-made"
    hostile = ["tags = 'x'; drop table posts; --'", "tags = \"unterminated", "tags IN [a, (b)]", "((((tags = a)", "tags = a OR",
               "NOT", "title = x", "tags >= ", "'" * 5000, "_geoRadius(45.4, 9.1, 2000)"]
    for text in hostile:
        with pytest.raises(MeilisearchApiError) as failed:
            posts.search("", {"filter": text})
        assert failed.value.status_code == 400 and failed.value.code == "invalid_search_filter", text
    with pytest.raises(MeilisearchApiError) as failed:
        search.index("nothing").search("x")
    assert (failed.value.status_code, failed.value.code) == (404, "index_not_found")
    with pytest.raises(MeilisearchApiError) as failed:
        posts.add_documents([{"id": 99, "title": "sideways"}])
    assert (failed.value.status_code, failed.value.code) == (405, "MB886")
    with pytest.raises(MeilisearchApiError) as failed:
        posts.update_settings({"rankingRules": ["words", "luck"]})
    assert failed.value.code == "invalid_settings_ranking_rules"
    assert posts.get_settings()["rankingRules"] == ["words", "typo", "proximity", "attribute", "sort", "exactness"]
    status, body, _ = raw(tenant, "POST", "/indexes/posts/search", None, {"q": "x"})
    assert status == 401 and body["code"] == "missing_authorization_header"
    status, body, _ = raw(tenant, "POST", "/indexes/posts/search", "not-a-key", {"q": "x"})
    assert status == 403 and body["code"] == "invalid_api_key"
    status, body, _ = raw(tenant, "POST", "/indexes/posts/search", tenant["serviceKey"], {"q": "x", "bogus": 1})
    assert status == 400 and body["code"] == "bad_request" and body["link"].startswith("https://")
    psql(tenant["database"], "select count(*) from posts")  # the table is still there


def test_an_embedded_tenant_is_searchable_with_its_anon_key():
    lite = EmbeddedNode()
    try:
        keys = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in lite.announced if " key:" in line}
        api = f"{lite.base}/t/demo"
        service = meilisearch.Client(api + "/search/v1", keys["service key"])
        task = service.create_index("todos")
        assert service.wait_for_task(task.task_uid).status == "succeeded"
        anon = meilisearch.Client(api + "/search/v1", keys["anon key"]).index("todos")
        assert anon.search("quer")["hits"][0]["title"] == "Query todos with the anon key"
        rest = create_client(api, keys["service key"])
        rest.table("todos").insert({"title": "Find me by typing", "done": False}).execute()
        hit = wait_for(lambda: anon.search("typng")["hits"], timeout=5)
        assert hit[0]["title"] == "Find me by typing"
    finally:
        lite.stop()


def test_the_admin_api_defines_indexes_on_any_node(node, tenant):
    base = f"{node.base}/admin/v1/tenants/{tenant['slug']}/search/indexes"
    created = call("POST", base, node.token, {"uid": "tags", "entity": "labels"})
    assert created["entity"] == "labels" and created["primaryKey"] == "id"
    tags = client(tenant).index("tags")
    found = wait_for(lambda: _quietly(lambda: tags.search("featurd")["hits"]), timeout=20)
    assert [hit["name"] for hit in found] == ["featured"]
    assert [index["uid"] for index in call("GET", base, node.token)["indexes"]] == ["tags"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        call("POST", base, node.token, {"uid": "ghost", "entity": "nothing"})
    assert refused.value.code == 404 and json.loads(refused.value.read())["code"] == "MB880"
    request = urllib.request.Request(f"{base}/tags", method="DELETE", headers={"Authorization": f"Bearer {node.token}"})
    assert urllib.request.urlopen(request).status == 204
    wait_for(lambda: _quietly(lambda: client(tenant).get_indexes()["results"] == []) , timeout=20)


def _quietly(attempt):
    """The attempt's value, or None while the index is not there yet (the tree restarts)."""
    try:
        return attempt()
    except MeilisearchApiError as error:
        if error.code in ("MB887", "index_not_found"):
            return None
        raise


def test_a_new_owner_rebuilds_the_index_with_every_row_written_during_the_hand_over():
    """Three nodes on PostgreSQL and Redis. The tenant's owner is killed with -9 while rows are
    written; the next owner builds the index from the source and finds every committed row, and
    the vectors acknowledged before the kill."""
    from cluster_harness import Cluster
    from conftest import fresh_database
    from pinecone import Pinecone
    cluster = Cluster(3, heartbeat_ms=250, lease_ttl_ms=2000)
    try:
        slug = "searchmove"
        created = cluster.create_tenant(slug)
        database = fresh_database()
        status, _, body = cluster.admin("POST", f"/tenants/{slug}/sources", {"name": "main", "kind": "postgres", "url": database})
        assert status == 201, body
        status, _, body = cluster.admin("POST", f"/tenants/{slug}/search/indexes", {"uid": "labels"})
        assert status == 201, body
        node = cluster.live_nodes()[0]
        api = f"{node.base}/t/{slug}"
        search = meilisearch.Client(api + "/search/v1", created["serviceKey"])
        wait_for(lambda: _quietly(lambda: search.index("labels").get_stats().number_of_documents == 3), timeout=30)
        pc = Pinecone(api_key=created["serviceKey"], host=api + "/vectors/v1")
        pc.create_index(name="kept", dimension=2, metric="euclidean", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
        pc.Index(host=api + "/vectors/v1/indexes/kept").upsert(vectors=[("p", [1, 2]), ("q", [3, 4])])
        for i in range(100, 120):
            psql(database, f"insert into labels (id, name) values ({i}, 'moving {i}')")
        owner = cluster.view()["placements"][slug]
        next(n for n in cluster.nodes if n.id == owner).kill()
        for i in range(120, 140):
            psql(database, f"insert into labels (id, name) values ({i}, 'moving {i}')")
        survivor = cluster.live_nodes()[0]
        api = f"{survivor.base}/t/{slug}"
        search = meilisearch.Client(api + "/search/v1", created["serviceKey"])

        def everything():
            answer = _quietly(lambda: search.index("labels").search("moving", {"limit": 100}))
            return answer if answer and answer["estimatedTotalHits"] == 40 else None
        found = wait_for(everything, timeout=60)
        assert sorted(hit["id"] for hit in found["hits"]) == list(range(100, 140))
        vectors = Pinecone(api_key=created["serviceKey"], host=api + "/vectors/v1").Index(host=api + "/vectors/v1/indexes/kept")
        stats = wait_for(lambda: _vector_stats(vectors), timeout=30)
        assert stats.total_vector_count == 2
    finally:
        cluster.stop()


def _vector_stats(index):
    from pinecone import ApiError
    try:
        return index.describe_index_stats()
    except ApiError as error:
        if error.status_code in (503, 404):
            return None
        raise


def test_while_the_index_is_built_postgresql_answers_by_sql(node, tenant):
    psql(tenant["database"], "create table parts (id int primary key, name text not null, secret text);"
                             "insert into parts select g, 'part ' || g, 's' || g from generate_series(1, 200000) g")
    call("POST", f"{node.base}/admin/v1/tenants/{tenant['slug']}/sources/main/refresh", node.token, {})
    call("POST", f"{node.base}/admin/v1/tenants/{tenant['slug']}/search/indexes", node.token, {"uid": "parts"})
    modes = set()
    deadline = time.time() + 60
    while time.time() < deadline and "indexed" not in modes:
        status, body, headers = raw(tenant, "POST", "/indexes/parts/search", tenant["serviceKey"], {"q": "part 12345", "sort": []})
        if status == 200:
            mode = headers.get("X-Search-Mode") or "indexed"
            if mode == "fallback":
                assert body["hits"] and all("12345" in hit["name"] for hit in body["hits"]), body
                # Every word as a substring, exactly counted: 12345, 112345 and 123450-123459.
                assert body["estimatedTotalHits"] == 12, body["estimatedTotalHits"]
            modes.add(mode)
        else:
            assert status in (404, 503), body
        time.sleep(0.05)
    assert modes == {"fallback", "indexed"}, modes
    # Once built, the in-memory index answers (whole words, the last one a prefix) without the header.
    status, body, headers = raw(tenant, "POST", "/indexes/parts/search", tenant["serviceKey"], {"q": "12345 par"})
    assert status == 200 and "X-Search-Mode" not in headers and body["hits"][0]["id"] == 12345
