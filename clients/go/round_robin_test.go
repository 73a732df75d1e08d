package pdclient_test

import (
	"context"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	pdclient "partition-deps/clients/go"
	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

// countingDiagnostics answers Ping and counts the calls it served.
type countingDiagnostics struct {
	pdv1.UnimplementedDiagnosticsServiceServer
	calls atomic.Int64
}

func (d *countingDiagnostics) Ping(context.Context, *pdv1.PingRequest) (*pdv1.PingResponse, error) {
	d.calls.Add(1)
	return &pdv1.PingResponse{}, nil
}

// A target that resolves to several servers (as dns:/// does for a headless service) gets its
// calls spread over all of them.
func TestCallsAreSpreadOverEveryResolvedServer(t *testing.T) {
	servers := []*countingDiagnostics{{}, {}, {}}
	var addresses []resolver.Address
	for _, diagnostics := range servers {
		addresses = append(addresses, resolver.Address{Addr: localServer(t, diagnostics)})
	}
	names := manual.NewBuilderWithScheme("several")
	names.InitialState(resolver.State{Addresses: addresses})
	client, err := pdclient.Dial("several:///partition-deps",
		pdclient.Options{DialOptions: []grpc.DialOption{grpc.WithResolvers(names)}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// Until every server has served a call: a server whose connection is not ready yet is
	// passed over, so the first calls may all go to the others.
	everyServerCalled := func() bool {
		for _, diagnostics := range servers {
			if diagnostics.calls.Load() == 0 {
				return false
			}
		}
		return true
	}
	for calls := 0; !everyServerCalled(); calls++ {
		if calls == 10_000 {
			t.Fatalf("after %d calls some server served none", calls)
		}
		if _, err := client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{}); err != nil {
			t.Fatal(err)
		}
	}
}
