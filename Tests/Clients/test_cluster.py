"""Three real nodes, one real Redis, the test PostgreSQL: placement, forwarding, and failure —
kill -9, SIGSTOP past the lease, Redis restarting under load."""
import collections
import random
import threading
import time
import urllib.error
import urllib.request

import pytest

from cluster_harness import Cluster, WriteLoad, check_fencing, check_nothing_lost, psql, tenants_with_writes, writes_database

HEARTBEAT_MS = 300
LEASE_TTL_MS = 2000
# What the issue promises (lease TTL plus one heartbeat), plus room for a loaded 2-core machine
# running three debug builds and the load generator.
RECOVERY_BOUND = (LEASE_TTL_MS + HEARTBEAT_MS) / 1000 + 1.5


@pytest.fixture()
def cluster():
    started = Cluster(3, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS)
    yield started
    started.stop()


def test_three_nodes_spread_300_tenants_and_agree_on_owners(cluster):
    keys = {}
    for index in range(300):
        slug = f"spread{index:03d}"
        keys[slug] = cluster.create_tenant(slug, cluster.nodes[index % 3])["anonKey"]
    served_by = {}
    for slug, key in keys.items():
        entry = random.choice(cluster.nodes)
        status, headers, body = cluster.tenant_get(entry, slug, key)
        assert status == 200, body
        assert body["info"]["title"], body
        served_by[slug] = headers["x-minibaas-node"]

    views = [cluster.view(node) for node in cluster.nodes]
    for node, view in zip(cluster.nodes, views):
        assert view["self"] == node.id
        assert sorted(m["id"] for m in view["members"]) == ["n1", "n2", "n3"]
        assert {m["address"] for m in view["members"]} == {n.base for n in cluster.nodes}
        assert view["coordination"] == "redis" and view["coordinationReachable"] is True
    placements = views[0]["placements"]
    assert all(view["placements"] == placements for view in views)
    assert {slug: placements.get(slug) for slug in keys} == served_by
    counts = collections.Counter(placements[slug] for slug in keys)
    assert set(counts) == {"n1", "n2", "n3"}
    assert max(counts.values()) <= 150, counts

    # Each node's supervisor shows exactly the trees it owns, with their fencing tokens.
    for node in cluster.nodes:
        status, _, supervisor = cluster.admin("GET", "/supervisor", node=node)
        assert status == 200
        mine = {t["slug"] for t in supervisor["tenants"] if t["slug"] in keys}
        assert mine == {slug for slug, owner in placements.items() if owner == node.id and slug in keys}
        assert all(t["owner"] == node.id and t["fencingToken"] == views[0]["fencingTokens"][t["slug"]]
                   for t in supervisor["tenants"] if t["slug"] in keys)

    # Asking any node gives the same answer: a client cannot tell where a tenant lives.
    slug = sorted(keys)[0]
    answers = [cluster.tenant_get(node, slug, keys[slug]) for node in cluster.nodes]
    assert len({(status, json_key(body)) for status, _, body in answers}) == 1
    assert {headers["x-minibaas-node"] for _, headers, _ in answers} == {placements[slug]}
    # A client cannot pose as a forwarding node: a forged hop count is ignored, so a non-owner
    # still forwards instead of taking the tenant.
    non_owner = next(n for n in cluster.nodes if n.id != placements[slug])
    for forged in ["2", "1.0.abc", "-5", "2.%d.%s" % (time.time(), "0" * 32)]:
        status, headers, _ = cluster.request("GET", f"{non_owner.base}/t/{slug}/rest/v1/",
                                             headers={"apikey": keys[slug], "x-minibaas-hops": forged})
        assert status == 200 and headers["x-minibaas-node"] == placements[slug], forged
    # An unknown tenant is 404 through every node, and leaves no lease behind.
    for node in cluster.nodes:
        status, _, body = cluster.tenant_get(node, "nosuchtenant", keys[slug])
        assert status == 404 and body["code"] == "MB300", body
    assert "nosuchtenant" not in cluster.view()["placements"]


