# Private PostgreSQL, Redis (and, with mongo_start, MongoDB wire) servers for tests and benchmarks: free loopback ports, data in a temp
# dir, stopped by `services_stop` (callers trap it). Sourced by scripts/test and Benchmarks/*/run.sh.

log() { printf '==> %s\n' "$*"; }

# Installs the Debian packages named, if any is missing.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Release builds of benchmarks (mini-baas and its hand-written baselines alike) and of the node
# image: aggressive cross-module optimisation, so that generic library code (swift-nio,
# Hummingbird, our own modules) is specialised into its callers. Measured on a REST read: ~10-15 %
# less CPU per request, on both sides of every comparison.
RELEASE_SWIFT_FLAGS=(-Xswiftc -cross-module-optimization)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

services_start() {
  # libmongoc's counter files of processes that are gone: a new process given one of their pids
  # would warn on startup (see MongoLibrary.releaseCounterFile).
  for counters in /dev/shm/mongoc-*; do
    [ -e "$counters" ] || continue
    kill -0 "${counters##*-}" 2>/dev/null || rm -f "$counters"
  done
  SERVICES_DIR=$(mktemp -d /tmp/minibaas-services.XXXXXX)
  chmod 755 "$SERVICES_DIR"
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGDATA="$SERVICES_DIR/pg"
  PGPORT=$(free_port)
  REDISPORT=$(free_port)

  log "starting PostgreSQL on 127.0.0.1:$PGPORT"
  mkdir -p "$PGDATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PGDATA"
  as_postgres "'$PGBIN/initdb' -D '$PGDATA' -U postgres -A trust --no-sync -E UTF8" >"$SERVICES_DIR/initdb.log" 2>&1 \
    || { cat "$SERVICES_DIR/initdb.log"; return 1; }
  cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PGDATA'
wal_level = logical
max_replication_slots = 100
max_wal_senders = 40
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  # One role must give a password, so tests can see a wrong one refused.
  { echo "host all mb_password_user 127.0.0.1/32 scram-sha-256"; cat "$PGDATA/pg_hba.conf"; } >"$PGDATA/pg_hba.new"
  mv "$PGDATA/pg_hba.new" "$PGDATA/pg_hba.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PGDATA/pg_hba.conf"
  as_postgres "'$PGBIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w start" >/dev/null
  local psql=(psql -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -qtAX)
  # Newer Debian builds only let wal2json load when it is listed; older ones have no such setting.
  if [ "$("${psql[@]}" -c "select count(*) from pg_settings where name = 'output_plugin_libraries'")" = "1" ]; then
    "${psql[@]}" -c "alter system set output_plugin_libraries = 'pgoutput', 'test_decoding', 'wal2json'" >/dev/null
    "${psql[@]}" -c "select pg_reload_conf()" >/dev/null
  fi
  "${psql[@]}" -c "create role mb_password_user login superuser password 'right-password'" >/dev/null

  log "starting Redis on 127.0.0.1:$REDISPORT"
  redis-server --port "$REDISPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$SERVICES_DIR/redis.pid" --dir "$SERVICES_DIR" --logfile "$SERVICES_DIR/redis.log"

  export MINIBAAS_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
  export MINIBAAS_TEST_REDIS_URL="redis://127.0.0.1:$REDISPORT"
  export MINIBAAS_TEST_WORKDIR="$SERVICES_DIR"
}

# A MongoDB wire server (mongoeco, in memory) on a free loopback port: its own venv on Python 3.13
# (pyenv's, or a python3.13 on PATH), kept beside the checkout like the client venv.
MONGO_PACKAGES=(mongoeco==4.11.0 pymongo==4.20.1)
mongo_python() {
  local candidate
  # pyenv's shim answers to python3.13 even when it cannot run it: each candidate must run.
  for candidate in "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 "$(command -v python3.13 2>/dev/null)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
      && { echo "$candidate"; return 0; }
  done
  return 1
}

mongo_start() {
  local root=$1 python
  MONGO_VENV="$root/.venv-mongo"
  if [ ! -x "$MONGO_VENV/bin/python" ] || ! "$MONGO_VENV/bin/python" -c 'import mongoeco, pymongo' 2>/dev/null; then
    python=$(mongo_python) || { echo "mongoeco needs Python 3.13 (pyenv install 3.13, or python3.13 on PATH)" >&2; return 1; }
    log "creating the MongoDB test server's venv ($python)"
    "$python" -m venv "$MONGO_VENV"
    "$MONGO_VENV/bin/pip" install -q --disable-pip-version-check "${MONGO_PACKAGES[@]}"
  fi
  MONGOPORT=$(free_port)
  log "starting a MongoDB wire server (mongoeco) on 127.0.0.1:$MONGOPORT"
  "$MONGO_VENV/bin/python" "$root/scripts/lib/mongo_server.py" "$MONGOPORT" >"$SERVICES_DIR/mongo.log" 2>&1 &
  MONGOPID=$!
  local _
  for _ in $(seq 1 150); do
    grep -q '^ready' "$SERVICES_DIR/mongo.log" 2>/dev/null && break
    kill -0 "$MONGOPID" 2>/dev/null || { cat "$SERVICES_DIR/mongo.log"; return 1; }
    sleep 0.2
  done
  grep -q '^ready' "$SERVICES_DIR/mongo.log" || { cat "$SERVICES_DIR/mongo.log"; return 1; }
  export MINIBAAS_TEST_MONGO_URL="mongodb://127.0.0.1:$MONGOPORT"
  # Tests start servers of their own (one to stop mid-request) with the same interpreter.
  export MINIBAAS_TEST_MONGO_PYTHON="$MONGO_VENV/bin/python"
  export MINIBAAS_TEST_MONGO_SERVER="$root/scripts/lib/mongo_server.py"
}

# Background processes a script started (nodes, baselines): stopped before the services.
BACKGROUND_PIDS=()
services_cleanup() {
  local status=$?
  local pid
  for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  services_stop
  exit $status
}

services_stop() {
  [ -n "${SERVICES_DIR:-}" ] || return 0
  log "stopping test services"
  [ -f "$PGDATA/postmaster.pid" ] && as_postgres "'$PGBIN/pg_ctl' -D '$PGDATA' -m immediate -w stop" >/dev/null 2>&1 || true
  [ -f "$SERVICES_DIR/redis.pid" ] && kill "$(cat "$SERVICES_DIR/redis.pid")" 2>/dev/null || true
  [ -n "${MONGOPID:-}" ] && kill "$MONGOPID" 2>/dev/null || true
  rm -rf "$SERVICES_DIR"
}
