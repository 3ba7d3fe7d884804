#!/usr/bin/env bash
# Realtime benchmark: a release-built node, the test PostgreSQL with wal2json, all on loopback.
# (1) one committed row fanned out to 1,000 WebSocket subscribers: p50/p99 from commit to
#     delivery, over 20 commits, read by a Swift client (FanoutClient: NIO, so the client's own
#     frame parsing does not dominate the figure); (2) sustained changes/s delivered to 100
#     subscribers (Python asyncio client, fanout.py). PYTHON_FANOUT=1 also runs (1) with the
#     Python client, for comparison.
# Target on this machine: p99 <= 100 ms at 1,000 subscribers. Usage: Benchmarks/realtime/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql postgresql-15-wal2json libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

VENV="$ROOT/.venv-clients"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q websockets; }
"$VENV/bin/python" -c 'import websockets' 2>/dev/null || "$VENV/bin/pip" install -q websockets

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product realtime-fanout >/dev/null
BIN=$(swift build -c release --show-bin-path)
ADMIN=bench-admin-token-0123456789
PORT=$(free_port)
MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
# The test server runs with synchronous_commit off, which holds WAL back for up to
# wal_writer_delay (200 ms) — and logical decoding sees only flushed WAL. Measure as deployed.
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "alter system set synchronous_commit = on" -c "select pg_reload_conf()" >/dev/null
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database rtbench"
DB="postgresql://postgres@127.0.0.1:$PGPORT/rtbench?sslmode=disable"
psql "$DB" -qc "create table ticks (id bigserial primary key, sent_at double precision not null, note text)"
"$VENV/bin/python" "$ROOT/Benchmarks/realtime/fanout.py" "http://127.0.0.1:$PORT" "$ADMIN" "$DB" setup > "$SERVICES_DIR/tenant.url"
"$BIN/realtime-fanout" --url "$(cat "$SERVICES_DIR/tenant.url")" --database "$DB" --subscribers 1000 --commits 20
"$VENV/bin/python" "$ROOT/Benchmarks/realtime/fanout.py" "http://127.0.0.1:$PORT" "$ADMIN" "$DB" "${PYTHON_FANOUT:+all}"
