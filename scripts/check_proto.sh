#!/usr/bin/env bash
# buf lint, then buf breaking against the previous commit's proto/ (FILE rules, buf.yaml).
#
#   scripts/check_proto.sh            compare with HEAD~1
#   scripts/check_proto.sh REF        compare with another git ref (e.g. origin/main)
#
# A shallow clone is deepened by one commit when it can be; with no previous commit (a first
# commit, or a shallow clone that cannot be deepened) or no proto/ in it, the breaking check is
# skipped with a notice rather than failed: there is nothing to break.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
"$REPO/scripts/dev" setup
BUF=.venv/bin/buf
against=${1:-HEAD~1}

echo "== buf lint"
"$BUF" lint

echo "== buf breaking against $against"
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = "true" ]; then
    git fetch --quiet --deepen=1 2>/dev/null || true
  fi
fi
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "skipped: $against does not exist here (first commit or shallow clone)"
  exit 0
fi
if [ -z "$(git ls-tree -d --name-only "$against" proto)" ]; then
  echo "skipped: $against has no proto/"
  exit 0
fi
# buf reads the ref from the local repository; `subdir` matches buf.yaml's module path layout.
"$BUF" breaking --against ".git#ref=$(git rev-parse "$against")"
echo "no breaking changes"
