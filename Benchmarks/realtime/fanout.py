"""Fan-out latency and sustained throughput for Benchmarks/realtime/run.sh (see there)."""
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request

import websockets

BASE, ADMIN, DB = sys.argv[1:4]
# `setup`: only create a tenant ready for 1,000 subscribers and print its socket URL (for the Swift
# client); `all`: the fan-out with this client too; otherwise only the sustained run.
MODE = sys.argv[4] if len(sys.argv) > 4 else ""
FANOUT = 1000


def admin(method, path, body=None):
    request = urllib.request.Request(BASE + "/admin/v1" + path, method=method, data=json.dumps(body).encode() if body else None)
    request.add_header("Authorization", f"Bearer {ADMIN}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def psql(statement):
    subprocess.run(["psql", DB, "-qX", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True, capture_output=True)


async def subscriber(url, arrivals, ready):
    async with websockets.connect(url, max_size=None, open_timeout=60) as socket:
        await socket.send(json.dumps({"topic": "realtime:ticks", "event": "phx_join", "ref": "1", "join_ref": "1", "payload": {
            "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "ticks"}]}}}))
        await socket.recv()
        ready.release()
        async for text in socket:
            arrivals.append((time.time(), text))


def socket_url(count):
    tenant = admin("POST", "/tenants", {"slug": f"rt{count}x{int(time.time() * 1000) % 10**8}", "name": "bench"})
    admin("PATCH", f"/tenants/{tenant['slug']}", {"limits": {"realtime": {
        "maxConnections": 5000, "joinsPerSecond": 100000, "outboundQueue": 100000}}})
    admin("POST", f"/tenants/{tenant['slug']}/sources", {"name": "main", "kind": "postgres", "url": DB})
    return tenant["apiUrl"].replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={tenant['serviceKey']}&vsn=1.0.0"


async def run(count, work):
    url = socket_url(count)
    arrivals = []
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(subscriber(url, arrivals, ready)) for _ in range(count)]
    for _ in range(count):
        await ready.acquire()
    await asyncio.sleep(1)
    arrivals.clear()
    result = await work(arrivals)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def fanout(arrivals):
    latencies, missing = [], 0
    loop = asyncio.get_running_loop()

    def commit():
        return subprocess.run(["psql", DB, "-qtAX", "-c", "insert into ticks (sent_at) values (extract(epoch from clock_timestamp())) returning id"],
                              check=True, capture_output=True, text=True).stdout.strip()

    for _ in range(20):
        # psql runs off the event loop, and the wait only counts new arrivals: a loop blocked on
        # the subprocess, or rescanning every message so far each 10 ms, would delay reading the
        # sockets and be measured as delivery latency.
        before = len(arrivals)
        tick = await loop.run_in_executor(None, commit)
        deadline = time.time() + 10
        while len(arrivals) - before < FANOUT and time.time() < deadline:
            await asyncio.sleep(0.01)
        marker = f'"id":{tick},'
        mine = [(received, text) for received, text in arrivals[before:] if marker in text]
        missing += FANOUT - len(mine)
        these = [(received - json.loads(text)["payload"]["data"]["record"]["sent_at"]) * 1000 for received, text in mine]
        latencies.extend(these)
        if these:
            print(f"  commit {len(latencies) // max(1, FANOUT)}: first {min(these):.1f} ms, last {max(these):.1f} ms", file=sys.stderr)
        await asyncio.sleep(0.3)
    return latencies, missing


async def sustained(arrivals):
    """5,000 single-row transactions committed back to back; the clock runs from the first commit
    to the last delivery, so the figure is what the whole path sustains, not what psql can write."""
    rows = 5000
    started = time.time()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, psql, f"""do $$ begin
        for i in 1..{rows} loop
          insert into ticks (sent_at, note) values (extract(epoch from clock_timestamp()), 'sustained');
          commit;
        end loop; end $$""")
    committed = time.time() - started
    expected = rows * 100
    deadline = time.time() + 120
    while sum(1 for _, text in arrivals if "postgres_changes" in text) < expected and time.time() < deadline:
        await asyncio.sleep(0.1)
    delivered = [received for received, text in arrivals if "postgres_changes" in text]
    elapsed = (max(delivered) if delivered else time.time()) - started
    return rows, committed, len(delivered), elapsed


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    if MODE == "setup":
        print(socket_url(FANOUT))
        return
    if MODE == "all":
        latencies, missing = asyncio.run(run(FANOUT, fanout))
        print(f"(Python asyncio client) fan-out to {FANOUT} subscribers, 20 commits: {len(latencies)} deliveries, {missing} missing, "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")
    rows, committed, delivered, elapsed = asyncio.run(run(100, sustained))
    print(f"sustained: {rows} single-row transactions committed in {committed:.1f} s; {delivered} of {rows * 100} deliveries "
          f"to 100 subscribers done {elapsed:.1f} s after the first commit: {rows / elapsed:.0f} changes/s, "
          f"{delivered / elapsed:.0f} deliveries/s")


if __name__ == "__main__":
    main()
