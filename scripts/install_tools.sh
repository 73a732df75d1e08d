#!/usr/bin/env bash
# Install the pinned Go tools the client and deploy checks use, into GOBIN (default
# $(go env GOPATH)/bin): protoc-gen-go, protoc-gen-go-grpc and grpc-health-probe.
# Each is reinstalled only when the binary there is not the pinned version. Run it before pytest
# in CI: tests/deploy/test_healthcheck.py needs grpc-health-probe and fails without it (CI=true).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/tools.sh
. "$REPO/scripts/lib/tools.sh"
ensure_go_tools
echo "go tools ready in $(gobin): $(cd "$(gobin)" && ls protoc-gen-go protoc-gen-go-grpc grpc-health-probe | tr '\n' ' ')"
