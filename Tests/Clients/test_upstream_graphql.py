"""An existing GraphQL API (a real Strawberry server on loopback) registered as a `kind: graphql`
source: introspected into the model, then proxied at {apiUrl}/graphql/v1 with the tenant's
credentials, a depth and a cost limit, and execute policies for roles other than the service role."""
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import strawberry
import uvicorn
from strawberry.asgi import GraphQL

from conftest import call


@strawberry.type
class Author:
    id: strawberry.ID
    name: str

    @strawberry.field
    def books(self) -> list["Book"]:
        return [b for b in BOOKS if b.author_id == self.id]


@strawberry.type
class Book:
    id: strawberry.ID
    title: str
    pages: int | None
    author_id: strawberry.Private[str]

    @strawberry.field
    def author(self) -> Author:
        return next(a for a in AUTHORS if a.id == self.author_id)


AUTHORS = [Author(id="1", name="Ursula"), Author(id="2", name="Stanisław")]
BOOKS = [Book(id="1", title="The Dispossessed", pages=387, author_id="1"), Book(id="2", title="Solaris", pages=204, author_id="2")]


@strawberry.type
class Query:
    @strawberry.field
    def books(self, first: int = 10) -> list[Book]:
        return BOOKS[:first]

    @strawberry.field
    def secret(self, info: strawberry.Info) -> str:
        return "open" if info.context["request"].headers.get("x-token") == "graph-key" else "closed"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def add_book(self, title: str) -> Book:
        book = Book(id=str(len(BOOKS) + 1), title=title, pages=None, author_id="1")
        BOOKS.append(book)
        return book


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def graph():
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(GraphQL(strawberry.Schema(query=Query, mutation=Mutation)), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/graphql"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def tenant_graph(node, graph):
    slug = "gql" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Graph"})
    registered = call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token,
                      {"name": "graph", "kind": "graphql", "url": graph, "headers": {"X-Token": "graph-key"}})
    assert {"Author", "Book"} <= set(registered["entities"])
    assert {"books", "secret", "addBook"} <= set(registered["functions"])
    return created | {"slug": slug}


def gql(tenant, query, key=None, variables=None):
    key = key or tenant["serviceKey"]
    body = {"query": query} | ({"variables": variables} if variables else {})
    req = urllib.request.Request(f"{tenant['apiUrl']}/graphql/v1", data=json.dumps(body).encode(), method="POST")
    req.add_header("apikey", key)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_queries_and_mutations_go_through(tenant_graph):
    status, body = gql(tenant_graph, "{ books { title author { name } } }")
    assert status == 200 and body["data"]["books"][0] == {"title": "The Dispossessed", "author": {"name": "Ursula"}}
    status, body = gql(tenant_graph, "mutation Add($t: String!) { addBook(title: $t) { id title } }", variables={"t": "Ubik"})
    assert status == 200 and body["data"]["addBook"]["title"] == "Ubik"
    status, body = gql(tenant_graph, "{ secret }")
    assert body["data"]["secret"] == "open", "the tenant's header reached the upstream"
    status, body = gql(tenant_graph, "{ books { isbn } }")
    assert status == 200 and body["errors"], "the upstream's own GraphQL errors pass through"


def test_depth_cost_and_syntax_limits(tenant_graph):
    deep = "{ " + "books { author { " * 6 + "name" + " } }" * 6 + " }"
    status, body = gql(tenant_graph, deep)
    assert status == 400 and body["code"] == "MB706" and "deep" in body["message"]
    costly = "{ books(first: 500) { author { books { title pages } } } }"
    status, body = gql(tenant_graph, costly)
    assert status == 400 and "costs" in body["message"]
    status, body = gql(tenant_graph, "{ books { title ")
    assert status == 400 and body["code"] == "MB706"
    looping = "query { books { ...A } } fragment A on Book { author { books { ...A } } }"
    status, body = gql(tenant_graph, looping)
    assert status == 400 and "spreads itself" in body["message"]


def test_other_roles_need_execute_policies(tenant_graph, node):
    status, body = gql(tenant_graph, "{ books { title } }", key=tenant_graph["anonKey"])
    assert status == 401 and body["code"] == "42501"
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant_graph['slug']}/policies", node.token,
         {"policies": [{"entity": "books", "role": "anon", "action": "execute"}]})
    status, body = gql(tenant_graph, "{ books { title } }", key=tenant_graph["anonKey"])
    assert status == 200 and body["data"]["books"]
    status, body = gql(tenant_graph, 'mutation { addBook(title: "x") { id } }', key=tenant_graph["anonKey"])
    assert status == 401 and "addBook" in body["message"]
