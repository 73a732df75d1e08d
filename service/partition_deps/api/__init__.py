"""gRPC API: protobuf <-> domain conversion, validation, status codes, servicers."""
