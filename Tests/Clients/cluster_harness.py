"""Real mini-baas nodes, a real redis-server and the test PostgreSQL, on loopback: a cluster to
hurt (kill -9, SIGSTOP, Redis restarts) and watch. Used by test_cluster.py and by
Benchmarks/cluster/failover.py."""
import bisect
import collections
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("MINIBAAS_BIN", os.path.join(ROOT, ".build", "debug", "minibaas"))


def node_environment(settings):
    """This process's environment without any node setting of its own, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIBAAS_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(settings)
    return env


def start_node(args, env, stderr, name="node"):
    """Starts `minibaas serve --port 0 ARGS`; returns the process and its base URL once it listens."""
    process = subprocess.Popen([BINARY, "serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        match = re.search(r"listening on (http://[\d.]+:\d+)", process.stdout.readline() or "")
        if match:
            # Keep draining stdout so the node never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early")
    process.kill()
    raise RuntimeError(f"{name} did not start within 60 s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(name):
    admin = os.environ["MINIBAAS_TEST_DATABASE_URL"]
    return re.sub(r"/[^/?]+(\?|$)", f"/{name}\\1", admin, count=1)


def create_database(prefix):
    name = prefix + secrets.token_hex(5)
    subprocess.run(["psql", os.environ["MINIBAAS_TEST_DATABASE_URL"], "-qc", f'create database "{name}"'], check=True)
    return database_url(name)


def psql(url, query):
    return subprocess.run(["psql", url, "-qtAX", "-v", "ON_ERROR_STOP=1", "-c", query],
                          check=True, capture_output=True, text=True).stdout.strip()


class Redis:
    """A redis-server of our own (no persistence, like a cache-only deployment), restartable."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="minibaas-redis-")
        self.process = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class ClusterNode:
    def __init__(self, cluster, node_id, extra_env=None):
        self.cluster = cluster
        self.id = node_id
        self.base = None
        env = node_environment({
            "DATABASE_URL": cluster.control_plane,
            "REDIS_URL": cluster.redis.url,
            "MINIBAAS_MASTER_KEY": cluster.master_key,
            "MINIBAAS_ADMIN_TOKEN": cluster.token,
            "MINIBAAS_NODE_ID": node_id,
            "MINIBAAS_HEARTBEAT_MS": str(cluster.heartbeat_ms),
            "MINIBAAS_LEASE_TTL_MS": str(cluster.lease_ttl_ms),
            "MINIBAAS_REDIS_PREFIX": cluster.prefix,
            "MINIBAAS_LOG_LEVEL": os.environ.get("MINIBAAS_CLUSTER_LOG_LEVEL", "warning"),
        })
        env.update(extra_env or {})
        self.log = open(os.path.join(cluster.dir, f"{node_id}.log"), "a")
        self.process, self.base = start_node([], env, self.log, name=f"node {node_id} (see {self.log.name})")

    @property
    def alive(self):
        return self.process.poll() is None

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def pause(self):
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def terminate(self):
        if self.alive:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


class Cluster:
    def __init__(self, nodes=3, heartbeat_ms=250, lease_ttl_ms=1500, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="minibaas-cluster-")
        self.heartbeat_ms = heartbeat_ms
        self.lease_ttl_ms = lease_ttl_ms
        self.prefix = "t" + secrets.token_hex(4) + ":"
        self.master_key = secrets.token_hex(32)
        self.token = "cluster-admin-" + secrets.token_hex(12)
        self.control_plane = create_database("cp_")
        self.redis = Redis()
        self.nodes = []
        self.extra_env = extra_env or {}
        for index in range(nodes):
            self.add_node()
        self.wait_for_members(nodes)

    def add_node(self, extra_env=None):
        env = dict(self.extra_env)
        env.update(extra_env or {})
        node = ClusterNode(self, f"n{len(self.nodes) + 1}", env)
        self.nodes.append(node)
        return node

    def live_nodes(self):
        return [n for n in self.nodes if n.alive]

    def stop(self):
        for node in self.nodes:
            node.terminate()
        self.redis.stop()

    # --- HTTP ---------------------------------------------------------------------------------

    def request(self, method, url, token=None, body=None, headers=None, timeout=15):
        """(status, headers, parsed body); connection failures raise OSError."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                raw = response.read()
                return response.status, dict(response.headers), json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return error.code, dict(error.headers), parsed

    def admin(self, method, path, body=None, node=None):
        node = node or self.live_nodes()[0]
        return self.request(method, node.base + "/admin/v1" + path, self.token, body)

    def create_tenant(self, slug, node=None):
        status, _, created = self.admin("POST", "/tenants", {"slug": slug, "name": slug}, node)
        assert status == 201, created
        return created

    def view(self, node=None):
        status, _, body = self.admin("GET", "/cluster", node=node)
        assert status == 200, body
        return body

    def wait_for_members(self, count, node=None, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            view = self.view(node)
            if len(view["members"]) == count:
                return view
            time.sleep(0.1)
        raise AssertionError(f"expected {count} members, have {self.view(node)['members']}")

    def wait_for_placements(self, slugs, timeout=20):
        """The cluster view once every one of `slugs` has an owner."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            view = self.view()
            if all(slug in view["placements"] for slug in slugs):
                return view
            time.sleep(0.1)
        raise AssertionError(f"not all tenants were placed: {self.view()['placements']}")

    def tenant_get(self, node, slug, anon_key, path="/rest/v1/", timeout=15):
        return self.request("GET", f"{node.base}/t/{slug}{path}", headers={"apikey": anon_key}, timeout=timeout)


