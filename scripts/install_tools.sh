#!/usr/bin/env bash
# Install the pinned Go tools the client and deploy checks use, into GOBIN (default
# $(go env GOPATH)/bin): protoc-gen-go, protoc-gen-go-grpc, grpc-health-probe and helm.
# Each is reinstalled only when the binary there is not the pinned version. Run it before pytest
# in CI: tests/deploy needs grpc-health-probe and helm and fails without them (CI=true).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/tools.sh
. "$REPO/scripts/lib/tools.sh"
ensure_go_tools
ensure_helm
echo "go tools ready in $(gobin): $(cd "$(gobin)" && ls protoc-gen-go protoc-gen-go-grpc grpc-health-probe helm | tr '\n' ' ')"
