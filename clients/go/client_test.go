package pdclient_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pdclient "partition-deps/clients/go"
	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

// liveAddr is the address of the live server under test (PD_ADDR). Without it the test is
// skipped on a developer's machine and fails in CI, where a skipped interop test would hide a
// broken runner.
func liveAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("PD_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PD_ADDR is not set: CI must run this test against a live server (scripts/client_tests.sh)")
		}
		t.Skip("PD_ADDR is not set; start a server and set PD_ADDR=host:port")
	}
	return addr
}

func dialLive(t *testing.T) *pdclient.Client {
	t.Helper()
	client, err := pdclient.Dial(liveAddr(t), pdclient.Options{Token: os.Getenv("PD_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func namespace(t *testing.T) string {
	return fmt.Sprintf("go-%s-%d", t.Name(), time.Now().UnixNano())
}

func TestLiveServerIsServing(t *testing.T) {
	client := dialLive(t)
	resp, err := client.Health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v", resp.Status)
	}
	if _, err := client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestWeeklyNeedsItsSevenDays(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	ns := namespace(t)
	const daily, weekly = "daily_sales_data", "weekly_sales_summary"

	applied, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{
		Namespace: ns,
		Assets: []*pdv1.Asset{
			{AssetKey: daily, PartitionsDefinition: pdclient.Daily("2024-01-01")},
			{AssetKey: weekly, PartitionsDefinition: pdclient.Weekly("2024-01-01"),
				Dependencies: []*pdv1.Dependency{{UpstreamAssetKey: daily}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if applied.Generation < 1 {
		t.Fatalf("generation %d", applied.Generation)
	}

	var events []*pdv1.Event
	first := time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC)
	var want []string
	for day := range 7 {
		key := first.AddDate(0, 0, day).Format("2006-01-02")
		want = append(want, key)
		events = append(events, pdclient.Materialization("m-"+key, first.AddDate(0, 0, day+1), daily, key, "run-1", "v1"))
	}
	for attempt, wantStored := range []int32{7, 0} { // the second report is all duplicates
		reported, err := client.Events.ReportEvents(ctx, &pdv1.ReportEventsRequest{Namespace: ns, Events: events})
		if err != nil {
			t.Fatal(err)
		}
		if reported.StoredCount != wantStored || reported.DuplicateCount != 7-wantStored {
			t.Fatalf("report %d: stored %d, duplicates %d", attempt, reported.StoredCount, reported.DuplicateCount)
		}
	}

	asOf := timestamppb.New(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	upstream, err := client.Queries.GetUpstreamPartitions(ctx, &pdv1.GetUpstreamPartitionsRequest{
		Namespace: ns, AssetKey: weekly, Selection: pdclient.Keys("2024-01-07"), AsOf: asOf,
		KeyPaging: &pdv1.KeyPaging{IncludeKeys: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(upstream.Dependencies) != 1 {
		t.Fatalf("dependencies: %v", upstream.Dependencies)
	}
	dep := upstream.Dependencies[0]
	if dep.UpstreamAssetKey != daily || dep.GetPartitionMapping().GetTimeWindow() == nil {
		t.Fatalf("dependency %s with mapping %v", dep.UpstreamAssetKey, dep.PartitionMapping)
	}
	if fmt.Sprint(dep.Partitions.PartitionKeys) != fmt.Sprint(want) || dep.Partitions.Count != 7 {
		t.Fatalf("keys %v (count %d), want %v", dep.Partitions.PartitionKeys, dep.Partitions.Count, want)
	}
	if len(dep.Partitions.Ranges) != 1 {
		t.Fatalf("ranges: %v", dep.Partitions.Ranges)
	}
	r := dep.Partitions.Ranges[0]
	if r.FirstPartitionKey != "2024-01-07" || r.LastPartitionKey != "2024-01-13" ||
		!r.StartTime.AsTime().Equal(first) || !r.EndTime.AsTime().Equal(first.AddDate(0, 0, 7)) {
		t.Fatalf("range %v", r)
	}
	if dep.RequiredButNonexistent.GetCount() != 0 {
		t.Fatalf("required but nonexistent: %v", dep.RequiredButNonexistent)
	}

	downstream, err := client.Queries.GetDownstreamPartitions(ctx, &pdv1.GetDownstreamPartitionsRequest{
		Namespace: ns, AssetKey: daily, Selection: pdclient.Keys("2024-01-09"), AsOf: asOf,
		KeyPaging: &pdv1.KeyPaging{IncludeKeys: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(downstream.Dependents) != 1 || downstream.Dependents[0].DownstreamAssetKey != weekly ||
		fmt.Sprint(downstream.Dependents[0].Partitions.PartitionKeys) != "[2024-01-07]" {
		t.Fatalf("downstream: %v", downstream.Dependents)
	}
}

func TestErrorsKeepTheirCodeAndDetails(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	_, err := client.Definitions.GetAsset(ctx, &pdv1.GetAssetRequest{Namespace: namespace(t), AssetKey: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("missing asset: %v", err)
	}

	_, err = client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{
		Namespace: namespace(t),
		Assets:    []*pdv1.Asset{{AssetKey: "bad", PartitionsDefinition: pdclient.TimeWindow("not a cron", "2024-01-01")}},
	})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad cron: %v", err)
	}
	var violations int
	for _, detail := range status.Convert(err).Details() {
		if badRequest, ok := detail.(*errdetails.BadRequest); ok {
			violations += len(badRequest.FieldViolations)
		}
	}
	if violations == 0 {
		t.Fatalf("bad cron: no BadRequest field violation in %v", status.Convert(err).Details())
	}
}

// flakyDiagnostics fails its first `failures` calls with UNAVAILABLE, and sleeps `delay` on each.
type flakyDiagnostics struct {
	pdv1.UnimplementedDiagnosticsServiceServer
	failures int32
	delay    time.Duration
	calls    atomic.Int32
}

func (f *flakyDiagnostics) Ping(ctx context.Context, _ *pdv1.PingRequest) (*pdv1.PingResponse, error) {
	if f.calls.Add(1) <= f.failures {
		return nil, status.Error(codes.Unavailable, "database unreachable")
	}
	select {
	case <-time.After(f.delay):
		return &pdv1.PingResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestUnavailableIsRetried(t *testing.T) {
	fake := &flakyDiagnostics{failures: 2}
	client, err := pdclient.Dial(localServer(t, fake), pdclient.Options{InitialBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{}); err != nil {
		t.Fatalf("ping after two UNAVAILABLE: %v", err)
	}
	if got := fake.calls.Load(); got != 3 {
		t.Fatalf("want 3 attempts, got %d", got)
	}
}

func TestRetriesStopAtMaxAttempts(t *testing.T) {
	fake := &flakyDiagnostics{failures: 100}
	client, err := pdclient.Dial(localServer(t, fake), pdclient.Options{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{})
	if status.Code(err) != codes.Unavailable || fake.calls.Load() != 3 {
		t.Fatalf("got %v after %d attempts", err, fake.calls.Load())
	}
}

func TestDefaultDeadline(t *testing.T) {
	fake := &flakyDiagnostics{delay: 5 * time.Second}
	client, err := pdclient.Dial(localServer(t, fake), pdclient.Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	started := time.Now()
	_, err = client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("want DEADLINE_EXCEEDED, got %v", err)
	}
	if elapsed := time.Since(started); elapsed < 150*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("the default deadline of 200ms ended the call after %v", elapsed)
	}
	// A caller's shorter deadline wins over the default: with a default of an hour, the
	// fake's 5 s answer would arrive OK if the caller's 50 ms were ignored. (Comparing with
	// ctx.Err() raced: the call can end an instant before the context's own timer fires.)
	patient, err := pdclient.Dial(localServer(t, fake), pdclient.Options{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer patient.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = patient.Diagnostics.Ping(ctx, &pdv1.PingRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("caller deadline: %v", err)
	}
}

func TestServiceConfigIsValidJSONForGRPC(t *testing.T) {
	config, err := pdclient.ServiceConfig(pdclient.Options{Timeout: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// grpc.NewClient validates the service config; a bad one fails here.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithDefaultServiceConfig(config),
		grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatalf("%s: %v", config, err)
	}
	_ = conn.Close()
}

func TestRunEventsHoldPartitionsForTheirLease(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	ns := namespace(t)
	if _, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{
		Namespace: ns,
		Assets:    []*pdv1.Asset{{AssetKey: "daily", PartitionsDefinition: pdclient.Daily("2024-01-01")}},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	events := []*pdv1.Event{
		pdclient.RunStarted("s1", start, "r1", 10*time.Minute, pdclient.Target("daily", "2024-01-14")),
		pdclient.RunHeartbeat("h1", start.Add(5*time.Minute), "r1"),
		pdclient.RunStarted("s2", start, "r2", 0, pdclient.Target("daily", "2024-01-13")),
		pdclient.RunCanceled("c2", start.Add(time.Minute), "r2", "by hand"),
		pdclient.RunStarted("s3", start, "r3", 0, pdclient.Target("daily", "2024-01-12")),
		pdclient.RunSucceeded("e3", start.Add(time.Minute), "r3"),
		pdclient.RunStarted("s4", start, "r4", 0, pdclient.Target("daily", "2024-01-11")),
		pdclient.RunFailed("f4", start.Add(time.Minute), "r4", "boom"),
	}
	if _, err := client.Events.ReportEvents(ctx, &pdv1.ReportEventsRequest{Namespace: ns, Events: events}); err != nil {
		t.Fatal(err)
	}
	for _, check := range []struct {
		minutes int
		want    int
	}{{14, 1}, {15, 0}} {
		listed, err := client.Events.ListRuns(ctx, &pdv1.ListRunsRequest{
			Namespace: ns, AsOf: timestamppb.New(start.Add(time.Duration(check.minutes) * time.Minute)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed.Runs) != check.want {
			t.Fatalf("minute %d: runs %v", check.minutes, listed.Runs)
		}
		if check.want == 1 && !listed.Runs[0].LeaseExpiryTime.AsTime().Equal(start.Add(15*time.Minute)) {
			t.Fatalf("lease expiry %v", listed.Runs[0].LeaseExpiryTime.AsTime())
		}
	}
}
