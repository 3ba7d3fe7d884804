#!/usr/bin/env bash
# Search benchmark (issue "Search", contract ../shared/contracts/search.md §7), one run, ratios:
#   typo queries over 100,000 generated products through {apiUrl}/search/v1 with 32 connections
#     vs the same queries as pg_trgm (`q <% name ORDER BY q <<-> name LIMIT 20`, GIN index) in a
#     raw postgres-nio loop with 32 connections                 target p50 and p99 <= 0.25x
#   the engine in process vs a brute-force scan of the same documents (same typo rules, same
#     totals checked)                                            target >= 20x
#   the node's RSS growth for the index                          target <= 60 MB per 100,000
#   the build of the index from the source                       target <= 10 s
#   freshness at 500 writes/s: REST write -> searchable p99      target <= 200 ms
#                              SQL write  -> searchable p99      target <= 1 s
#   vectors: 100,000 x 128-d clustered (seeded), HNSW recall@10 against the exact scan, and both
#     one's queries per second, in process                        target recall >= 0.95 at >= 10x
#     and memory <= 2.5x the raw float32 size
# Usage: Benchmarks/search/run.sh [seconds per run] (default 10); PRODUCTS=100000 CONNECTIONS=32.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-10}
PRODUCTS=${PRODUCTS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product search-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)

DB="postgresql://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database bench"
log "loading $PRODUCTS products"
"$BIN/search-bench" sql "$PRODUCTS" | psql "$DB" -q
psql "$DB" -qc "create extension pg_trgm; create index products_name_trgm on products using gin (name gin_trgm_ops); analyze products"
# The test server runs with synchronous_commit = off (speed): its WAL reaches logical decoding only
# at the WAL writer's next round (200 ms), which freshness would measure instead of mini-baas.
# Commits to this database flush at once, as on a production server.
psql "$DB" -qc "alter database bench set synchronous_commit = on"

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
NODE_PID=$!
BACKGROUND_PIDS+=($NODE_PID)
URL="http://127.0.0.1:$MB_PORT"
for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(curl -sf -X POST "$URL/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"slug":"bench","name":"Bench","limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":256,"maxQueued":4096}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
curl -sf -X POST "$URL/admin/v1/tenants/bench/sources" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"main\",\"kind\":\"postgres\",\"url\":\"$DB\",\"maxConnections\":10}" >/dev/null
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$NODE_PID/status"; }
# The tenant's tree is running (a first request starts it) before the RSS baseline is read.
curl -sf "$URL/t/bench/search/v1/indexes" -H "Authorization: Bearer $KEY" >/dev/null
BEFORE=$(rss_kb)

log "building the index"
BUILD=$(python3 - "$URL" "$KEY" <<'PY'
import json, sys, time, urllib.request
base, key = sys.argv[1], sys.argv[2]
def call(method, path, body=None):
    request = urllib.request.Request(base + "/t/bench/search/v1" + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))
started = time.time()
task = call("POST", "/indexes", {"uid": "products"})
while call("GET", f"/tasks/{task['taskUid']}")["status"] not in ("succeeded", "failed"):
    time.sleep(0.05)
build = time.time() - started
settings = call("PATCH", "/indexes/products/settings", {"searchableAttributes": ["name"], "filterableAttributes": ["category", "price"]})
while call("GET", f"/tasks/{settings['taskUid']}")["status"] not in ("succeeded", "failed"):
    time.sleep(0.05)
stats = call("GET", "/indexes/products/stats")
assert stats["numberOfDocuments"] > 0, stats
answer = call("POST", "/indexes/products/search", {"q": "laptpo"})
assert answer["hits"], answer
print(f"{build:.3f} {stats['numberOfDocuments']}")
PY
)
AFTER=$(rss_kb)

