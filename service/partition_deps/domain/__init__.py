"""Pure partition semantics: definitions, subsets, mappings. No I/O, no protobuf, no grpc."""
