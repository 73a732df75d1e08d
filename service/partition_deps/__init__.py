"""partition-deps: partition dependency answers for data orchestrators, as a gRPC service."""

import os

# gRPC's fork handlers off, before grpc is first imported: the embedded Postgres is started and
# restarted through subprocesses (as another user when run as root, which runs Python between
# fork and exec) while gRPC threads are busy, and with the handlers on, such a child sometimes
# died in gRPC's post-fork code before it could exec (4 of 200 forks under load; 0 with them
# off). Nothing here uses gRPC in a forked child: `serve --processes` forks before gRPC starts.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