QUERIES="laptpo|wireles headphnes|stainles steel botle|blutooth speakr|gamng mouse|ergonomc chair|mechanicl keyboard|portabel charger|smartwach|coffe grinder|noise canceling|usb c cabel|led desk lamp|yoga mat|runing shoes|wterproof jacket"
to_ms() { python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)', v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }
log "searching through the node ($CONNECTIONS connections, $SECONDS_EACH s)"
QUERIES="$QUERIES" APIKEY="$KEY" SEARCH_PATH=/t/bench/search/v1/indexes/products/search wrk -t2 -c"$CONNECTIONS" -d2s -s Benchmarks/search/search.lua "$URL" >/dev/null
OUT=$(QUERIES="$QUERIES" APIKEY="$KEY" SEARCH_PATH=/t/bench/search/v1/indexes/products/search wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s Benchmarks/search/search.lua "$URL" 2>&1)
ERRORS=$(echo "$OUT" | awk '/Non-2xx/ {print $5}')
NODE_RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
NODE_P50=$(to_ms "$(echo "$OUT" | awk '$1 == "50%" {print $2}')")
NODE_P99=$(to_ms "$(echo "$OUT" | awk '$1 == "99%" {print $2}')")
log "the same queries as pg_trgm in a raw postgres-nio loop"
TRGM=$("$BIN/search-bench" trgm "$DB" "$SECONDS_EACH" "$CONNECTIONS")
log "the engine in process vs a brute-force scan"
ENGINE=$("$BIN/search-bench" engine "$PRODUCTS")
# Last of the database's measurements: its inserts would leave pg_trgm's GIN index a pending list.
log "freshness: 500 writes/s through REST, then through SQL"
FRESH=$("$BIN/search-bench" freshness "$URL/t/bench" "$KEY" "$DB" 500 5)
log "vectors: HNSW vs the exact scan (100,000 x 128)"
VECTORS=$("$BIN/search-bench" vectors "${VECTOR_COUNT:-100000}" 128)

python3 - "$BUILD" "$BEFORE" "$AFTER" "$NODE_RPS" "$NODE_P50" "$NODE_P99" "${ERRORS:-0}" "$TRGM" "$ENGINE" "$PRODUCTS" "$VECTORS" "$FRESH" <<'PY'
import json, sys
build, count = sys.argv[1].split()
before, after = int(sys.argv[2]), int(sys.argv[3])
rps, p50, p99, errors = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7] or 0)
trgm, engine, products = json.loads(sys.argv[8]), json.loads(sys.argv[9]), int(sys.argv[10])
print(f"node search:  {rps:8.0f} q/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  non-2xx {errors}")
print(f"pg_trgm loop: {trgm['qps']:8.0f} q/s  p50 {trgm['p50ms']:7.2f} ms  p99 {trgm['p99ms']:7.2f} ms")
print(f"ratio p50 {p50 / trgm['p50ms']:.3f}  p99 {p99 / trgm['p99ms']:.3f}  (target <= 0.25)   throughput {rps / trgm['qps']:.1f}x")
print(f"engine in process p50 {engine['indexP50ms']:.3f} ms p99 {engine['indexP99ms']:.3f} ms vs brute-force scan p50 {engine['scanP50ms']:.1f} ms:"
      f" {engine['scanMeanMs'] / engine['indexMeanMs']:.0f}x (target >= 20x); totals equal: {not engine['mismatches']}")
print(f"index memory: node RSS +{(after - before) / 1024:.1f} MB for {count} documents = {(after - before) / 1024 * 100000 / int(count):.1f} MB per 100,000"
      f" (target <= 60); in-process index {engine['rssMB']:.1f} MB")
print(f"build from the source: {float(build):.2f} s for {count} rows (target <= 10 s)")
fresh = json.loads(sys.argv[12])
print(f"freshness at {fresh['rate']} writes/s ({fresh['samples']} samples each): REST write p50 {fresh['restP50ms']:.0f} ms p99 {fresh['restP99ms']:.0f} ms"
      f" (target <= 200); SQL write p50 {fresh['sqlP50ms']:.0f} ms p99 {fresh['sqlP99ms']:.0f} ms (target <= 1000)")
vectors = json.loads(sys.argv[11])
print(f"vectors {vectors['vectors']} x {vectors['dimension']}: recall@10 {vectors['recallAt10']:.3f} (target >= 0.95) at {vectors['annQPS']:.0f} q/s"
      f" vs exact {vectors['exactQPS']:.0f} q/s = {vectors['annQPS'] / vectors['exactQPS']:.1f}x (target >= 10x);"
      f" memory {vectors['rssMB']:.1f} MB = {vectors['rssMB'] / vectors['rawMB']:.2f}x raw (target <= 2.5x); build {vectors['buildSeconds']:.1f} s")
PY
