import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";

import { runSeed } from "../examples/seed.js";
import {
  connect,
  daily,
  DiagnosticsService,
  keys,
  materialization,
  runCanceled,
  runFailed,
  runHeartbeat,
  runStarted,
  runSucceeded,
  StaleStatus,
  timeWindow,
  timestampFromDate,
  toDate,
  weekly,
} from "../src/index.js";
import { type FakeServer, startFakeServer } from "./fake_server.js";

/**
 * The live server's address (PD_ADDR). Without it these tests are skipped on a developer's
 * machine and fail in CI, where a skipped interop test would hide a broken runner.
 */
function liveAddress(): string | undefined {
  const address = process.env.PD_ADDR;
  if (!address && process.env.CI === "true") {
    throw new Error("PD_ADDR is not set: CI must run this test against a live server (scripts/client_tests.sh)");
  }
  return address || undefined;
}

const address = liveAddress();
const skip = address === undefined ? "PD_ADDR is not set; start a server and set PD_ADDR=host:port" : false;
const namespace = (name: string): string => `ts-${name}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
const DAYS = ["2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12", "2024-01-13"];

describe("live server", { skip }, () => {
  it("plays the seed example", async () => {
    const { windows, before, after } = await runSeed(address!, namespace("example"), () => {});
    assert.equal(before, StaleStatus.MISSING);
    assert.equal(after, StaleStatus.STALE);
    assert.deepEqual(
      windows.map((w) => [w.key, w.start.toISOString(), w.end.toISOString()]),
      DAYS.map((day, i) => [
        day,
        new Date(Date.UTC(2024, 0, 7 + i)).toISOString(),
        new Date(Date.UTC(2024, 0, 8 + i)).toISOString(),
      ]),
    );
  });

  it("holds a run's partitions for its lease, renewed by heartbeats", async () => {
    const pd = connect(address!, { token: process.env.PD_TOKEN });
    try {
      const ns = namespace("runs");
      await pd.definitions.applyAssets({
        namespace: ns,
        assets: [{ assetKey: "daily", partitionsDefinition: daily("2024-01-01") }],
      });
      const start = Date.UTC(2024, 0, 15);
      const minute = 60_000;
      const at = (minutes: number): Date => new Date(start + minutes * minute);
      const target = (partitionKey: string) => [{ assetKey: "daily", partitionKey }];
      await pd.events.reportEvents({
        namespace: ns,
        events: [
          runStarted({ idempotencyKey: "s1", at: at(0), runId: "r1", targets: target("2024-01-14"), leaseMs: 10 * minute }),
          runHeartbeat({ idempotencyKey: "h1", at: at(5), runId: "r1" }),
          runStarted({ idempotencyKey: "s2", at: at(0), runId: "r2", targets: target("2024-01-13") }),
          runCanceled({ idempotencyKey: "c2", at: at(1), runId: "r2", message: "by hand" }),
          runStarted({ idempotencyKey: "s3", at: at(0), runId: "r3", targets: target("2024-01-12") }),
          runSucceeded({ idempotencyKey: "e3", at: at(1), runId: "r3" }),
          runStarted({ idempotencyKey: "s4", at: at(0), runId: "r4", targets: target("2024-01-11") }),
          runFailed({ idempotencyKey: "f4", at: at(1), runId: "r4" }),
        ],
      });
      const held = await pd.events.listRuns({ namespace: ns, asOf: timestampFromDate(at(14)) });
      assert.deepEqual(held.runs.map((run) => run.runId), ["r1"]);
      assert.equal(toDate(held.runs[0]?.leaseExpiryTime)?.getTime(), at(15).getTime());
      const expired = await pd.events.listRuns({ namespace: ns, asOf: timestampFromDate(at(15)) });
      assert.deepEqual(expired.runs, []);
    } finally {
      pd.close();
    }
  });

  it("answers weekly <- daily as keys and one range, and the reverse", async () => {
    const pd = connect(address!, { token: process.env.PD_TOKEN });
    try {
      const ns = namespace("weekly");
      await pd.definitions.applyAssets({
        namespace: ns,
        assets: [
          { assetKey: "daily_sales_data", partitionsDefinition: daily("2024-01-01") },
          {
            assetKey: "weekly_sales_summary",
            partitionsDefinition: weekly("2024-01-01"),
            dependencies: [{ upstreamAssetKey: "daily_sales_data" }],
          },
        ],
      });
      const events = DAYS.map((key) =>
        materialization({ idempotencyKey: `m-${key}`, at: new Date(), assetKey: "daily_sales_data", partitionKey: key, runId: "r", dataVersion: "v1" }),
      );
      const first = await pd.events.reportEvents({ namespace: ns, events });
      const again = await pd.events.reportEvents({ namespace: ns, events });
      assert.equal(first.storedCount, 7);
      assert.equal(again.duplicateCount, 7);

      const asOf = timestampFromDate(new Date(Date.UTC(2024, 1, 1)));
      const upstream = await pd.queries.getUpstreamPartitions({
        namespace: ns,
        assetKey: "weekly_sales_summary",
        selection: keys("2024-01-07"),
        asOf,
        keyPaging: { includeKeys: true },
      });
      assert.equal(upstream.dependencies.length, 1);
      const dependency = upstream.dependencies[0]!;
      assert.equal(dependency.partitionMapping?.kind.case, "timeWindow");
      assert.deepEqual(dependency.partitions?.partitionKeys, DAYS);
      assert.equal(dependency.partitions?.count, 7n);
      const range = dependency.partitions?.ranges[0];
      assert.equal(toDate(range?.startTime)?.toISOString(), "2024-01-07T00:00:00.000Z");
      assert.equal(toDate(range?.endTime)?.toISOString(), "2024-01-14T00:00:00.000Z");
      assert.equal(dependency.requiredButNonexistent?.count ?? 0n, 0n);

      const downstream = await pd.queries.getDownstreamPartitions({
        namespace: ns,
        assetKey: "daily_sales_data",
        selection: keys("2024-01-09"),
        asOf,
        keyPaging: { includeKeys: true },
      });
      assert.deepEqual(
        downstream.dependents.map((d) => [d.downstreamAssetKey, d.partitions?.partitionKeys]),
        [["weekly_sales_summary", ["2024-01-07"]]],
      );
    } finally {
      pd.close();
    }
  });

  it("keeps status codes: NOT_FOUND and INVALID_ARGUMENT", async () => {
    const pd = connect(address!, { token: process.env.PD_TOKEN });
    try {
      await assert.rejects(
        pd.definitions.getAsset({ namespace: namespace("missing"), assetKey: "nope" }),
        (error: unknown) => ConnectError.from(error).code === Code.NotFound,
      );
      await assert.rejects(
        pd.definitions.applyAssets({
          namespace: namespace("bad"),
          assets: [{ assetKey: "bad", partitionsDefinition: timeWindow("not a cron", "2024-01-01") }],
        }),
        (error: unknown) => ConnectError.from(error).code === Code.InvalidArgument,
      );
    } finally {
      pd.close();
    }
  });
});

describe("retries and deadlines (a local fake server, no PD_ADDR needed)", () => {
  let fake: FakeServer;
  let calls = 0;
  let failures = 0;
  let delayMs = 0;

  before(async () => {
    const routes = (router: ConnectRouter): void => {
      router.service(DiagnosticsService, {
        async ping(_request, context) {
          calls += 1;
          if (calls <= failures) {
            throw new ConnectError("database unreachable", Code.Unavailable);
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, delayMs);
            context.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); });
          });
          return {};
        },
      });
    };
    fake = await startFakeServer(routes);
  });
  after(() => fake.stop());

  it("retries UNAVAILABLE", async () => {
    calls = 0; failures = 2; delayMs = 0;
    const pd = connect(fake.address, { initialBackoffMs: 10 });
    try {
      await pd.diagnostics.ping({});
      assert.equal(calls, 3);
    } finally {
      pd.close();
    }
  });

  it("stops after maxAttempts", async () => {
    calls = 0; failures = 100; delayMs = 0;
    const pd = connect(fake.address, { maxAttempts: 3, initialBackoffMs: 10 });
    try {
      await assert.rejects(pd.diagnostics.ping({}), (e: unknown) => ConnectError.from(e).code === Code.Unavailable);
      assert.equal(calls, 3);
    } finally {
      pd.close();
    }
  });

  it("applies the default deadline, and a call's own deadline", async () => {
    calls = 0; failures = 0; delayMs = 5_000;
    const pd = connect(fake.address, { timeoutMs: 200 });
    try {
      const started = Date.now();
      await assert.rejects(pd.diagnostics.ping({}), (e: unknown) => ConnectError.from(e).code === Code.DeadlineExceeded);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 150 && elapsed < 2_000, `the 200 ms default deadline ended the call after ${elapsed} ms`);
      await assert.rejects(
        pd.diagnostics.ping({}, { timeoutMs: 50 }),
        (e: unknown) => ConnectError.from(e).code === Code.DeadlineExceeded,
      );
    } finally {
      pd.close();
    }
  });
});
