"""DefinitionsService: assets and dynamic partitions of a namespace."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from partition_deps.api import convert, limits, paging, validate
from partition_deps.api.auth import ALL_NAMESPACES, granted_namespaces
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.domain.assets import AssetDefinition
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import DefinitionsRepository
from partition_deps.store.errors import AssetNotFound

SERVICE_NAME = "partitiondeps.v1.DefinitionsService"


class DefinitionsServicer:
    def __init__(
        self, repository: DefinitionsRepository, cache: DefinitionsCache, tokens: paging.PageTokens
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._tokens = tokens

    def methods(self) -> list[Method]:
        return [
            Method("ApplyAssets", pb.ApplyAssetsRequest, self.apply_assets),
            Method("GetAsset", pb.GetAssetRequest, self.get_asset),
            Method("ListAssets", pb.ListAssetsRequest, self.list_assets),
            Method("DeleteAsset", pb.DeleteAssetRequest, self.delete_asset),
            Method("AddDynamicPartitions", pb.AddDynamicPartitionsRequest, self.add_dynamic),
            Method(
                "DeleteDynamicPartitions", pb.DeleteDynamicPartitionsRequest, self.delete_dynamic
            ),
            Method("ListDynamicPartitions", pb.ListDynamicPartitionsRequest, self.list_dynamic),
            Method("ListNamespaces", pb.ListNamespacesRequest, self.list_namespaces),
        ]

    def apply_assets(
        self, request: pb.ApplyAssetsRequest, context: grpc.ServicerContext
    ) -> pb.ApplyAssetsResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        limits.check_count(
            len(request.assets),
            limits.MAX_ASSETS_PER_REQUEST,
            "assets",
            "assets",
            "TOO_MANY_ASSETS",
        )
        assets: list[AssetDefinition] = []
        positions: dict[str, int] = {}
        for index, message in enumerate(request.assets):
            asset = convert.asset_from_proto(message, f"assets[{index}]")
            validate.required_name(asset.key, f"assets[{index}].asset_key")
            if asset.key in positions:
                raise ApiError(
                    f"asset {asset.key!r} appears more than once",
                    f"assets[{index}].asset_key",
                    reason="DUPLICATE_ASSET",
                )
            positions[asset.key] = index
            assets.append(asset)
        generation = self._repository.apply_assets(
            namespace,
            assets,
            replace_all=request.replace_all,
            expected_generation=(
                request.expected_generation if request.HasField("expected_generation") else None
            ),
            validate=lambda graph: validate.validate_graph(graph, positions),
        )
        self._cache.invalidate(namespace, generation)
        return pb.ApplyAssetsResponse(
            generation=generation,
            assets=[convert.asset_to_proto(asset, generation) for asset in assets],
        )

    def get_asset(
        self, request: pb.GetAssetRequest, context: grpc.ServicerContext
    ) -> pb.GetAssetResponse:
        snapshot = self._cache.snapshot(validate.required_name(request.namespace, "namespace"))
        key = validate.required_name(request.asset_key, "asset_key")
        asset = snapshot.assets.get(key)
        if asset is None:
            raise AssetNotFound(f"asset {key!r} does not exist", "asset_key")
        return pb.GetAssetResponse(
            asset=convert.asset_to_proto(asset, snapshot.asset_generations[key])
        )

    def list_assets(
        self, request: pb.ListAssetsRequest, context: grpc.ServicerContext
    ) -> pb.ListAssetsResponse:
        snapshot = self._cache.snapshot(validate.required_name(request.namespace, "namespace"))
        requested = paging.requested_page(request, default=100)
        token = self._tokens.continued(requested, (str,))
        after = "" if token is None else str(token[0])
        keys = [key for key in snapshot.assets if key > after] if after else list(snapshot.assets)
        page = keys[: requested.size]
        return pb.ListAssetsResponse(
            assets=[
                convert.asset_to_proto(snapshot.assets[k], snapshot.asset_generations[k])
                for k in page
            ],
            next_page_token=(
                self._tokens.encode([page[-1]], requested.binding)
                if len(keys) > requested.size
                else ""
            ),
            generation=snapshot.generation,
        )

    def list_namespaces(
        self, request: pb.ListNamespacesRequest, context: grpc.ServicerContext
    ) -> pb.ListNamespacesResponse:
        requested = paging.requested_page(request, default=100)
        token = self._tokens.continued(requested, (str,))
        granted = granted_namespaces.get()
        only = None if granted is None or ALL_NAMESPACES in granted else granted
        rows = self._repository.list_namespaces(
            "" if token is None else str(token[0]), requested.size + 1, only
        )
        page = rows[: requested.size]
        return pb.ListNamespacesResponse(
            namespaces=[
                pb.NamespaceSummary(name=name, generation=generation, asset_count=count)
                for name, generation, count in page
            ],
            next_page_token=(
                self._tokens.encode([page[-1][0]], requested.binding)
                if len(rows) > requested.size
                else ""
            ),
        )

    def delete_asset(
        self, request: pb.DeleteAssetRequest, context: grpc.ServicerContext
    ) -> pb.DeleteAssetResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        generation = self._repository.delete_asset(
            namespace, validate.required_name(request.asset_key, "asset_key")
        )
        self._cache.invalidate(namespace, generation)
        return pb.DeleteAssetResponse(generation=generation)

    def add_dynamic(
        self, request: pb.AddDynamicPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.AddDynamicPartitionsResponse:
        generation, added = self._change_dynamic(request, self._repository.add_dynamic_partitions)
        return pb.AddDynamicPartitionsResponse(generation=generation, added_count=added)

    def delete_dynamic(
        self, request: pb.DeleteDynamicPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.DeleteDynamicPartitionsResponse:
        generation, deleted = self._change_dynamic(
            request, self._repository.delete_dynamic_partitions
        )
        return pb.DeleteDynamicPartitionsResponse(generation=generation, deleted_count=deleted)

    def _change_dynamic(
        self,
        request: pb.AddDynamicPartitionsRequest | pb.DeleteDynamicPartitionsRequest,
        change: Callable[[str, str, list[str]], tuple[int, int]],
    ) -> tuple[int, int]:
        """Check what an add or a delete names, make the change, and drop the cached
        definitions it made stale; (generation, how many keys changed)."""
        namespace = validate.required_name(request.namespace, "namespace")
        name = validate.required_name(request.definition_name, "definition_name")
        keys = validate.unique_keys(list(request.partition_keys), "partition_keys")
        generation, changed = change(namespace, name, keys)
        self._cache.invalidate(namespace, generation)
        return generation, changed

    def list_dynamic(
        self, request: pb.ListDynamicPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDynamicPartitionsResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        name = validate.required_name(request.definition_name, "definition_name")
        requested = paging.requested_page(request)
        token = self._tokens.continued(requested, (int,))
        after_id = 0 if token is None else int(token[0])
        rows = self._repository.list_dynamic_partitions(
            namespace,
            name,
            after_id=after_id,
            limit=requested.size + 1,
            show_deleted=request.show_deleted,
        )
        response = pb.ListDynamicPartitionsResponse()
        for _, record in rows[: requested.size]:
            partition = response.partitions.add(partition_key=record.partition_key)
            partition.add_time.FromDatetime(record.added_at)
            if record.deleted_at is not None:
                partition.delete_time.FromDatetime(record.deleted_at)
        if len(rows) > requested.size:
            response.next_page_token = self._tokens.encode(
                [rows[requested.size - 1][0]], requested.binding
            )
        return response
