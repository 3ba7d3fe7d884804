#!/usr/bin/env bash
# REST benchmark: the same two queries through mini-baas and through a hand-written Hummingbird +
# postgres-nio service, plus the raw postgres-nio query loop, all on one PostgreSQL in one run.
#   (a) GET /rest/v1/items?id=eq.N            by primary key, through mini-baas
#   (b) GET with a two-level embed             items -> parents -> groups, through mini-baas
#   (c) the same two through the hand-written service
#   (d) the raw query loop on postgres-nio alone
# Prints requests/s and p50/p99 for each and the ratios a/c and b/c. Usage: Benchmarks/rest/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-15}
CONNECTIONS=${CONNECTIONS:-32}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk

trap services_cleanup EXIT INT TERM
services_start

log "building release binaries"
swift build -c release --product minibaas >/dev/null
swift build -c release --product rest-baseline >/dev/null
BIN=$(swift build -c release --show-bin-path)

DB="postgresql://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database bench"
psql "$DB" -q -f Benchmarks/rest/setup.sql

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
BASE_PORT=$(free_port)
"$BIN/rest-baseline" --port "$BASE_PORT" --database "$DB" --connections 10 >"$SERVICES_DIR/baseline.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$MB_PORT/healthz" >/dev/null && curl -sf "http://127.0.0.1:$BASE_PORT/items?id=1" >/dev/null && break; sleep 0.2; done

KEY=$(curl -sf -X POST "http://127.0.0.1:$MB_PORT/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"slug":"bench","name":"Bench","limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":256,"maxQueued":4096}}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
curl -sf -X POST "http://127.0.0.1:$MB_PORT/admin/v1/tenants/bench/sources" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"name\":\"main\",\"kind\":\"postgres\",\"url\":\"$DB\",\"maxConnections\":10}" >/dev/null

run_wrk() { # label base-url path-template apikey
  local out
  out=$(PATH_TEMPLATE="$3" APIKEY="$4" ROWS=10000 wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s Benchmarks/rest/pk.lua "$2" 2>&1)
  local rps p50 p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  local errors
  errors=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  echo "$1 $rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}
to_ms() { python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)', v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }

log "warming up"
PATH_TEMPLATE="/t/bench/rest/v1/items?id=eq.%d" APIKEY="$KEY" wrk -t1 -c8 -d3s -s Benchmarks/rest/pk.lua "http://127.0.0.1:$MB_PORT" >/dev/null 2>&1 || true
PATH_TEMPLATE="/items?id=%d" wrk -t1 -c8 -d3s -s Benchmarks/rest/pk.lua "http://127.0.0.1:$BASE_PORT" >/dev/null 2>&1 || true

log "measuring ($SECONDS_EACH s each, $CONNECTIONS connections)"
A=$(run_wrk a "http://127.0.0.1:$MB_PORT" "/t/bench/rest/v1/items?id=eq.%d" "$KEY")
B=$(run_wrk b "http://127.0.0.1:$MB_PORT" "/t/bench/rest/v1/items?select=id,name,parents(id,name,groups(id,name))&id=eq.%d" "$KEY")
C1=$(run_wrk c-pk "http://127.0.0.1:$BASE_PORT" "/items?id=%d" "")
C2=$(run_wrk c-embed "http://127.0.0.1:$BASE_PORT" "/embed?id=%d" "")
D=$("$BIN/rest-baseline" --raw-loop --database "$DB" --seconds "$SECONDS_EACH" --concurrency "$CONNECTIONS" --connections 10)

python3 - "$A" "$B" "$C1" "$C2" "$D" <<'PY'
import sys
rows = [line.split() for line in sys.argv[1:]]
names = {"a": "(a) mini-baas, primary key", "b": "(b) mini-baas, two-level embed", "c-pk": "(c) hand-written, primary key",
         "c-embed": "(c) hand-written, two-level embed", "raw": "(d) raw postgres-nio loop"}
print(f"{'case':36} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
values = {}
for row in rows:
    label, rps, p50, p99 = row[0], float(row[1]), float(row[2]), float(row[3])
    errors = row[4] if len(row) > 4 else "-"
    values[label] = (rps, p50, p99)
    print(f"{names.get(label, label):36} {rps:10.1f} {p50:9.3f} {p99:9.3f} {errors:>8}")
a, b, cpk, cembed = values["a"], values["b"], values["c-pk"], values["c-embed"]
print()
print(f"a/c  throughput ratio: {a[0] / cpk[0]:.2f}   (target >= 0.9)")
print(f"a/c  p99 ratio:        {a[2] / cpk[2]:.2f}   (target <= 1.25)")
print(f"b/c  throughput ratio: {b[0] / cembed[0]:.2f}")
print(f"b/c  p99 ratio:        {b[2] / cembed[2]:.2f}")
PY
