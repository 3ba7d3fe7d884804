"""Kill-9 failover and forwarding overhead for Benchmarks/cluster/run.sh (see there)."""
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Clients"))
from cluster_harness import (Cluster, WriteLoad, check_fencing, check_nothing_lost, psql,  # noqa: E402
                             tenants_with_writes, writes_database)

HEARTBEAT_MS = int(os.environ.get("MINIBAAS_HEARTBEAT_MS", "1000"))
LEASE_TTL_MS = int(os.environ.get("MINIBAAS_LEASE_TTL_MS", "5000"))


def failover_run():
    cluster = Cluster(3, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS)
    try:
        database = writes_database()
        tenants = tenants_with_writes(cluster, 9, database)
        load = WriteLoad(cluster, tenants)
        cluster.wait_for_placements(tenants)
        time.sleep(2)
        view = cluster.view()
        owners = [view["placements"].get(slug) for slug in tenants]
        victim_id = max(set(owners) - {None}, key=owners.count)
        orphans = {slug for slug in tenants if view["placements"].get(slug) == victim_id}
        victim = next(node for node in cluster.nodes if node.id == victim_id)
        killed = time.monotonic()
        victim.kill()
        time.sleep(LEASE_TTL_MS / 1000 * 2 + 2)
        records = load.finish()
        acked = check_nothing_lost(records, database)
        check_fencing(records)
        stored = int(psql(database, "select count(*) from writes"))
        recovery = max(
            min(r["answered"] for r in records if r["slug"] == slug and r["status"] == 201 and r["sent"] >= killed) - killed
            for slug in orphans)
        return recovery, acked, stored, len(orphans)
    finally:
        cluster.stop()


def p50_ms(url, keys):
    out = subprocess.run(["wrk", "-t1", "-c8", "-d8s", "--latency", "-H", f"apikey: {keys['anonKey']}",
                          "-H", f"Authorization: Bearer {keys['serviceKey']}", url],
                         check=True, capture_output=True, text=True).stdout
    match = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def forwarding_overhead():
    cluster = Cluster(3, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS)
    try:
        database = writes_database()
        psql(database, "insert into writes (tenant, seq) select 'x', g from generate_series(1, 100) g")
        tenants = tenants_with_writes(cluster, 1, database)
        slug, keys = next(iter(tenants.items()))
        path = f"/t/{slug}/rest/v1/writes?id=eq.7"
        status, headers, body = cluster.request("GET", cluster.nodes[0].base + path, keys["serviceKey"],
                                                headers={"apikey": keys["anonKey"]})
        assert status == 200, body
        owner = next(n for n in cluster.nodes if n.id == headers["x-minibaas-node"])
        other = next(n for n in cluster.nodes if n is not owner)
        p50_ms(owner.base + path, keys)  # warm-up
        at_owner = p50_ms(owner.base + path, keys)
        through_other = p50_ms(other.base + path, keys)
        return at_owner, through_other
    finally:
        cluster.stop()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"heartbeat {HEARTBEAT_MS} ms, lease TTL {LEASE_TTL_MS} ms, {runs} kill -9 runs")
    recoveries, acked_total, lost_total = [], 0, 0
    for run in range(runs):
        recovery, acked, stored, orphans = failover_run()
        recoveries.append(recovery)
        acked_total += acked
        print(f"  run {run + 1}: {orphans} tenants of the killed node answered again after {recovery:.2f} s; "
              f"{acked} writes acknowledged, {stored} rows stored")
    print(f"kill -9 to the dead node's tenants answering: median {statistics.median(recoveries):.2f} s, "
          f"worst {max(recoveries):.2f} s (bound: lease TTL + one heartbeat = {(LEASE_TTL_MS + HEARTBEAT_MS) / 1000:.2f} s)")
    print(f"writes acknowledged: {acked_total}, lost: {lost_total}")
    at_owner, through_other = forwarding_overhead()
    print(f"forwarding: p50 at owner {at_owner:.3f} ms, through a non-owner {through_other:.3f} ms, "
          f"ratio {through_other / at_owner:.2f}")


if __name__ == "__main__":
    main()
