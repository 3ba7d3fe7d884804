"""An existing REST API (a real FastAPI service on loopback, described by the OpenAPI document it
generates itself) registered as a `kind: openapi` source and called through mini-baas: requests
validated against the spec before anything goes upstream, credentials injected, retries, cache,
timeouts, broken answers and a dead upstream each answered clearly."""
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from conftest import call


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PetIn(BaseModel):
    name: str
    age: int | None = None


class Pet(PetIn):
    id: int


def make_app(hits):
    app = FastAPI(title="Pets")
    pets = {1: Pet(id=1, name="Rex", age=3)}

    @app.get("/pets", response_model=list[Pet], operation_id="listPets")
    def list_pets(response: Response, limit: int = 10):
        hits["list"] += 1
        response.headers["Cache-Control"] = "max-age=60"
        return list(pets.values())[:limit]

    @app.post("/pets", response_model=Pet, status_code=201, operation_id="createPet")
    def create_pet(pet: PetIn):
        hits["create"] += 1
        created = Pet(id=len(pets) + 1, **pet.model_dump())
        pets[created.id] = created
        return created

    @app.get("/pets/{pet_id}", response_model=Pet, operation_id="getPet")
    def get_pet(pet_id: int):
        if pet_id not in pets:
            raise HTTPException(status_code=404, detail="no such pet")
        return pets[pet_id]

    @app.get("/secret", operation_id="secret")
    def secret(x_api_key: str = Header(default="")):
        if x_api_key != "upstream-key":
            raise HTTPException(status_code=401, detail="bad key")
        return {"ok": True}

    @app.get("/slow", operation_id="slow")
    def slow():
        time.sleep(4)
        return {"late": True}

    @app.get("/garbage", operation_id="garbage")
    def garbage():
        return PlainTextResponse("<html>not json</html>", media_type="application/json")

    @app.get("/flaky", operation_id="flaky")
    def flaky():
        hits["flaky"] += 1
        if hits["flaky"] < 3:
            raise HTTPException(status_code=503, detail="warming up")
        return {"attempts": hits["flaky"]}

    return app


@pytest.fixture(scope="module")
def upstream():
    hits = {"list": 0, "create": 0, "flaky": 0}
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(hits), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", hits
    server.should_exit = True
    thread.join(timeout=10)


def request(method, url, key, body=None, bearer=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("apikey", key)
    req.add_header("Authorization", f"Bearer {bearer or key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def api(node, upstream):
    base, _ = upstream
    slug = "up" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token,
                   {"slug": slug, "name": "Upstream", "limits": {"requestTimeoutMs": 1500}})
    registered = call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token, {
        "name": "pets", "kind": "openapi", "specUrl": f"{base}/openapi.json", "baseUrl": base,
        "headers": {"X-Api-Key": "upstream-key"}})
    assert "GET /pets (listPets)" in registered["operations"]
    assert "Pet" in registered["entities"]
    return created | {"slug": slug}


def test_calls_go_through_with_the_tenants_credentials(api, node):
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/secret", api["serviceKey"])
    assert (status, body) == (200, {"ok": True})
    listed = json.dumps(call("GET", f"{node.base}/admin/v1/tenants/{api['slug']}/sources", node.token))
    assert "upstream-key" not in listed, "the credential is sealed, never shown"


def test_get_answers_are_cached_as_the_upstream_allows(api, upstream):
    _, hits = upstream
    before = hits["list"]
    status, headers, first = request("GET", f"{api['apiUrl']}/api/v1/pets?limit=5", api["serviceKey"])
    assert status == 200 and first[0]["name"] == "Rex" and headers["x-cache"] == "MISS"
    status, headers, second = request("GET", f"{api['apiUrl']}/api/v1/pets?limit=5", api["serviceKey"])
    assert status == 200 and second == first and headers["x-cache"] == "HIT"
    assert hits["list"] == before + 1


