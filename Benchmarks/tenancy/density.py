"""Tenant density on one node (issue 23, item 3). Driven by Benchmarks/tenancy/run.sh in phases:

  register  N tenants; the first ACTIVE get a small uploaded model (3 tables, a few rows), the next
            WIDE a 100-table model. Uploaded with provision: true, so the tables are hosted by the
            node itself (SQLite files on an embedded node, PostgreSQL schemas on a cluster node).
  measure   on a restarted node (nothing active): RSS with all registered and none active; first
            request of each small tenant (its activation: tree, sources, model from the control
            plane) p50/p99; RSS with them active; the wide tenants' cost; RSS after passivation.

Only the standard library: it runs from the system Python."""
import argparse, concurrent.futures, json, statistics, sys, time, urllib.error, urllib.request

SMALL = """
create table projects (id serial primary key, name text not null);
create table todos (id serial primary key, title text not null, done boolean not null default false,
                    project_id integer references projects(id));
create table tags (id serial primary key, todo_id integer references todos(id), label text);
"""
WIDE = "\n".join(
    f"create table t{i:03d} (id serial primary key, name text not null, value integer, note text, "
    f"created_at timestamptz not null default now(){', parent_id integer references t%03d(id)' % (i - 1) if i else ''});"
    for i in range(100))


def call(base, method, path, token=None, apikey=None, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    if apikey:
        request.add_header("apikey", apikey)
        request.add_header("Authorization", "Bearer " + apikey)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def settle(pid, seconds=3):
    """RSS once it stops moving (background start-up work done), in MB."""
    time.sleep(seconds)
    return rss_mb(pid)


def slug(index):
    return f"d{index:05d}"


def register(args):
    keys = {}

    def one(index):
        status, body = call(args.url, "POST", "/admin/v1/tenants", token=args.admin,
                            body={"slug": slug(index), "name": f"Density {index}"})
        if status != 201:
            raise RuntimeError(f"tenant {index}: {status} {body[:200]!r}")
        service = json.loads(body)["serviceKey"]
        if index < args.active + args.wide:
            document = SMALL if index < args.active else WIDE
            status, body = call(args.url, "POST", f"/admin/v1/tenants/{slug(index)}/sources", token=args.admin,
                                body={"name": "main", "kind": "schema", "format": "sql", "provision": True, "document": document})
            if status != 201:
                raise RuntimeError(f"source {index}: {status} {body[:300]!r}")
            if index < args.active:
                for title in ("write the benchmark", "read the figures"):
                    status, body = call(args.url, "POST", f"/t/{slug(index)}/rest/v1/todos", apikey=service, body={"title": title})
                    if status != 201:
                        raise RuntimeError(f"row {index}: {status} {body[:300]!r}")
        return index, service

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
        for index, service in pool.map(one, range(args.tenants)):
            keys[index] = service
            if (index + 1) % 1000 == 0:
                print(f"  registered {index + 1} tenants ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    with open(args.keys, "w") as out:
        json.dump({slug(index): key for index, key in keys.items()}, out)
    print(f"registered {args.tenants} tenants ({args.active} small models, {args.wide} wide) in {time.monotonic() - started:.1f} s")


def active_tenants(args):
    status, body = call(args.url, "GET", "/admin/v1/supervisor", token=args.admin)
    return len(json.loads(body).get("tenants", [])) if status == 200 else -1


def small_read(args, keys, index):
    """The small tenant's read the benchmark times (its first one activates the tenant)."""
    return call(args.url, "GET", f"/t/{slug(index)}/rest/v1/todos?select=id,title&order=id", apikey=keys[slug(index)])


def wait_for_passivation(args):
    deadline = time.monotonic() + args.passivation_wait
    while time.monotonic() < deadline and active_tenants(args) > 0:
        time.sleep(2)


def measure(args):
    with open(args.keys) as keys_file:
        keys = json.load(keys_file)
    empty = args.empty_rss
    none = settle(args.pid)
    print(f"RSS, {args.tenants} registered, none active: {none:.1f} MB (empty node {empty:.1f} MB)"
          f" -> {(none - empty) * 1024 / args.tenants:.1f} KB per idle tenant (target <= 50)")

    latencies = []
    for index in range(args.active):
        started = time.monotonic()
        status, body = small_read(args, keys, index)
        latencies.append((time.monotonic() - started) * 1000)
        if status != 200 or len(json.loads(body)) != 2:
            raise RuntimeError(f"activation {index}: {status} {body[:300]!r}")
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    again = []
    for index in range(min(args.active, 200)):
        started = time.monotonic()
        small_read(args, keys, index)
        again.append((time.monotonic() - started) * 1000)
    print(f"first request (activation) of {args.active} tenants: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
          f" (target p99 <= 50); a second request p50 {statistics.median(again):.1f} ms")
    active = settle(args.pid)

    wide = []
    for index in range(args.active, args.active + args.wide):
        status, body = call(args.url, "GET", f"/t/{slug(index)}/rest/v1/t099?limit=1", apikey=keys[slug(index)])
        if status != 200:
            raise RuntimeError(f"wide {index}: {status} {body[:300]!r}")
    wide_rss = settle(args.pid) if args.wide else active
    # Counted only now: listing the supervisor tree of a thousand tenants is itself a large
    # transient allocation (see below), which measured between the two figures above would be
    # charged to the wide tenants.
    running = active_tenants(args)
    print(f"RSS, {running - args.wide} active: {active:.1f} MB -> {(active - none) * 1024 / args.active:.0f} KB per active small tenant")
    if args.wide:
        print(f"RSS with {args.wide} 100-table tenants active as well: {wide_rss:.1f} MB -> "
              f"{(wide_rss - active) * 1024 / args.wide:.0f} KB per active 100-table tenant (target <= 1024)")
    listed = settle(args.pid)
    print(f"RSS after one listing of the supervisor tree ({running} tenants): {listed:.1f} MB ({listed - wide_rss:+.1f} MB)")
    wide_rss = listed

    wait_for_passivation(args)
    after = settle(args.pid)
    print(f"after passivation ({active_tenants(args)} active): {after:.1f} MB -> {wide_rss - after:.1f} MB of "
          f"{wide_rss - none:.1f} MB given back ({100 * (wide_rss - after) / max(0.1, wide_rss - none):.0f} %)")

    # Memory that passivation keeps is either still referenced (a leak: it grows with every round
    # of activation) or kept by the allocator for reuse (it does not): activate and passivate the
    # small tenants again and compare.
    for cycle in range(2, args.cycles + 1):
        for index in range(args.active):
            status, body = small_read(args, keys, index)
            if status != 200:
                raise RuntimeError(f"cycle {cycle}, tenant {index}: {status} {body[:300]!r}")
        reactivated = settle(args.pid)
        wait_for_passivation(args)
        again = settle(args.pid)
        print(f"round {cycle}: {args.active} active again {reactivated:.1f} MB, after passivation ({active_tenants(args)} active) {again:.1f} MB"
              f" ({again - after:+.1f} MB against round 1)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["register", "measure"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--wide", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--empty-rss", type=float, default=0)
    parser.add_argument("--passivation-wait", type=float, default=120)
    parser.add_argument("--cycles", type=int, default=2)
    args = parser.parse_args()
    register(args) if args.phase == "register" else measure(args)


if __name__ == "__main__":
    main()
