"""The Dockerfile's HEALTHCHECK, run exactly as written against a live server.

No Docker engine runs here, so the test plays the container's part: it reads the HEALTHCHECK
instruction out of the Dockerfile, starts `partition-deps serve` with mutual TLS on its main port
and the image's health-only plaintext listener, on its own embedded Postgres, and runs the
command with the image's PD_HEALTH_PORT pointing at that listener. The probe is the binary that
`go install github.com/grpc-ecosystem/grpc-health-probe@...` builds (on PATH or in GOPATH/bin);
scripts/lib/tools.sh installs the pinned version. In CI (CI=true) a missing probe fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from partition_deps.store.database import EmbeddedPostgres
from tests.live import free_port, serve_command
from tests.pki import make_pki

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, arguments = pending.strip().partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    return result


def healthcheck_argv(dockerfile: Path) -> list[str]:
    """The argv Docker would run for the HEALTHCHECK (exec form, or shell form via /bin/sh -c)."""
    [arguments] = [args for keyword, args in instructions(dockerfile) if keyword == "HEALTHCHECK"]
    parsed = re.fullmatch(r"(?:--\S+\s+)*CMD\s+(.+)", arguments)  # options: --interval=10s ...
    assert parsed is not None, f"HEALTHCHECK without CMD: {arguments}"
    command = parsed.group(1).strip()
    if command.startswith("["):
        argv = json.loads(command)
        assert isinstance(argv, list)
        return [str(word) for word in argv]
    return ["/bin/sh", "-c", command]


def image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV of the final stage (only the simple KEY=VALUE forms this Dockerfile uses)."""
    env: dict[str, str] = {}
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            for pair in arguments.split():
                key, _, value = pair.partition("=")
                for name, known in env.items():
                    value = value.replace(f"${{{name}}}", known)
                env[key] = value
    return env


def find_probe() -> Path | None:
    found = shutil.which("grpc-health-probe")
    if found:
        return Path(found)
    go = shutil.which("go")
    if go is None:
        return None
    for variable in ("GOBIN", "GOPATH"):
        value = subprocess.run(
            [go, "env", variable], capture_output=True, text=True, check=True
        ).stdout.strip()
        for folder in value.split(os.pathsep) if value else []:
            candidate = Path(folder) / ("grpc-health-probe" if variable == "GOBIN" else "bin")
            if variable == "GOPATH":
                candidate = candidate / "grpc-health-probe"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


@pytest.fixture
def probe() -> Path:
    found = find_probe()
    if found is None:
        reason = (
            "grpc-health-probe not found on PATH or in GOPATH/bin; install it with "
            "`go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62` "
            "(scripts/install_tools.sh does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path / "pg")
    yield server
    server.stop()


def test_the_dockerfile_has_one_healthcheck_that_probes_the_health_listener() -> None:
    argv = healthcheck_argv(DOCKERFILE)
    assert any("grpc-health-probe" in word for word in argv)
    assert any("-addr=127.0.0.1:${PD_HEALTH_PORT}" in word for word in argv)
    env = image_env(DOCKERFILE)
    assert env["PD_LISTEN"] == f"0.0.0.0:{env['PD_PORT']}"
    assert env["PD_HEALTH_LISTEN"] == f"127.0.0.1:{env['PD_HEALTH_PORT']}"


def test_healthcheck_passes_while_serving_with_mtls_and_fails_once_the_database_is_down(
    probe: Path, database: EmbeddedPostgres, tmp_path: Path
) -> None:
    argv = healthcheck_argv(DOCKERFILE)  # parsed before anything starts: nothing to clean up
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    port, health_port = free_port(), free_port()
    image = image_env(DOCKERFILE)
    check_env = {
        **os.environ,
        **image,
        "PD_HEALTH_PORT": str(health_port),  # the one difference from the image: free ports
        "PATH": f"{probe.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    server_env.update(
        PYTHONPATH=str(REPO / "service"),
        PD_LISTEN=f"127.0.0.1:{port}",
        PD_HEALTH_LISTEN=image["PD_HEALTH_LISTEN"].replace(
            image["PD_HEALTH_PORT"], str(health_port)
        ),
        PD_TLS_CERT=str(pki.server_cert),
        PD_TLS_KEY=str(pki.server_key),
        PD_TLS_CLIENT_CA=str(pki.ca),
    )
    server = subprocess.Popen(
        serve_command("--database-url", database.url, "--grace-seconds", "1"),
        cwd=tmp_path,
        env=server_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def healthcheck() -> int:
        return subprocess.run(
            argv, env=check_env, capture_output=True, timeout=15, check=False
        ).returncode

    def plaintext_probe_of_the_main_port() -> int:
        return subprocess.run(
            [str(probe), f"-addr=127.0.0.1:{port}", "-connect-timeout=2s", "-rpc-timeout=2s"],
            capture_output=True,
            timeout=15,
            check=False,
        ).returncode

    try:
        assert wait_for(lambda: healthcheck() == 0, seconds=60), "never healthy while serving"
        assert healthcheck() == 0
        # The main port speaks only mutual TLS: a plaintext probe there fails.
        assert plaintext_probe_of_the_main_port() != 0

        database.stop()
        assert wait_for(lambda: healthcheck() != 0, seconds=20), "still healthy without Postgres"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
