#!/usr/bin/env bash
# Noisy neighbours (issue 23, item 4): a calm tenant's primary-key GETs measured alone and beside
#   - a tenant flooded at 10x its rate limit (100 req/s limit, ~1,000 req/s offered: mostly 429s), and
#   - a tenant whose every call runs into statement_timeout (a function that sleeps 1 s under the
#     225 ms statement_timeout its 250 ms request deadline sets), 8 callers at once,
# all on one node and one PostgreSQL (each tenant with its own source and pool on the same
# database). Rounds alternate alone / beside; prints the calm tenant's ratios in the same run.
# Usage: Benchmarks/neighbours/run.sh [seconds per run]   (ROUNDS, default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-10}
ROUNDS=${ROUNDS:-3}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk libmongoc-dev
trap services_cleanup EXIT INT TERM
services_start

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
BIN=$(swift build -c release --show-bin-path)
DB="postgresql://postgres@127.0.0.1:$PGPORT/neighbours?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database neighbours"
psql "$DB" -q -f Benchmarks/rest/setup.sql
psql "$DB" -qc "create function sleepy() returns int language plpgsql volatile as \$\$ begin perform pg_sleep(1); return 1; end \$\$"

ADMIN=neighbours-admin-token-0123456789
PORT=$(free_port)
MINIBAAS_CACHE_TTL_MS=0 MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
tenant() { # slug limits-json -> service key
  local key
  key=$(curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"slug\":\"$1\",\"name\":\"$1\",\"limits\":$2}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
  curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants/$1/sources" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"name\":\"main\",\"kind\":\"postgres\",\"url\":\"$DB\",\"maxConnections\":8}" >/dev/null
  echo "$key"
}
CALM=$(tenant calm '{"requestsPerSecond":100000,"burst":100000,"maxConcurrent":64}')
FLOOD=$(tenant flood '{"requestsPerSecond":100,"burst":100,"maxConcurrent":64}')
# A 250 ms request deadline gives its statements a 225 ms statement_timeout: every call is cut by it.
SLOW=$(tenant slow '{"requestsPerSecond":100000,"burst":100000,"maxConcurrent":64,"requestTimeoutMs":250}')
URL="http://127.0.0.1:$PORT"

calm_run() {
  # Paced (8 connections, a request each every 10 ms: <= 800 req/s), so its latency shows waiting
  # behind the neighbours, not a saturated box.
  PATH_TEMPLATE="/t/calm/rest/v1/items?id=eq.%d" APIKEY="$CALM" DELAY_MS=10 wrk -t1 -c8 -d"${SECONDS_EACH}s" --latency -s Benchmarks/neighbours/paced.lua "$URL" 2>&1 |
    awk '/Requests\/sec/ {r=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2} /Non-2xx/ {e=$5} END {print r, p50, p99, e+0}'
}
neighbours_start() {
  PATH_TEMPLATE="/t/flood/rest/v1/items?id=eq.%d" APIKEY="$FLOOD" DELAY_MS=4 wrk -t1 -c4 -d"$((SECONDS_EACH + 4))s" -s Benchmarks/neighbours/paced.lua "$URL" >"$SERVICES_DIR/flood.out" 2>&1 &
  FLOOD_PID=$!
  PATH_TEMPLATE="/t/slow/rest/v1/rpc/sleepy" APIKEY="$SLOW" METHOD=POST BODY='{}' wrk -t1 -c8 -d"$((SECONDS_EACH + 4))s" -s Benchmarks/neighbours/paced.lua "$URL" >"$SERVICES_DIR/slow.out" 2>&1 &
  SLOW_PID=$!
  sleep 2
}
neighbours_wait() { wait "$FLOOD_PID" "$SLOW_PID" || true; }

log "warming up"
SECONDS_EACH=3 calm_run >/dev/null
RESULTS=()
for round in $(seq "$ROUNDS"); do
  RESULTS+=("$round alone $(calm_run)")
  neighbours_start
  RESULTS+=("$round beside $(calm_run)")
  neighbours_wait
  flood=$(awk '/Requests\/sec/ {print $2}' "$SERVICES_DIR/flood.out"); flood_non2xx=$(awk '/Non-2xx/ {print $5}' "$SERVICES_DIR/flood.out")
  slow=$(awk '/Requests\/sec/ {print $2}' "$SERVICES_DIR/slow.out"); slow_non2xx=$(awk '/Non-2xx/ {print $5}' "$SERVICES_DIR/slow.out")
  echo "round $round: flood offered ${flood} req/s (${flood_non2xx:-0} refused), slow ${slow} calls/s (${slow_non2xx:-0} timed out)"
done
python3 - "${RESULTS[@]}" <<'PY'
import re, statistics, sys
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
rows = {}
for line in sys.argv[1:]:
    rnd, case, rps, p50, p99, errors = line.split()
    rows.setdefault(case, []).append((int(rnd), float(rps), ms(p50), ms(p99), int(errors)))
for case in ("alone", "beside"):
    for r in rows[case]:
        print(f"round {r[0]} calm {case:7} {r[1]:9.1f} req/s  p50 {r[2]:7.3f} ms  p99 {r[3]:7.3f} ms  non-2xx {r[4]}")
p99 = [b[3] / a[3] for a, b in zip(rows["alone"], rows["beside"])]
rps = [b[1] / a[1] for a, b in zip(rows["alone"], rows["beside"])]
print(f"calm p99 beside / alone: {statistics.median(p99):.2f}  (target <= 1.10)  per round: {' '.join(f'{x:.2f}' for x in p99)}")
print(f"calm req/s beside / alone: {statistics.median(rps):.2f}  per round: {' '.join(f'{x:.2f}' for x in rps)}")
PY
