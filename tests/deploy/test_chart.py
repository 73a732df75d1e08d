"""The Helm chart, rendered with `helm template` for each of its CI values files.

scripts/check_deploy.sh lints the chart and validates these manifests against the Kubernetes
schemas; this test checks what they must say: the probes go to the health-only plaintext
listener (the one the image's HEALTHCHECK uses, which answers whatever the main port's TLS),
secrets come from Secrets, and each mode renders its objects. helm is built from its Go module
by scripts/install_tools.sh; in CI (CI=true) a missing helm fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "partition-deps"
Manifest = dict[str, Any]


def find_helm() -> str | None:
    found = shutil.which("helm")
    if found:
        return found
    go = shutil.which("go")
    if go is None:
        return None
    gobin, gopath = subprocess.run(
        [go, "env", "GOBIN", "GOPATH"], capture_output=True, text=True, check=True
    ).stdout.split("\n")[:2]
    candidates = [Path(gobin) / "helm"] if gobin else []
    candidates += [Path(folder) / "bin" / "helm" for folder in gopath.split(os.pathsep) if folder]
    return next((str(path) for path in candidates if path.is_file()), None)


@pytest.fixture(scope="module")
def helm() -> str:
    found = find_helm()
    if found is None:
        reason = "helm not found on PATH or in GOPATH/bin; scripts/install_tools.sh builds it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def render(helm: str, values: str) -> list[Manifest]:
    run = subprocess.run(
        [helm, "template", "pd", str(CHART), "-f", str(CHART / "ci" / f"{values}-values.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return [document for document in yaml.safe_load_all(run.stdout) if document]


def the(manifests: list[Manifest], kind: str) -> Manifest:
    [found] = [manifest for manifest in manifests if manifest["kind"] == kind]
    return found


def partition_deps(pod: Manifest) -> Manifest:
    containers: list[Manifest] = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    [container] = [c for c in containers if c["name"] == "partition-deps"]
    return container


def env(container: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def check_probes_use_the_health_listener(container: Manifest) -> None:
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["health"] != ports["grpc"]
    assert env(container)["PD_HEALTH_LISTEN"] == f"0.0.0.0:{ports['health']}"
    for probe, service in (
        ("startupProbe", "readiness"),
        ("livenessProbe", "liveness"),
        ("readinessProbe", "readiness"),
    ):
        assert container[probe]["grpc"] == {"port": ports["health"], "service": service}


def test_the_deployment_values(helm: str) -> None:
    manifests = render(helm, "deployment")
    assert sorted(m["kind"] for m in manifests) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    deployment = the(manifests, "Deployment")
    pod = deployment["spec"]["template"]
    container = partition_deps(pod)
    check_probes_use_the_health_listener(container)
    variables = env(container)
    assert variables["DATABASE_URL"]["secretKeyRef"]["name"] == "partition-deps-database"
    assert variables["PD_TOKENS"]["secretKeyRef"]["name"] == "partition-deps-tokens"
    assert variables["PD_TLS_CLIENT_CA"] == "/etc/partition-deps/tls/ca.crt"  # mutual TLS on
    assert container["resources"]["limits"]["memory"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert variables["PD_METRICS_LISTEN"] == f"0.0.0.0:{annotations['prometheus.io/port']}"

    service = the(manifests, "Service")
    assert service["spec"]["clusterIP"] == "None"  # headless: clients balance over the pods
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["grpc"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert the(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    target = the(manifests, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert target["name"] == deployment["metadata"]["name"]


def test_the_sidecar_values(helm: str) -> None:
    manifests = render(helm, "sidecar")
    assert [m["kind"] for m in manifests] == ["Deployment"]
    pod = the(manifests, "Deployment")["spec"]["template"]
    container = partition_deps(pod)
    assert container in pod["spec"]["initContainers"]
    assert container["restartPolicy"] == "Always"  # a native sidecar
    check_probes_use_the_health_listener(container)
    [scheduler] = pod["spec"]["containers"]
    assert env(scheduler)["PD_ADDR"] == f"127.0.0.1:{container['ports'][0]['containerPort']}"
    assert "PD_TLS_CERT" not in env(container)
