import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";

import { propagation, type TextMapPropagator } from "@opentelemetry/api";
import { Code, type ConnectRouter } from "@connectrpc/connect";

import {
  connect,
  daily,
  DiagnosticsService,
  errorDetails,
  fromJsonString,
  GetUpstreamPartitionsResponseSchema,
  keys,
  materialization,
  observation,
  runFailed,
  runStarted,
  StaleStatus,
  timeWindow,
  timestampFromDate,
  toJsonString,
} from "../src/index.js";
import { type FakeServer, startFakeServer } from "./fake_server.js";

const address = process.env.PD_ADDR;
const token = process.env.PD_TOKEN;
if ((!address || !token) && process.env.CI === "true") {
  throw new Error("PD_ADDR and PD_TOKEN must be set: CI runs these tests against a live server with auth on");
}
const skip = address && token ? false : "PD_ADDR/PD_TOKEN are not set; start a server with bearer tokens";
const namespace = (name: string): string => `ts-${name}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
const at = new Date(Date.UTC(2024, 0, 20));
const asOf = timestampFromDate(new Date(Date.UTC(2024, 1, 1)));

describe("what an adopter uses, against the live server", { skip }, () => {
  it("stores every event kind", async () => {
    const pd = connect(address!, { token });
    try {
      const ns = namespace("events");
      await pd.definitions.applyAssets({
        namespace: ns,
        assets: [
          { assetKey: "source", observableSource: true },
          { assetKey: "daily", partitionsDefinition: daily("2024-01-01"), dependencies: [{ upstreamAssetKey: "source" }] },
        ],
      });
      const events = [
        observation({ idempotencyKey: "o1", at, assetKey: "source", dataVersion: "s1" }),
        runStarted({ idempotencyKey: "r1-start", at, runId: "r1", targets: [{ assetKey: "daily", partitionKey: "2024-01-02" }] }),
        materialization({ idempotencyKey: "m1", at, assetKey: "daily", partitionKey: "2024-01-02", runId: "r1", dataVersion: "v1" }),
        runStarted({ idempotencyKey: "r2-start", at, runId: "r2", targets: [{ assetKey: "daily", partitionKey: "2024-01-03" }] }),
        runFailed({ idempotencyKey: "r2-fail", at: new Date(at.getTime() + 60_000), runId: "r2", message: "boom" }),
      ];
      assert.equal((await pd.events.reportEvents({ namespace: ns, events })).storedCount, events.length);
      const statuses = new Map<string, StaleStatus>();
      for await (const partition of pd.stalePartitions({
        namespace: ns,
        assetKeys: ["daily"],
        selection: keys("2024-01-02", "2024-01-03"),
        asOf,
        includeFresh: true,
        pageSize: 1,
      })) {
        statuses.set(partition.partitionKey ?? "", partition.status);
      }
      assert.deepEqual(
        [...statuses],
        [
          ["2024-01-02", StaleStatus.FRESH],
          ["2024-01-03", StaleStatus.MISSING],
        ],
      );
    } finally {
      pd.close();
    }
  });

  it("follows page tokens", async () => {
    const pd = connect(address!, { token });
    try {
      const ns = namespace("paging");
      const names = ["a0", "a1", "a2", "a3", "a4"];
      await pd.definitions.applyAssets({
        namespace: ns,
        assets: names.map((assetKey) => ({ assetKey, partitionsDefinition: daily("2024-01-01") })),
      });
      const listed: string[] = [];
      for await (const asset of pd.assets(ns, 2)) listed.push(asset.assetKey);
      assert.deepEqual(listed.sort(), names);
      const partitionKeys: string[] = [];
      for await (const key of pd.partitionKeys({
        source: { kind: { case: "asset", value: { namespace: ns, assetKey: "a0" } } },
        asOf,
        pageSize: 7,
      })) {
        partitionKeys.push(key);
      }
      assert.equal(partitionKeys.length, 31);
      await pd.definitions.addDynamicPartitions({ namespace: ns, definitionName: "customers", partitionKeys: ["k0", "k1", "k2"] });
      const dynamic: string[] = [];
      for await (const partition of pd.dynamicPartitions({ namespace: ns, definitionName: "customers", pageSize: 2 })) {
        dynamic.push(partition.partitionKey);
      }
      assert.deepEqual(dynamic, ["k0", "k1", "k2"]);
      const planned: string[] = [];
      for await (const run of pd.plannedRuns({ namespace: ns, assetKeys: names.slice(0, 3), asOf, pageSize: 1 })) {
        planned.push(run.assetKey);
      }
      assert.deepEqual(planned.sort(), names.slice(0, 3));
    } finally {
      pd.close();
    }
  });

  it("round-trips an answer with 64-bit counts through JSON.stringify", async () => {
    const pd = connect(address!, { token });
    try {
      const ns = namespace("json");
      await pd.definitions.applyAssets({
        namespace: ns,
        assets: [
          { assetKey: "daily", partitionsDefinition: daily("2024-01-01") },
          { assetKey: "weekly", partitionsDefinition: timeWindow("0 0 * * 0", "2024-01-01"), dependencies: [{ upstreamAssetKey: "daily" }] },
        ],
      });
      const answer = await pd.queries.getUpstreamPartitions({
        namespace: ns,
        assetKey: "weekly",
        selection: keys("2024-01-07"),
        asOf,
        keyPaging: { includeKeys: true },
      });
      assert.throws(() => JSON.stringify(answer), TypeError); // bigint counts
      const text = JSON.stringify(JSON.parse(toJsonString(GetUpstreamPartitionsResponseSchema, answer)));
      assert.match(text, /"count":"7"/);
      assert.deepEqual(fromJsonString(GetUpstreamPartitionsResponseSchema, text), answer);
    } finally {
      pd.close();
    }
  });

  it("reads the reason and field of an error, and refuses a wrong token", async () => {
    const pd = connect(address!, { token });
    const stranger = connect(address!, { token: `not-${token}`, maxAttempts: 1 });
    try {
      const bad = await pd.definitions
        .applyAssets({
          namespace: namespace("bad"),
          assets: [{ assetKey: "bad", partitionsDefinition: timeWindow("not a cron", "2024-01-01") }],
        })
        .catch(errorDetails);
      assert.ok(bad && "reason" in bad);
      assert.equal(bad.code, Code.InvalidArgument);
      assert.equal(bad.reason, "INVALID_DEFINITION");
      assert.match(bad.field, /cron_schedule$/);
      assert.equal(bad.retryable, false);

      const refused = await stranger.diagnostics.ping({}).catch(errorDetails);
      assert.ok(refused && "reason" in refused);
      assert.deepEqual([refused.code, refused.reason, refused.retryable], [Code.Unauthenticated, "UNAUTHENTICATED", false]);
    } finally {
      pd.close();
      stranger.close();
    }
  });

  it("speaks mutual TLS with the client's certificate, and is refused without it", async () => {
    const [tlsAddress, ca, cert, key] = ["PD_TLS_ADDR", "PD_TLS_CA", "PD_TLS_CERT", "PD_TLS_KEY"].map((name) => process.env[name]);
    if (!tlsAddress || !ca || !cert || !key) {
      throw new Error("PD_TLS_ADDR, PD_TLS_CA, PD_TLS_CERT, PD_TLS_KEY are not set: scripts/client_tests.sh sets them");
    }
    const pem = (path: string): Buffer => readFileSync(path);
    const pd = connect(tlsAddress, { token, tls: { ca: pem(ca), cert: pem(cert), key: pem(key) } });
    const anonymous = connect(tlsAddress, { token, tls: { ca: pem(ca) }, maxAttempts: 1 });
    try {
      await pd.diagnostics.ping({});
      // The server ends the TLS session of a client without a certificate; Node reports it as
      // a cancelled call (Go and Python as UNAVAILABLE).
      await assert.rejects(anonymous.diagnostics.ping({}));
    } finally {
      pd.close();
      anonymous.close();
    }
  });

  it("has a health client", async () => {
    const pd = connect(address!);
    try {
      assert.equal(await pd.health(), "SERVING");
      assert.equal(await pd.health("readiness"), "SERVING");
    } finally {
      pd.close();
    }
  });
});

describe("token and trace context on the wire (a local fake server, no PD_ADDR needed)", () => {
  let fake: FakeServer;
  const seen: Headers[] = [];

  before(async () => {
    const routes = (router: ConnectRouter): void => {
      router.service(DiagnosticsService, {
        ping(_request, context) {
          seen.push(context.requestHeader);
          return {};
        },
      });
    };
    fake = await startFakeServer(routes);
  });
  after(() => fake.stop());

  it("sends the bearer token and what the global propagator writes", async () => {
    // The application's propagator (W3C trace context from the OpenTelemetry SDK, in a real
    // program); this one writes a fixed traceparent so the test sees it arrive.
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const fixed: TextMapPropagator = {
      inject: (_context, carrier, setter) => setter.set(carrier, "traceparent", traceparent),
      extract: (context) => context,
      fields: () => ["traceparent"],
    };
    propagation.setGlobalPropagator(fixed);
    const pd = connect(fake.address, { token: "t0ken" });
    try {
      await pd.diagnostics.ping({});
      const [headers] = seen;
      assert.equal(headers?.get("traceparent"), traceparent);
      assert.equal(headers?.get("authorization"), "Bearer t0ken");
    } finally {
      pd.close();
      propagation.disable();
    }
  });
});
