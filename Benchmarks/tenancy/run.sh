#!/usr/bin/env bash
# Tenant density (issue 23, item 3): 10,000 registered tenants on one node, 1,000 of them active
# with a small uploaded model and 20 with a 100-table one — RSS per idle and per active tenant,
# first-request activation p50/p99, memory given back by passivation. Once on an embedded node
# (SQLite control plane, tables in SQLite files) and once on a cluster node (PostgreSQL control
# plane and hosted tables, Redis membership). Figures are against an empty node measured in the
# same run. Usage: Benchmarks/tenancy/run.sh [embedded|cluster|both]   (TENANTS, ACTIVE, WIDE, CYCLES)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
MODES=${1:-both}
TENANTS=${TENANTS:-10000}
ACTIVE=${ACTIVE:-1000}
WIDE=${WIDE:-20}
CYCLES=${CYCLES:-2}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
BIN=$(swift build -c release --show-bin-path)
ADMIN=density-admin-token-0123456789
# A cluster node seals secrets with a key every node shares.
MASTER_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
NODE_PID=
NODE_PORT=

start_node() { # data-dir, extra env...
  local dir=$1; shift
  NODE_PORT=$(free_port)
  env "$@" MINIBAAS_MASTER_KEY=$MASTER_KEY MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error MINIBAAS_TENANT_IDLE_MS=20000 \
    "$BIN/minibaas" serve --port "$NODE_PORT" --data-dir "$dir" >>"$dir.log" 2>&1 &
  NODE_PID=$!
  BACKGROUND_PIDS+=($NODE_PID)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$NODE_PORT/readyz" >/dev/null && return; sleep 0.2; done
  echo "node did not start; its log:" >&2; tail -20 "$dir.log" >&2; exit 1
}
stop_node() {
  kill -TERM "$NODE_PID" 2>/dev/null || true
  wait "$NODE_PID" 2>/dev/null || true
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

run_mode() { # embedded | cluster
  local mode=$1 env_vars=()
  if [ "$mode" = cluster ]; then
    psql "$MINIBAAS_TEST_DATABASE_URL" -qc "drop database if exists density" -c "create database density"
    local db="postgresql://postgres@127.0.0.1:$PGPORT/density?sslmode=disable"
    redis-cli -p "$REDISPORT" flushall >/dev/null
    env_vars=(DATABASE_URL="$db" REDIS_URL="redis://127.0.0.1:$REDISPORT" MINIBAAS_NODE_ID=density-1)
  fi
  log "$mode node: an empty node's RSS"
  local empty_dir="$SERVICES_DIR/$mode-empty"
  if [ "$mode" = cluster ]; then
    psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database density_empty"
    start_node "$empty_dir" DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/density_empty?sslmode=disable" \
      REDIS_URL="redis://127.0.0.1:$REDISPORT" MINIBAAS_REDIS_PREFIX=empty: MINIBAAS_NODE_ID=density-empty
  else
    start_node "$empty_dir"
  fi
  sleep 5
  local empty; empty=$(rss_mb "$NODE_PID")
  stop_node
  log "$mode node: registering $TENANTS tenants"
  local dir="$SERVICES_DIR/$mode"
  start_node "$dir" "${env_vars[@]}"
  python3 Benchmarks/tenancy/density.py register --url "http://127.0.0.1:$NODE_PORT" --admin "$ADMIN" --keys "$dir.keys.json" \
    --tenants "$TENANTS" --active "$ACTIVE" --wide "$WIDE"
  stop_node
  log "$mode node: restarted, measuring"
  start_node "$dir" "${env_vars[@]}"
  echo "== $mode node ($(nproc) cores), $TENANTS tenants =="
  python3 Benchmarks/tenancy/density.py measure --url "http://127.0.0.1:$NODE_PORT" --admin "$ADMIN" --keys "$dir.keys.json" \
    --pid "$NODE_PID" --tenants "$TENANTS" --active "$ACTIVE" --wide "$WIDE" --empty-rss "$empty" --cycles "$CYCLES"
  stop_node
}

case "$MODES" in
  embedded|cluster) run_mode "$MODES" ;;
  both) run_mode embedded; run_mode cluster ;;
  *) echo "usage: $0 [embedded|cluster|both]" >&2; exit 2 ;;
esac
