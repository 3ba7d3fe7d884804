#!/usr/bin/env bash
# Object storage benchmark, all in one run, medians of ROUNDS rounds (default 3):
#   P1 GET of a 256 MiB object        vs nginx sendfile of the same file on the same disk
#   P2 PUT of 256 MiB (fsynced)       vs nginx DAV PUT (not fsynced), and dd conv=fsync
#   P3 GET of 4 KiB objects (wrk, 1,000 keys) vs nginx static
#   P4 render p50, 2000x1333 JPEG -> 500x500 WebP, vs the same libvips call in process,
#      and render throughput vs `vips thumbnail` run per image
#   P5 io_uring vs POSIX for P1-P3 (two nodes, MINIBAAS_STORAGE_IO=uring and posix)
#   P6 node RSS growth with 4 x 256 MiB transfers in flight (downloads, then uploads)
# Usage: Benchmarks/storage/run.sh [seconds per wrk run]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:-10}
ROUNDS=${ROUNDS:-3}
. "$ROOT/scripts/lib/services.sh"
ensure_packages nginx-light wrk curl libvips-dev libvips-tools liburing-dev libpq-dev libsqlite3-dev libhiredis-dev libcrypt-dev libmongoc-dev

WORK=$(mktemp -d /tmp/minibaas-storage-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

log "building release binaries"
swift build -c release "${RELEASE_SWIFT_FLAGS[@]}" --product minibaas >/dev/null
BIN=$(swift build -c release --show-bin-path)
gcc -O2 Benchmarks/storage/render_baseline.c -o "$WORK/render-baseline" $(pkg-config --cflags --libs vips)

log "making the files"
mkdir -p "$WORK/www/small" "$WORK/dav" "$WORK/davtmp"
# nginx workers drop to an unprivileged user: let them write the PUT directories.
chmod 777 "$WORK/dav" "$WORK/davtmp"
head -c $((256 << 20)) /dev/urandom >"$WORK/www/big.bin"
for i in $(seq 0 999); do head -c 4096 /dev/urandom >"$WORK/www/small/$i.bin"; done
vips gaussnoise "$WORK/noise.v" 2000 1333 --mean 128 --sigma 40
vips copy "$WORK/noise.v" "$WORK/photo.jpg[Q=90]"

NGINX_PORT=$(free_port)
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on;
  client_body_temp_path $WORK/davtmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    location /dav/ { alias $WORK/dav/; dav_methods PUT; create_full_put_path on; client_max_body_size 0; client_body_buffer_size 1m; }
  }
}
CONF
nginx -c "$WORK/nginx.conf"
NGINX="http://127.0.0.1:$NGINX_PORT"

