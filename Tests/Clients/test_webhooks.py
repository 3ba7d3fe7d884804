"""Database webhooks against a real receiver that verifies every request with the `standardwebhooks`
package: changes made in PostgreSQL (captured by the change feed) and through the supabase client,
retries with the same webhook-id, the failed set and replay, secret rotation, the test event, a
receiver that hangs, refused targets and bad input, and a node killed with deliveries pending."""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook
from supabase import create_client

from conftest import Node, call, fresh_database


class Receiver:
    """A loopback HTTP receiver. Each path has a script of statuses (then 200); `/slow` sleeps."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.scripts = {}
        self.concurrent = 0
        self.peak = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                declared = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(declared)
                if len(body) < declared:
                    # The sender died mid-request (the kill -9 test): no complete request arrived, so
                    # nothing is recorded and nothing answered, as a real receiver would drop it.
                    return
                with receiver.lock:
                    script = receiver.scripts.get(self.path, [])
                    status = script.pop(0) if script else 200
                    receiver.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                                              "status": status})
                if self.path.startswith("/slow"):
                    time.sleep(3)
                if self.path.startswith("/narrow"):
                    with receiver.lock:
                        receiver.concurrent += 1
                        receiver.peak = max(receiver.peak, receiver.concurrent)
                    time.sleep(0.2)
                    with receiver.lock:
                        receiver.concurrent -= 1
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def wait(self, path, count, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.received(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.received(path))} requests within {timeout} s, wanted {count}")

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver():
    started = Receiver()
    yield started
    started.stop()


def admin(node, method, path, body=None):
    """(status, JSON) of an admin call, errors included."""
    request = urllib.request.Request(f"{node.base}/admin/v1{path}", data=json.dumps(body).encode() if body is not None else None, method=method)
    request.add_header("Authorization", f"Bearer {node.token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def psql(database, statement):
    subprocess.run(["psql", database, "-qc", statement], check=True, stdout=subprocess.DEVNULL)


def verified(request, *secrets):
    """The payload, once every given secret verifies the request's signature."""
    for secret in secrets:
        payload = Webhook(secret).verify(request["body"], request["headers"])
    return payload


def hook(node, tenant, path, receiver, **fields):
    body = {"name": path.strip("/"), "table": "labels", "url": receiver.base + path, **fields}
    status, created = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks", body)
    assert status == 201, created
    return created


