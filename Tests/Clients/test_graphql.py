"""GraphQL generated from the model at {apiUrl}/graphql/v1 (pg_graphql's schema), checked with
graphql-core's build_client_schema, the `gql` client from PyPI, and the database as the oracle;
a SQLite-hosted tenant answers the same documents with the same JSON."""
import base64
import hashlib
import json
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from graphql import build_client_schema, get_introspection_query

from conftest import call, fresh_database, sql
from test_sqlite_hosted import EmbeddedNode


def post(tenant, body, key=None, headers=None, path="graphql/v1"):
    key = key or tenant["serviceKey"]
    request = urllib.request.Request(f"{tenant['apiUrl']}/{path}", data=json.dumps(body).encode(), method="POST")
    request.add_header("apikey", key)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def query(tenant, document, variables=None, key=None):
    status, body = post(tenant, {"query": document} | ({"variables": variables} if variables else {}), key=key)
    assert status == 200, body
    return body


def data(tenant, document, variables=None, key=None):
    body = query(tenant, document, variables, key)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_code(body):
    assert body["data"] is None, body
    return body["errors"][0]["extensions"]["code"]


def client(tenant, key=None):
    key = key or tenant["serviceKey"]
    transport = RequestsHTTPTransport(url=f"{tenant['apiUrl']}/graphql/v1", headers={"apikey": key, "Authorization": f"Bearer {key}"}, timeout=30)
    return Client(transport=transport, fetch_schema_from_transport=True)


def schema_of(tenant, key=None):
    body = query(tenant, get_introspection_query(descriptions=True), key=key)
    assert "errors" not in body, body.get("errors")
    return build_client_schema(body["data"])


def test_the_schema_is_pg_graphqls_and_graphql_core_builds_it(tenant):
    schema = schema_of(tenant)
    posts = schema.get_type("posts")
    assert {"nodeId", "id", "title", "tags", "meta", "published", "score", "Authors", "post_labelsCollection"} <= set(posts.fields)
    assert str(posts.fields["id"].type) == "BigInt!" and str(posts.fields["meta"].type) == "JSON"
    assert str(posts.fields["score"].type) == "BigFloat" and str(posts.fields["tags"].type) == "[String]!"
    assert str(posts.fields["created_at"].type) == "Datetime!"
    assert [i.name for i in posts.interfaces] == ["Node"]
    authors = schema.get_type("Authors")
    assert str(authors.fields["mood"].type) == "mood!" and set(schema.get_type("mood").values) == {"happy", "sad", "meh"}
    assert "profiles" in authors.fields and "postsCollection" in authors.fields
    query_type = schema.query_type.fields
    assert {"postsCollection", "postsByPk", "AuthorsCollection", "node"} <= set(query_type)
    assert set(query_type["postsCollection"].args) == {"first", "last", "before", "after", "offset", "filter", "orderBy"}
    # Views without a primary key are left out, as pg_graphql leaves them.
    assert "published_postsCollection" not in query_type
    mutation = schema.mutation_type.fields
    assert {"insertIntopostsCollection", "updatepostsCollection", "deleteFrompostsCollection"} <= set(mutation)
    assert str(mutation["updatepostsCollection"].args["atMost"].type) == "Int!"
    # The generated column is not an input.
    assert "slug" not in schema.get_type("postsInsertInput").fields


