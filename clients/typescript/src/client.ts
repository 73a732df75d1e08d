/**
 * A thin client for the partition-deps gRPC service: Connect over the gRPC protocol (HTTP/2),
 * on the protoc-gen-es v2 stubs in ./gen.
 *
 *   const pd = connect("127.0.0.1:50051");
 *   const answer = await pd.queries.getUpstreamPartitions({ namespace, assetKey, ... });
 *   pd.close();
 *
 * What it adds to the generated clients: a default deadline per call (`timeoutMs`, default
 * 10 s, which a call can override with its own `timeoutMs` or `signal`); retries of UNAVAILABLE
 * only, for unary calls, with exponential backoff and jitter (100 ms doubling up to 2 s, 4
 * attempts in all), within the call's deadline (the server answers UNAVAILABLE while its database
 * is down, before doing any work; event reports carry idempotency keys); a bearer `token`; TLS
 * and mutual TLS (`tls`); the active OpenTelemetry trace context on every call (through the
 * global propagator the application registers); a health client; iterators that follow page
 * tokens (`assets`, `partitionKeys`, ...). `errorDetails` (errors.ts) reads an error's reason.
 */
import type { SecureClientSessionOptions } from "node:http2";

import { context, propagation } from "@opentelemetry/api";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

import { HealthService } from "./descriptors.js";
import { entries, pages } from "./paging.js";
import type { Asset, DynamicPartition, ListDynamicPartitionsRequestSchema } from "./gen/partitiondeps/v1/definitions_service_pb.js";
import type { ListPartitionsRequestSchema } from "./gen/partitiondeps/v1/queries_service_pb.js";
import type {
  GetStalenessRequestSchema,
  PartitionStaleness,
  PlannedRun,
  PlanRunsRequestSchema,
} from "./gen/partitiondeps/v1/staleness_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

import { DefinitionsService } from "./gen/partitiondeps/v1/definitions_service_pb.js";
import { DiagnosticsService } from "./gen/partitiondeps/v1/diagnostics_service_pb.js";
import { EventsService } from "./gen/partitiondeps/v1/events_service_pb.js";
import { QueriesService } from "./gen/partitiondeps/v1/queries_service_pb.js";
import { StalenessService } from "./gen/partitiondeps/v1/staleness_service_pb.js";

export interface ClientOptions {
  /** Deadline of each call that sets none itself (default 10 s). */
  timeoutMs?: number;
  /** Attempts in all for a unary call answered UNAVAILABLE (default 4; 1 turns retries off). */
  maxAttempts?: number;
  /** Upper bound of the first retry's delay (default 100 ms); doubles up to maxBackoffMs (2 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /**
   * TLS: `true` (the system's roots), or PEM `ca` to trust and, for mutual TLS, the client's own
   * `cert` and `key`. Default: plaintext, for loopback and sidecars.
   */
  tls?: boolean | Pick<SecureClientSessionOptions, "ca" | "cert" | "key">;
  /** A bearer token sent as `authorization: Bearer <token>` on every call (plaintext too). */
  token?: string;
  /** More interceptors, run inside the retry loop (auth headers, logging, ...). */
  interceptors?: Interceptor[];
}

export interface PartitionDepsClient {
  readonly definitions: Client<typeof DefinitionsService>;
  readonly events: Client<typeof EventsService>;
  readonly queries: Client<typeof QueriesService>;
  readonly diagnostics: Client<typeof DiagnosticsService>;
  readonly staleness: Client<typeof StalenessService>;
  /** The standard gRPC health status of `service` ("" the server as a whole, "readiness", ...). */
  health(service?: string, options?: CallOptions): Promise<HealthStatus>;
  /** Every asset of a namespace, page after page. */
  assets(namespace: string, pageSize?: number, options?: CallOptions): AsyncGenerator<Asset>;
  /** The keys of a ListPartitions request, page after page. */
  partitionKeys(request: MessageInitShape<typeof ListPartitionsRequestSchema>, options?: CallOptions): AsyncGenerator<string>;
  /** The keys of a dynamic partitions definition, page after page. */
  dynamicPartitions(
    request: MessageInitShape<typeof ListDynamicPartitionsRequestSchema>,
    options?: CallOptions,
  ): AsyncGenerator<DynamicPartition>;
  /** The partitions of a GetStaleness request, page after page. */
  stalePartitions(request: MessageInitShape<typeof GetStalenessRequestSchema>, options?: CallOptions): AsyncGenerator<PartitionStaleness>;
  /** The runs of a PlanRuns request, page after page. */
  plannedRuns(request: MessageInitShape<typeof PlanRunsRequestSchema>, options?: CallOptions): AsyncGenerator<PlannedRun>;
  /** Closes the HTTP/2 connection (calls in flight fail). */
  close(): void;
}

