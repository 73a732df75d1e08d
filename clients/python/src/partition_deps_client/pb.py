"""The generated messages and stubs under short names (`from partition_deps_client import pb`).

The stubs in `_gen` are this package's own copy, generated from proto/ by
scripts/gen_clients.sh, so the client needs neither the service package nor its dependencies.
"""

from partition_deps_client._gen.partitiondeps.v1 import automation_pb2 as automation
from partition_deps_client._gen.partitiondeps.v1 import (
    automation_service_pb2 as automation_service,
)
from partition_deps_client._gen.partitiondeps.v1 import (
    automation_service_pb2_grpc as automation_service_grpc,
)
from partition_deps_client._gen.partitiondeps.v1 import (
    definitions_service_pb2 as definitions,
)
from partition_deps_client._gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc as definitions_grpc,
)
from partition_deps_client._gen.partitiondeps.v1 import (
    diagnostics_service_pb2 as diagnostics,
)
from partition_deps_client._gen.partitiondeps.v1 import (
    diagnostics_service_pb2_grpc as diagnostics_grpc,
)
from partition_deps_client._gen.partitiondeps.v1 import events_service_pb2 as events
from partition_deps_client._gen.partitiondeps.v1 import events_service_pb2_grpc as events_grpc
from partition_deps_client._gen.partitiondeps.v1 import partitions_pb2 as partitions
from partition_deps_client._gen.partitiondeps.v1 import queries_service_pb2 as queries
from partition_deps_client._gen.partitiondeps.v1 import queries_service_pb2_grpc as queries_grpc
from partition_deps_client._gen.partitiondeps.v1 import staleness_service_pb2 as staleness
from partition_deps_client._gen.partitiondeps.v1 import (
    staleness_service_pb2_grpc as staleness_grpc,
)

__all__ = [
    "automation",
    "automation_service",
    "automation_service_grpc",
    "definitions",
    "definitions_grpc",
    "diagnostics",
    "diagnostics_grpc",
    "events",
    "events_grpc",
    "partitions",
    "queries",
    "queries_grpc",
    "staleness",
    "staleness_grpc",
]