ADMIN=storage-bench-admin-token-0123456789
declare -A NODE_URL NODE_PID KEY
start_node() { # io
  local port; port=$(free_port)
  env -u DATABASE_URL -u REDIS_URL MINIBAAS_ADMIN_TOKEN=$ADMIN MINIBAAS_LOG_LEVEL=error MINIBAAS_STORAGE_IO="$1" \
    MINIBAAS_STORAGE_DIR="$WORK/storage-$1" "$BIN/minibaas" serve --port "$port" --data-dir "$WORK/node-$1" >"$WORK/node-$1.log" 2>&1 &
  NODE_PID[$1]=$!
  PIDS+=($!)
  NODE_URL[$1]="http://127.0.0.1:$port"
  for _ in $(seq 300); do curl -sf "${NODE_URL[$1]}/healthz" >/dev/null && break; sleep 0.2; done
  local limits='"limits":{"requestsPerSecond":1000000,"burst":1000000,"maxConcurrent":512,"maxQueued":4096,"storage":{"maxBytes":17179869184,"maxObjectBytes":1073741824,"maxBuckets":10}}'
  KEY[$1]=$(curl -sf -X POST "${NODE_URL[$1]}/admin/v1/tenants" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"slug\":\"bench\",\"name\":\"Bench\",$limits}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["serviceKey"])')
  curl -sf -X POST "${NODE_URL[$1]}/t/bench/storage/v1/bucket" -H "apikey: ${KEY[$1]}" -H "Authorization: Bearer ${KEY[$1]}" \
    -H 'Content-Type: application/json' -d '{"id":"b","public":true}' >/dev/null
  put "$1" big.bin "$WORK/www/big.bin" >/dev/null
  seq 0 999 | xargs -P 8 -I{} curl -sf -X POST "${NODE_URL[$1]}/t/bench/storage/v1/object/b/small/{}.bin" -H "apikey: ${KEY[$1]}" \
    -H "Authorization: Bearer ${KEY[$1]}" -H 'Content-Type: application/octet-stream' --data-binary "@$WORK/www/small/{}.bin" -o /dev/null
  put "$1" photo.jpg "$WORK/photo.jpg" >/dev/null
}
put() { # io name file -> bytes/s
  curl -sf -X POST "${NODE_URL[$1]}/t/bench/storage/v1/object/b/$2" -H "apikey: ${KEY[$1]}" -H "Authorization: Bearer ${KEY[$1]}" \
    -H 'x-upsert: true' -H 'Content-Type: application/octet-stream' -T "$3" -o /dev/null -w '%{speed_upload}'
}
get_speed() { curl -sf "$1" -o /dev/null -w '%{speed_download}'; }
wrk_rps() { # url-base path-template
  PATH_TEMPLATE="$2" KEYS=1000 wrk -t2 -c32 -d"${SECONDS_EACH}s" -s Benchmarks/storage/small.lua "$1" 2>&1 | awk '/Requests\/sec/ {print $2}'
}

log "starting a node per I/O path (uring, posix) and loading 256 MiB + 1,000 x 4 KiB + one photo into each"
start_node uring
start_node posix
grep -q "io_uring is refused" "$WORK/node-uring.log" && log "note: io_uring is refused here; the 'uring' node uses POSIX too"

RESULTS=()
log "measuring ($ROUNDS rounds)"
for round in $(seq "$ROUNDS"); do
  RESULTS+=("get-nginx $(get_speed "$NGINX/big.bin")")
  for io in uring posix; do RESULTS+=("get-$io $(get_speed "${NODE_URL[$io]}/t/bench/storage/v1/object/public/b/big.bin")"); done
  RESULTS+=("put-nginx $(curl -sf -T "$WORK/www/big.bin" "$NGINX/dav/put.bin" -o /dev/null -w '%{speed_upload}')")
  start=$(date +%s.%N); dd if="$WORK/www/big.bin" of="$WORK/dd.bin" bs=1M conv=fsync status=none; end=$(date +%s.%N)
  RESULTS+=("put-dd $(python3 -c "print($((256 << 20)) / ($end - $start))")")
  for io in uring posix; do RESULTS+=("put-$io $(put "$io" "put.bin" "$WORK/www/big.bin")"); done
  RESULTS+=("small-nginx $(wrk_rps "$NGINX" "/small/%d.bin")")
  for io in uring posix; do RESULTS+=("small-$io $(wrk_rps "${NODE_URL[$io]}" "/t/bench/storage/v1/object/public/b/small/%d.bin")"); done
  # Renders: a different width each time, so none is served from the variant cache.
  times=()
  for width in $(seq $((400 + round * 40)) $((400 + round * 40 + 29))); do
    times+=("$(curl -sf -H 'Accept: image/webp' "${NODE_URL[posix]}/t/bench/storage/v1/render/image/public/b/photo.jpg?width=$width&height=500" -o /dev/null -w '%{time_total}')")
  done
  RESULTS+=("render-node $(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] * 1000}')")
  RESULTS+=("render-inprocess $("$WORK/render-baseline" "$WORK/photo.jpg" 30)")
  start=$(date +%s.%N)
  for i in $(seq 10); do vips thumbnail "$WORK/photo.jpg" "$WORK/thumb-$i.webp[Q=80]" 500 --height 500 --crop centre; done
  end=$(date +%s.%N)
  RESULTS+=("render-cli-rate $(python3 -c "print(10 / ($end - $start))")")
  start=$(date +%s.%N)
  seq $((300 + round * 40)) $((319 + round * 40)) | xargs -P 2 -I{} curl -sf -H 'Accept: image/webp' \
    "${NODE_URL[posix]}/t/bench/storage/v1/render/image/public/b/photo.jpg?width={}&height=500" -o /dev/null
  end=$(date +%s.%N)
  RESULTS+=("render-node-rate $(python3 -c "print(20 / ($end - $start))")")
done

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
peak_during() { # pid command... -> peak RSS growth in MiB while the command runs
  local pid=$1; shift
  local base; base=$(rss "$pid")
  "$@" & local job=$!
  local peak=$base
  while kill -0 "$job" 2>/dev/null; do
    local now; now=$(rss "$pid"); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.05
  done
  wait "$job"
  python3 -c "print(round(($peak - $base) / 1024, 1))"
}
four_downloads() {
  for i in 1 2 3 4; do curl -sf --limit-rate 64M "${NODE_URL[posix]}/t/bench/storage/v1/object/public/b/big.bin" -o /dev/null & done
  wait
}
four_uploads() {
  for i in 1 2 3 4; do
    curl -sf --limit-rate 64M -X POST "${NODE_URL[posix]}/t/bench/storage/v1/object/b/rss-$i.bin" -H "apikey: ${KEY[posix]}" \
      -H "Authorization: Bearer ${KEY[posix]}" -H 'x-upsert: true' -H 'Content-Type: application/octet-stream' -T "$WORK/www/big.bin" -o /dev/null &
  done
  wait
}
log "RSS with 4 x 256 MiB transfers in flight"
RSS_DOWN=$(peak_during "${NODE_PID[posix]}" four_downloads)
RSS_UP=$(peak_during "${NODE_PID[posix]}" four_uploads)

python3 - "$ROUNDS" "$RSS_DOWN" "$RSS_UP" "${RESULTS[@]}" <<'PY'
import statistics, sys
rounds, rss_down, rss_up = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
values = {}
for line in sys.argv[4:]:
    name, value = line.split()
    values.setdefault(name, []).append(float(value))
med = {k: statistics.median(v) for k, v in values.items()}
mib = lambda b: b / (1 << 20)
print(f"{'case':34} {'median':>12}   per round")
for name, unit, scale in [("get-nginx", "MiB/s", mib), ("get-uring", "MiB/s", mib), ("get-posix", "MiB/s", mib),
                          ("put-nginx", "MiB/s", mib), ("put-dd", "MiB/s", mib), ("put-uring", "MiB/s", mib), ("put-posix", "MiB/s", mib),
                          ("small-nginx", "req/s", float), ("small-uring", "req/s", float), ("small-posix", "req/s", float),
                          ("render-node", "ms p50", float), ("render-inprocess", "ms p50", float),
                          ("render-node-rate", "renders/s", float), ("render-cli-rate", "renders/s", float)]:
    print(f"{name + ' (' + unit + ')':34} {scale(med[name]):12.1f}   {' '.join(f'{scale(v):.1f}' for v in values[name])}")
print()
def ratio(a, b, target):
    # The median of the rounds' own ratios: each round measures both sides back to back, so the
    # disk's and the machine's drift between rounds does not enter a ratio.
    rounds = [x / y for x, y in zip(values[a], values[b])]
    print(f"{a}/{b}: {statistics.median(rounds):.2f}  (target {target})   per round: {' '.join(f'{r:.2f}' for r in rounds)}")
# The node's default I/O (MINIBAAS_STORAGE_IO=auto) is POSIX: the headline ratios are its.
ratio("get-posix", "get-nginx", ">= 0.8")
ratio("put-posix", "put-nginx", ">= 0.7; nginx does not fsync, the node does")
ratio("put-posix", "put-dd", "figure only: both fsync")
ratio("small-posix", "small-nginx", ">= 0.5")
ratio("render-node", "render-inprocess", "<= 1.3")
ratio("render-node-rate", "render-cli-rate", ">= 2")
for case in ["get", "put", "small"]:
    ratio(f"{case}-uring", f"{case}-posix", ">= 1.0 for auto to pick io_uring")
print(f"RSS growth, 4 x 256 MiB downloads in flight: {rss_down} MiB; uploads: {rss_up} MiB  (target < 40)")
PY
