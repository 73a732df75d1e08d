"""TLS and mutual TLS, with certificates generated here (a CA, a server and a client cert)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diagnostics_pb
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2_grpc
from partition_deps.server import Config, Server, TlsFiles
from partition_deps.store.database import PoolSettings


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    # A client certificate signed by the other CA.
    stranger_cert: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, other_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_cert = _issue("test ca", ca_key, None, ca=True)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    signer = (ca_cert.subject, ca_key)
    other_ca = _issue("other ca", other_key, None, ca=True)
    return Pki(
        ca=_write_cert(folder / "ca.pem", ca_cert),
        server_cert=_write_cert(
            folder / "server.pem", _issue("localhost", server_key, signer, server=True)
        ),
        server_key=_write_key(folder / "server.key", server_key),
        client_cert=_write_cert(folder / "client.pem", _issue("client", client_key, signer)),
        client_key=_write_key(folder / "client.key", client_key),
        other_ca=_write_cert(folder / "other.pem", other_ca),
        stranger_cert=_write_cert(
            folder / "stranger.pem", _issue("stranger", client_key, (other_ca.subject, other_key))
        ),
    )


def _server(database_url: str, tls: TlsFiles) -> Server:
    return Server(
        Config(
            listen="127.0.0.1:0",
            database_url=database_url,
            pool=PoolSettings(min_size=1, max_size=2),
            grace_seconds=1,
            workers=2,
            tls=tls,
        )
    )


@pytest.fixture(scope="module")
def tls_server(database_url: str, pki: Pki) -> Iterator[Server]:
    server = _server(database_url, TlsFiles(pki.server_cert, pki.server_key))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(database_url: str, pki: Pki) -> Iterator[Server]:
    server = _server(database_url, TlsFiles(pki.server_cert, pki.server_key, client_ca=pki.ca))
    server.start()
    yield server
    server.stop()


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
