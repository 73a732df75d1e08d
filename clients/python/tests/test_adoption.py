"""What an adopter uses, against the live server: every event builder, the page iterators, the
bearer token, TLS settings and the error helper."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from partition_deps_client import (
    Client,
    Tls,
    asset,
    daily,
    error_details,
    materialization,
    observation,
    pb,
    run_failed,
    run_started,
    weekly,
)
from partition_deps_client.pb import definitions, partitions

AT = datetime(2024, 1, 20, tzinfo=UTC)
AS_OF = datetime(2024, 2, 1, tzinfo=UTC)


def test_every_event_kind_is_stored(client: Client, namespace: str) -> None:
    source = definitions.Asset(asset_key="source", observable_source=True)
    client.apply_assets(
        namespace, [source, asset("daily", daily("2024-01-01"), depends_on=["source"])]
    )
    batch = [
        observation("o1", AT, "source", None, data_version="s1"),
        run_started("r1-start", AT, "r1", [("daily", "2024-01-02")]),
        materialization("m1", AT, "daily", "2024-01-02", run_id="r1", data_version="v1"),
        run_started("r2-start", AT, "r2", [("daily", "2024-01-03")]),
        run_failed("r2-fail", AT + timedelta(minutes=1), "r2", "boom"),
    ]
    assert client.report_events(namespace, batch).stored_count == len(batch)
    assert client.stream_events(namespace, [batch[:2], batch[2:]]).duplicate_count == len(batch)
    statuses = {
        p.partition_key: p.status
        for p in client.iter_stale_partitions(
            namespace, ["daily"], ["2024-01-02", "2024-01-03"], as_of=AS_OF, include_fresh=True
        )
    }
    assert statuses == {
        "2024-01-02": pb.staleness.STALE_STATUS_FRESH,
        "2024-01-03": pb.staleness.STALE_STATUS_MISSING,
    }


def test_iterators_follow_page_tokens(client: Client, namespace: str) -> None:
    names = [f"asset_{n}" for n in range(5)]
    client.apply_assets(namespace, [asset(name, daily("2024-01-01")) for name in names])
    assert sorted(a.asset_key for a in client.iter_assets(namespace, page_size=2)) == names
    keys = list(client.iter_partition_keys(namespace, "asset_0", as_of=AS_OF, page_size=7))
    assert keys == [f"2024-01-{day:02d}" for day in range(1, 32)]
    assert client.get_asset(namespace, "asset_3").asset_key == "asset_3"
    assert client.partition_key_for_timestamp(namespace, "asset_0", AT) == "2024-01-20"

    dynamic = [f"k{n}" for n in range(5)]
    client.add_dynamic_partitions(namespace, "customers", dynamic)
    client.delete_dynamic_partitions(namespace, "customers", ["k4"])
    listed = client.iter_dynamic_partitions(namespace, "customers", page_size=2)
    assert [p.partition_key for p in listed] == dynamic[:4]

    inline = client.compute_downstream_partitions(
        daily("2024-01-01"), weekly("2024-01-01"), ["2024-01-09"], as_of=AS_OF
    )
    assert list(inline.partitions.partition_keys) == ["2024-01-07"]

    runs = list(client.plan_runs(namespace, names[:3], as_of=AS_OF, page_size=1))
    assert sorted(run.asset_key for run in runs) == names[:3]
    client.delete_asset(namespace, "asset_4")
    assert len(list(client.iter_assets(namespace))) == 4


def test_the_error_helper_names_reason_and_field(client: Client, namespace: str) -> None:
    bad = partitions.PartitionsDefinition(
        time_window=partitions.TimeWindowPartitions(
            cron_schedule="not a cron", start="2024-01-01T00:00:00"
        )
    )
    with pytest.raises(grpc.RpcError) as invalid:
        client.apply_assets(namespace, [asset("bad", bad)])
    details = error_details(invalid.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.reason == "INVALID_DEFINITION"
    assert details.field.endswith("cron_schedule")
    assert not details.retryable

    with pytest.raises(grpc.RpcError) as missing:
        client.get_asset(namespace, "nope")
    assert (error_details(missing.value).code, error_details(missing.value).reason) == (
        grpc.StatusCode.NOT_FOUND,
        "NAMESPACE_NOT_FOUND",
    )


def test_a_call_without_the_token_is_refused(address: str, token: str | None) -> None:
    if token is None:
        pytest.fail("PD_TOKEN is not set: these tests need a server with bearer tokens on")
    with Client(address, token="not-" + token) as stranger, pytest.raises(grpc.RpcError) as refused:
        stranger.ping()
    details = error_details(refused.value)
    assert (details.code, details.reason, details.retryable) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        False,
    )


@pytest.fixture
def mutual_tls() -> tuple[str, str, str, str]:
    """The mutual-TLS server's address and the CA, client certificate and key files."""
    names = ("PD_TLS_ADDR", "PD_TLS_CA", "PD_TLS_CERT", "PD_TLS_KEY")
    values = [os.environ.get(name, "") for name in names]
    if not all(values):
        pytest.fail(f"{', '.join(names)} are not set: scripts/client_tests.sh sets them")
    address, ca, cert, key = values
    return address, ca, cert, key


def test_mutual_tls_needs_the_client_certificate(
    mutual_tls: tuple[str, str, str, str], token: str | None
) -> None:
    address, ca, cert, key = mutual_tls
    with Client(address, token=token, tls=Tls.files(ca, cert, key)) as pd:
        pd.ping()
    with (
        Client(address, token=token, tls=Tls.files(ca), max_attempts=1) as anonymous,
        pytest.raises(grpc.RpcError) as refused,
    ):
        anonymous.ping()
    assert error_details(refused.value).code == grpc.StatusCode.UNAVAILABLE


def test_tls_to_a_plaintext_server_fails_unavailable_and_retryable(
    address: str, token: str | None
) -> None:
    with (
        Client(address, token=token, tls=Tls(), timeout=5, max_attempts=1) as pd,
        pytest.raises(grpc.RpcError) as failed,
    ):
        pd.ping()
    details = error_details(failed.value)
    assert details.code == grpc.StatusCode.UNAVAILABLE
    assert details.retryable
