#!/usr/bin/env bash
# Load benchmark of the API on this machine: a release build of iace-api on
# Postgres + pgvector (a fresh database), driven by wrk at 32 connections.
# Prints req/s and p50/p95/p99 for /healthz (the framework's ceiling),
# GET /v1/calls/{id} (an authenticated read) and POST /v1/customers (a write).
#
#   scripts/bench-api.sh [--duration 20s] [--connections 32] [--threads 2]
#
# Needs TEST_DATABASE_URL (eval "$(scripts/test-services.sh start)") and wrk
# (installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=20s
CONNECTIONS=32
THREADS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  if [[ "$(id -u)" -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "bench-api: wrk is missing (apt-get install wrk)" >&2; exit 1
  fi
fi
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
  eval "$(scripts/test-services.sh start)"
fi

cargo build --release -p iace-api
BIN=target/release/iace-api

DB="iace_bench_api"
ADMIN_URL="$TEST_DATABASE_URL"
BASE_URL="${ADMIN_URL%/*}"
PSQL="$(find /tmp/iace-test-services/venv -path '*pginstall/bin/psql' 2>/dev/null | head -n1)"
PSQL="${PSQL:-psql}"
"$PSQL" -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export IACE_DATABASE__URL="$BASE_URL/$DB"
export IACE_DATABASE__MAX_CONNECTIONS=32
export IACE_AUTH__JWT_SECRET="bench-secret-bench-secret-bench-secret-42"
export IACE_LOG__FILTER=warn
PORT=18080
export IACE_BIND="127.0.0.1:$PORT"

"$BIN" migrate
ORG_JSON="$("$BIN" org create --name "Bench" --owner-email "bench-$RANDOM@example.com" --owner-password "bench-password-1")"
KEY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["api_key"])' "$ORG_JSON")"

"$BIN" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; "$PSQL" -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done

# A call to read back (placed through the API on the simulated telephony).
CALL_ID="$(curl -fs -X POST "http://127.0.0.1:$PORT/v1/calls" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d '{"to":"+14155550100","from":"+14155550199"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

export BENCH_DIR="$PWD/scripts/bench"
export BENCH_TOKEN="$KEY"
run() { # name, lua, url
  local line
  line="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$2" "$3" | grep '^RESULT')"
  printf '%-28s %s\n' "$1" "${line#RESULT }"
}
echo "iace-api release build, Postgres, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
run "GET /healthz" "$BENCH_DIR/get.lua" "http://127.0.0.1:$PORT/healthz"
run "GET /v1/calls/{id}" "$BENCH_DIR/get.lua" "http://127.0.0.1:$PORT/v1/calls/$CALL_ID"
run "POST /v1/customers" "$BENCH_DIR/post_customer.lua" "http://127.0.0.1:$PORT/v1/customers"
