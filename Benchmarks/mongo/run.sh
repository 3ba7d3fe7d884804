#!/usr/bin/env bash
# MongoDB sources benchmark, all in one run against one MongoDB wire server (mongoeco):
#   (a) GET …/rest/v1/items?_id=eq.<random ObjectId> through mini-baas, wrk with 4 connections,
#       the source's pool at 4 connections;
#   (c) the bare libmongoc loop (Benchmarks/mongo/Baseline): 4 threads on a pool of 4, the same ids.
#   Target: a/c throughput >= 0.75 and p50 gap <= 1 ms (contract ../shared/contracts/mongodb.md).
#   Registration of a database of 50 collections x 100 documents (100 sampled each): target < 5 s.
# The two read cases take turns for ROUNDS rounds (default 3); medians and ratios are printed.
# Usage: Benchmarks/mongo/run.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-10}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk libmongoc-dev libpq-dev libsqlite3-dev libhiredis-dev libcrypt-dev libvips-dev liburing-dev

trap services_cleanup EXIT INT TERM
services_start
mongo_start "$ROOT"

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product mongo-baseline >/dev/null
BIN=$(swift build -c release --show-bin-path)

# mongoeco's inserts slow down as a collection grows (10,000 documents take minutes), so the read
# case runs over 2,000 documents; its finds by _id stay at ~0.6 ms whatever the size.
log "loading 2,000 documents, and 50 collections x 100 documents"
IDS="$SERVICES_DIR/ids.txt"
"$MONGO_VENV/bin/python" - "$MINIBAAS_TEST_MONGO_URL" "$IDS" <<'PY'
import datetime, sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1], socketTimeoutMS=600_000)
items = client.bench.items
ids = []
for start in range(0, 2_000, 250):
    ids += items.insert_many([{"name": f"item {n}", "value": n * 7 % 1000, "tags": ["a", "b"], "at": datetime.datetime(2026, 1, 1),
                               "meta": {"n": n}} for n in range(start, start + 250)]).inserted_ids
open(sys.argv[2], "w").write("\n".join(str(i) for i in ids))
wide = client.wide
for c in range(50):
    wide[f"c{c:02}"].insert_many([{"name": f"d{n}", "n": n, "f": n / 3, "ok": n % 2 == 0, "at": datetime.datetime(2026, 1, 1),
                                  "sub": {"x": n}, "list": [n, n + 1]} for n in range(100)])
PY

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
env -u DATABASE_URL MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error \
  "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$MB_PORT/healthz" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$MB_PORT/healthz" >/dev/null || { cat "$SERVICES_DIR/node.log"; exit 1; }
admin() { curl -sS --fail-with-body -X "$1" "http://127.0.0.1:$MB_PORT/admin/v1/$2" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$3"; }
LIMITS='"limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":256,"maxQueued":4096}'
KEY=$(admin POST tenants "{\"slug\":\"mongo\",\"name\":\"Mongo\",$LIMITS}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
admin POST tenants/mongo/sources "{\"name\":\"default\",\"kind\":\"mongodb\",\"url\":\"$MINIBAAS_TEST_MONGO_URL\",\"database\":\"bench\",\"maxConnections\":4}" >/dev/null
admin POST tenants "{\"slug\":\"wide\",\"name\":\"Wide\"}" >/dev/null
REGISTER=$(python3 - "http://127.0.0.1:$MB_PORT" "$ADMIN" "$MINIBAAS_TEST_MONGO_URL" <<'PY'
import json, sys, time, urllib.request
base, token, url = sys.argv[1:4]
request = urllib.request.Request(f"{base}/admin/v1/tenants/wide/sources", method="POST", data=json.dumps(
    {"name": "default", "kind": "mongodb", "url": url, "database": "wide", "sampleSize": 100}).encode())
request.add_header("Authorization", f"Bearer {token}")
request.add_header("Content-Type", "application/json")
started = time.time()
answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
print(f"{time.time() - started:.2f} {len(answer['entities'])}")
PY
)

MB="http://127.0.0.1:$MB_PORT"
FIRST=$(head -1 "$IDS")
curl -sf "$MB/t/mongo/rest/v1/items?_id=eq.$FIRST" -H "apikey: $KEY" -H "Authorization: Bearer $KEY" | grep -q "$FIRST"

to_ms() { python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)', v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }
node_case() {
  local out rps p50 p99 errors
  out=$(PATH_TEMPLATE="/t/mongo/rest/v1/items?_id=eq.%s" APIKEY="$KEY" IDS_FILE="$IDS" wrk -t2 -c4 -d"${SECONDS_EACH}s" --latency -s Benchmarks/mongo/ids.lua "$MB" 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "node $rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}
base_case() { echo "base $("$BIN/mongo-baseline" "$MINIBAAS_TEST_MONGO_URL" bench items "$IDS" 4 "$SECONDS_EACH") 0"; }

log "warming up"
PATH_TEMPLATE="/t/mongo/rest/v1/items?_id=eq.%s" APIKEY="$KEY" IDS_FILE="$IDS" wrk -t1 -c4 -d3s -s Benchmarks/mongo/ids.lua "$MB" >/dev/null 2>&1 || true
ROUNDS=${ROUNDS:-3}
log "measuring ($ROUNDS rounds of $SECONDS_EACH s per case)"
RESULTS=()
for round in $(seq "$ROUNDS"); do
  RESULTS+=("$round $(node_case)")
  RESULTS+=("$round $(base_case)")
done

python3 - "$REGISTER" "${RESULTS[@]}" <<'PY'
import statistics, sys
seconds, entities = sys.argv[1].split()
rounds = {}
for line in sys.argv[2:]:
    parts = line.split()
    rounds.setdefault(parts[1], []).append((int(parts[0]), float(parts[2]), float(parts[3]), float(parts[4]), int(parts[5])))
names = {"node": "(a) mini-baas GET by _id, wrk -c 4", "base": "(c) bare libmongoc loop, 4 threads"}
for label in ("node", "base"):
    for run in rounds[label]:
        print(f"round {run[0]}  {label:5} {run[1]:9.1f} req/s  p50 {run[2]:7.3f} ms  p99 {run[3]:7.3f} ms")
print()
print(f"{'medians':38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
for label in ("node", "base"):
    runs = rounds[label]
    median = [statistics.median(run[i] for run in runs) for i in (1, 2, 3)]
    print(f"{names[label]:38} {median[0]:9.1f} {median[1]:8.3f} {median[2]:8.3f} {sum(r[4] for r in runs):>8}")
ratios = [a[1] / b[1] for a, b in zip(rounds["node"], rounds["base"])]
gaps = [a[2] - b[2] for a, b in zip(rounds["node"], rounds["base"])]
print()
print(f"a/c throughput ratio {statistics.median(ratios):.2f} (target >= 0.75)   per round: {' '.join(f'{r:.2f}' for r in ratios)}")
print(f"p50 gap {statistics.median(gaps):.3f} ms (target <= 1 ms)   per round: {' '.join(f'{g:.3f}' for g in gaps)}")
print(f"registering {entities} collections x 100 samples: {float(seconds):.2f} s (target < 5 s)")
PY
