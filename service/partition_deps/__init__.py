"""partition-deps: partition dependency answers for data orchestrators, as a gRPC service."""
