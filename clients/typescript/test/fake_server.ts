import { createServer, type Http2Server } from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";

export interface FakeServer {
  address: string;
  stop(): Promise<void>;
}

/** A local server speaking the gRPC protocol with `routes` on a free loopback port, for the
 * tests that need no PD_ADDR; `stop` it when done. */
export async function startFakeServer(routes: (router: ConnectRouter) => void): Promise<FakeServer> {
  const server: Http2Server = createServer(
    connectNodeAdapter({ routes, grpc: true, connect: false, grpcWeb: false }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
