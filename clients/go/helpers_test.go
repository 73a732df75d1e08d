package pdclient_test

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// localServer serves `diagnostics` on a loopback port until the test ends; no PD_ADDR needed.
func localServer(t *testing.T, diagnostics pdv1.DiagnosticsServiceServer) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	pdv1.RegisterDiagnosticsServiceServer(server, diagnostics)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}
