"""ListNamespaces: every namespace in name order, paged with signed tokens."""

from __future__ import annotations

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb

from .builders import DAILY, asset
from .conftest import Stubs
from .errors import error_info


def test_namespaces_are_listed_in_name_order_over_pages(stubs: Stubs, namespace: str) -> None:
    names = [f"{namespace}-{suffix}" for suffix in ("c", "a", "b")]
    for count, name in enumerate(names, 1):
        stubs.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=name, assets=[asset(f"asset{i}", DAILY) for i in range(count)]
            )
        )
    listed: list[defs_pb.NamespaceSummary] = []
    token = ""
    while True:
        page = stubs.definitions.ListNamespaces(
            defs_pb.ListNamespacesRequest(page_size=2, page_token=token)
        )
        assert len(page.namespaces) <= 2
        listed.extend(page.namespaces)
        token = page.next_page_token
        if not token:
            break
    every = [summary.name for summary in listed]
    assert every == sorted(every)
    ours = {s.name: (s.asset_count, s.generation) for s in listed if s.name.startswith(namespace)}
    assert ours == {names[0]: (1, 1), names[1]: (2, 1), names[2]: (3, 1)}


def test_a_forged_page_token_is_refused(stubs: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        stubs.definitions.ListNamespaces(defs_pb.ListNamespacesRequest(page_token="WyJ6Il0.x"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "INVALID_PAGE_TOKEN"
