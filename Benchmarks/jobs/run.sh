#!/usr/bin/env bash
# Jobs benchmark, all in one run, on an embedded node (SQLite control plane):
#   P1 webhook deliveries per second to a local receiver vs a bare AsyncHTTPClient loop posting the
#      same signed bodies at the same concurrency to the same receiver (target >= 0.8x)
#   P2 commit -> delivery latency p50/p99 when idle (REST writes of one row at 20/s; target p99 <= 50 ms)
#   P3 the same for tenant B beside a 100,000-job backlog of tenant A (target: p99 up by <= 10 %)
# Usage: Benchmarks/jobs/run.sh   (JOBS_N=5000 deliveries for P1)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. "$ROOT/scripts/lib/services.sh"
ensure_packages libpq-dev libsqlite3-dev libhiredis-dev libcrypt-dev libvips-dev liburing-dev libmongoc-dev python3-venv

WORK=$(mktemp -d /tmp/minibaas-jobs-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product jobs-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)

RECEIVER_PORT=$(free_port)
"$BIN/jobs-bench" receiver "$RECEIVER_PORT" >"$WORK/receiver.log" 2>&1 &
PIDS+=($!)
TOKEN="bench-$(date +%s)"
MINIBAAS_ADMIN_TOKEN=$TOKEN MINIBAAS_LOG_LEVEL=error MINIBAAS_OUTBOUND_ALLOW_CIDRS=127.0.0.0/8 \
  "$BIN/minibaas" serve --port 0 --data-dir "$WORK/node" >"$WORK/node.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  BASE=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$WORK/node.log" | head -1 | sed 's/listening on //') || true
  [ -n "${BASE:-}" ] && break
  sleep 0.1
done
[ -n "${BASE:-}" ] || { cat "$WORK/node.log"; exit 1; }
PY=python3
[ -x "$ROOT/.venv-clients/bin/python" ] && PY="$ROOT/.venv-clients/bin/python"
"$PY" Benchmarks/jobs/bench.py "$BASE" "$TOKEN" "http://127.0.0.1:$RECEIVER_PORT" "$BIN/jobs-bench"
