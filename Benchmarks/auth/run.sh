#!/usr/bin/env bash
# Sign-in throughput (issue 23, item 5): password grants of one confirmed user on an embedded node,
# one at a time (what one sign-in costs) and 8 at a time (throughput). A sign-in is one bcrypt
# verification (cost 10) on NIO's blocking pool, so the bound is cores / (one verification's time);
# the script prints the measured rate against that bound. The password throttle (10 per account per
# 5 minutes) is raised for the run (MINIBAAS_SIGNIN_ATTEMPTS). Usage: Benchmarks/auth/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-8}
. "$ROOT/scripts/lib/services.sh"
ensure_packages wrk libmongoc-dev postgresql redis-server
BACKGROUND_PIDS=()
WORK=$(mktemp -d)
cleanup() { for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
BIN=$(swift build -c release --show-bin-path)
ADMIN=auth-bench-admin-token-0123456789
PORT=$(free_port)
MINIBAAS_SIGNIN_ATTEMPTS=10000000,10000000 MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$PORT" --data-dir "$WORK/node" >"$WORK/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
KEYS=$(curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"slug":"auth","name":"Auth","limits":{"requestsPerSecond":100000,"burst":100000,"maxConcurrent":64}}')
ANON=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["anonKey"])')
SERVICE=$(echo "$KEYS" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
EMAIL=bench@example.com
PASSWORD=correct-horse-battery-staple
curl -sf -X POST "http://127.0.0.1:$PORT/t/auth/auth/v1/admin/users" -H "apikey: $SERVICE" -H "Authorization: Bearer $SERVICE" \
  -H 'Content-Type: application/json' -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"email_confirm\":true}" >/dev/null
curl -sf -X POST "http://127.0.0.1:$PORT/t/auth/auth/v1/token?grant_type=password" -H "apikey: $ANON" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | python3 -c 'import json,sys; assert json.load(sys.stdin)["access_token"]'

run() { # connections
  APIKEY=$ANON EMAIL=$EMAIL PASSWORD=$PASSWORD TOKEN_PATH="/t/auth/auth/v1/token?grant_type=password" \
    wrk -t1 -c"$1" -d"${SECONDS_EACH}s" --latency -s Benchmarks/auth/signin.lua "http://127.0.0.1:$PORT" 2>&1 |
    awk '/Requests\/sec/ {r=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2} /Non-2xx/ {e=$5} END {print r, p50, p99, e+0}'
}
log "one at a time"
ONE=$(run 1)
log "eight at a time"
EIGHT=$(run 8)
# The baseline, in the same run: libxcrypt's bcrypt (the library the node calls) verifying the same
# password at cost 10 in a loop, through Python's crypt module.
BCRYPT_MS=$(python3 -W ignore - <<'PY'
import time
try:
    import crypt
except ImportError:
    print(0)
    raise SystemExit
hashed = crypt.crypt("correct-horse-battery-staple", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
started, count = time.perf_counter(), 40
for _ in range(count):
    crypt.crypt("correct-horse-battery-staple", hashed)
print((time.perf_counter() - started) / count * 1000)
PY
)
python3 - "$ONE" "$EIGHT" "$(nproc)" "$BCRYPT_MS" <<'PY'
import re, sys
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
one, eight, cores = sys.argv[1].split(), sys.argv[2].split(), int(sys.argv[3])
single = ms(one[1])
print(f"one at a time:   {float(one[0]):7.1f} sign-ins/s  p50 {single:.1f} ms  p99 {ms(one[2]):.1f} ms  non-2xx {one[3]}")
print(f"eight at a time: {float(eight[0]):7.1f} sign-ins/s  p50 {ms(eight[1]):.1f} ms  p99 {ms(eight[2]):.1f} ms  non-2xx {eight[3]}")
bcrypt = float(sys.argv[4])
if bcrypt > 0:
    bound = cores * 1000 / bcrypt
    print(f"one bcrypt verification (libxcrypt, cost 10, same run): {bcrypt:.1f} ms; one sign-in costs {single / bcrypt:.2f}x that")
    print(f"bound (cores / one verification): {bound:.1f} sign-ins/s; eight at a time reaches {float(eight[0]) / bound:.2f} of it")
else:
    bound = cores * 1000 / single
    print(f"bound (cores / one sign-in's p50; Python's crypt module is missing): {bound:.1f}/s; eight at a time reaches {float(eight[0]) / bound:.2f} of it")
PY
