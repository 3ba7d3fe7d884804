"""Traces and error reports from a real node: a local OTLP/HTTP receiver decoding
ExportTraceServiceRequest with `opentelemetry-proto`, and a local Sentry envelope receiver.
Checks the span per request (HTTP conventions, `minibaas.tenant`, the caller's trace kept, an
unsampled caller exporting nothing), a DB child span per statement without values, one Sentry
event per 500 and none for 4xx, nothing secret exported, slow collectors slowing nothing, and a
malformed DSN refused at start-up."""
import json
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from cluster_harness import BINARY, node_environment, start_node
from conftest import call, fresh_database


class Collector:
    """An OTLP/HTTP traces endpoint and a Sentry envelope endpoint on one loopback port."""

    def __init__(self):
        self.spans = []
        self.events = []
        self.raw = []
        self.delay = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if collector.delay:
                    time.sleep(collector.delay)
                if self.path == "/v1/traces":
                    assert self.headers["Content-Type"] == "application/x-protobuf"
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                elif self.path == "/api/42/envelope/":
                    assert self.headers["Content-Type"] == "application/x-sentry-envelope"
                    assert "sentry_key=publickey" in self.headers["X-Sentry-Auth"]
                    collector.raw.append(body.decode())
                    lines = body.decode().split("\n")
                    header, item = json.loads(lines[0]), json.loads(lines[1])
                    event = json.loads(lines[2])
                    assert item["type"] == "event" and item["length"] == len(lines[2].encode())
                    assert header["event_id"] == event["event_id"]
                    collector.events.append(event)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [span for span in list(self.spans) if predicate(span)]
            if found:
                return found
            time.sleep(0.1)
        return []

    def stop(self):
        self.server.shutdown()


def attributes(span):
    values = {}
    for attribute in span.attributes:
        value = attribute.value
        kind = value.WhichOneof("value")
        values[attribute.key] = getattr(value, kind)
    return values


@pytest.fixture(scope="module")
def observed():
    collector = Collector()
    token = "observability-admin-" + secrets.token_hex(8)
    env = node_environment({
        "MINIBAAS_ADMIN_TOKEN": token, "MINIBAAS_LOG_LEVEL": "warning",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}", "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_SERVICE_NAME": "minibaas-under-test",
        "MINIBAAS_SENTRY_DSN": f"http://publickey@127.0.0.1:{collector.port}/42",
    })
    process, base = start_node(["--data-dir", tempfile.mkdtemp(prefix="minibaas-otel-")], env, subprocess.DEVNULL)
    slug = "obs" + secrets.token_hex(3)
    created = call("POST", f"{base}/admin/v1/tenants", token, {"slug": slug, "name": "Observed"})
    database = fresh_database()
    subprocess.run(["psql", database, "-qc",
                    "create function boom() returns int language plpgsql as $$ begin raise exception 'kaboom' using errcode = 'XX000'; end $$"],
                   check=True)
    call("POST", f"{base}/admin/v1/tenants/{slug}/sources", token, {"name": "main", "kind": "postgres", "url": database})
    yield {"base": base, "token": token, "slug": slug, "key": created["serviceKey"], "collector": collector, "database": database,
           "node": call("GET", f"{base}/admin/v1/supervisor", token)["node"]["id"]}
    process.terminate()
    process.wait(timeout=30)
    collector.stop()


