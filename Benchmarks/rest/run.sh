#!/usr/bin/env bash
# REST benchmark: the same two queries through mini-baas and through a hand-written Hummingbird +
# postgres-nio service, plus the raw postgres-nio query loop, all on one PostgreSQL in one run.
#   (a) GET /rest/v1/items?id=eq.N            by primary key, through mini-baas
#   (b) GET with a two-level embed             items -> parents -> groups, through mini-baas
#   (c) the same two through the hand-written service
#   (d) the raw query loop on postgres-nio alone
#   (c-prep) the hand-written service again with postgres-nio prepared statements — mini-baas
#   prepares its generated statements, and a user who knows postgres-nio well would too: the
#   baseline issue 23's targets are set against (>= 0.95x throughput, p99 <= 1.25x)
# Each case runs ROUNDS times (default 3), the cases taking turns; prints every round, the medians,
# and the ratios a/c and b/c per round and their medians. Usage: Benchmarks/rest/run.sh [seconds per run]
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
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product rest-baseline >/dev/null
BIN=$(swift build -c release --show-bin-path)

DB="postgresql://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database bench"
psql "$DB" -q -f Benchmarks/rest/setup.sql

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
# The read cache off (issue 23: the cache is not how the hot path is won; keys are random anyway).
MINIBAAS_CACHE_TTL_MS=0 MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
BASE_PORT=$(free_port)
"$BIN/rest-baseline" --port "$BASE_PORT" --database "$DB" --connections 10 >"$SERVICES_DIR/baseline.log" 2>&1 &
BACKGROUND_PIDS+=($!)
PREP_PORT=$(free_port)
"$BIN/rest-baseline" --port "$PREP_PORT" --database "$DB" --connections 10 --prepared >"$SERVICES_DIR/baseline-prepared.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PREP_PORT/items?id=1" >/dev/null && break; sleep 0.2; done
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

ROUNDS=${ROUNDS:-3}
log "measuring ($ROUNDS rounds of $SECONDS_EACH s per case, $CONNECTIONS connections)"
# The cases take turns, round after round: on a shared 2-core box the machine's state drifts
# over minutes, and a case measured only early or only late would be flattered or penalised.
RESULTS=()
for round in $(seq "$ROUNDS"); do
  RESULTS+=("$round $(run_wrk a "http://127.0.0.1:$MB_PORT" "/t/bench/rest/v1/items?id=eq.%d" "$KEY")")
  RESULTS+=("$round $(run_wrk c-pk "http://127.0.0.1:$BASE_PORT" "/items?id=%d" "")")
  RESULTS+=("$round $(run_wrk b "http://127.0.0.1:$MB_PORT" "/t/bench/rest/v1/items?select=id,name,parents(id,name,groups(id,name))&id=eq.%d" "$KEY")")
  RESULTS+=("$round $(run_wrk c-embed "http://127.0.0.1:$BASE_PORT" "/embed?id=%d" "")")
  RESULTS+=("$round $(run_wrk c-prep-pk "http://127.0.0.1:$PREP_PORT" "/items?id=%d" "")")
  RESULTS+=("$round $(run_wrk c-prep-embed "http://127.0.0.1:$PREP_PORT" "/embed?id=%d" "")")
done
D=$("$BIN/rest-baseline" --raw-loop --database "$DB" --seconds "$SECONDS_EACH" --concurrency "$CONNECTIONS" --connections 10)

python3 - "$D" "${RESULTS[@]}" <<'PY'
import statistics, sys
raw = sys.argv[1].split()
rounds = {}
for line in sys.argv[2:]:
    parts = line.split()
    rounds.setdefault(parts[1], []).append((int(parts[0]), float(parts[2]), float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else "0"))
names = {"a": "(a) mini-baas, primary key", "b": "(b) mini-baas, two-level embed", "c-pk": "(c) hand-written, primary key",
         "c-embed": "(c) hand-written, two-level embed", "c-prep-pk": "(c, prepared) primary key",
         "c-prep-embed": "(c, prepared) two-level embed"}
for label in ["a", "c-pk", "b", "c-embed", "c-prep-pk", "c-prep-embed"]:
    for run in rounds[label]:
        print(f"round {run[0]}  {label:8} {run[1]:10.1f} req/s  p50 {run[2]:7.3f} ms  p99 {run[3]:7.3f} ms")
print()
print("medians over the rounds:")
print(f"{'case':36} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'non-2xx':>8}")
median = {}
for label in ["a", "b", "c-pk", "c-embed", "c-prep-pk", "c-prep-embed"]:
    runs = rounds[label]
    median[label] = tuple(statistics.median(run[i] for run in runs) for i in (1, 2, 3))
    errors = sum(int(run[4]) for run in runs)
    print(f"{names[label]:36} {median[label][0]:10.1f} {median[label][1]:9.3f} {median[label][2]:9.3f} {errors:>8}")
print(f"{'(d) raw postgres-nio loop':36} {float(raw[1]):10.1f} {float(raw[2]):9.3f} {float(raw[3]):9.3f} {'-':>8}")
def ratios(x, c):
    return [xr[1] / cr[1] for xr, cr in zip(rounds[x], rounds[c])], [xr[3] / cr[3] for xr, cr in zip(rounds[x], rounds[c])]
print()
for x, c, label in [("a", "c-pk", "a/c"), ("b", "c-embed", "b/c"), ("a", "c-prep-pk", "a/c-prepared"), ("b", "c-prep-embed", "b/c-prepared")]:
    throughput, p99 = ratios(x, c)
    target = "   (target >= 0.95)" if label.endswith("prepared") else ""
    target99 = "   (target <= 1.25)" if label.endswith("prepared") else ""
    print(f"{label}  throughput ratio: {statistics.median(throughput):.2f}{target}   per round: {' '.join(f'{r:.2f}' for r in throughput)}")
    print(f"{label}  p99 ratio:        {statistics.median(p99):.2f}{target99}   per round: {' '.join(f'{r:.2f}' for r in p99)}")
print(f"a/d  throughput ratio: {median['a'][0] / float(raw[1]):.2f}   (target >= 0.75; the raw loop measured once, after the rounds)")
PY