def json_key(body):
    import json
    return json.dumps(body, sort_keys=True)


def test_kill_9_during_writes_loses_nothing_and_fails_over_within_the_lease(cluster):
    database = writes_database()
    tenants = tenants_with_writes(cluster, 9, database)
    load = WriteLoad(cluster, tenants)
    cluster.wait_for_placements(tenants)
    time.sleep(1.0)
    view = cluster.view()
    owned = collections.Counter(view["placements"][slug] for slug in tenants if slug in view["placements"])
    victim_id = owned.most_common(1)[0][0]
    victim = next(node for node in cluster.nodes if node.id == victim_id)
    orphans = {slug for slug in tenants if view["placements"].get(slug) == victim_id}
    killed_at = time.monotonic()
    victim.kill()
    time.sleep(LEASE_TTL_MS / 1000 * 3)
    records = load.finish()

    acked = check_nothing_lost(records, database)
    assert acked > 100, f"only {acked} writes acknowledged"
    check_fencing(records)
    for slug in orphans:
        answered = [r["answered"] for r in records
                    if r["slug"] == slug and r["status"] == 201 and r["sent"] >= killed_at]
        assert answered, f"{slug} never answered after its owner died"
        recovery = min(answered) - killed_at
        assert recovery <= RECOVERY_BOUND, f"{slug} took {recovery:.2f}s to answer again"
        assert all(r["node"] != victim_id for r in records if r["slug"] == slug and r["status"] == 201 and r["sent"] >= killed_at)
    survivors = [node for node in cluster.nodes if node.alive]
    final = cluster.wait_for_members(2, node=survivors[0])
    assert victim_id not in final["placements"].values()


def test_sigstopped_owner_loses_its_tenants_and_does_not_serve_them_when_resumed(cluster):
    keys = {}
    for index in range(30):
        slug = f"pause{index:02d}"
        keys[slug] = cluster.create_tenant(slug)["anonKey"]
        status, _, body = cluster.tenant_get(cluster.nodes[index % 3], slug, keys[slug])
        assert status == 200, body
    before = cluster.view()
    counts = collections.Counter(before["placements"][slug] for slug in keys)
    paused = next(node for node in cluster.nodes if node.id == counts.most_common(1)[0][0])
    others = [node for node in cluster.nodes if node is not paused]
    lost = sorted(slug for slug in keys if before["placements"][slug] == paused.id)
    assert lost

    paused.pause()
    try:
        started = time.monotonic()
        new_owner = {}
        for slug in lost:
            status, headers, body = cluster.tenant_get(others[0], slug, keys[slug], timeout=30)
            assert status == 200, body
            assert headers["x-minibaas-node"] != paused.id
            assert int(headers["x-minibaas-fencing-token"]) > before["fencingTokens"][slug]
            new_owner[slug] = (headers["x-minibaas-node"], int(headers["x-minibaas-fencing-token"]))
        assert time.monotonic() - started <= RECOVERY_BOUND + 2
    finally:
        paused.resume()

    # Resumed, it forwards to the new owners instead of serving under its lapsed leases.
    for slug in lost:
        status, headers, body = cluster.tenant_get(paused, slug, keys[slug])
        assert status == 200, body
        assert (headers["x-minibaas-node"], int(headers["x-minibaas-fencing-token"])) == new_owner[slug]
    deadline = time.time() + 10
    while time.time() < deadline:
        _, _, supervisor = cluster.admin("GET", "/supervisor", node=paused)
        if not {t["slug"] for t in supervisor["tenants"]} & set(lost):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the resumed node still runs trees it lost: {supervisor['tenants']}")
    view = cluster.wait_for_members(3, node=paused)
    assert all(view["placements"].get(slug) != paused.id for slug in lost)


def test_redis_restart_keeps_owners_serving_then_they_re_register():
    # Owners serve through an outage for MINIBAAS_REDIS_OUTAGE_GRACE_MS (default: one lease TTL);
    # this outage lasts two TTLs, so the grace is set above it.
    cluster = Cluster(3, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS,
                      extra_env={"MINIBAAS_REDIS_OUTAGE_GRACE_MS": str(LEASE_TTL_MS * 4)})
    try:
        redis_restart_scenario(cluster)
    finally:
        cluster.stop()


