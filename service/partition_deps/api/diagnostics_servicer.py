"""DiagnosticsService: an empty method, the control of serving benchmarks."""

from __future__ import annotations

import grpc

from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as pb
from partition_deps.api.handlers import Method

SERVICE_NAME = "partitiondeps.v1.DiagnosticsService"


class DiagnosticsServicer:
    def methods(self) -> list[Method]:
        return [Method("Ping", pb.PingRequest, self.ping)]

    def ping(self, request: pb.PingRequest, context: grpc.ServicerContext) -> pb.PingResponse:
        return pb.PingResponse()
