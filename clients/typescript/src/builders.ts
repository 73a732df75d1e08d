/** Small builders for the messages every caller writes (Dagster's preset definitions, keys, events). */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import {
  type Event,
  EventSchema,
  MaterializationSchema,
  ObservationSchema,
  RunCanceledSchema,
  RunFailedSchema,
  RunHeartbeatSchema,
  RunStartedSchema,
  RunSucceededSchema,
} from "./gen/partitiondeps/v1/events_service_pb.js";
import {
  type PartitionSelection,
  PartitionSelectionSchema,
  type PartitionsDefinition,
  PartitionsDefinitionSchema,
} from "./gen/partitiondeps/v1/partitions_pb.js";

export const HOURLY_CRON = "0 * * * *";
export const DAILY_CRON = "0 0 * * *";
export const WEEKLY_CRON = "0 0 * * 0";
export const MONTHLY_CRON = "0 0 1 * *";

/** A UTC time-window definition with the default key format; `start` like "2024-01-01". */
export function timeWindow(cronSchedule: string, start: string): PartitionsDefinition {
  const wallTime = start.length === "2024-01-01".length ? `${start}T00:00:00` : start;
  return create(PartitionsDefinitionSchema, {
    kind: { case: "timeWindow", value: { cronSchedule, start: wallTime } },
  });
}

/** Dagster's DailyPartitionsDefinition(start_date=start). */
export const daily = (start: string): PartitionsDefinition => timeWindow(DAILY_CRON, start);

/** Dagster's WeeklyPartitionsDefinition(start_date=start): weeks start on Sunday. */
export const weekly = (start: string): PartitionsDefinition => timeWindow(WEEKLY_CRON, start);

/** Explicit partition keys (none: an unpartitioned asset as a whole). */
export function keys(...partitionKeys: string[]): PartitionSelection {
  return create(PartitionSelectionSchema, { kind: { case: "keys", value: { partitionKeys } } });
}

type EventKind = Exclude<Event["kind"], { case: undefined }>;

/** An event of one kind: a new kind of event is one more builder calling this. */
function event(idempotencyKey: string, at: Date, kind: MessageInitShape<typeof EventSchema>["kind"] & EventKind): Event {
  return create(EventSchema, { idempotencyKey, eventTime: timestampFromDate(at), kind });
}

/** A partition (none: an unpartitioned asset) was written by a run. */
export function materialization(fields: {
  idempotencyKey: string;
  at: Date;
  assetKey: string;
  partitionKey?: string;
  runId: string;
  dataVersion: string;
  codeVersion?: string;
}): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "materialization", value: create(MaterializationSchema, value) });
}

/** A source asset's partition (none: unpartitioned) was seen with this data version. */
export function observation(fields: {
  idempotencyKey: string;
  at: Date;
  assetKey: string;
  partitionKey?: string;
  dataVersion: string;
}): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "observation", value: create(ObservationSchema, value) });
}

/** A run started to write `targets`; it holds them for `leaseMs` after `at` and after each
 * heartbeat (unset: the server's default). */
export function runStarted(fields: {
  idempotencyKey: string;
  at: Date;
  runId: string;
  targets: { assetKey: string; partitionKey?: string }[];
  leaseMs?: number;
}): Event {
  const { idempotencyKey, at, leaseMs, ...value } = fields;
  const lease = leaseMs === undefined ? undefined : durationFromMs(leaseMs);
  return event(idempotencyKey, at, { case: "runStarted", value: create(RunStartedSchema, { ...value, lease }) });
}

type RunFields = { idempotencyKey: string; at: Date; runId: string };

/** The run is alive: its lease now ends one lease after `at`. */
export function runHeartbeat(fields: RunFields): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "runHeartbeat", value: create(RunHeartbeatSchema, value) });
}

/** The run ended well. */
export function runSucceeded(fields: RunFields): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "runSucceeded", value: create(RunSucceededSchema, value) });
}

/** A run failed: its targets not materialized by then are no longer in progress. */
export function runFailed(fields: RunFields & { message?: string }): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "runFailed", value: create(RunFailedSchema, value) });
}

/** The run was canceled. */
export function runCanceled(fields: RunFields & { message?: string }): Event {
  const { idempotencyKey, at, ...value } = fields;
  return event(idempotencyKey, at, { case: "runCanceled", value: create(RunCanceledSchema, value) });
}

export const toDate = (timestamp: Timestamp | undefined): Date | undefined =>
  timestamp === undefined ? undefined : timestampDate(timestamp);
export { timestampFromDate };