def get(observed, path, headers=None, method="GET"):
    request = urllib.request.Request(f"{observed['base']}/t/{observed['slug']}{path}", method=method, headers={
        "apikey": observed["key"], "Authorization": f"Bearer {observed['key']}", "Content-Type": "application/json", **(headers or {})},
        data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_server_span_per_request_with_a_db_child_and_the_callers_trace(observed):
    collector = observed["collector"]
    trace, parent = secrets.token_hex(16), secrets.token_hex(8)
    status, _, _ = get(observed, "/rest/v1/posts?select=id,title&title=eq.Compilers", {"traceparent": f"00-{trace}-{parent}-01"})
    assert status == 200
    servers = collector.wait_for(lambda s: s.trace_id.hex() == trace and s.kind == s.SPAN_KIND_SERVER)
    assert len(servers) == 1, servers
    server = servers[0]
    values = attributes(server)
    assert server.parent_span_id.hex() == parent
    assert server.name == f"GET {values['http.route']}" and "{" in values["http.route"]
    assert values["http.request.method"] == "GET" and values["url.path"] == f"/t/{observed['slug']}/rest/v1/posts"
    assert values["http.response.status_code"] == 200 and values["url.scheme"] == "http"
    assert values["minibaas.tenant"] == observed["slug"]
    assert server.status.code != server.status.STATUS_CODE_ERROR

    clients = collector.wait_for(lambda s: s.trace_id.hex() == trace and s.kind == s.SPAN_KIND_CLIENT)
    assert clients, "no statement span"
    statement = attributes(clients[0])
    assert clients[0].parent_span_id == server.span_id
    assert statement["db.system.name"] == "postgresql" and statement["db.namespace"].endswith(".public")
    assert "$1" in statement["db.query.text"] and "Compilers" not in statement["db.query.text"]

    everything = json.dumps([str(span) for span in collector.spans])
    assert observed["key"] not in everything and observed["token"] not in everything and "apikey" not in everything


def test_an_unsampled_caller_exports_nothing_and_4xx_is_not_an_error(observed):
    collector = observed["collector"]
    unsampled = secrets.token_hex(16)
    assert get(observed, "/rest/v1/posts?select=id", {"traceparent": f"00-{unsampled}-{secrets.token_hex(8)}-00"})[0] == 200
    missing = secrets.token_hex(16)
    assert get(observed, "/rest/v1/no_such_table", {"traceparent": f"00-{missing}-{secrets.token_hex(8)}-01"})[0] == 404
    spans = collector.wait_for(lambda s: s.trace_id.hex() == missing and s.kind == s.SPAN_KIND_SERVER)
    assert spans and spans[0].status.code == spans[0].status.STATUS_CODE_UNSET
    assert attributes(spans[0])["http.response.status_code"] == 404
    time.sleep(1)
    assert not [s for s in collector.spans if s.trace_id.hex() == unsampled]


def test_one_sentry_event_per_500_with_its_trace_and_nothing_for_4xx(observed):
    collector = observed["collector"]
    before = len(collector.events)
    for _ in range(3):
        assert get(observed, "/rest/v1/no_such_table")[0] == 404
    trace = secrets.token_hex(16)
    status, headers, _ = get(observed, "/rest/v1/rpc/boom", {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}, method="POST")
    assert status == 500
    request_id = {k.lower(): v for k, v in headers.items()}["x-request-id"]
    deadline = time.time() + 15
    while time.time() < deadline and len(collector.events) < before + 1:
        time.sleep(0.1)
    time.sleep(1)
    events = collector.events[before:]
    assert len(events) == 1, events
    event = events[0]
    assert len(event["event_id"]) == 32 and event["level"] == "error" and event["release"].startswith("minibaas@")
    assert event["server_name"] == observed["node"]
    assert event["tags"]["tenant"] == observed["slug"] and event["tags"]["request_id"] == request_id
    assert event["contexts"]["trace"]["trace_id"] == trace
    assert event["exception"]["values"][0]["type"] and event["request"]["url"] == f"/t/{observed['slug']}/rest/v1/rpc/boom"
    server = collector.wait_for(lambda s: s.trace_id.hex() == trace and s.kind == s.SPAN_KIND_SERVER)[0]
    assert server.status.code == server.status.STATUS_CODE_ERROR and attributes(server)["error.type"] == "500"
    raw = "".join(collector.raw)
    assert observed["key"] not in raw and observed["token"] not in raw and observed["database"] not in raw


def test_slow_collectors_slow_no_request(observed):
    collector = observed["collector"]
    collector.delay = 7
    try:
        slowest = 0
        for _ in range(40):
            started = time.time()
            assert get(observed, "/rest/v1/posts?select=id")[0] == 200
            slowest = max(slowest, time.time() - started)
        for _ in range(3):
            started = time.time()
            assert get(observed, "/rest/v1/rpc/boom", method="POST")[0] == 500
            slowest = max(slowest, time.time() - started)
        assert slowest < 1.0, slowest
    finally:
        collector.delay = 0


def test_a_malformed_dsn_stops_start_up_naming_it():
    for dsn in ("not a dsn", "http://127.0.0.1:9/42", "ftp://key@host/1"):
        env = node_environment({"MINIBAAS_ADMIN_TOKEN": "x" * 20, "MINIBAAS_SENTRY_DSN": dsn})
        result = subprocess.run([BINARY, "serve", "--port", "0", "--data-dir", tempfile.mkdtemp()], env=env,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "MINIBAAS_SENTRY_DSN" in result.stderr, (dsn, result.stderr)


def test_sqlite_hosted_statements_get_spans_too(observed):
    """The embedded node's demo tenant serves its todos from SQLite."""
    collector = observed["collector"]
    demo = call("GET", f"{observed['base']}/admin/v1/tenants/demo", observed["token"])
    trace = secrets.token_hex(16)
    request = urllib.request.Request(f"{observed['base']}/t/demo/rest/v1/todos?select=id&title=eq.Secret%20title", headers={
        "apikey": demo["anonKey"], "traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    spans = collector.wait_for(lambda s: s.trace_id.hex() == trace and s.kind == s.SPAN_KIND_CLIENT)
    assert spans, "no statement span"
    values = attributes(spans[0])
    assert values["db.system.name"] == "sqlite" and "Secret title" not in values["db.query.text"]
