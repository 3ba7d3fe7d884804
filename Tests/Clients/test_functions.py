"""Edge functions (contract ../shared/contracts/functions.md): WebAssembly modules (assembled from
WAT with wasmtime's wat2wasm) deployed through the admin API and invoked with the official
supabase client's functions.invoke, the WAGI ABI (stdin, CGI variables, identity, env, secrets),
verifyJwt, versions and rollback, and calls that go wrong answered with their codes."""
import base64
import json
import secrets
import time
import urllib.error
import urllib.request

import pytest
import wasmtime
from supabase import create_client
from supabase_functions.errors import FunctionsHttpError

from conftest import Node, call

IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (memory (export "memory") 2)
"""


def wat_string(text):
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b not in (0x22, 0x5C) else f"\\{b:02x}" for b in text.encode())


def writer(text):
    return f"""(module {IMPORTS}
      (data (i32.const 4096) "{wat_string(text)}")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 4096)) (i32.store (i32.const 4) (i32.const {len(text.encode())}))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""


# Answers text: the body it read, then its environment (NUL-separated).
ECHO = f"""(module {IMPORTS}
  (data (i32.const 4096) "Content-Type: text/plain\\0a\\0a")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 4096)) (i32.store (i32.const 4) (i32.const 26))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 16) (i32.const 8192)) (i32.store (i32.const 20) (i32.const 30000))
    (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
    (i32.store (i32.const 32) (i32.const 8192)) (i32.store (i32.const 36) (i32.load (i32.const 24)))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 8)))
    (drop (call $environ_sizes_get (i32.const 40) (i32.const 44)))
    (drop (call $environ_get (i32.const 512) (i32.const 65536)))
    (i32.store (i32.const 48) (i32.const 65536)) (i32.store (i32.const 52) (i32.load (i32.const 44)))
    (drop (call $fd_write (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 8)))))"""

LOOP = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'


def wasm(wat):
    return bytes(wasmtime.wat2wasm(wat))