def test_a_nested_query_through_gql_matches_the_database(tenant):
    document = gql("""
        query Posts($first: Int!) {
          postsCollection(first: $first, orderBy: [{id: AscNullsLast}]) {
            totalCount
            edges { node { id title score meta Authors { FullName mood } post_labelsCollection { edges { node { label_id } } } } }
          }
        }""")
    with client(tenant) as session:
        answer = session.execute(document, variable_values={"first": 3})
    expected = sql(tenant["database"], """
        select p.id::text as id, p.title, p.score::text as score, p.meta::text as meta, a."FullName" as full_name, a.mood::text as mood,
               (select coalesce(json_agg(l.label_id order by l.label_id), '[]') from post_labels l where l.post_id = p.id) as labels
        from posts p join "Authors" a on a."Id" = p.author_id order by p.id limit 3""")
    connection = answer["postsCollection"]
    assert connection["totalCount"] == 5
    got = [edge["node"] for edge in connection["edges"]]
    assert [n["id"] for n in got] == [row["id"] for row in expected]
    for node, row in zip(got, expected):
        assert node["title"] == row["title"] and node["Authors"] == {"FullName": row["full_name"], "mood": row["mood"]}
        assert (node["score"] is None) == (row["score"] is None)
        if row["score"] is not None:
            assert float(node["score"]) == float(row["score"])
        assert (json.loads(node["meta"]) if node["meta"] else None) == (json.loads(row["meta"]) if row["meta"] else None)
        assert sorted(e["node"]["label_id"] for e in node["post_labelsCollection"]["edges"]) == row["labels"]