# --- write load and what it must show -----------------------------------------------------

def writes_database():
    url = create_database("cw_")
    psql(url, "create table writes (id bigserial primary key, tenant text not null, seq int not null, unique (tenant, seq))")
    return url


def tenants_with_writes(cluster, count, database):
    tenants = {}
    for index in range(count):
        slug = f"w{index:02d}{random.randrange(10**6):06d}"
        created = cluster.create_tenant(slug, cluster.nodes[index % len(cluster.nodes)])
        status, _, body = cluster.admin("POST", f"/tenants/{slug}/sources",
                                        {"name": "main", "kind": "postgres", "url": database})
        assert status == 201, body
        tenants[slug] = created
    return tenants


class WriteLoad:
    """Writers spreading inserts over every tenant and every node; each attempt is recorded with
    what the client saw: status, serving node, fencing token, send and answer times."""

    def __init__(self, cluster, tenants, workers=6):
        self.cluster = cluster
        self.tenants = tenants
        self.records = []
        self.lock = threading.Lock()
        self.sequence = itertools.count(1)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(index,), daemon=True) for index in range(workers)]
        for thread in self.threads:
            thread.start()

    def run(self, index):
        slugs = sorted(self.tenants)
        nodes = list(self.cluster.nodes)
        turn = index
        while not self.stopping.is_set():
            turn += 1
            slug = slugs[turn % len(slugs)]
            node = nodes[(turn // len(slugs) + index) % len(nodes)]
            seq = next(self.sequence)
            keys = self.tenants[slug]
            sent = time.monotonic()
            try:
                status, headers, _ = self.cluster.request(
                    "POST", f"{node.base}/t/{slug}/rest/v1/writes", keys["serviceKey"], {"tenant": slug, "seq": seq},
                    headers={"apikey": keys["anonKey"], "Prefer": "return=minimal"}, timeout=20)
            except OSError:
                status, headers = None, {}
            answered = time.monotonic()
            token = headers.get("x-minibaas-fencing-token")
            with self.lock:
                self.records.append({
                    "slug": slug, "seq": seq, "status": status, "entry": node.id, "node": headers.get("x-minibaas-node"),
                    "token": int(token) if token else None, "sent": sent, "answered": answered})
            if status != 201:
                time.sleep(0.02)

    def finish(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)
        return self.records


def check_fencing(records):
    """Per tenant: once a write was acknowledged under token T, no write sent after that is
    acknowledged under a smaller token — an owner that lost the tenant never serves it again —
    and every token belongs to exactly one node."""
    acked = [r for r in records if r["status"] == 201]
    owners = {}
    for record in acked:
        assert record["token"] is not None and record["node"], record
        assert owners.setdefault(record["token"], record["node"]) == record["node"], f"token {record['token']} served by two nodes"
    by_tenant = collections.defaultdict(list)
    for record in acked:
        by_tenant[record["slug"]].append(record)
    for slug, items in by_tenant.items():
        items.sort(key=lambda r: r["answered"])
        answered = [r["answered"] for r in items]
        running_max = list(itertools.accumulate((r["token"] for r in items), max))
        for record in items:
            earlier = bisect.bisect_left(answered, record["sent"])
            if earlier:
                assert record["token"] >= running_max[earlier - 1], (
                    f"{slug}: write {record['seq']} served by {record['node']} under token {record['token']} after "
                    f"token {running_max[earlier - 1]} had been acknowledged")
    return len(acked)


def check_nothing_lost(records, database):
    rows = psql(database, "select tenant || ':' || seq from writes").split()
    stored = set(rows)
    acked = {f"{r['slug']}:{r['seq']}" for r in records if r["status"] == 201}
    lost = acked - stored
    assert not lost, f"{len(lost)} acknowledged writes are missing: {sorted(lost)[:10]}"
    return len(acked)
