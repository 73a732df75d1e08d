#!/usr/bin/env bash
# Interop tests of the Go, TypeScript and Python clients against ONE live server.
#
#   scripts/client_tests.sh
#
# Installs what it needs (pinned Go tools, npm ci, the client venvs; each redone only when its
# inputs change), checks the client code statically, starts `partition-deps serve` with an
# embedded Postgres in a temp dir on a free port, with bearer-token auth on (a fresh token for
# this run, in PD_TOKEN), waits for health SERVING (grpc-health-probe), runs the three clients'
# tests with PD_ADDR and PD_TOKEN set (the Go client's twice: with this machine's Go and with
# the oldest its go.mod claims; the Python client's twice: with the newest grpcio and
# protobuf, and with the oldest ones its pyproject.toml claims; the Dagster converter's tests in
# a venv of their own: dagster is an optional extra, never a dependency of the service), stops
# the server, and exits non-zero if any suite failed. A second server, on an embedded Postgres
# of its own, speaks mutual TLS only (certificates made by tests/pki.py; PD_TLS_ADDR,
# PD_TLS_CA, PD_TLS_CERT, PD_TLS_KEY): the clients' TLS options are tested against it, and the
# script waits for it through its health-only plaintext listener.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh

DAGSTER_VERSION=1.13.29
PY_VENV=clients/python/.venv
PY_FLOOR_VENV=clients/python/.venv-floor
DAGSTER_VENV=clients/python/.venv-dagster

started=$(date +%s)
ensure_service_venv
ensure_go_tools
ensure_npm clients/typescript
ensure_venv "$PY_VENV" -e "clients/python[test]"
# "grpcio>=1.49.1" in the client's dependencies becomes "grpcio==1.49.1" here.
mapfile -t py_floors < <(grep -E '^dependencies = ' clients/python/pyproject.toml |
  grep -oE '"[a-z0-9-]+>=[0-9.]+' | tr -d '"' | sed 's/>=/==/')
ensure_venv "$PY_FLOOR_VENV" -e "clients/python[test]" "${py_floors[@]}"
ensure_venv "$DAGSTER_VENV" -e "clients/python[dagster,test,typecheck]" "dagster==$DAGSTER_VERSION"
(cd clients/go && go mod download)
# The oldest Go the module claims (its `go` line), as a toolchain from the Go module proxy.
go_floor=$(awk '$1 == "go" {print $2}' clients/go/go.mod)
GOTOOLCHAIN="go$go_floor" go version >/dev/null
log "tools ready in $(( $(date +%s) - started ))s"

failed=()
passed=()
suite() { # suite NAME COMMAND...: run one suite, remember its outcome, never stop the script
  local name=$1
  shift
  log "$name"
  if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}

# Static checks first: they need no server.
suite "go: gofmt + vet" bash -c 'cd clients/go && unformatted=$(gofmt -l .) \
  && { [ -z "$unformatted" ] || { echo "gofmt needed: $unformatted" >&2; false; }; } && go vet ./...'
suite "python: ruff + mypy --strict" bash -c "cd clients/python && ../../.venv/bin/ruff check . \
  && ../../.venv/bin/ruff format --check . && .venv-dagster/bin/mypy"

scratch=$(mktemp -d)
server_pid=""
tls_server_pid=""
# stop_one PID DATA_DIR: SIGTERM, then (after 30 s) SIGKILL it and its embedded Postgres.
stop_one() {
  local pid=$1 data_dir=$2
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "server $pid did not stop on SIGTERM; killing it and its Postgres"
      kill -KILL "$pid" 2>/dev/null || true
      local postmaster
      postmaster=$(head -1 "$data_dir/postmaster.pid" 2>/dev/null || true)
      [ -n "$postmaster" ] && kill -TERM "$postmaster" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
}
stop_server() {
  stop_one "$server_pid" "$scratch/pg"
  stop_one "$tls_server_pid" "$scratch/pg-tls"
  server_pid=""
  tls_server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
export PD_ADDR="127.0.0.1:$port"
PD_TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
export PD_TOKEN
log "starting partition-deps on $PD_ADDR (embedded Postgres in $scratch/pg, bearer tokens on)"
env -u DATABASE_URL PD_TOKENS="{\"$PD_TOKEN\": [\"*\"]}" .venv/bin/partition-deps serve --listen "$PD_ADDR" --data-dir "$scratch/pg" \
  --grace-seconds 2 >"$scratch/server.log" 2>&1 &
server_pid=$!

mkdir "$scratch/pki"
.venv/bin/python -c 'import sys; from pathlib import Path; from tests.pki import make_pki; make_pki(Path(sys.argv[1]))' "$scratch/pki"
export PD_TLS_ADDR="127.0.0.1:$(free_port)" PD_TLS_CA="$scratch/pki/ca.pem" \
  PD_TLS_CERT="$scratch/pki/client.pem" PD_TLS_KEY="$scratch/pki/client.key"
tls_health="127.0.0.1:$(free_port)"
log "starting partition-deps with mutual TLS on $PD_TLS_ADDR (health probes on $tls_health)"
env -u DATABASE_URL PD_TOKENS="{\"$PD_TOKEN\": [\"*\"]}" .venv/bin/partition-deps serve \
  --listen "$PD_TLS_ADDR" --health-listen "$tls_health" --data-dir "$scratch/pg-tls" \
  --tls-cert "$scratch/pki/server.pem" --tls-key "$scratch/pki/server.key" \
  --tls-client-ca "$scratch/pki/ca.pem" --grace-seconds 2 >"$scratch/server-tls.log" 2>&1 &
tls_server_pid=$!

# wait_serving ADDR PID LOG: until health at ADDR says SERVING (plaintext), or fail.
wait_serving() {
  local addr=$1 pid=$2 server_log=$3 deadline=$(( $(date +%s) + 90 ))
  until grpc-health-probe -addr="$addr" -connect-timeout=1s -rpc-timeout=1s >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      echo "server did not become SERVING; its log:" >&2
      cat "$server_log" >&2
      exit 1
    fi
    sleep 0.3
  done
}
wait_serving "$PD_ADDR" "$server_pid" "$scratch/server.log"
wait_serving "$tls_health" "$tls_server_pid" "$scratch/server-tls.log"
log "servers SERVING"

suite "go test" bash -c 'cd clients/go && go test -count=1 ./...'
suite "go test at its floor (go$go_floor)" bash -c \
  "cd clients/go && GOTOOLCHAIN=go$go_floor go test -count=1 ./..."
suite "typescript: npm test" bash -c 'cd clients/typescript && npm test --silent'
suite "python: pytest" "$PY_VENV/bin/python" -m pytest -p no:cacheprovider clients/python/tests \
  --ignore=clients/python/tests/test_dagster.py
suite "python at its floor (${py_floors[*]}): pytest" "$PY_FLOOR_VENV/bin/python" -m pytest \
  -p no:cacheprovider clients/python/tests --ignore=clients/python/tests/test_dagster.py
suite "python dagster converter: pytest" "$DAGSTER_VENV/bin/python" -m pytest -p no:cacheprovider \
  clients/python/tests/test_dagster.py

stop_server
log "client suites passed: ${passed[*]:-none}"
if [ "${#failed[@]}" -ne 0 ]; then
  log "client suites FAILED: ${failed[*]}"
  echo "--- server log (last 40 lines)" >&2
  tail -40 "$scratch/server.log" >&2 || true
  exit 1
fi
log "all client suites passed in $(( $(date +%s) - started ))s"
