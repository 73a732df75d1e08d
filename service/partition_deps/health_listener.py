"""A plaintext listener that serves only grpc.health.v1, beside a main port that may need TLS.

Probes cannot present client certificates: the kubelet's native gRPC probes speak plaintext
only, and a container's HEALTHCHECK should not need the client's keys. This listener answers
Health.Check and Health.Watch from the main server's own HealthServicer (same statuses), and
nothing else, so it exposes no data. Bind it to loopback (a HEALTHCHECK inside the container) or
to a port of its own that only the kubelet reaches.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2_grpc

# Enough for the probes of one pod; each Watch stream holds a worker while it is open.
HEALTH_WORKERS = 4


def serve_health(
    address: str, servicer: health.HealthServicer, reuse_port: bool
) -> tuple[grpc.Server, int]:
    """Start the health-only plaintext server on `address`; returns it and its port."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=HEALTH_WORKERS, thread_name_prefix="health-rpc"),
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise RuntimeError(f"cannot listen for health probes on {address}: {error}") from error
    server.start()
    return server, port
