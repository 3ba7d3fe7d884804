#!/usr/bin/env bash
# Cluster benchmark: three release-built nodes, one Redis, the test PostgreSQL, all on loopback.
# Prints (1) time from kill -9 of a node to all of its tenants answering again, median and worst
# of N runs (default 10), with writes acknowledged and lost; (2) forwarding overhead: p50 latency
# through a node that does not own the tenant divided by p50 at the owner, measured in the same run.
# Runs with the node's default timings (heartbeat 1 s, lease 5 s) unless MINIBAAS_HEARTBEAT_MS /
# MINIBAAS_LEASE_TTL_MS are set. Usage: Benchmarks/cluster/run.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server wrk libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
export MINIBAAS_BIN="$(swift build -c release --show-bin-path)/minibaas"
python3 "$ROOT/Benchmarks/cluster/failover.py" "${1:-10}"