export type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
const HEALTH_STATUSES: HealthStatus[] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/** Sends the active trace context (traceparent, ...) with every call. */
const propagateTrace: Interceptor = (next) => (req) => {
  propagation.inject(context.active(), req.header, {
    set: (header, key, value) => header.set(key, value),
  });
  return next(req);
};

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });

/**
 * An interceptor that retries unary calls answered UNAVAILABLE: at most `maxAttempts` attempts,
 * waiting a random delay below min(initial * 2^n, max) between them (gRPC's retry policy),
 * and never past the call's deadline (the delay is cut short by the call's signal).
 */
export function retryUnavailable(
  maxAttempts: number,
  initialBackoffMs: number,
  maxBackoffMs: number,
): Interceptor {
  return (next) => async (req) => {
    if (req.stream) {
      return next(req); // a client stream cannot be replayed
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (error) {
        const connectError = ConnectError.from(error);
        if (connectError.code !== Code.Unavailable || attempt >= maxAttempts || req.signal.aborted) {
          throw error;
        }
        const bound = Math.min(initialBackoffMs * 2 ** (attempt - 1), maxBackoffMs);
        await sleep(Math.random() * bound, req.signal);
      }
    }
  };
}

/** Creates a client for `address` ("host:port"); it connects on the first call. */
export function connect(address: string, options: ClientOptions = {}): PartitionDepsClient {
  const baseUrl = `${options.tls ? "https" : "http"}://${address}`;
  const tlsOptions = typeof options.tls === "object" ? options.tls : {};
  const sessionManager = new Http2SessionManager(baseUrl, { idleConnectionTimeoutMs: 60_000 }, tlsOptions);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    defaultTimeoutMs: options.timeoutMs ?? 10_000,
    interceptors: [
      retryUnavailable(
        options.maxAttempts ?? 4,
        options.initialBackoffMs ?? 100,
        options.maxBackoffMs ?? 2_000,
      ),
      propagateTrace,
      ...(options.token ? [bearer(options.token)] : []),
      ...(options.interceptors ?? []),
    ],
  });
  const definitions = createClient(DefinitionsService, transport);
  const queries = createClient(QueriesService, transport);
  const staleness = createClient(StalenessService, transport);
  // The health schema is built at run time (descriptors.ts), so its client is untyped here.
  const health = createClient(HealthService, transport) as unknown as {
    check(request: { service: string }, options?: CallOptions): Promise<{ status: number }>;
  };
  return {
    definitions,
    events: createClient(EventsService, transport),
    queries,
    diagnostics: createClient(DiagnosticsService, transport),
    staleness,
    health: async (service = "", callOptions) =>
      HEALTH_STATUSES[(await health.check({ service }, callOptions)).status] ?? "UNKNOWN",
    assets: (namespace, pageSize = 0, callOptions) =>
      entries(pages(definitions.listAssets, { namespace, pageSize }, callOptions), (page) => page.assets),
    partitionKeys: (request, callOptions) =>
      entries(pages(queries.listPartitions, request, callOptions), (page) => page.partitionKeys),
    dynamicPartitions: (request, callOptions) =>
      entries(pages(definitions.listDynamicPartitions, request, callOptions), (page) => page.partitions),
    stalePartitions: (request, callOptions) =>
      entries(pages(staleness.getStaleness, request, callOptions), (page) => page.partitions),
    plannedRuns: (request, callOptions) =>
      entries(pages(staleness.planRuns, request, callOptions), (page) => page.runs),
    close: () => sessionManager.abort(),
  };
}
