#!/usr/bin/env bash
# GraphQL benchmark, on the REST benchmark's fixture (items -> parents -> groups, 10,000 items) and
# one node, the same reads through REST and through /graphql/v1 (POST, random $id):
#   pk      items by primary key                REST ?id=eq.N           vs  itemsByPk(id: $id)
#   embed   item -> parent -> group (to-one)     REST select=…parents(…groups(…))  vs  the same fields
#   tomany  parent + group + its first 10 items  REST select=…,items(…)&items.limit=10  vs  parentsByPk { … itemsCollection(first: 10) }
# Each case runs ROUNDS times (default 3), taking turns; prints every round, medians, and the
# ratios GraphQL/REST per round (targets: throughput >= 0.9, p99 <= 1.25). Then builds the service
# role's schema for 10,000 tables (target < 3 s). Usage: Benchmarks/graphql/run.sh [seconds per run]
# The read cache is off (CACHE_TTL_MS=0): both sides do their whole work on every request (with it
# on, both answer repeated reads from memory and the comparison measures the cache). items gets an
# index on parent_id: a page asks for one row more than it shows (hasNextPage), which without the
# index scans the whole table where REST's LIMIT stops early.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-10}
CONNECTIONS=${CONNECTIONS:-32}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product graphql-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)

DB="postgresql://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database bench"
psql "$DB" -q -f Benchmarks/rest/setup.sql
psql "$DB" -qc "create index on items(parent_id); analyze"

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
MINIBAAS_CACHE_TTL_MS=${CACHE_TTL_MS:-0} MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$MB_PORT/healthz" >/dev/null && break; sleep 0.2; done
KEY=$(curl -sf -X POST "http://127.0.0.1:$MB_PORT/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"slug":"bench","name":"Bench","limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":256,"maxQueued":4096}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
curl -sf -X POST "http://127.0.0.1:$MB_PORT/admin/v1/tenants/bench/sources" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"main\",\"kind\":\"postgres\",\"url\":\"$DB\",\"maxConnections\":10}" >/dev/null
URL="http://127.0.0.1:$MB_PORT"

REST_PK="/t/bench/rest/v1/items?id=eq.%d"
GQL_PK='{"query":"query($id: Int!) { itemsByPk(id: $id) { id name value parent_id } }","variables":{"id":%d}}'
REST_EMBED="/t/bench/rest/v1/items?select=id,name,parents(id,name,groups(id,name))&id=eq.%d"
GQL_EMBED='{"query":"query($id: Int!) { itemsByPk(id: $id) { id name parents { id name groups { id name } } } }","variables":{"id":%d}}'
REST_TOMANY="/t/bench/rest/v1/parents?select=id,name,groups(id,name),items(id,name)&items.limit=10&items.order=id&id=eq.%d"
GQL_TOMANY='{"query":"query($id: Int!) { parentsByPk(id: $id) { id name groups { id name } itemsCollection(first: 10) { edges { node { id name } } } } }","variables":{"id":%d}}'

# The two sides must answer the same rows before they are timed.
python3 - "$URL" "$KEY" <<'PY'
import json, sys, urllib.request
base, key = sys.argv[1], sys.argv[2]
def get(path):
    return json.load(urllib.request.urlopen(urllib.request.Request(base + path, headers={"apikey": key})))
def gql(query, id):
    body = json.dumps({"query": query, "variables": {"id": id}}).encode()
    request = urllib.request.Request(base + "/t/bench/graphql/v1", data=body, headers={"apikey": key, "Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(request))
    assert "errors" not in answer, answer
    return answer["data"]
rest = get("/t/bench/rest/v1/parents?select=id,name,groups(id,name),items(id,name)&items.limit=10&items.order=id&id=eq.7")[0]
graph = gql("query($id: Int!) { parentsByPk(id: $id) { id name groups { id name } itemsCollection(first: 10) { edges { node { id name } } } } }", 7)["parentsByPk"]
assert [i["id"] for i in rest["items"]] == [e["node"]["id"] for e in graph["itemsCollection"]["edges"]], (rest, graph)
assert rest["groups"] == graph["groups"]
PY

run_wrk() { # label kind(get|post) template rows
  local out
  if [ "$2" = get ]; then
    out=$(PATH_TEMPLATE="$3" APIKEY="$KEY" ROWS="$4" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s Benchmarks/rest/pk.lua "$URL" 2>&1)
  else
    out=$(BODY_TEMPLATE="$3" GRAPHQL_PATH=/t/bench/graphql/v1 APIKEY="$KEY" ROWS="$4" wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s Benchmarks/graphql/post.lua "$URL" 2>&1)
  fi
  local rps p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "$1 $rps $(to_ms "$p99") ${errors:-0}"
}
to_ms() { python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)', v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }

log "warming up"
run_wrk warm get "$REST_PK" 10000 >/dev/null; run_wrk warm post "$GQL_TOMANY" 1000 >/dev/null

ROUNDS=${ROUNDS:-3}
log "measuring ($ROUNDS rounds of $SECONDS_EACH s per case, $CONNECTIONS connections)"
RESULTS=()
for round in $(seq "$ROUNDS"); do
  RESULTS+=("$round $(run_wrk rest-pk get "$REST_PK" 10000)")
  RESULTS+=("$round $(run_wrk gql-pk post "$GQL_PK" 10000)")
  RESULTS+=("$round $(run_wrk rest-embed get "$REST_EMBED" 10000)")
  RESULTS+=("$round $(run_wrk gql-embed post "$GQL_EMBED" 10000)")
  RESULTS+=("$round $(run_wrk rest-tomany get "$REST_TOMANY" 1000)")
  RESULTS+=("$round $(run_wrk gql-tomany post "$GQL_TOMANY" 1000)")
done
SCHEMA=$("$BIN/graphql-bench" 10000)

python3 - "$SCHEMA" "${RESULTS[@]}" <<'PY'
import statistics, sys
schema = sys.argv[1]
rounds = {}
for line in sys.argv[2:]:
    parts = line.split()
    rounds.setdefault(parts[1], []).append((int(parts[0]), float(parts[2]), float(parts[3]), int(parts[4] or 0)))
for label, runs in rounds.items():
    for run in runs:
        print(f"round {run[0]}  {label:12} {run[1]:10.1f} req/s  p99 {run[2]:7.3f} ms  non-2xx {run[3]}")
print()
for case in ["pk", "embed", "tomany"]:
    rest, gql = rounds["rest-" + case], rounds["gql-" + case]
    throughput = [g[1] / r[1] for g, r in zip(gql, rest)]
    p99 = [g[2] / r[2] for g, r in zip(gql, rest)]
    print(f"{case:7} GraphQL/REST throughput {statistics.median(throughput):.2f} (target >= 0.90; rounds {' '.join(f'{x:.2f}' for x in throughput)})"
          f"   p99 {statistics.median(p99):.2f} (target <= 1.25)   medians {statistics.median(g[1] for g in gql):.0f} vs {statistics.median(r[1] for r in rest):.0f} req/s")
print(f"schema: {schema} (target < 3 s)")
PY
