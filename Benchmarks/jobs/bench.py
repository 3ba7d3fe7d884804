"""Drives Benchmarks/jobs against a running node and receiver; prints one line per measurement.
Usage: bench.py NODE_BASE ADMIN_TOKEN RECEIVER_BASE JOBS_BENCH_BINARY"""
import json
import os
import subprocess
import sys
import time
import urllib.request

BASE, TOKEN, RECEIVER, TOOL = sys.argv[1:5]
N = int(os.environ.get("JOBS_N", "5000"))
CONCURRENCY = 16


def call(method, url, body=None, token=TOKEN, headers=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def stats(name):
    return call("GET", f"{RECEIVER}/stats/{name}", token=None)


def tenant(slug):
    created = call("POST", f"{BASE}/admin/v1/tenants", {"slug": slug, "name": slug, "limits": {
        "requestsPerSecond": 100000, "burst": 100000, "maxBodyBytes": 64 << 20, "requestTimeoutMs": 120000,
        "jobs": {"maxInFlight": CONCURRENCY, "perSecond": 100000, "maxPending": 1000000}}})
    call("POST", f"{BASE}/admin/v1/tenants/{slug}/sources", {"name": "default", "kind": "schema", "format": "sql", "provision": True,
         "document": "create table items (id integer primary key, name text not null, sent_at real not null);"})
    return created


def webhook(slug, name, path, **extra):
    return call("POST", f"{BASE}/admin/v1/tenants/{slug}/webhooks", {
        "name": name, "table": "items", "events": ["INSERT"], "url": f"{RECEIVER}/hook/{path}", "maxInFlight": 64, **extra})


def insert(created, rows):
    call("POST", created["apiUrl"] + "/rest/v1/items", rows, token=created["serviceKey"],
         headers={"apikey": created["serviceKey"], "Prefer": "return=minimal"})


def wait(name, count, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = stats(name)
        if got["count"] >= count:
            return got
        time.sleep(0.2)
    raise SystemExit(f"{name}: {stats(name)['count']} of {count} deliveries within {timeout} s")


def latency(created, name, rows=200, rate=20):
    start = 10_000_000 + int(time.time() * 1000) % 1_000_000 * 100
    for index in range(rows):
        insert(created, [{"id": start + index, "name": "x", "sent_at": time.time() * 1000}])
        time.sleep(1 / rate)
    return wait(name, rows)


def metric(name, slug):
    with urllib.request.urlopen(f"{BASE}/metrics", timeout=30) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + "{") and f'tenant="{slug}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_enqueued(slug, count, timeout=600):
    deadline = time.time() + timeout
    while metric("minibaas_jobs_enqueued_total", slug) < count and time.time() < deadline:
        time.sleep(0.2)


# P1: deliveries per second of a stored backlog vs a bare AsyncHTTPClient loop at the same
# concurrency. The receiver holds the first deliveries at a gate until every change is stored as a
# job, then lets all through and counts from there: the rate is the workers' (claim, sign, post,
# settle), not that of the REST writes and change capture feeding them.
a = tenant("jobsa")
webhook("jobsa", "tput", "gatetput", maxInFlight=CONCURRENCY)
for start in range(0, N, 1000):
    insert(a, [{"id": i, "name": "bench", "sent_at": 0} for i in range(start, min(N, start + 1000))])
wait_enqueued("jobsa", N)
held = call("POST", f"{RECEIVER}/release/gatetput", token=None)["held"]
tput = wait("gatetput", N - held)
bare = float(subprocess.run([TOOL, "bareloop", f"{RECEIVER}/hook/bare", str(N), str(CONCURRENCY)], check=True, capture_output=True, text=True).stdout)
print(f"P1 webhook deliveries/s of a stored backlog {tput['rate']:.0f} vs bare AsyncHTTPClient loop {bare:.0f} (concurrency {CONCURRENCY}): ratio {tput['rate'] / bare:.2f}")
# The same end to end: deliveries while the REST writes and change capture still feed the store.
for hook in call("GET", f"{BASE}/admin/v1/tenants/jobsa/webhooks"):
    call("DELETE", f"{BASE}/admin/v1/tenants/jobsa/webhooks/" + hook["id"])
webhook("jobsa", "tput2", "tput2", maxInFlight=CONCURRENCY)
for start in range(N, 2 * N, 1000):
    insert(a, [{"id": i, "name": "bench", "sent_at": 0} for i in range(start, min(2 * N, start + 1000))])
flowing = wait("tput2", N)
print(f"   end to end (REST inserts -> capture -> jobs -> deliveries, all at once) {flowing['rate']:.0f}/s: ratio {flowing['rate'] / bare:.2f}")

# P2: enqueue -> delivery latency, idle, through the REST write of one row.
b = tenant("jobsb")
webhook("jobsb", "lat", "latb")
alone = latency(b, "latb")
print(f"P2 commit->delivery idle p50 {alone['p50']:.1f} ms p99 {alone['p99']:.1f} ms (200 rows at 20/s)")

# P3: the same beside a 100,000-job backlog of another tenant whose receiver answers in 50 ms.
c = tenant("jobsc")
webhook("jobsc", "backlog", "slowc", maxInFlight=CONCURRENCY)
for start in range(0, 100_000, 10_000):
    insert(c, [{"id": i, "name": "b", "sent_at": 0} for i in range(start, start + 10_000)])



# The backlog is there once every change is stored as a job (the REST writes are published after
# the inserts answer); B is measured beside it, while A's workers deliver it.
deadline = time.time() + 600
while metric("minibaas_jobs_enqueued_total", "jobsc") < 100_000 and time.time() < deadline:
    time.sleep(0.5)
time.sleep(6)  # one gauge refresh
call("DELETE", f"{BASE}/admin/v1/tenants/jobsb/webhooks/" + call("GET", f"{BASE}/admin/v1/tenants/jobsb/webhooks")[0]["id"])
webhook("jobsb", "lat2", "latb2")
backlog_before = metric("minibaas_jobs_pending", "jobsc")
beside = latency(b, "latb2")
backlog_after = metric("minibaas_jobs_pending", "jobsc")
print(f"P3 tenant B p99 beside A's backlog {beside['p99']:.1f} ms vs alone {alone['p99']:.1f} ms: ratio {beside['p99'] / max(alone['p99'], 0.001):.2f}"
      f" (p50 {beside['p50']:.1f} vs {alone['p50']:.1f}; A's backlog {backlog_before:.0f} -> {backlog_after:.0f} jobs, receiver answering in 50 ms)")
