/**
 * A thin client for the partition-deps gRPC service: Connect over the gRPC protocol (HTTP/2),
 * on the protoc-gen-es v2 stubs in ./gen.
 *
 *   const pd = connect("127.0.0.1:50051");
 *   const answer = await pd.queries.getUpstreamPartitions({ namespace, assetKey, ... });
 *   pd.close();
 *
 * What it adds to the generated clients: a default deadline per call (`timeoutMs`, which a call
 * can override with its own `timeoutMs` or `signal`), and retries of UNAVAILABLE for unary calls
 * with exponential backoff and jitter, within the call's deadline (the server answers UNAVAILABLE
 * while its database is down, before doing any work; event reports carry idempotency keys).
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

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
  /** Use TLS (an https:// base URL). Default: plaintext, for loopback and sidecars. */
  tls?: boolean;
  /** More interceptors, run inside the retry loop (auth headers, logging, ...). */
  interceptors?: Interceptor[];
}

export interface PartitionDepsClient {
  readonly definitions: Client<typeof DefinitionsService>;
  readonly events: Client<typeof EventsService>;
  readonly queries: Client<typeof QueriesService>;
  readonly diagnostics: Client<typeof DiagnosticsService>;
  readonly staleness: Client<typeof StalenessService>;
  /** Closes the HTTP/2 connection (calls in flight fail). */
  close(): void;
}

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
  const sessionManager = new Http2SessionManager(baseUrl, { idleConnectionTimeoutMs: 60_000 });
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
      ...(options.interceptors ?? []),
    ],
  });
  return {
    definitions: createClient(DefinitionsService, transport),
    events: createClient(EventsService, transport),
    queries: createClient(QueriesService, transport),
    diagnostics: createClient(DiagnosticsService, transport),
    staleness: createClient(StalenessService, transport),
    close: () => sessionManager.abort(),
  };
}
