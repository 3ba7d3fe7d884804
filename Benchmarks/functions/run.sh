#!/usr/bin/env bash
# Edge functions benchmark, all in one run on one embedded node (release build):
#   H  hello-world function (verifyJwt, apikey) vs a REST GET by primary key on the same node, wrk
#      with 8 connections, 3 rounds taking turns: throughput >= 1.0x, p99 <= 1.25x
#   C  CPU-bound modules in WasmKit (a fresh store per run, as the node does) vs wasmtime-py:
#      fib(27) <= 3.5x, a 50M-iteration loop <= 6.5x; fuel metering's overhead <= 25 %
#   R  a calm tenant's hello-world p99 beside two tenants whose functions spin to their 1 s
#      deadline, vs alone: <= 1.1x
# Usage: Benchmarks/functions/run.sh [seconds per run]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-8}
. "$ROOT/scripts/lib/services.sh"
ensure_packages wrk libpq-dev libsqlite3-dev libhiredis-dev libcrypt-dev libvips-dev liburing-dev libmongoc-dev python3-venv

WORK=$(mktemp -d /tmp/minibaas-functions-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

PY="$ROOT/.venv-clients/bin/python"
if ! "$PY" -c 'import wasmtime' 2>/dev/null; then
  log "a venv with wasmtime-py"
  python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q wasmtime==51.0.0
  PY="$WORK/venv/bin/python"
fi

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product functions-bench >/dev/null
BIN=$(swift build -c release --show-bin-path)

# The modules, assembled from WAT by wasmtime-py.
"$PY" - "$WORK" <<'PY'
import sys, wasmtime
work = sys.argv[1]
hello = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 4096) "Content-Type: text/plain\\0a\\0ahello")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 4096)) (i32.store (i32.const 4) (i32.const 31))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"""
spin = '(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'
cpu = """(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "loop") (param $n i32) (result i32) (local $i i32) (local $acc i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.add (local.get $acc) (i32.xor (local.get $i) (i32.const 0x5bd1e995))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $acc)))"""
for name, wat in [("hello", hello), ("spin", spin), ("cpu", cpu)]:
    open(f"{work}/{name}.wasm", "wb").write(bytes(wasmtime.wat2wasm(wat)))
PY

ADMIN=bench-admin-token-0123456789
MB_PORT=$(free_port)
env -u DATABASE_URL MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error \
  "$BIN/minibaas" serve --port "$MB_PORT" --data-dir "$WORK/node" >"$WORK/node.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$MB_PORT/healthz" >/dev/null && break; sleep 0.2; done
MB="http://127.0.0.1:$MB_PORT"
admin() { curl -sS --fail-with-body -X "$1" "$MB/admin/v1/$2" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' -d "$3"; }
LIMITS='"limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":256,"maxQueued":4096,"functions":{"maxConcurrent":8,"maxQueued":4096}}'
key() { python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])'; }
KEY=$(admin POST tenants "{\"slug\":\"calm\",\"name\":\"Calm\",$LIMITS}" | key)
admin POST tenants/calm/sources '{"name":"default","kind":"schema","format":"sql","provision":true,"document":"create table items (id integer primary key, name text not null);"}' >/dev/null
python3 - "$MB/t/calm/rest/v1/items" "$KEY" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=json.dumps([{"id": i, "name": f"item {i}"} for i in range(1, 10001)]).encode(), method="POST")
for name, value in [("apikey", sys.argv[2]), ("Authorization", f"Bearer {sys.argv[2]}"), ("Content-Type", "application/json"), ("Prefer", "return=minimal")]:
    request.add_header(name, value)
urllib.request.urlopen(request, timeout=60).read()
PY
curl -sf -X PUT "$MB/admin/v1/tenants/calm/functions/hello" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/wasm' --data-binary @"$WORK/hello.wasm" >/dev/null
test "$(curl -sf "$MB/t/calm/functions/v1/hello" -H "apikey: $KEY" -H "Authorization: Bearer $KEY")" = hello
for slug in spina spinb; do
  admin POST tenants "{\"slug\":\"$slug\",\"name\":\"$slug\",\"limits\":{\"requestsPerSecond\":1000000,\"burst\":1000000,\"maxConcurrent\":256,\"maxQueued\":4096,\"functions\":{\"maxConcurrent\":2,\"maxQueued\":4096}}}" >/dev/null
  curl -sf -X PUT "$MB/admin/v1/tenants/$slug/functions/spin?verifyJwt=false&timeoutMs=1000" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/wasm' --data-binary @"$WORK/spin.wasm" >/dev/null
done

to_ms() { python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([\d.]+)(us|ms|s)', v); f={'us':0.001,'ms':1,'s':1000}[m.group(2)]; print(round(float(m.group(1))*f,3))" "$1"; }
measure() { # label path-template [connections]
  local out
  out=$(PATH_TEMPLATE="$2" APIKEY="$KEY" ROWS=10000 wrk -t2 -c"${3:-8}" -d"${SECONDS_EACH}s" --latency -s Benchmarks/rest/pk.lua "$MB" 2>&1)
  echo "$1 $(echo "$out" | awk '/Requests\/sec/ {print $2}') $(to_ms "$(echo "$out" | awk '$1 == "50%" {print $2}')") $(to_ms "$(echo "$out" | awk '$1 == "99%" {print $2}')") $(echo "$out" | awk '/Non-2xx/ {print $5}')"
}

log "warming up"
measure warm "/t/calm/functions/v1/hello?n=%d" >/dev/null
measure warm "/t/calm/rest/v1/items?id=eq.%d" >/dev/null
ROUNDS=${ROUNDS:-3}
log "H: hello-world vs REST GET by key ($ROUNDS rounds of $SECONDS_EACH s)"
RESULTS=()
for round in $(seq "$ROUNDS"); do
  RESULTS+=("$round $(measure fn "/t/calm/functions/v1/hello?n=%d")")
  RESULTS+=("$round $(measure rest "/t/calm/rest/v1/items?id=eq.%d")")
done

log "R: the calm tenant beside two spinning tenants"
ALONE=$(measure alone "/t/calm/functions/v1/hello?n=%d" 4)
for slug in spina spinb; do
  wrk -t1 -c4 -d"$((SECONDS_EACH + 4))s" "$MB/t/$slug/functions/v1/spin" >/dev/null 2>&1 &
  PIDS+=($!)
done
sleep 2
BESIDE=$(measure beside "/t/calm/functions/v1/hello?n=%d" 4)
wait "${PIDS[@]:1}" 2>/dev/null || true

log "C: CPU-bound modules, WasmKit vs wasmtime-py"
FIB_KIT=$("$BIN/functions-bench" cpu "$WORK/cpu.wasm" fib 27 5 fuel | cut -d' ' -f1)
FIB_KIT_NOFUEL=$("$BIN/functions-bench" cpu "$WORK/cpu.wasm" fib 27 5 nofuel | cut -d' ' -f1)
LOOP_KIT=$("$BIN/functions-bench" cpu "$WORK/cpu.wasm" loop 50000000 3 fuel | cut -d' ' -f1)
LOOP_KIT_NOFUEL=$("$BIN/functions-bench" cpu "$WORK/cpu.wasm" loop 50000000 3 nofuel | cut -d' ' -f1)
log "J: a warm JavaScript hello-world (QuickJS in WasmKit, through the node's runner)"
python3 "$ROOT/scripts/lib/fetch_quickjs.py" "$ROOT" >/dev/null
JS=$("$BIN/functions-bench" js 200)

WASMTIME=$("$PY" - "$WORK/cpu.wasm" <<'PY'
import statistics, sys, time, wasmtime
engine = wasmtime.Engine()
module = wasmtime.Module.from_file(engine, sys.argv[1])
def run(export, argument, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        store = wasmtime.Store(engine)
        instance = wasmtime.Instance(store, module, [])
        instance.exports(store)[export](store, argument)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
print(f"{run('fib', 27, 5):.2f} {run('loop', 50_000_000, 3):.2f}")
PY
)

echo "J JavaScript hello-world per call, ms: $JS (target: warm <= 10)"
python3 - "$ALONE" "$BESIDE" "$FIB_KIT" "$FIB_KIT_NOFUEL" "$LOOP_KIT" "$LOOP_KIT_NOFUEL" "$WASMTIME" "${RESULTS[@]}" <<'PY'
import statistics, sys
alone, beside, fib_kit, fib_nofuel, loop_kit, loop_nofuel, wasmtime = sys.argv[1:8]
rounds = {}
for line in sys.argv[8:]:
    parts = line.split()
    rounds.setdefault(parts[1], []).append((int(parts[0]), float(parts[2]), float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else "0"))
for label in ("fn", "rest"):
    for run in rounds[label]:
        print(f"round {run[0]}  {label:4} {run[1]:9.1f} req/s  p50 {run[2]:7.3f} ms  p99 {run[3]:7.3f} ms  non-2xx {run[4]}")
ratios = [a[1] / b[1] for a, b in zip(rounds["fn"], rounds["rest"])]
p99s = [a[3] / b[3] for a, b in zip(rounds["fn"], rounds["rest"])]
print(f"H hello-world / REST GET by key: throughput {statistics.median(ratios):.2f} (target >= 1.0; per round {' '.join(f'{r:.2f}' for r in ratios)}),"
      f" p99 {statistics.median(p99s):.2f} (target <= 1.25; per round {' '.join(f'{r:.2f}' for r in p99s)})")
wt_fib, wt_loop = map(float, wasmtime.split())
print(f"C fib(27): WasmKit {float(fib_kit):.1f} ms vs wasmtime-py {wt_fib:.1f} ms = {float(fib_kit) / wt_fib:.2f}x (target <= 3.5);"
      f" loop 50M: {float(loop_kit):.1f} vs {wt_loop:.1f} ms = {float(loop_kit) / wt_loop:.2f}x (target <= 6.5)")
print(f"  fuel overhead: fib {float(fib_kit) / float(fib_nofuel) - 1:+.0%}, loop {float(loop_kit) / float(loop_nofuel) - 1:+.0%} (target <= +25 %)")
a, b = alone.split(), beside.split()
# Each: label req/s p50 p99 [non-2xx]
print(f"R calm tenant p99 beside two spinning tenants {float(b[3]):.2f} ms vs alone {float(a[3]):.2f} ms: {float(b[3]) / float(a[3]):.2f}x (target <= 1.1;"
      f" p50 {float(b[2]):.2f} vs {float(a[2]):.2f} ms; req/s {float(b[1]):.0f} vs {float(a[1]):.0f})")
PY
