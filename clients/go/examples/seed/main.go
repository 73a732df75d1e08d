// Command seed plays the seed scenario against a running partition-deps server:
// daily_sales_data (daily) feeds weekly_sales_summary (weekly); seven daily partitions are
// materialized; then it asks which daily partitions weekly 2024-01-07 needs, with their windows.
//
//	go run ./examples/seed -addr 127.0.0.1:50051
//
// There is no staleness RPC in the API yet, so the example stops after the upstream question.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pdclient "partition-deps/clients/go"
	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

const (
	daily  = "daily_sales_data"
	weekly = "weekly_sales_summary"
)

// Window is one needed daily partition and its [start, end) instants.
type Window struct {
	Key        string
	Start, End time.Time
}

func main() {
	addr := flag.String("addr", envOr("PD_ADDR", "127.0.0.1:50051"), "server address (env PD_ADDR)")
	namespace := flag.String("namespace", fmt.Sprintf("seed-go-%d", time.Now().UnixNano()), "namespace to use")
	flag.Parse()
	if _, err := Run(context.Background(), *addr, *namespace, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// Run registers the two assets, reports the materializations and returns the needed windows.
func Run(ctx context.Context, addr, namespace string, out io.Writer) ([]Window, error) {
	client, err := pdclient.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer client.Close()

	applied, err := client.Definitions.ApplyAssets(ctx, &pdv1.ApplyAssetsRequest{
		Namespace: namespace,
		Assets: []*pdv1.Asset{
			{AssetKey: daily, PartitionsDefinition: pdclient.Daily("2024-01-01")},
			{
				AssetKey:             weekly,
				PartitionsDefinition: pdclient.Weekly("2024-01-01"),
				// No mapping: the service infers Dagster's default (a time-window mapping).
				Dependencies: []*pdv1.Dependency{{UpstreamAssetKey: daily}},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("apply assets: %w", err)
	}
	fmt.Fprintf(out, "registered %s and %s in %q (generation %d)\n", daily, weekly, namespace, applied.Generation)

	var events []*pdv1.Event
	first := time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC)
	for day := range 7 {
		key := first.AddDate(0, 0, day).Format("2006-01-02")
		events = append(events, pdclient.Materialization(
			"seed-"+key, first.AddDate(0, 0, day+1).Add(time.Hour), daily, key, "run-"+key, "v1"))
	}
	reported, err := client.Events.ReportEvents(ctx, &pdv1.ReportEventsRequest{Namespace: namespace, Events: events})
	if err != nil {
		return nil, fmt.Errorf("report events: %w", err)
	}
	fmt.Fprintf(out, "reported %d materializations (%d new)\n", len(events), reported.StoredCount)

	asOf := timestamppb.New(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	upstream, err := client.Queries.GetUpstreamPartitions(ctx, &pdv1.GetUpstreamPartitionsRequest{
		Namespace: namespace,
		AssetKey:  weekly,
		Selection: pdclient.Keys("2024-01-07"),
		AsOf:      asOf,
		KeyPaging: &pdv1.KeyPaging{IncludeKeys: true},
	})
	if err != nil {
		return nil, fmt.Errorf("upstream partitions: %w", err)
	}
	var windows []Window
	for _, dependency := range upstream.Dependencies {
		needed := dependency.Partitions
		fmt.Fprintf(out, "%s 2024-01-07 needs %d partitions of %s:\n", weekly, needed.Count, dependency.UpstreamAssetKey)
		for _, key := range needed.PartitionKeys {
			window, err := client.Queries.GetTimeWindow(ctx, &pdv1.GetTimeWindowRequest{
				Source: &pdv1.DefinitionSource{Kind: &pdv1.DefinitionSource_Asset{
					Asset: &pdv1.AssetReference{Namespace: namespace, AssetKey: dependency.UpstreamAssetKey},
				}},
				PartitionKey: key,
			})
			if err != nil {
				return nil, fmt.Errorf("time window of %s: %w", key, err)
			}
			w := Window{Key: key, Start: window.StartTime.AsTime(), End: window.EndTime.AsTime()}
			windows = append(windows, w)
			fmt.Fprintf(out, "  %s  [%s, %s)\n", w.Key, w.Start.Format(time.RFC3339), w.End.Format(time.RFC3339))
		}
		if missing := dependency.RequiredButNonexistent.GetCount(); missing > 0 {
			fmt.Fprintf(out, "  %d needed partitions do not exist yet\n", missing)
		}
	}
	fmt.Fprintln(out, "staleness: skipped (the API has no staleness RPC yet)")
	return windows, nil
}