def test_cursors_page_through_every_row_once(tenant):
    seen, after, pages = [], None, 0
    while True:
        page = data(tenant, """query($after: Cursor) { postsCollection(first: 2, after: $after, orderBy: [{score: DescNullsLast}]) {
            edges { cursor node { id score } } pageInfo { hasNextPage hasPreviousPage endCursor } } }""", {"after": after})["postsCollection"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert page["edges"][-1]["cursor"] == after
    oracle = [row["id"] for row in sql(tenant["database"], "select id::text as id from posts order by score desc nulls last, id")]
    assert seen == oracle and pages == 3
    last = data(tenant, "{ postsCollection(last: 2) { edges { node { id } } pageInfo { hasPreviousPage } } }")["postsCollection"]
    assert [e["node"]["id"] for e in last["edges"]] == ["4", "5"] and last["pageInfo"]["hasPreviousPage"] is True


@pytest.mark.parametrize("graphql_filter, where", [
    ('{published: {eq: true}, score: {gte: "8"}}', "published and score >= 8"),
    ('{or: [{title: {startsWith: "Comp"}}, {score: {is: NULL}}]}', "title like 'Comp%' or score is null"),
    ('{not: {id: {in: ["1", "2"]}}}', "not (id in (1, 2))"),
    ('{title: {ilike: "%on%"}, and: [{author_id: {neq: 3}}]}', "title ilike '%on%' and author_id <> 3"),
    ('{editor_id: {is: NOT_NULL}, created_at: {lt: "2027-01-01T00:00:00Z"}}', "editor_id is not null and created_at < '2027-01-01'"),
    ('{title: {regex: "^[A-C]"}, not: {title: {iregex: "ALAN"}}}', "title ~ '^[A-C]' and not title ~* 'ALAN'"),
    ('{tags: {contains: ["math"]}}', "tags @> '{math}'"),
    ('{tags: {overlaps: ["poetry", "x y", "NULL", "cobol"]}}', "tags && array['poetry', 'x y', 'NULL', 'cobol']"),
    ('{tags: {containedBy: ["math", "ai", "history"]}}', "tags <@ '{math,ai,history}'"),
    ('{tags: {eq: ["math"]}, not: {tags: {eq: []}}}', "tags = '{math}'"),
])
def test_filters_select_what_sql_selects(tenant, graphql_filter, where):
    got = data(tenant, f"{{ postsCollection(filter: {graphql_filter}) {{ edges {{ node {{ id }} }} }} }}")["postsCollection"]["edges"]
    expected = [row["id"] for row in sql(tenant["database"], f"select id::text as id from posts where {where} order by id")]
    assert [edge["node"]["id"] for edge in got] == expected


def test_starts_with_takes_its_text_literally(tenant):
    subprocess.run(["psql", tenant["database"], "-qc", "insert into posts (author_id, title) values (1, 'Star*gazing'), (1, 'Starlight'), (1, '50% off'), (1, '50 cents')"], check=True)
    for prefix, titles in (("Star*", ["Star*gazing"]), ("50%", ["50% off"]), ("Star", ["Star*gazing", "Starlight"]), ("*", [])):
        got = data(tenant, "query($p: String) { postsCollection(filter: {title: {startsWith: $p}}, orderBy: [{title: AscNullsLast}]) { edges { node { title } } } }", {"p": prefix})
        assert [edge["node"]["title"] for edge in got["postsCollection"]["edges"]] == titles, prefix


def test_by_pk_and_node_find_the_same_row(tenant):
    first = data(tenant, '{ postsByPk(id: "3") { nodeId id title } }')["postsByPk"]
    assert first["title"] == "Computing Machinery"
    assert json.loads(base64.b64decode(first["nodeId"])) == ["public", "posts", 3]
    found = data(tenant, "query($id: ID!) { node(nodeId: $id) { nodeId __typename ... on posts { title } } }", {"id": first["nodeId"]})["node"]
    assert found == {"nodeId": first["nodeId"], "__typename": "posts", "title": "Computing Machinery"}
    assert data(tenant, '{ postsByPk(id: "999") { id } }')["postsByPk"] is None
    assert error_code(query(tenant, '{ node(nodeId: "not base64 json") { nodeId } }')) == "MB730"


def test_mutations_write_return_and_respect_at_most(tenant):
    inserted = data(tenant, """mutation { insertIntopostsCollection(objects: [{author_id: 2, title: "Fresh", meta: "{\\"lang\\": \\"de\\"}"},
        {author_id: 3, title: "Fresher", tags: ["x"]}]) { affectedCount records { id title meta tags published Authors { FullName } } } }""")
    result = inserted["insertIntopostsCollection"]
    assert result["affectedCount"] == 2
    assert [r["title"] for r in result["records"]] == ["Fresh", "Fresher"]
    assert json.loads(result["records"][0]["meta"]) == {"lang": "de"} and result["records"][1]["tags"] == ["x"]
    assert result["records"][0]["published"] is False and result["records"][0]["Authors"] == {"FullName": "Alan Turing"}
    # Over atMost: nothing changes.
    before = sql(tenant["database"], "select id, score from posts order by id")
    refused = query(tenant, 'mutation { updatepostsCollection(set: {score: "1"}, filter: {author_id: {eq: 1}}) { affectedCount } }')
    assert error_code(refused) == "MB729" and "too many records" in refused["errors"][0]["message"]
    assert sql(tenant["database"], "select id, score from posts order by id") == before
    updated = data(tenant, 'mutation { updatepostsCollection(set: {score: "1.5"}, filter: {author_id: {eq: 1}}, atMost: 5) { affectedCount records { id score } } }')
    assert updated["updatepostsCollection"]["affectedCount"] == 2
    assert {r["score"] for r in updated["updatepostsCollection"]["records"]} == {"1.5"}
    new_ids = [r["id"] for r in result["records"]]
    deleted = data(tenant, "mutation($ids: [BigInt!]) { deleteFrompostsCollection(filter: {id: {in: $ids}}, atMost: 2) { affectedCount } }", {"ids": new_ids})
    assert deleted["deleteFrompostsCollection"]["affectedCount"] == 2
    assert sql(tenant["database"], "select count(*) as n from posts")[0]["n"] == 5


def test_a_mutations_fields_share_one_transaction(tenant):
    before = sql(tenant["database"], "select id, title, score from posts order by id")
    # The second field goes over its atMost: the first field's insert is undone with it.
    refused = query(tenant, """mutation { insertIntopostsCollection(objects: [{author_id: 2, title: "Undone"}]) { affectedCount }
        updatepostsCollection(set: {score: "9"}, filter: {author_id: {eq: 1}}) { affectedCount } }""")
    assert error_code(refused) == "MB729" and refused["errors"][0]["path"] == ["updatepostsCollection"]
    assert sql(tenant["database"], "select id, title, score from posts order by id") == before
    # A failing write first: the later field never runs.
    refused = query(tenant, """mutation { a: insertIntopostsCollection(objects: [{author_id: 999, title: "No author"}]) { affectedCount }
        b: insertIntopostsCollection(objects: [{author_id: 2, title: "Never"}]) { affectedCount } }""")
    assert error_code(refused) == "23503" and refused["errors"][0]["path"] == ["a"]
    assert sql(tenant["database"], "select id, title, score from posts order by id") == before
    # Fields run in document order and each sees the one before it.
    done = data(tenant, """mutation { __typename first: insertIntopostsCollection(objects: [{author_id: 2, title: "Shared"}]) { records { id } }
        second: updatepostsCollection(set: {score: "2.5"}, filter: {title: {eq: "Shared"}}) { affectedCount records { title score } } }""")
    assert done["__typename"] == "Mutation"
    assert done["second"]["affectedCount"] == 1 and done["second"]["records"][0]["title"] == "Shared"
    assert float(done["second"]["records"][0]["score"]) == 2.5
    new_id = done["first"]["records"][0]["id"]
    assert sql(tenant["database"], f"select score::float8 as score from posts where id = {int(new_id)}") == [{"score": 2.5}]
    removed = data(tenant, "mutation($id: BigInt!) { deleteFrompostsCollection(filter: {id: {eq: $id}}) { affectedCount } }", {"id": new_id})
    assert removed == {"deleteFrompostsCollection": {"affectedCount": 1}}


def test_each_role_sees_its_own_schema_and_rows(node, tenant):
    slug, base = tenant["slug"], node.base
    call("PUT", f"{base}/admin/v1/tenants/{slug}/policies", node.token, {"policies": [
        {"entity": "posts", "role": "anon", "action": "read", "columns": ["id", "author_id", "title", "published"], "when": {"published": {"eq": True}}},
        {"entity": "Authors", "role": "anon", "action": "read"},
    ]})
    anon = tenant["anonKey"]
    # Introspection is off for anon until the tenant turns it on.
    assert error_code(query(tenant, "{ __schema { types { name } } }", key=anon)) == "MB726"
    settings = call("PUT", f"{base}/admin/v1/tenants/{slug}/graphql", node.token, {"introspection": True, "maxRows": 2})
    assert settings == {"introspection": True, "maxRows": 2, "maxDepth": 20, "maxCost": 50000, "inflectNames": False}
    schema = schema_of(tenant, key=anon)
    posts = schema.get_type("posts")
    assert set(posts.fields) == {"nodeId", "id", "author_id", "title", "published", "Authors"}
    assert schema.mutation_type is None and schema.get_type("labels") is None
    assert "meta" not in schema.get_type("postsFilter").fields
    # A to-one to a table the role reads whole stays non-null; rows are the published ones only, two per page.
    assert str(posts.fields["Authors"].type) == "Authors!"
    page = data(tenant, "{ postsCollection { totalCount edges { node { id } } pageInfo { hasNextPage } } }", key=anon)["postsCollection"]
    assert page["totalCount"] == 4 and len(page["edges"]) == 2 and page["pageInfo"]["hasNextPage"] is True
    unknown = query(tenant, "{ postsCollection { edges { node { meta } } } }", key=anon)
    assert error_code(unknown) == "MB721" and "Unknown field" in unknown["errors"][0]["message"]
    assert error_code(query(tenant, "mutation { deleteFrompostsCollection { affectedCount } }", key=anon)) == "MB721"


def test_bad_documents_get_graphql_errors_with_codes(tenant):
    syntax = query(tenant, "{ postsCollection { edges { node { id } }")
    assert error_code(syntax) == "MB720" and syntax["errors"][0]["locations"] == [{"line": 1, "column": 42}]
    assert error_code(query(tenant, "{ nope }")) == "MB721"
    assert error_code(query(tenant, "query A { __typename } query B { __typename }")) == "MB722"
    status, body = post(tenant, {"query": "query($n: Int!) { postsCollection(first: $n) { totalCount } }", "variables": {"n": "three"}})
    assert status == 200 and error_code(body) == "MB723"
    assert error_code(query(tenant, "subscription { postsCollection { totalCount } }")) == "MB727"
    assert error_code(query(tenant, '{ postsCollection(after: "bm9wZQ==") { totalCount } }')) == "MB730"
    assert error_code(query(tenant, "fragment A on posts { ...B } fragment B on posts { ...A } { postsCollection { edges { node { ...A } } } }")) == "MB721"
    inner = "id"
    for _ in range(5):
        inner = f"Authors {{ postsCollection(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    deep = f"{{ postsCollection(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"
    assert error_code(query(tenant, deep)) == "MB724"
    hostile = "{" * 10_000 + "}" * 10_000
    assert error_code(query(tenant, hostile)) in {"MB720", "MB724"}
    assert error_code(query(tenant, '{ postsCollection(filter: {title: {eq: "' + "x" * 70_000 + '"}}) { totalCount } }')) == "MB725"
    # A NUL reaches the database as a bound value and is refused there with its SQLSTATE.
    assert error_code(query(tenant, '{ postsCollection(filter: {title: {eq: "a\\u0000b"}}) { totalCount } }')) == "22021"
    # Strict clients hear request errors as 400.
    status, body = post(tenant, {"query": "{ nope }"}, headers={"Accept": "application/graphql-response+json"})
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "MB721"
    # Mutations are refused over GET; queries work.
    def get(document):
        url = f"{tenant['apiUrl']}/graphql/v1?" + urllib.parse.urlencode({"query": document})
        request = urllib.request.Request(url, headers={"apikey": tenant["serviceKey"]})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
    status, body = get('mutation { deleteFrompostsCollection(filter: {id: {eq: "1"}}) { affectedCount } }')
    assert status == 405 and body["errors"][0]["extensions"]["code"] == "MB728"
    status, body = get("{ postsCollection(first: 1) { edges { node { id } } } }")
    assert status == 200 and body["data"]["postsCollection"]["edges"] == [{"node": {"id": "1"}}]
    # Transport errors keep our shape.
    request = urllib.request.Request(f"{tenant['apiUrl']}/graphql/v1", data=b"{not json", method="POST", headers={"apikey": tenant["serviceKey"], "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and json.loads(refused.value.read())["code"]


def test_automatic_persisted_queries(tenant):
    document = "{ postsCollection(first: 1) { edges { node { title } } } }"
    digest = hashlib.sha256(document.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    status, body = post(tenant, {"extensions": extensions})
    assert body["errors"][0]["message"] == "PersistedQueryNotFound" and body["errors"][0]["extensions"]["code"] == "MB731"
    status, body = post(tenant, {"query": document, "extensions": extensions})
    assert body["data"]["postsCollection"]["edges"][0]["node"]["title"] == "Notes on the Engine"
    status, body = post(tenant, {"extensions": extensions})
    assert body["data"]["postsCollection"]["edges"][0]["node"]["title"] == "Notes on the Engine"
    status, body = post(tenant, {"query": document + " ", "extensions": extensions})
    assert error_code(body) == "MB732"


LITE_ROWS = [
    ("projects", [{"name": "alpha", "budget": 12.5}, {"name": "beta"}]),
    ("tasks", [{"project_id": 1, "title": "write", "urgent": True, "tags": ["a", "b"], "meta": {"n": 1}, "due": "2026-12-24"},
               {"project_id": 1, "title": "test", "stage": "doing"}, {"project_id": 2, "title": "ship", "stage": "done", "tags": ["b"]}]),
]

SAME_DOCUMENTS = [
    "{ projectsCollection { totalCount edges { cursor node { nodeId id name budget tasksCollection(orderBy: [{title: AscNullsFirst}]) { edges { node { title stage urgent tags meta due } } } } } } }",
    '{ tasksCollection(filter: {or: [{stage: {eq: doing}}, {tags: {is: NULL}}, {title: {startsWith: "sh"}}]}, orderBy: [{due: DescNullsLast}]) { edges { node { id title projects { name } } } pageInfo { hasNextPage startCursor } } }',
    '{ tasksCollection(first: 1, after: "WzFd") { edges { node { id } } pageInfo { hasPreviousPage hasNextPage } } }',
    '{ a: tasksCollection(filter: {tags: {contains: ["b"]}}) { edges { node { id } } } b: tasksCollection(filter: {tags: {overlaps: ["a", "z"]}}) { edges { node { id } } } c: tasksCollection(filter: {tags: {containedBy: ["b", "c"]}}) { edges { node { id } } } d: tasksCollection(filter: {tags: {eq: ["a", "b"]}}) { edges { node { id } } } }',
    'mutation { updatetasksCollection(set: {urgent: true}, filter: {stage: {in: [idea, done]}}, atMost: 5) { affectedCount records { id urgent } } }',
    # One transaction: the second field's atMost undoes the first field's update too.
    'mutation { a: updatetasksCollection(set: {title: "renamed"}, filter: {id: {eq: 1}}) { affectedCount } b: deleteFromtasksCollection(filter: {id: {gt: 0}}) { affectedCount } }',
    '{ tasksCollection(orderBy: [{id: AscNullsLast}]) { edges { node { id title } } } }',
    'mutation { a: updatetasksCollection(set: {title: "renamed"}, filter: {id: {eq: 1}}) { affectedCount } b: updatetasksCollection(set: {urgent: false}, filter: {title: {eq: "renamed"}}) { records { id title urgent } } }',
]


def test_sqlite_hosted_answers_as_postgresql_does(node):
    from test_sqlite_hosted import SCHEMA, rest
    lite = EmbeddedNode()
    try:
        hosted = lite.tenant()
        slug = "gqpg" + secrets.token_hex(3)
        created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "PG"})
        database = fresh_database()
        subprocess.run(["psql", database, "-q", "-v", "ON_ERROR_STOP=1", "-c", SCHEMA], check=True)
        call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
        on_pg = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
        for tenant in (hosted, on_pg):
            for table, rows in LITE_ROWS:
                for row in rows:
                    status, _ = rest(tenant, "POST", table, row)
                    assert status == 201
        for document in SAME_DOCUMENTS:
            assert query(hosted, document) == query(on_pg, document), document
    finally:
        lite.stop()


def test_schema_comments_inflect_names_and_open_introspection(node):
    database = fresh_database()
    subprocess.run(["psql", database, "-qc", """comment on schema public is e'Our API\\n@graphql({"inflect_names": true, "introspection": true})'"""], check=True)
    slug = "gqinf" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Inflected"})
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
    call("PUT", f"{node.base}/admin/v1/tenants/{slug}/policies", node.token, {"policies": [
        {"entity": "posts", "role": "anon", "action": "read"}, {"entity": "Authors", "role": "anon", "action": "read"}]})
    tenant = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
    # The comment opens introspection to anon too.
    schema = schema_of(tenant, key=created["anonKey"])
    posts = schema.get_type("Posts")
    assert {"createdAt", "authorId", "author", "editor"} <= set(posts.fields), sorted(posts.fields)
    assert "postsCollection" in schema.query_type.fields
    first = data(tenant, "{ postsCollection(first: 1) { edges { node { createdAt author { fullName } } } } }")
    assert first["postsCollection"]["edges"][0]["node"] == {"createdAt": "2026-01-01T00:00:00+00:00", "author": {"fullName": "Ada Lovelace"}}


def test_enum_values_renamed_by_mappings(node):
    database = fresh_database()
    subprocess.run(["psql", database, "-qc", """comment on type mood is e'How they feel\n@graphql({"mappings": {"happy": "HAPPY", "sad": "SAD"}})'"""], check=True)
    slug = "gqenum" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Enums"})
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
    tenant = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
    mood = schema_of(tenant).get_type("mood")
    assert set(mood.values) == {"HAPPY", "SAD", "meh"} and mood.description == "How they feel"
    # Filters and answers speak the GraphQL values; the database keeps its labels.
    got = data(tenant, "query($m: mood!) { AuthorsCollection(filter: {mood: {in: [HAPPY, meh]}, not: {mood: {eq: $m}}}, orderBy: [{Id: AscNullsLast}]) { edges { node { FullName mood } } } }", {"m": "meh"})
    assert [edge["node"] for edge in got["AuthorsCollection"]["edges"]] == [
        {"FullName": "Ada Lovelace", "mood": "HAPPY"}, {"FullName": "Grace Hopper", "mood": "HAPPY"}]
    changed = data(tenant, 'mutation { updateAuthorsCollection(set: {mood: SAD}, filter: {FullName: {eq: "Nobody"}}) { records { mood } } }')
    assert changed["updateAuthorsCollection"]["records"] == [{"mood": "SAD"}]
    assert sql(database, "select mood::text as mood from \"Authors\" where \"FullName\" = 'Nobody'") == [{"mood": "sad"}]
    assert error_code(query(tenant, '{ AuthorsCollection(filter: {mood: {eq: happy}}) { totalCount } }')) == "MB721"


def test_relation_fields_named_by_their_constraints_comment(node):
    database = fresh_database()
    subprocess.run(["psql", database, "-qc", """comment on constraint posts_author_id_fkey on posts is e'@graphql({"foreign_name": "writer", "local_name": "writings"})'"""], check=True)
    slug = "gqfk" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Names"})
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
    tenant = {"apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"]}
    schema = schema_of(tenant)
    assert "writer" in schema.get_type("posts").fields and "writings" in schema.get_type("Authors").fields
    got = data(tenant, "{ AuthorsByPk(Id: 1) { FullName writings(orderBy: [{id: AscNullsLast}]) { edges { node { title writer { FullName } } } } } }")["AuthorsByPk"]
    titles = [row["title"] for row in sql(database, 'select title from posts where author_id = 1 order by id')]
    assert [edge["node"]["title"] for edge in got["writings"]["edges"]] == titles
    assert {edge["node"]["writer"]["FullName"] for edge in got["writings"]["edges"]} == {"Ada Lovelace"}


def test_functions_are_query_and_mutation_fields(tenant):
    schema = schema_of(tenant)
    fields = schema.query_type.fields
    assert {"add_numbers", "posts_by", "author_card", "tag_list", "sum_array"} <= set(fields)
    assert str(fields["add_numbers"].type) == "Int" and str(fields["add_numbers"].args["a"].type) == "Int!"
    assert str(fields["add_numbers"].args["b"].type) == "Int" and str(fields["posts_by"].type) == "postsConnection"
    # Volatile functions are mutations; those returning nothing are left out.
    assert "slow" in schema.mutation_type.fields and "slow" not in fields
    assert "touch_post" not in fields and "touch_post" not in schema.mutation_type.fields
    got = data(tenant, """{ add_numbers(a: 1) sum_array(xs: [1, 2, 3]) tag_list
        posts_by(author: 1, first: 5) { edges { node { title } } } author_card(author: 2) { FullName } }""")
    assert got["add_numbers"] == 11 and got["sum_array"] == 6
    assert got["tag_list"] == [row["t"] for row in sql(tenant["database"], "select distinct unnest(tags) as t from posts order by 1")]
    assert [edge["node"]["title"] for edge in got["posts_by"]["edges"]] == ["Notes on the Engine", "Poetical Science"]
    assert got["author_card"] == {"FullName": "Alan Turing"}
    # totalCount counts every row the function's filter selects, past the page.
    page = data(tenant, """{ posts_by(author: 2, first: 1, filter: {published: {eq: true}}) { totalCount edges { node { title } } pageInfo { hasNextPage } } }""")["posts_by"]
    assert page["totalCount"] == sql(tenant["database"], "select count(*) as n from posts where author_id = 2 and published")[0]["n"] == 2
    assert len(page["edges"]) == 1 and page["pageInfo"]["hasNextPage"] is True
    assert data(tenant, "mutation { slow(ms: 1) }")["slow"] == 1
    # Without an execute policy, anon's schema has no functions.
    assert error_code(query(tenant, "{ add_numbers(a: 1) }", key=tenant["anonKey"])) == "MB721"
