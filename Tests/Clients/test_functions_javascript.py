"""JavaScript functions: Supabase-style `Deno.serve` handlers deployed as source and run by
QuickJS-NG (its WASI reactor, pinned by version and digest) in the same WasmKit sandbox as
WebAssembly functions, invoked with the official supabase client's `functions.invoke`."""
import json
import time

from supabase import create_client
from supabase_functions.errors import FunctionsHttpError

from test_functions import fn_tenant, request  # noqa: F401  (the fixture and the raw HTTP helper)

HELLO = """
Deno.serve(async (req) => {
  const url = new URL(req.url);
  const body = req.method === "POST" ? await req.json() : null;
  console.log("handling", req.method, url.pathname);
  globalThis.calls = (globalThis.calls || 0) + 1;
  return Response.json({
    hello: body && body.name, method: req.method, path: url.pathname, q: url.searchParams.get("q"),
    greeting: Deno.env.get("GREETING"), secret: Deno.env.get("TOKEN"), role: Deno.env.get("MB_ROLE"),
    calls: globalThis.calls, auth: req.headers.get("authorization") !== null, text: new TextDecoder().decode(new TextEncoder().encode("héllo ✓")),
  }, { status: 201, headers: { "X-Handled-By": "deno-shim" } });
});
"""


def deploy_js(tenant, name, source, **settings):
    status, _, body = request("PUT", f"{tenant['admin']}/{name}", tenant["token"], {"language": "javascript", "source": source, **settings})
    return status, json.loads(body)


def test_a_deno_handler_answers_through_the_supabase_client(fn_tenant):
    # timeoutMs: the test command's debug build interprets QuickJS about 100x slower than a release one.
    status, deployed = deploy_js(fn_tenant, "hello", HELLO, env={"GREETING": "hi"}, secrets={"TOKEN": "s3cret"}, timeoutMs=10000)
    assert status == 201, deployed
    assert deployed["language"] == "javascript" and deployed["version"] == 1 and "s3cret" not in json.dumps(deployed)
    client = create_client(fn_tenant["apiUrl"], fn_tenant["anonKey"])
    answer = json.loads(client.functions.invoke("hello", invoke_options={"body": {"name": "ada"}}))
    assert answer["hello"] == "ada" and answer["method"] == "POST" and answer["path"].endswith("/functions/v1/hello")
    assert answer["greeting"] == "hi" and answer["secret"] == "s3cret" and answer["role"] == "anon" and answer["auth"] is True
    assert answer["text"] == "héllo ✓"
    # A fresh JavaScript runtime per call: nothing of the previous call's globals survives.
    again = json.loads(client.functions.invoke("hello", invoke_options={"body": {"name": "bob"}}))
    assert again["hello"] == "bob" and again["calls"] == 1
    status, headers, raw = request("GET", fn_tenant["apiUrl"] + "/functions/v1/hello/sub?q=42", headers={
        "apikey": fn_tenant["anonKey"], "Authorization": f"Bearer {fn_tenant['anonKey']}"})
    assert status == 201 and {k.lower(): v for k, v in headers.items()}["x-handled-by"] == "deno-shim"
    parsed = json.loads(raw)
    assert parsed["path"].endswith("/hello/sub") and parsed["q"] == "42" and parsed["hello"] is None
    # console output went to the log, not into the answer.
    status, _, logs = request("GET", f"{fn_tenant['admin']}/hello/logs", fn_tenant["token"])
    assert status == 200 and "handling POST" in json.dumps(json.loads(logs))


def test_errors_in_javascript_have_their_codes_and_the_next_call_works(fn_tenant):
    status, refused = deploy_js(fn_tenant, "broken", "Deno.serve((req) => { return new Response('x' ;")
    assert status == 422 and refused["code"] == "MB867" and "SyntaxError" in refused["details"], refused
    status, refused = deploy_js(fn_tenant, "nohandler", "const x = 1;")
    assert status == 422 and refused["code"] == "MB867" and "Deno.serve" in refused["details"], refused
    status, _, refused = request("PUT", f"{fn_tenant['admin']}/mixed", fn_tenant["token"], {"language": "javascript", "module": "AAAA"})
    assert status == 400 and json.loads(refused)["code"] == "MB101", refused
    thrower = """
Deno.serve(async (req) => {
  const body = await req.json();
  if (body.fail) throw new Error("asked to fail");
  if (body.spin) { for (;;) {} }
  if (body.big) { const parts = []; for (;;) parts.push(new ArrayBuffer(4 << 20)); }
  return new Response("fine", { headers: { "content-type": "text/plain" } });
});
"""
    status, deployed = deploy_js(fn_tenant, "thrower", thrower, verifyJwt=False, timeoutMs=6000, memoryLimitMb=32)
    assert status == 201, deployed
    url = fn_tenant["apiUrl"] + "/functions/v1/thrower"
    status, _, raw = request("POST", url, body={"fail": True})
    assert status == 500 and json.loads(raw)["code"] == "MB867" and "asked to fail" in json.loads(raw)["details"]
    assert request("POST", url, body={})[2] == b"fine"
    started = time.time()
    status, _, raw = request("POST", url, body={"spin": True})
    assert status == 546 and json.loads(raw)["code"] == "MB864" and time.time() - started < 6.0 + 1.0
    assert request("POST", url, body={})[2] == b"fine"
    status, _, raw = request("POST", url, body={"big": True})
    assert status in (500, 546) and json.loads(raw)["code"] in ("MB867", "MB865"), raw
    assert request("POST", url, body={})[2] == b"fine"
    client = create_client(fn_tenant["apiUrl"], fn_tenant["anonKey"])
    try:
        client.functions.invoke("thrower", invoke_options={"body": {"fail": True}})
        raise AssertionError("expected a FunctionsHttpError")
    except FunctionsHttpError:
        pass


def test_the_shim_keeps_the_answer_well_formed(fn_tenant):
    """Two cookies stay two header lines, a status text cannot add headers, `print` goes to the
    log, a malformed query escape does not throw, a GET's body reads as empty bytes."""
    import http.client
    import urllib.parse
    source = r"""
Deno.serve(async (req) => {
  print("to the log, not the answer");
  const url = new URL(req.url);
  const bytes = await req.arrayBuffer();
  const headers = new Headers({ "content-type": "application/json" });
  headers.append("set-cookie", "a=1; Path=/");
  headers.append("set-cookie", "b=2; Path=/");
  return new Response(JSON.stringify({ q: url.searchParams.get("q"), size: bytes.byteLength }),
    { status: 200, statusText: "OK\r\nX-Injected: yes", headers });
});
"""
    status, deployed = deploy_js(fn_tenant, "shape", source, verifyJwt=False, timeoutMs=10000)
    assert status == 201, deployed
    target = urllib.parse.urlsplit(fn_tenant["apiUrl"] + "/functions/v1/shape?q=%zz")
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    connection.request("GET", target.path + "?" + target.query)
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 200 and body == {"q": "%zz", "size": 0}
    assert response.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    assert response.headers.get("X-Injected") is None
    connection.close()
