package pdclient_test

import (
	"context"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	pdclient "partition-deps/clients/go"
	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

var asOf = timestamppb.New(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))

func TestEveryEventKindIsStored(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	ns := namespace(t)
	if _, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{Namespace: ns, Assets: []*pdv1.Asset{
		{AssetKey: "source", ObservableSource: true},
		{AssetKey: "daily", PartitionsDefinition: pdclient.Daily("2024-01-01"),
			Dependencies: []*pdv1.Dependency{{UpstreamAssetKey: "source"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 1, 20, 0, 0, 0, 0, time.UTC)
	events := []*pdv1.Event{
		pdclient.Observation("o1", at, "source", "", "s1"),
		pdclient.RunStarted("r1-start", at, "r1", 0, pdclient.Target("daily", "2024-01-02")),
		pdclient.Materialization("m1", at, "daily", "2024-01-02", "r1", "v1"),
		pdclient.RunStarted("r2-start", at, "r2", 0, pdclient.Target("daily", "2024-01-03")),
		pdclient.RunFailed("r2-fail", at.Add(time.Minute), "r2", "boom"),
	}
	reported, err := client.Events.ReportEvents(ctx, &pdv1.ReportEventsRequest{Namespace: ns, Events: events})
	if err != nil || reported.StoredCount != int32(len(events)) {
		t.Fatalf("stored %v, err %v", reported.GetStoredCount(), err)
	}
	statuses := map[string]pdv1.StaleStatus{}
	for partition, err := range client.StalePartitions(ctx, &pdv1.GetStalenessRequest{
		Namespace: ns, AssetKeys: []string{"daily"}, Selection: pdclient.Keys("2024-01-02", "2024-01-03"),
		AsOf: asOf, IncludeFresh: true, PageSize: 1,
	}) {
		if err != nil {
			t.Fatal(err)
		}
		statuses[partition.GetPartitionKey()] = partition.Status
	}
	if statuses["2024-01-02"] != pdv1.StaleStatus_STALE_STATUS_FRESH || statuses["2024-01-03"] != pdv1.StaleStatus_STALE_STATUS_MISSING {
		t.Fatalf("statuses %v", statuses)
	}
}

func TestIteratorsFollowPageTokens(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	ns := namespace(t)
	names := []string{"a0", "a1", "a2", "a3", "a4"}
	var assets []*pdv1.Asset
	for _, name := range names {
		assets = append(assets, &pdv1.Asset{AssetKey: name, PartitionsDefinition: pdclient.Daily("2024-01-01")})
	}
	if _, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{Namespace: ns, Assets: assets}); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for asset, err := range client.Assets(ctx, ns, 2) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, asset.AssetKey)
	}
	sort.Strings(listed)
	if !slices.Equal(listed, names) {
		t.Fatalf("assets %v", listed)
	}
	var keys []string
	for key, err := range client.PartitionKeys(ctx, &pdv1.ListPartitionsRequest{
		Source: &pdv1.DefinitionSource{Kind: &pdv1.DefinitionSource_Asset{Asset: &pdv1.AssetReference{Namespace: ns, AssetKey: "a0"}}},
		AsOf:   asOf, PageSize: 7,
	}) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	if len(keys) != 31 || keys[0] != "2024-01-01" || keys[30] != "2024-01-31" {
		t.Fatalf("keys %v", keys)
	}
	if _, err := client.Definitions.AddDynamicPartitions(ctx, &pdv1.AddDynamicPartitionsRequest{
		Namespace: ns, DefinitionName: "customers", PartitionKeys: []string{"k0", "k1", "k2"},
	}); err != nil {
		t.Fatal(err)
	}
	var dynamic []string
	for partition, err := range client.DynamicPartitions(ctx, &pdv1.ListDynamicPartitionsRequest{
		Namespace: ns, DefinitionName: "customers", PageSize: 2,
	}) {
		if err != nil {
			t.Fatal(err)
		}
		dynamic = append(dynamic, partition.PartitionKey)
	}
	if !slices.Equal(dynamic, []string{"k0", "k1", "k2"}) {
		t.Fatalf("dynamic %v", dynamic)
	}
	var planned []string
	for run, err := range client.PlannedRuns(ctx, &pdv1.PlanRunsRequest{Namespace: ns, AssetKeys: names[:3], AsOf: asOf, PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		planned = append(planned, run.AssetKey)
	}
	sort.Strings(planned)
	if !slices.Equal(planned, names[:3]) {
		t.Fatalf("planned %v", planned)
	}
}

func TestPagesYieldsTheErrorOnce(t *testing.T) {
	client := dialLive(t)
	calls := 0
	for page, err := range pdclient.Pages(context.Background(), client.Definitions.ListAssets, &pdv1.ListAssetsRequest{Namespace: ""}) {
		calls++
		if page != nil || pdclient.Details(err).Code != codes.InvalidArgument {
			t.Fatalf("page %v, err %v", page, err)
		}
	}
	if calls != 1 {
		t.Fatalf("%d yields", calls)
	}
}

func TestDetailsNameReasonAndField(t *testing.T) {
	client := dialLive(t)
	ctx := context.Background()
	_, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{Namespace: namespace(t), Assets: []*pdv1.Asset{
		{AssetKey: "bad", PartitionsDefinition: pdclient.TimeWindow("not a cron", "2024-01-01")},
	}})
	details := pdclient.Details(err)
	if details.Code != codes.InvalidArgument || details.Reason != "INVALID_DEFINITION" || details.Retryable {
		t.Fatalf("details %+v", details)
	}
	if len(details.Field) < len("cron_schedule") || details.Field[len(details.Field)-len("cron_schedule"):] != "cron_schedule" {
		t.Fatalf("field %q", details.Field)
	}
}

func TestACallWithAWrongTokenIsRefused(t *testing.T) {
	token := os.Getenv("PD_TOKEN")
	if token == "" {
		t.Fatal("PD_TOKEN is not set: these tests need a server with bearer tokens on")
	}
	stranger, err := pdclient.Dial(liveAddr(t), pdclient.Options{Token: "not-" + token, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	_, err = stranger.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{})
	details := pdclient.Details(err)
	if details.Code != codes.Unauthenticated || details.Reason != "UNAUTHENTICATED" || details.Retryable {
		t.Fatalf("details %+v", details)
	}
}

func TestMutualTLSNeedsTheClientCertificate(t *testing.T) {
	addr, ca, cert, key := os.Getenv("PD_TLS_ADDR"), os.Getenv("PD_TLS_CA"), os.Getenv("PD_TLS_CERT"), os.Getenv("PD_TLS_KEY")
	if addr == "" || ca == "" || cert == "" || key == "" {
		t.Fatal("PD_TLS_ADDR, PD_TLS_CA, PD_TLS_CERT, PD_TLS_KEY are not set: scripts/client_tests.sh sets them")
	}
	mutual, err := pdclient.TLSCredentials(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := pdclient.Dial(addr, pdclient.Options{Credentials: mutual, Token: os.Getenv("PD_TOKEN")})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	serverOnly, err := pdclient.TLSCredentials(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	anonymous, err := pdclient.Dial(addr, pdclient.Options{Credentials: serverOnly, Token: os.Getenv("PD_TOKEN"), MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer anonymous.Close()
	_, err = anonymous.Diagnostics.Ping(context.Background(), &pdv1.PingRequest{})
	if details := pdclient.Details(err); details.Code != codes.Unavailable || !details.Retryable {
		t.Fatalf("without a client certificate: %+v", details)
	}
}

// metadataDiagnostics records the metadata of the last Ping.
type metadataDiagnostics struct {
	pdv1.UnimplementedDiagnosticsServiceServer
	seen chan metadata.MD
}

func (m *metadataDiagnostics) Ping(ctx context.Context, _ *pdv1.PingRequest) (*pdv1.PingResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	m.seen <- md
	return &pdv1.PingResponse{}, nil
}

func TestTheTraceContextAndTokenTravel(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	defer otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	fake := &metadataDiagnostics{seen: make(chan metadata.MD, 1)}
	client, err := pdclient.Dial(localServer(t, fake), pdclient.Options{Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	if _, err := client.Diagnostics.Ping(ctx, &pdv1.PingRequest{}); err != nil {
		t.Fatal(err)
	}
	md := <-fake.seen
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceparent %v", got)
	}
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer t0ken" {
		t.Fatalf("authorization %v", got)
	}
}
