"""TLS and mutual TLS, with certificates generated here (a CA, a server and a client cert)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2_grpc
from partition_deps.server import Server, TlsFiles
from tests.pki import Pki, make_pki

from .conftest import serving


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(database_url: str, pki: Pki) -> Iterator[Server]:
    with serving(database_url, workers=2, tls=TlsFiles(pki.server_cert, pki.server_key)) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(database_url: str, pki: Pki) -> Iterator[Server]:
    tls = TlsFiles(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with serving(database_url, workers=2, tls=tls) as server:
        yield server


def _ping(channel: grpc.Channel) -> grpc.StatusCode:
    stub = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)
    try:
        stub.Ping(diagnostics_pb.PingRequest(), timeout=5)
    except grpc.RpcError as error:
        return error.code()
    finally:
        channel.close()
    return grpc.StatusCode.OK


def _secure(server: Server, credentials: grpc.ChannelCredentials) -> grpc.Channel:
    return grpc.secure_channel(f"localhost:{server.port}", credentials)


def test_tls_serves_a_client_that_trusts_the_ca(tls_server: Server, pki: Pki) -> None:
    trusted = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    assert _ping(_secure(tls_server, trusted)) == grpc.StatusCode.OK


def test_tls_refuses_plaintext_and_untrusting_clients(tls_server: Server, pki: Pki) -> None:
    assert _ping(grpc.insecure_channel(f"localhost:{tls_server.port}")) == (
        grpc.StatusCode.UNAVAILABLE
    )
    untrusting = grpc.ssl_channel_credentials(root_certificates=pki.other_ca.read_bytes())
    assert _ping(_secure(tls_server, untrusting)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_ca(mtls_server: Server, pki: Pki) -> None:
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    without_cert = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    stranger = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.stranger_cert.read_bytes(),
    )
    assert _ping(_secure(mtls_server, with_cert)) == grpc.StatusCode.OK
    assert _ping(_secure(mtls_server, without_cert)) == grpc.StatusCode.UNAVAILABLE
    assert _ping(_secure(mtls_server, stranger)) == grpc.StatusCode.UNAVAILABLE


def test_the_flags_configure_tls(pki: Pki) -> None:
    from partition_deps import cli

    flags = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    args = cli._parser().parse_args(["serve", *flags, "--tls-client-ca", str(pki.ca)])
    assert cli._tls(args) == TlsFiles(pki.server_cert, pki.server_key, pki.ca)
    assert cli._tls(cli._parser().parse_args(["serve"])) is None
    with pytest.raises(SystemExit):
        cli._tls(cli._parser().parse_args(["serve", "--tls-cert", str(pki.server_cert)]))


def test_the_command_line_client_speaks_mutual_tls(mtls_server: Server, pki: Pki) -> None:
    program = [sys.executable, "-m", "partition_deps.cli"]
    address = ["--addr", f"localhost:{mtls_server.port}", "--timeout", "10"]

    def assets_list(*tls: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*program, "assets", "list", "-n", "tls-none", *address, *tls],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "service")},
            capture_output=True,
            text=True,
            timeout=60,
        )

    client = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
    # Through the handshake to the servicer: the namespace does not exist.
    answered = assets_list("--tls-ca", str(pki.ca), *client)
    assert (answered.returncode, "NOT_FOUND NAMESPACE_NOT_FOUND" in answered.stderr) == (3, True)
    assert assets_list("--tls-ca", str(pki.ca)).returncode == 5  # no client certificate
    assert assets_list("--tls-ca", str(pki.ca), "--tls-cert", str(pki.client_cert)).returncode == 2