def wait_for(predicate, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_changes_are_delivered_signed_with_supabase_payloads(node, tenant, receiver):
    created = hook(node, tenant, "/all", receiver)
    assert created["secret"].startswith("whsec_")
    assert created["capture"]["mode"] == "logical-decoding", created["capture"]
    # Made in the database itself: the change feed sees them, not only REST writes.
    psql(tenant["database"], "insert into labels (id, name) values (900, 'new')")
    psql(tenant["database"], "update labels set name = 'renamed' where id = 900")
    # And through the official client's REST calls.
    client = create_client(tenant["apiUrl"], tenant["serviceKey"])
    client.table("labels").delete().eq("id", 900).execute()
    requests = receiver.wait("/all", 3)
    payloads = [verified(r, created["secret"]) for r in requests]
    assert [p["type"] for p in payloads] == ["INSERT", "UPDATE", "DELETE"]
    assert all(p["table"] == "labels" and p["schema"] == "public" for p in payloads)
    assert payloads[0]["record"] == {"id": 900, "name": "new"} and payloads[0]["old_record"] is None
    assert payloads[1]["record"]["name"] == "renamed" and payloads[1]["old_record"]["id"] == 900
    assert payloads[2]["record"] is None and payloads[2]["old_record"]["id"] == 900
    ids = [r["headers"]["webhook-id"] for r in requests]
    assert len(set(ids)) == 3 and all(i.startswith("msg_") for i in ids)
    # The log shows them delivered, once each. A delivery is recorded after the receiver has
    # answered (settles are batched), so the receiver can see it a moment before the log does.
    deadline = time.time() + 10
    while True:
        status, log = admin(node, "GET", f"/tenants/{tenant['slug']}/webhooks/{created['id']}/deliveries")
        settled = all(d["status"] not in ("pending", "delivering") for d in log)
        if settled or time.time() > deadline:
            break
        time.sleep(0.05)
    assert status == 200 and sorted(d["id"] for d in log) == sorted(ids)
    assert all(d["status"] == "succeeded" and d["attempts"] == 1 for d in log), log
    # The secret is shown once: not in reads.
    status, read = admin(node, "GET", f"/tenants/{tenant['slug']}/webhooks/{created['id']}")
    assert status == 200 and "secret" not in read and read["events"] == ["INSERT", "UPDATE", "DELETE"]


def test_a_sqlite_hosted_table_delivers_its_rest_writes(node, receiver):
    created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": "whlite", "name": "Lite"})
    call("POST", f"{node.base}/admin/v1/tenants/whlite/sources", node.token, {
        "name": "default", "kind": "schema", "format": "sql", "provision": True,
        "document": "create table orders (id integer primary key, status text not null);"})
    status, hooked = admin(node, "POST", "/tenants/whlite/webhooks", {"name": "orders", "table": "orders", "url": receiver.base + "/lite"})
    assert status == 201 and hooked["capture"]["mode"] == "rest-writes", hooked
    client = create_client(created["apiUrl"], created["serviceKey"])
    client.table("orders").insert([{"id": 1, "status": "new"}, {"id": 2, "status": "new"}]).execute()
    client.table("orders").update({"status": "paid"}).eq("id", 1).execute()
    requests = receiver.wait("/lite", 3)
    payloads = sorted((verified(r, hooked["secret"]) for r in requests), key=lambda p: (p["type"], p["record"]["id"]))
    assert [(p["type"], p["record"]["id"]) for p in payloads] == [("INSERT", 1), ("INSERT", 2), ("UPDATE", 1)]
    assert payloads[2]["record"]["status"] == "paid"


def test_filter_and_events_choose_what_is_sent(node, tenant, receiver):
    created = hook(node, tenant, "/paid", receiver, events=["INSERT"], filter="name=eq.paid")
    psql(tenant["database"], "insert into labels (id, name) values (901, 'free'), (902, 'paid')")
    psql(tenant["database"], "update labels set name = 'paid' where id = 901")
    requests = receiver.wait("/paid", 1)
    time.sleep(1.0)
    requests = receiver.received("/paid")
    assert len(requests) == 1, [verified(r, created["secret"]) for r in requests]
    assert verified(requests[0], created["secret"])["record"] == {"id": 902, "name": "paid"}


def test_retries_keep_the_id_and_the_log_shows_each_attempt(node, tenant, receiver):
    receiver.scripts["/flaky"] = [500, 503]
    created = hook(node, tenant, "/flaky", receiver, retrySchedule=[100, 100, 100])
    psql(tenant["database"], "insert into labels (id, name) values (903, 'x')")
    requests = receiver.wait("/flaky", 3)
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1, "the same webhook-id on every attempt"
    for r in requests:
        verified(r, created["secret"])
    msg = requests[0]["headers"]["webhook-id"]

    def settled():
        status, delivery = admin(node, "GET", f"/tenants/{tenant['slug']}/webhooks/deliveries/{msg}")
        return delivery if status == 200 and delivery["status"] == "succeeded" else None
    delivery = wait_for(settled)
    assert [a["httpStatus"] for a in delivery["attempts"]] == [500, 503, 200]
    assert delivery["event"]["record"] == {"id": 903, "name": "x"}


def test_exhausted_deliveries_go_to_the_failed_set_and_replay(node, tenant, receiver):
    receiver.scripts["/down"] = [500] * 6
    created = hook(node, tenant, "/down", receiver, retrySchedule=[50, 50])
    psql(tenant["database"], "insert into labels (id, name) values (904, 'a'), (905, 'b')")
    base = f"/tenants/{tenant['slug']}/webhooks/{created['id']}"
    failed = wait_for(lambda: (lambda s, log: log if s == 200 and len(log) == 2 else None)(*admin(node, "GET", f"{base}/deliveries?status=failed")))
    assert all(d["attempts"] == 3 and "500" in d["lastError"] for d in failed)
    # One replayed: the same id, now delivered.
    one = failed[0]["id"]
    status, answer = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks/deliveries/{one}/replay")
    assert status == 202 and answer["id"] == one
    wait_for(lambda: any(r["headers"]["webhook-id"] == one for r in receiver.received("/down")[6:]))
    # The rest, in bulk.
    status, answer = admin(node, "POST", f"{base}/replay", {"status": "failed"})
    assert status == 202 and answer["count"] == 1
    wait_for(lambda: admin(node, "GET", f"{base}/deliveries?status=succeeded")[1].__len__() == 2)
    # Replaying what is not settled is refused; unknown ids are 404.
    status, error = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks/deliveries/msg_nope/replay")
    assert status == 404 and error["code"] == "MB827"


def test_rotation_cosigns_with_both_secrets(node, tenant, receiver):
    created = hook(node, tenant, "/rotated", receiver, events=["INSERT"])
    status, rotated = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks/{created['id']}/secret/rotate")
    assert status == 200 and rotated["secret"] != created["secret"]
    psql(tenant["database"], "insert into labels (id, name) values (906, 'r')")
    [request] = receiver.wait("/rotated", 1)
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    verified(request, created["secret"], rotated["secret"])


def test_the_test_event_and_a_receiver_that_hangs(node, tenant, receiver):
    created = hook(node, tenant, "/probe", receiver)
    status, answer = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks/{created['id']}/test")
    assert status == 200 and answer["status"] == "succeeded" and answer["httpStatus"] == 200
    assert verified(receiver.received("/probe")[-1], created["secret"])["type"] == "TEST"
    slow = hook(node, tenant, "/slow", receiver, timeoutMs=300)
    started = time.time()
    status, answer = admin(node, "POST", f"/tenants/{tenant['slug']}/webhooks/{slow['id']}/test")
    assert status == 200 and answer["status"] == "failed" and answer["httpStatus"] is None
    assert time.time() - started < 2.5 and "no answer" in answer["error"]


def test_a_webhooks_in_flight_cap_holds_and_metrics_count_deliveries(node, tenant, receiver):
    created = hook(node, tenant, "/narrow", receiver, events=["INSERT"], maxInFlight=2)
    psql(tenant["database"], "insert into labels (id, name) select g, 'n' from generate_series(2000, 2009) g")
    receiver.wait("/narrow", 10)
    assert receiver.peak == 2, f"at most maxInFlight at once, and the tenant's limit let it reach it (peak {receiver.peak})"
    def counted():
        with urllib.request.urlopen(f"{node.base}/metrics", timeout=15) as response:
            text = response.read().decode()
        delivered = [line for line in text.splitlines() if line.startswith("minibaas_jobs_delivered_total") and tenant["slug"] in line]
        return text if delivered and float(delivered[0].rsplit(" ", 1)[1]) >= 10 else None
    metrics = wait_for(counted)
    assert any(line.startswith("minibaas_jobs_enqueued_total") and tenant["slug"] in line and 'kind="webhook"' in line for line in metrics.splitlines())
    status, tree = admin(node, "GET", "/supervisor")
    shown = json.dumps(tree)
    assert status == 200 and "job-workers" in shown and tenant["slug"] in shown, "the supervisor endpoint shows the job workers"


def test_bad_input_is_refused_with_stable_codes_and_nothing_stored(node, tenant, receiver):
    path = f"/tenants/{tenant['slug']}/webhooks"
    good = {"name": "ok", "table": "labels", "url": receiver.base + "/x"}
    cases = [
        ({**good, "url": "ftp://example.com"}, 400, "MB820"),
        ({**good, "url": "not a url"}, 400, "MB820"),
        ({**good, "url": "http://169.254.169.254/latest/meta-data"}, 422, "MB821"),
        ({**good, "url": "http://10.1.2.3/"}, 422, "MB821"),
        ({**good, "table": "nope"}, 422, "MB822"),
        ({**good, "source": "nope"}, 422, "MB822"),
        ({**good, "filter": "name=zz.1"}, 400, "MB823"),
        ({**good, "filter": "ghost=eq.1"}, 400, "MB823"),
        ({**good, "events": ["TRUNCATE"]}, 400, "MB824"),
        ({**good, "events": []}, 400, "MB824"),
        ({**good, "timeoutMs": 5}, 400, "MB825"),
        ({**good, "retrySchedule": [-1]}, 400, "MB825"),
        ({**good, "headers": {"webhook-id": "x"}}, 400, "MB825"),
        ({**good, "headers": {"X-Evil": "a\r\nb"}}, 400, "MB825"),
    ]
    for body, status, code in cases:
        got, error = admin(node, "POST", path, body)
        assert (got, (error or {}).get("code")) == (status, code), (body, got, error)
    assert admin(node, "GET", path)[1] == []
    assert admin(node, "POST", path, good)[0] == 201
    got, error = admin(node, "POST", path, good)
    assert (got, error["code"]) == (409, "MB829")
    assert admin(node, "GET", f"{path}/wh_nope")[1]["code"] == "MB826"
    assert len(admin(node, "GET", path)[1]) == 1


def test_deliveries_survive_a_kill_9_and_changes_made_while_down(receiver):
    node = Node()
    try:
        created = call("POST", f"{node.base}/admin/v1/tenants", node.token, {"slug": "whkill", "name": "Kill"})
        database = fresh_database()
        call("POST", f"{node.base}/admin/v1/tenants/whkill/sources", node.token, {"name": "main", "kind": "postgres", "url": database})
        receiver.scripts["/kill"] = [500] * 10
        status, hooked = admin(node, "POST", "/tenants/whkill/webhooks",
                               {"name": "kill", "table": "labels", "url": receiver.base + "/kill", "events": ["INSERT"], "retrySchedule": [300] * 10})
        assert status == 201, hooked
        psql(database, "insert into labels (id, name) select g, 'before' from generate_series(1000, 1029) g")
        receiver.wait("/kill", 1)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
        # Committed while no node runs the tenant: waiting in the replication slot.
        psql(database, "insert into labels (id, name) select g, 'while down' from generate_series(1030, 1049) g")
        restarted = Node(data_dir=node.data_dir, token=node.token)
        node = restarted

        def all_delivered():
            ok = {}
            for r in receiver.received("/kill"):
                if r["status"] != 200:
                    continue
                payload = verified(r, hooked["secret"])
                ok.setdefault(r["headers"]["webhook-id"], payload["record"]["id"])
            return ok if sorted(ok.values()) == list(range(1000, 1050)) else None
        delivered = wait_for(all_delivered, timeout=60)
        assert len(delivered) == 50, "one webhook-id per change, however often it was sent"
    finally:
        node.stop()
        del created


def test_a_cluster_keeps_delivering_when_the_owner_is_killed(receiver):
    """Three nodes on PostgreSQL and Redis. Nobody calls the tenant's API: the placement's owner
    starts its tree because it has a webhook. Its owner is killed with -9; changes committed before
    and after are all delivered (at least once, counted by webhook-id) by the new owner."""
    from cluster_harness import Cluster
    cluster = Cluster(3, heartbeat_ms=250, lease_ttl_ms=2000, extra_env={"MINIBAAS_OUTBOUND_ALLOW_CIDRS": "127.0.0.0/8"})
    try:
        slug = "whcluster"
        cluster.create_tenant(slug)
        database = fresh_database()
        status, _, source = cluster.admin("POST", f"/tenants/{slug}/sources", {"name": "main", "kind": "postgres", "url": database})
        assert status == 201, source
        status, _, hooked = cluster.admin("POST", f"/tenants/{slug}/webhooks", {
            "name": "kill", "table": "labels", "events": ["INSERT"], "url": receiver.base + "/cluster", "retrySchedule": [300] * 10})
        assert status == 201 and hooked["capture"]["mode"] == "logical-decoding", hooked
        # Committed at once: the slot was made before the answer, wherever the owner is.
        psql(database, "insert into labels (id, name) select g, 'first' from generate_series(3000, 3019) g")

        def delivered(count):
            def check():
                ids = {}
                for r in receiver.received("/cluster"):
                    if r["status"] == 200:
                        ids.setdefault(r["headers"]["webhook-id"], verified(r, hooked["secret"])["record"]["id"])
                return ids if len(set(ids.values())) >= count else None
            return check
        wait_for(delivered(20), timeout=30)
        owner = cluster.view()["placements"].get(slug)
        victim = next(node for node in cluster.nodes if node.id == owner)
        victim.kill()
        psql(database, "insert into labels (id, name) select g, 'after' from generate_series(3020, 3039) g")
        ids = wait_for(delivered(40), timeout=60)
        assert sorted(set(ids.values())) == list(range(3000, 3040))
        survivors = [node for node in cluster.nodes if node.alive]
        assert cluster.view(node=survivors[0])["placements"].get(slug) not in (None, owner)
    finally:
        cluster.stop()
