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
# the server, and exits non-zero if any suite failed.
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
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$server_pid" 2>/dev/null; then
      log "server did not stop on SIGTERM; killing it and its Postgres"
      kill -KILL "$server_pid" 2>/dev/null || true
      local postmaster
      postmaster=$(head -1 "$scratch/pg/postmaster.pid" 2>/dev/null || true)
      [ -n "$postmaster" ] && kill -TERM "$postmaster" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export PD_ADDR="127.0.0.1:$port"
PD_TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
export PD_TOKEN
log "starting partition-deps on $PD_ADDR (embedded Postgres in $scratch/pg, bearer tokens on)"
env -u DATABASE_URL PD_TOKENS="{\"$PD_TOKEN\": [\"*\"]}" .venv/bin/partition-deps serve --listen "$PD_ADDR" --data-dir "$scratch/pg" \
  --grace-seconds 2 >"$scratch/server.log" 2>&1 &
server_pid=$!

deadline=$(( $(date +%s) + 90 ))
until grpc-health-probe -addr="$PD_ADDR" -connect-timeout=1s -rpc-timeout=1s >/dev/null 2>&1; do
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
    echo "server did not become SERVING; its log:" >&2
    cat "$scratch/server.log" >&2
    exit 1
  fi
  sleep 0.3
done
log "server SERVING"

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