def redis_restart_scenario(cluster):
    database = writes_database()
    tenants = tenants_with_writes(cluster, 6, database)
    for slug, keys in tenants.items():
        status, _, body = cluster.tenant_get(cluster.nodes[0], slug, keys["anonKey"])
        assert status == 200, body
    before = cluster.wait_for_placements(tenants)
    owners = {slug: next(n for n in cluster.nodes if n.id == before["placements"][slug]) for slug in tenants}

    cluster.redis.kill()
    outage_started = time.monotonic()
    served = 0
    while time.monotonic() - outage_started < LEASE_TTL_MS / 1000 * 2:
        for slug, keys in tenants.items():
            status, headers, body = cluster.request(
                "POST", f"{owners[slug].base}/t/{slug}/rest/v1/writes", keys["serviceKey"],
                {"tenant": slug, "seq": 100000 + served}, headers={"apikey": keys["anonKey"], "Prefer": "return=minimal"})
            assert status == 201, (slug, body)
            assert headers["x-minibaas-node"] == owners[slug].id
            served += 1
    view = cluster.view(cluster.nodes[1])
    assert view["coordinationReachable"] is False

    cluster.redis.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        view = cluster.view(cluster.nodes[2])
        if len(view["members"]) == 3 and all(view["placements"].get(slug) == owners[slug].id for slug in tenants):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"cluster did not re-form: {view}")
    assert view["coordinationReachable"] is True
    # Tokens granted after the restart are still larger: a Redis without persistence forgot the
    # counters, but tokens never go back.
    for slug in tenants:
        assert view["fencingTokens"][slug] > before["fencingTokens"][slug]
    # And requests through any node reach the same owners again.
    for slug, keys in tenants.items():
        status, headers, body = cluster.tenant_get(cluster.nodes[1], slug, keys["anonKey"])
        assert status == 200, body
        assert headers["x-minibaas-node"] == owners[slug].id
    rows = int(psql(database, "select count(*) from writes"))
    assert rows == served


def test_a_joining_node_takes_only_its_share_and_moves_drain_without_errors():
    cluster = Cluster(2, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS)
    try:
        keys = {}
        for index in range(60):
            slug = f"join{index:02d}"
            keys[slug] = cluster.create_tenant(slug)["anonKey"]
            assert cluster.tenant_get(cluster.nodes[0], slug, keys[slug])[0] == 200
        before = cluster.view()["placements"]
        errors = []
        stop = threading.Event()

        def reader(entry):
            while not stop.is_set():
                for slug in keys:
                    status, _, body = cluster.tenant_get(entry, slug, keys[slug])
                    if status != 200:
                        errors.append((slug, status, body))
        threads = [threading.Thread(target=reader, args=(node,), daemon=True) for node in cluster.nodes]
        for thread in threads:
            thread.start()
        cluster.add_node()
        cluster.wait_for_members(3)
        deadline = time.time() + 20
        while time.time() < deadline:
            after = cluster.view()["placements"]
            moved = {slug for slug in keys if after.get(slug) != before[slug]}
            if all(slug in after for slug in keys) and moved and all(after[slug] == "n3" for slug in moved):
                time.sleep(HEARTBEAT_MS / 1000 * 4)
                if cluster.view()["placements"] == after:
                    break
            time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        after = cluster.view()["placements"]
        moved = {slug for slug in keys if after[slug] != before[slug]}
        assert moved and all(after[slug] == "n3" for slug in moved), (before, after)
        assert 8 <= len(moved) <= 32, f"{len(moved)} of 60 tenants moved to the third node"
        assert not errors, errors[:5]
    finally:
        cluster.stop()