def test_requests_are_validated_before_they_go_upstream(api, upstream):
    _, hits = upstream
    before = hits["create"]
    status, _, body = request("POST", f"{api['apiUrl']}/api/v1/pets", api["serviceKey"], {"name": 5})
    assert status == 400 and body["code"] == "MB701" and body["details"] == "/body/name", body
    status, _, body = request("POST", f"{api['apiUrl']}/api/v1/pets", api["serviceKey"], {"age": 2})
    assert status == 400 and body["details"] == "/body/name"
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/pets/abc", api["serviceKey"])
    assert status == 400 and body["details"] == "/path/pet_id"
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/pets?colour=red", api["serviceKey"])
    assert status == 400 and body["details"] == "/query/colour"
    assert hits["create"] == before, "nothing invalid reached the upstream"
    status, _, body = request("POST", f"{api['apiUrl']}/api/v1/pets", api["serviceKey"], {"name": "Tom", "age": 2})
    assert status == 201 and body["name"] == "Tom"
    status, _, body = request("DELETE", f"{api['apiUrl']}/api/v1/pets/1", api["serviceKey"])
    assert status == 405 and body["code"] == "MB700"
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/nothing/here", api["serviceKey"])
    assert status == 404 and body["code"] == "MB700"
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/pets/999", api["serviceKey"])
    assert status == 404 and body["detail"] == "no such pet", "the upstream's own answers pass through"


def test_retries_timeouts_and_broken_answers(api):
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/flaky", api["serviceKey"])
    assert status == 200 and body["attempts"] == 3, "two 503s retried for an idempotent call"
    started = time.time()
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/slow", api["serviceKey"])
    assert status == 504 and body["code"] == "MB703"
    assert time.time() - started < 3.5, "the tenant's deadline, not the upstream's pace"
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/garbage", api["serviceKey"])
    assert status == 502 and body["code"] == "MB705"


def test_other_roles_need_an_execute_policy(api, node):
    status, _, body = request("GET", f"{api['apiUrl']}/api/v1/pets", api["anonKey"])
    assert status == 401 and body["code"] == "42501"
    call("PUT", f"{node.base}/admin/v1/tenants/{api['slug']}/policies", node.token,
         {"policies": [{"entity": "listPets", "role": "anon", "action": "execute"}]})
    status, _, _ = request("GET", f"{api['apiUrl']}/api/v1/pets", api["anonKey"])
    assert status == 200
    status, _, _ = request("GET", f"{api['apiUrl']}/api/v1/secret", api["anonKey"])
    assert status == 401


def test_a_dead_upstream_is_a_clear_502_then_the_breaker_opens(node, upstream):
    base, _ = upstream
    slug = "dead" + secrets.token_hex(3)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Dead"})
    spec = json.loads(urllib.request.urlopen(f"{base}/openapi.json").read())
    call("POST", f"{node.base}/admin/v1/tenants/{slug}/sources", node.token,
         {"name": "gone", "kind": "openapi", "document": json.dumps(spec), "baseUrl": f"http://127.0.0.1:{free_port()}"})
    codes = [request("GET", f"{created['apiUrl']}/api/v1/pets", created["serviceKey"])[2]["code"] for _ in range(7)]
    assert codes[0] == "MB702" and codes[-1] == "MB704", codes


def test_the_rest_grammar_over_an_upstream_collection(api):
    from supabase import create_client
    client = create_client(f"{api['apiUrl']}/sources/pets", api["serviceKey"])
    rows = client.table("Pet").select("name").limit(1).execute().data
    assert rows == [{"name": "Rex"}]
    status, _, body = request("GET", f"{api['apiUrl']}/sources/pets/rest/v1/Pet?order=name", api["serviceKey"])
    assert status == 400 and body["code"] == "MB707"
    status, _, body = request("GET", f"{api['apiUrl']}/sources/pets/rest/v1/Pet?age=gt.2", api["serviceKey"])
    assert status == 400 and body["code"] == "MB707" and "limit" in body["hint"]
    status, _, body = request("GET", f"{api['apiUrl']}/sources/pets/rest/v1/Nothing", api["serviceKey"])
    assert status == 404 and body["code"] == "PGRST205"
