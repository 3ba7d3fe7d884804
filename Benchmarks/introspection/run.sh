#!/usr/bin/env bash
# Introspection benchmark: registers a generated database of N tables (default 10,000), each with a
# foreign key to the one before, and prints how long mini-baas takes to connect, introspect and store
# it. Target: under 5 s for 10,000 tables. Usage: Benchmarks/introspection/run.sh [tables]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
TABLES=${1:-10000}
. "$ROOT/scripts/lib/services.sh"
ensure_packages postgresql redis-server libmongoc-dev

trap services_cleanup EXIT INT TERM
services_start

log "building release binary"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
BIN=$(swift build -c release --show-bin-path)

DB="postgresql://postgres@127.0.0.1:$PGPORT/wide?sslmode=disable"
psql "$MINIBAAS_TEST_DATABASE_URL" -qc "create database wide"
log "creating $TABLES tables"
# In batches of 500 per transaction: one transaction creating them all runs out of lock slots.
for ((from = 1; from <= TABLES; from += 500)); do
  to=$((from + 499 > TABLES ? TABLES : from + 499))
  psql "$DB" -q -v ON_ERROR_STOP=1 -c "
do \$\$
begin
  for i in $from..$to loop
    execute format('create table t%s (id int primary key, name text not null, prev_id int %s, created_at timestamptz default now())',
                   i, case when i > 1 then format('references t%s(id)', i - 1) else '' end);
    if i % 100 = 0 then execute format('create index on t%s (name)', i); end if;
  end loop;
end \$\$;"
done

ADMIN=bench-admin-token-0123456789
PORT=$(free_port)
MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error "$BIN/minibaas" serve --port "$PORT" --data-dir "$SERVICES_DIR/node" >"$SERVICES_DIR/node.log" 2>&1 &
BACKGROUND_PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"slug":"wide","name":"Wide"}' >/dev/null

log "registering (connect + introspect + store)"
START=$(date +%s.%N)
SUMMARY=$(curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants/wide/sources" -H "Authorization: Bearer $ADMIN" \
  -H 'Content-Type: application/json' -d "{\"name\":\"main\",\"kind\":\"postgres\",\"url\":\"$DB\"}")
END=$(date +%s.%N)
echo "$SUMMARY" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(f\"entities: {len(s['entities'])}, relations: {len(s['relations'])}\")"
python3 -c "print(f'introspection of $TABLES tables: {$END - $START:.2f} s (target < 5 s)')"
START=$(date +%s.%N)
curl -sf -X POST "http://127.0.0.1:$PORT/admin/v1/tenants/wide/sources/main/refresh" -H "Authorization: Bearer $ADMIN" >/dev/null
END=$(date +%s.%N)
python3 -c "print(f'refresh (schema reload): {$END - $START:.2f} s')"
