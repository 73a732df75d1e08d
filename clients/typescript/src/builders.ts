/** Small builders for the messages every caller writes (Dagster's preset definitions, keys). */
import { create } from "@bufbuild/protobuf";
import {
  durationFromMs,
  timestampDate,
  timestampFromDate,
  type Timestamp,
} from "@bufbuild/protobuf/wkt";

import { type Event, EventSchema } from "./gen/partitiondeps/v1/events_service_pb.js";
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

/** A materialization event of one partition. */
export function materialization(fields: {
  idempotencyKey: string;
  at: Date;
  assetKey: string;
  partitionKey?: string;
  runId: string;
  dataVersion: string;
}): Event {
  return create(EventSchema, {
    idempotencyKey: fields.idempotencyKey,
    eventTime: timestampFromDate(fields.at),
    kind: {
      case: "materialization",
      value: {
        assetKey: fields.assetKey,
        partitionKey: fields.partitionKey,
        runId: fields.runId,
        dataVersion: fields.dataVersion,
      },
    },
  });
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
  return create(EventSchema, {
    idempotencyKey: fields.idempotencyKey,
    eventTime: timestampFromDate(fields.at),
    kind: {
      case: "runStarted",
      value: {
        runId: fields.runId,
        targets: fields.targets,
        lease: fields.leaseMs === undefined ? undefined : durationFromMs(fields.leaseMs),
      },
    },
  });
}

type RunEnd = "runSucceeded" | "runFailed" | "runCanceled" | "runHeartbeat";

function runEvent(
  kind: RunEnd,
  fields: { idempotencyKey: string; at: Date; runId: string; message?: string },
): Event {
  const value =
    kind === "runFailed" || kind === "runCanceled"
      ? { runId: fields.runId, message: fields.message ?? "" }
      : { runId: fields.runId };
  return create(EventSchema, {
    idempotencyKey: fields.idempotencyKey,
    eventTime: timestampFromDate(fields.at),
    kind: { case: kind, value } as Event["kind"],
  });
}

/** The run is alive: its lease now ends one lease after `at`. */
export const runHeartbeat = (fields: { idempotencyKey: string; at: Date; runId: string }): Event =>
  runEvent("runHeartbeat", fields);
/** The run ended well. */
export const runSucceeded = (fields: { idempotencyKey: string; at: Date; runId: string }): Event =>
  runEvent("runSucceeded", fields);
/** The run failed. */
export const runFailed = (fields: {
  idempotencyKey: string;
  at: Date;
  runId: string;
  message?: string;
}): Event => runEvent("runFailed", fields);
/** The run was canceled. */
export const runCanceled = (fields: {
  idempotencyKey: string;
  at: Date;
  runId: string;
  message?: string;
}): Event => runEvent("runCanceled", fields);

export const toDate = (timestamp: Timestamp | undefined): Date | undefined =>
  timestamp === undefined ? undefined : timestampDate(timestamp);
export { timestampFromDate };