def test_redirect_mode_answers_307_to_the_owner():
    cluster = Cluster(2, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS, extra_env={"MINIBAAS_FORWARDING": "redirect"})
    try:
        created = {f"redir{i}": cluster.create_tenant(f"redir{i}")["anonKey"] for i in range(8)}
        for slug, key in created.items():
            assert cluster.tenant_get(cluster.nodes[0], slug, key)[0] == 200  # urllib follows the 307
        placements = cluster.view()["placements"]
        slug = next(s for s in created if placements[s] == "n2")

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(f"{cluster.nodes[0].base}/t/{slug}/rest/v1/?select=x", headers={"apikey": created[slug]})
        try:
            opener.open(request, timeout=10)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as error:
            assert error.code == 307
            assert error.headers["Location"] == f"{cluster.nodes[1].base}/t/{slug}/rest/v1/?select=x"
    finally:
        cluster.stop()


def test_admin_changes_through_any_node_reach_the_owner_at_once(cluster):
    created = {f"adm{i}": cluster.create_tenant(f"adm{i}") for i in range(6)}
    for slug, keys in created.items():
        assert cluster.tenant_get(cluster.nodes[0], slug, keys["anonKey"])[0] == 200
    placements = cluster.view()["placements"]
    slug = sorted(created)[0]
    owner = next(n for n in cluster.nodes if n.id == placements[slug])
    other = next(n for n in cluster.nodes if n is not owner)
    status, _, body = cluster.admin("PATCH", f"/tenants/{slug}", {"status": "disabled"}, node=other)
    assert status == 200, body
    # No waiting for the owner's periodic re-read: the event reaches it through Redis.
    deadline = time.time() + 1.0
    while True:
        status, _, body = cluster.tenant_get(owner, slug, created[slug]["anonKey"])
        if status == 403 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert status == 403 and body["code"] == "MB302", body
    # Deleting through a non-owner ends the owner's tree and lease.
    status, _, _ = cluster.admin("DELETE", f"/tenants/{slug}", node=other)
    assert status == 204
    assert cluster.tenant_get(owner, slug, created[slug]["anonKey"])[0] == 404
    deadline = time.time() + 3
    while slug in cluster.view()["placements"] and time.time() < deadline:
        time.sleep(0.1)
    assert slug not in cluster.view()["placements"]


def test_sigterm_hands_tenants_over_without_waiting_for_the_lease(cluster):
    keys = {f"term{i:02d}": cluster.create_tenant(f"term{i:02d}")["anonKey"] for i in range(24)}
    for slug, key in keys.items():
        assert cluster.tenant_get(cluster.nodes[0], slug, key)[0] == 200
    before = cluster.view()["placements"]
    leaving = cluster.nodes[2]
    theirs = [slug for slug in keys if before[slug] == leaving.id]
    assert theirs
    started = time.monotonic()
    leaving.terminate()
    stopped = time.monotonic()
    for slug in theirs:
        status, headers, body = cluster.tenant_get(cluster.nodes[0], slug, keys[slug])
        assert status == 200, body
        assert headers["x-minibaas-node"] in ("n1", "n2")
    took = time.monotonic() - stopped
    # A crash costs the lease TTL; a clean stop releases the leases, so it costs far less.
    assert took < LEASE_TTL_MS / 1000, f"took {took:.2f}s after a {stopped - started:.2f}s shutdown"


def test_realtime_sockets_reach_the_owner_through_any_node():
    import asyncio
    from realtime import AsyncRealtimeClient
    cluster = Cluster(2, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS)
    try:
        created = cluster.create_tenant("sockets")
        assert cluster.tenant_get(cluster.nodes[0], "sockets", created["anonKey"])[0] == 200
        owner = cluster.view()["placements"]["sockets"]
        other = next(n for n in cluster.nodes if n.id != owner)
        owning = next(n for n in cluster.nodes if n.id == owner)

        async def scenario():
            near = AsyncRealtimeClient(f"{owning.base}/t/sockets/realtime/v1", created["anonKey"], auto_reconnect=False)
            far = AsyncRealtimeClient(f"{other.base}/t/sockets/realtime/v1", created["anonKey"], auto_reconnect=False)
            await near.connect()
            await far.connect()
            got_near, got_far = asyncio.Queue(), asyncio.Queue()
            a = near.channel("room").on_broadcast("hi", got_near.put_nowait)
            b = far.channel("room").on_broadcast("hi", got_far.put_nowait)
            await a.subscribe()
            await b.subscribe()
            await b.send_broadcast("hi", {"from": "far"})
            assert (await asyncio.wait_for(got_near.get(), 5))["payload"] == {"from": "far"}
            await a.send_broadcast("hi", {"from": "near"})
            assert (await asyncio.wait_for(got_far.get(), 5))["payload"] == {"from": "near"}
            await near.close()
            await far.close()

        asyncio.run(scenario())
    finally:
        cluster.stop()