def request(method, url, token=None, body=None, headers=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if raw is None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture()
def fn_tenant(node):
    slug = "fn" + secrets.token_hex(4)
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Functions"})
    return {"slug": slug, "apiUrl": created["apiUrl"], "serviceKey": created["serviceKey"], "anonKey": created["anonKey"],
            "admin": f"{node.base}/admin/v1/tenants/{slug}/functions", "token": node.token}


def deploy(tenant, name, wat, **settings):
    status, _, body = request("PUT", f"{tenant['admin']}/{name}", tenant["token"],
                              {"module": base64.b64encode(wasm(wat)).decode(), **settings})
    return status, json.loads(body)


def test_deploy_and_invoke_with_the_supabase_client(fn_tenant):
    status, deployed = deploy(fn_tenant, "echo", ECHO, env={"GREETING": "hi"}, secrets={"TOKEN": "s3cret"})
    assert status == 201, deployed
    assert deployed["version"] == 1 and deployed["verifyJwt"] is True and deployed["secrets"] == ["TOKEN"]
    assert deployed["url"] == fn_tenant["apiUrl"] + "/functions/v1/echo" and len(deployed["sha256"]) == 64
    assert "s3cret" not in json.dumps(deployed)
    client = create_client(fn_tenant["apiUrl"], fn_tenant["anonKey"])
    answer = client.functions.invoke("echo", invoke_options={"body": {"name": "ada"}})
    text = answer.decode() if isinstance(answer, (bytes, bytearray)) else answer
    # The body it read, then its environment (NUL-separated, starting with REQUEST_METHOD).
    body, env = text.split("REQUEST_METHOD=", 1)
    env = "REQUEST_METHOD=" + env
    assert json.loads(body) == {"name": "ada"}
    variables = dict(item.split("=", 1) for item in env.split("\0") if "=" in item)
    assert variables["REQUEST_METHOD"] == "POST" and variables["SCRIPT_NAME"] == "/functions/v1/echo"
    assert variables["MB_ROLE"] == "anon" and variables["MB_TENANT"] == fn_tenant["slug"] and variables["MB_FUNCTION"] == "echo"
    assert variables["GREETING"] == "hi" and variables["TOKEN"] == "s3cret"
    assert variables["SUPABASE_URL"] == fn_tenant["apiUrl"] and "SUPABASE_SERVICE_ROLE_KEY" not in variables
    assert variables["HTTP_APIKEY"] == fn_tenant["anonKey"]
    # A subpath and a query reach the function as PATH_INFO and QUERY_STRING.
    status, _, raw = request("GET", fn_tenant["apiUrl"] + "/functions/v1/echo/a/b?x=1&forceFunctionRegion=eu", headers={
        "apikey": fn_tenant["anonKey"], "Authorization": f"Bearer {fn_tenant['anonKey']}"})
    variables = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    assert status == 200 and variables["PATH_INFO"] == "/a/b" and variables["QUERY_STRING"] == "x=1"
    # verifyJwt: no key, no call.
    status, _, raw = request("POST", fn_tenant["apiUrl"] + "/functions/v1/echo", body={})
    assert status == 401 and json.loads(raw)["code"] == "MB201"


def test_keyless_functions_raw_modules_versions_and_rollback(fn_tenant):
    raw = wasm(writer("Status: 201\nContent-Type: application/json\nX-Minibaas-Node: forged\n\n{\"v\":1}"))
    status, _, body = request("PUT", f"{fn_tenant['admin']}/hook?verifyJwt=false&timeoutMs=500", fn_tenant["token"], raw=raw,
                              headers={"Content-Type": "application/wasm"})
    assert status == 201, body
    assert json.loads(body)["verifyJwt"] is False and json.loads(body)["timeoutMs"] == 500
    status, headers, body = request("POST", fn_tenant["apiUrl"] + "/functions/v1/hook", body={"event": 1})
    assert status == 201 and json.loads(body) == {"v": 1}
    assert not any(key.lower() == "x-minibaas-node" and value == "forged" for key, value in headers.items())
    status, second = deploy(fn_tenant, "hook", writer("Content-Type: application/json\n\n{\"v\":2}"))
    assert status == 200 and second["version"] == 2 and second["verifyJwt"] is False, "settings carry over"
    assert json.loads(request("GET", fn_tenant["apiUrl"] + "/functions/v1/hook")[2]) == {"v": 2}
    described = call("GET", f"{fn_tenant['admin']}/hook", fn_tenant["token"])
    assert [v["version"] for v in described["versions"]] == [2, 1]
    rolled = call("POST", f"{fn_tenant['admin']}/hook/rollback", fn_tenant["token"], {"version": 1})
    assert rolled["version"] == 1
    assert json.loads(request("GET", fn_tenant["apiUrl"] + "/functions/v1/hook")[2]) == {"v": 1}
    status, _, body = request("POST", f"{fn_tenant['admin']}/hook/rollback", fn_tenant["token"], {"version": 9})
    assert status == 404 and json.loads(body)["code"] == "MB873"
    logs = call("GET", f"{fn_tenant['admin']}/hook/logs?limit=10", fn_tenant["token"])["logs"]
    assert len(logs) >= 3 and logs[0]["status"] == 201 and logs[0]["durationMs"] >= 0 and logs[0]["fuel"] > 0
    assert [f["name"] for f in call("GET", fn_tenant["admin"], fn_tenant["token"])] == ["hook"]
    assert request("DELETE", f"{fn_tenant['admin']}/hook", fn_tenant["token"])[0] == 204
    status, _, body = request("POST", fn_tenant["apiUrl"] + "/functions/v1/hook", body={})
    assert status == 404 and json.loads(body)["code"] == "MB860"


def test_bad_modules_are_refused_at_deploy(fn_tenant):
    cases = [
        ("bad name!", {"module": base64.b64encode(wasm(writer("x"))).decode()}, 400, "MB872"),
        ("notwasm", {"module": base64.b64encode(b"hello").decode()}, 400, "MB868"),
        ("imports", {"module": base64.b64encode(wasm('(module (import "env" "f" (func)) (memory (export "memory") 1) (func (export "_start")))')).decode()}, 422, "MB869"),
        ("nostart", {"module": base64.b64encode(wasm('(module (memory (export "memory") 1))')).decode()}, 422, "MB869"),
        ("bigmem", {"module": base64.b64encode(wasm('(module (memory (export "memory") 200) (func (export "_start")))')).decode(), "memoryLimitMb": 4}, 422, "MB871"),
        ("env", {"module": base64.b64encode(wasm(writer("x"))).decode(), "env": {"MB_ROLE": "service_role"}}, 400, "MB101"),
        ("timeout", {"module": base64.b64encode(wasm(writer("x"))).decode(), "timeoutMs": 999999}, 400, "MB101"),
    ]
    for name, body, status, code in cases:
        got, _, raw = request("PUT", f"{fn_tenant['admin']}/{urllib.request.quote(name)}", fn_tenant["token"], body)
        assert (got, json.loads(raw)["code"]) == (status, code), (name, raw)
    assert call("GET", fn_tenant["admin"], fn_tenant["token"]) == []
    # The service key never deploys code: admin token only.
    status, _, _ = request("PUT", f"{fn_tenant['admin']}/x", fn_tenant["serviceKey"], {"module": ""})
    assert status == 401


def test_calls_that_go_wrong_answer_with_their_codes(fn_tenant):
    deploy(fn_tenant, "spin", LOOP, timeoutMs=300, verifyJwt=False)
    deploy(fn_tenant, "trap", '(module (memory (export "memory") 1) (func (export "_start") unreachable))', verifyJwt=False)
    deploy(fn_tenant, "garbled", writer("no header block at all"), verifyJwt=False)
    started = time.time()
    status, headers, body = request("POST", fn_tenant["apiUrl"] + "/functions/v1/spin", body={})
    assert status == 546 and json.loads(body)["code"] == "MB864"
    assert {k.lower(): v for k, v in headers.items()}["sb-error-code"] == "MB864"
    assert time.time() - started < 0.3 + 1.0
    status, _, body = request("POST", fn_tenant["apiUrl"] + "/functions/v1/trap", body={})
    assert status == 500 and json.loads(body)["code"] == "MB861"
    status, _, body = request("POST", fn_tenant["apiUrl"] + "/functions/v1/garbled", body={})
    assert status == 502 and json.loads(body)["code"] == "MB863"
    client = create_client(fn_tenant["apiUrl"], fn_tenant["anonKey"])
    with pytest.raises(FunctionsHttpError):
        client.functions.invoke("trap", invoke_options={"body": {}})
    # The node is fine and the next call works.
    deploy(fn_tenant, "ok", writer("Content-Type: text/plain\n\nfine"), verifyJwt=False)
    assert request("GET", fn_tenant["apiUrl"] + "/functions/v1/ok")[2] == b"fine"
    # Every outcome is counted per function on /metrics.
    metrics = request("GET", fn_tenant["apiUrl"].split("/t/")[0] + "/metrics")[2].decode()
    counted = [line for line in metrics.splitlines()
               if line.startswith("minibaas_function_invocations_total{") and f'tenant="{fn_tenant["slug"]}"' in line]
    assert any('outcome="MB864"' in line and 'function="spin"' in line for line in counted), counted
    assert any('outcome="ok"' in line and 'function="ok"' in line for line in counted), counted


def test_the_nodes_memory_admission_and_module_cache_settings():
    """A node with 64 MB for running calls: a function allowed 32 MB runs; one allowed 128 MB can
    never fit and answers 503 MB875 at once; a 48 MB call waits behind a running 32 MB one and,
    past its deadline, answers 503 MB875 too."""
    node = Node(settings={"MINIBAAS_FUNCTION_MEMORY_MB": "64", "MINIBAAS_FUNCTION_CACHE_MB": "1"})
    try:
        slug = "fnmem" + secrets.token_hex(3)
        created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": slug, "name": "Memory",
                       "limits": {"functions": {"maxConcurrent": 4}}})
        tenant = {"admin": f"{node.base}/admin/v1/tenants/{slug}/functions", "token": node.token, "apiUrl": created["apiUrl"]}
        assert deploy(tenant, "small", writer("Status: 204\n\n"), memoryLimitMb=32, verifyJwt=False)[0] == 201
        assert deploy(tenant, "huge", writer("Status: 204\n\n"), memoryLimitMb=128, verifyJwt=False)[0] == 201
        assert deploy(tenant, "spin", LOOP, memoryLimitMb=32, timeoutMs=1500, verifyJwt=False)[0] == 201
        assert deploy(tenant, "wide", writer("Status: 204\n\n"), memoryLimitMb=48, timeoutMs=200, verifyJwt=False)[0] == 201
        status, _, _ = request("GET", f"{tenant['apiUrl']}/functions/v1/small")
        assert status == 204
        status, headers, body = request("GET", f"{tenant['apiUrl']}/functions/v1/huge")
        assert status == 503 and json.loads(body)["code"] == "MB875", body
        import threading
        spinning = threading.Thread(target=lambda: request("GET", f"{tenant['apiUrl']}/functions/v1/spin"))
        spinning.start()
        time.sleep(0.3)
        status, _, body = request("GET", f"{tenant['apiUrl']}/functions/v1/wide")
        assert status == 503 and json.loads(body)["code"] == "MB875", body
        spinning.join()
        status, _, _ = request("GET", f"{tenant['apiUrl']}/functions/v1/wide")
        assert status == 204
    finally:
        node.stop()
