export { connect, retryUnavailable, type ClientOptions, type HealthStatus, type PartitionDepsClient } from "./client.js";
export { errorDetails, type ErrorDetails } from "./errors.js";
export { entries, pages } from "./paging.js";
// JSON: messages hold 64-bit integers as bigint, which JSON.stringify refuses; toJson and
// toJsonString give the canonical JSON (64-bit integers as decimal strings), fromJson and
// fromJsonString read it back exactly.
export { fromJson, fromJsonString, toJson, toJsonString } from "@bufbuild/protobuf";
export * from "./builders.js";
export * from "./gen/partitiondeps/v1/definitions_service_pb.js";
export * from "./gen/partitiondeps/v1/diagnostics_service_pb.js";
export * from "./gen/partitiondeps/v1/events_service_pb.js";
export * from "./gen/partitiondeps/v1/partitions_pb.js";
export * from "./gen/partitiondeps/v1/queries_service_pb.js";
export * from "./gen/partitiondeps/v1/staleness_service_pb.js";