def test_shared_read_cache_serves_a_new_owner_and_writes_invalidate_it_across_hand_overs():
    import subprocess
    from cluster_harness import create_database
    # A long lifetime, so the hand-overs fit inside it; the default (1 s) bounds staleness.
    started = Cluster(3, heartbeat_ms=HEARTBEAT_MS, lease_ttl_ms=LEASE_TTL_MS, extra_env={"MINIBAAS_CACHE_TTL_MS": "60000"})
    try:
        database = create_database("sc_")
        psql(database, "create table notes (id int primary key, body text not null); insert into notes values (1, 'first')")
        slug = f"shared{random.randrange(10**6):06d}"
        key = started.create_tenant(slug)["serviceKey"]
        status, _, body = started.admin("POST", f"/tenants/{slug}/sources", {"name": "main", "kind": "postgres", "url": database})
        assert status == 201, body
        headers = {"apikey": key, "Authorization": f"Bearer {key}"}

        def read(node):
            status, answered, body = started.request("GET", f"{node.base}/t/{slug}/rest/v1/notes?id=eq.1", headers=headers)
            assert status == 200, body
            return body[0]["body"], answered["x-minibaas-node"]

        def shared_hits(node):
            with urllib.request.urlopen(f"{node.base}/metrics", timeout=15) as response:
                text = response.read().decode()
            line = next((l for l in text.splitlines()
                         if l.startswith("minibaas_cache_shared_hits_total") and f'tenant="{slug}"' in l), None)
            return float(line.rsplit(" ", 1)[1]) if line else 0.0

        def stored_entries():
            out = subprocess.run(["redis-cli", "-p", str(started.redis.port), "--scan", "--pattern", f"{started.prefix}cache:{slug}:*"],
                                 check=True, capture_output=True, text=True).stdout
            return [line for line in out.splitlines() if line]

        def wait_for_entry():
            deadline = time.time() + 5
            while not stored_entries():
                assert time.time() < deadline, "the read was never stored in the shared tier"
                time.sleep(0.05)

        def node_named(node_id):
            return next(node for node in started.nodes if node.id == node_id)

        def any_other_live(node_id):
            return next(node for node in started.live_nodes() if node.id != node_id)

        first, owner_id = read(started.nodes[0])
        assert first == "first"
        wait_for_entry()
        # Behind mini-baas's back, with no change feed running: only the cache's lifetime bounds
        # how long this goes unseen — which shows where the next answer comes from.
        psql(database, "update notes set body = 'changed behind' where id = 1")
        node_named(owner_id).terminate()
        answer, new_owner = read(any_other_live(owner_id))
        assert new_owner != owner_id
        assert answer == "first", "the new owner answers from the shared tier, not from the database"
        assert shared_hits(node_named(new_owner)) >= 1

        # A write through the owner, then the owner goes at once: the write answered only after the
        # shared generation moved, so the next owner never serves what was cached before it.
        status, answered, body = started.request("PATCH", f"{node_named(new_owner).base}/t/{slug}/rest/v1/notes?id=eq.1",
                                                 body={"body": "written"}, headers=headers)
        assert status == 204, body
        assert answered["x-minibaas-node"] == new_owner
        node_named(new_owner).terminate()
        answer, last_owner = read(any_other_live(new_owner))
        assert last_owner not in (owner_id, new_owner)
        assert answer == "written"
    finally:
        started.stop()
