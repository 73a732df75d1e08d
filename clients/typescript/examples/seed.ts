/**
 * Plays the seed scenario against a running server: daily_sales_data (daily) feeds
 * weekly_sales_summary (weekly); seven daily partitions are materialized; it asks which daily
 * partitions weekly 2024-01-07 needs, with their [start, end) windows; then what is stale:
 * weekly 2024-01-07 is missing, and once materialized it turns stale when one of its days is
 * materialized again.
 *
 *   PD_ADDR=127.0.0.1:50051 npm run example    (PD_TOKEN: a bearer token, if auth is on)
 */
import { pathToFileURL } from "node:url";

import {
  connect,
  daily,
  type PartitionDepsClient,
  StaleStatus,
  keys,
  materialization,
  timestampFromDate,
  toDate,
  weekly,
} from "../src/index.js";

export const DAILY = "daily_sales_data";
export const WEEKLY = "weekly_sales_summary";

export interface Window {
  key: string;
  start: Date;
  end: Date;
}

export interface SeedResult {
  windows: Window[];
  /** weekly 2024-01-07 before it is materialized, and after one of its days is re-materialized. */
  before: StaleStatus;
  after: StaleStatus;
}

const AS_OF = timestampFromDate(new Date(Date.UTC(2024, 1, 1)));

async function weeklyStatus(
  pd: PartitionDepsClient,
  namespace: string,
  log: (line: string) => void,
): Promise<StaleStatus> {
  const answer = await pd.staleness.getStaleness({
    namespace,
    assetKeys: [WEEKLY],
    selection: keys("2024-01-07"),
    asOf: AS_OF,
    includeFresh: true,
  });
  const partition = answer.partitions[0];
  if (partition === undefined) {
    throw new Error(`no staleness answer for ${WEEKLY} 2024-01-07`);
  }
  log(`staleness of ${partition.assetKey} ${partition.partitionKey ?? ""}: ${StaleStatus[partition.status]}`);
  for (const cause of partition.causes) {
    log(`  because ${cause.message}`);
  }
  return partition.status;
}

export async function runSeed(
  address: string,
  namespace: string,
  log: (line: string) => void = console.log,
): Promise<SeedResult> {
  const pd = connect(address, { token: process.env.PD_TOKEN });
  try {
    const applied = await pd.definitions.applyAssets({
      namespace,
      assets: [
        { assetKey: DAILY, partitionsDefinition: daily("2024-01-01") },
        {
          assetKey: WEEKLY,
          partitionsDefinition: weekly("2024-01-01"),
          // No mapping: the service infers Dagster's default (a time-window mapping).
          dependencies: [{ upstreamAssetKey: DAILY }],
        },
      ],
    });
    log(`registered ${DAILY} and ${WEEKLY} in "${namespace}" (generation ${applied.generation})`);

    const days = Array.from({ length: 7 }, (_, i) => new Date(Date.UTC(2024, 0, 7 + i)));
    const reported = await pd.events.reportEvents({
      namespace,
      events: days.map((day) => {
        const key = day.toISOString().slice(0, 10);
        return materialization({
          idempotencyKey: `seed-${key}`,
          at: new Date(day.getTime() + 25 * 3600_000),
          assetKey: DAILY,
          partitionKey: key,
          runId: `run-${key}`,
          dataVersion: "v1",
        });
      }),
    });
    log(`reported ${days.length} materializations (${reported.storedCount} new)`);

    const upstream = await pd.queries.getUpstreamPartitions({
      namespace,
      assetKey: WEEKLY,
      selection: keys("2024-01-07"),
      asOf: AS_OF,
      keyPaging: { includeKeys: true },
    });
    const windows: Window[] = [];
    for (const dependency of upstream.dependencies) {
      const needed = dependency.partitions;
      log(`${WEEKLY} 2024-01-07 needs ${needed?.count ?? 0n} partitions of ${dependency.upstreamAssetKey}:`);
      for (const key of needed?.partitionKeys ?? []) {
        const window = await pd.queries.getTimeWindow({
          source: {
            kind: { case: "asset", value: { namespace, assetKey: dependency.upstreamAssetKey } },
          },
          partitionKey: key,
        });
        const start = toDate(window.startTime);
        const end = toDate(window.endTime);
        if (start === undefined || end === undefined) {
          throw new Error(`no time window for ${key}`);
        }
        windows.push({ key, start, end });
        log(`  ${key}  [${start.toISOString()}, ${end.toISOString()})`);
      }
      const missing = dependency.requiredButNonexistent?.count ?? 0n;
      if (missing > 0n) {
        log(`  ${missing} needed partitions do not exist yet`);
      }
    }
    // What is stale? weekly 2024-01-07 was never materialized: MISSING (and runnable).
    const before = await weeklyStatus(pd, namespace, log);
    // Materialize it, then one of its days again: it is STALE, with the cause.
    await pd.events.reportEvents({
      namespace,
      events: [
        materialization({
          idempotencyKey: "seed-weekly-2024-01-07",
          at: new Date(Date.UTC(2024, 0, 15)),
          assetKey: WEEKLY,
          partitionKey: "2024-01-07",
          runId: "run-weekly",
          dataVersion: "w1",
        }),
        materialization({
          idempotencyKey: "seed-2024-01-09-again",
          at: new Date(Date.UTC(2024, 0, 16)),
          assetKey: DAILY,
          partitionKey: "2024-01-09",
          runId: "run-fix",
          dataVersion: "v2",
        }),
      ],
    });
    log(`materialized ${WEEKLY} 2024-01-07, then ${DAILY} 2024-01-09 again`);
    const after = await weeklyStatus(pd, namespace, log);
    return { windows, before, after };
  } finally {
    pd.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const address = process.env.PD_ADDR ?? "127.0.0.1:50051";
  runSeed(address, `seed-ts-${Date.now()}`).catch((error: unknown) => {
    console.error("seed:", error);
    process.exit(1);
  });
}
