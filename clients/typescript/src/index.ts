export { connect, retryUnavailable, type ClientOptions, type PartitionDepsClient } from "./client.js";
export * from "./builders.js";
export * from "./gen/partitiondeps/v1/definitions_service_pb.js";
export * from "./gen/partitiondeps/v1/diagnostics_service_pb.js";
export * from "./gen/partitiondeps/v1/events_service_pb.js";
export * from "./gen/partitiondeps/v1/partitions_pb.js";
export * from "./gen/partitiondeps/v1/queries_service_pb.js";
export * from "./gen/partitiondeps/v1/staleness_service_pb.js";
