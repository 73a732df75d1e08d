// Command seed plays the seed scenario against a running partition-deps server:
// daily_sales_data (daily) feeds weekly_sales_summary (weekly); seven daily partitions are
// materialized; it asks which daily partitions weekly 2024-01-07 needs, with their windows; then
// what is stale: weekly 2024-01-07 is missing, and once materialized it turns stale when one of
// its days is materialized again.
//
//	go run ./examples/seed -addr 127.0.0.1:50051    (PD_TOKEN: a bearer token, if auth is on)
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

// Result is what the example found out.
type Result struct {
	Windows []Window
	// The status of weekly 2024-01-07 before it is materialized, and after one of its days is
	// materialized again.
	Before, After pdv1.StaleStatus
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

// Run plays the scenario, printing each answer to out.
func Run(ctx context.Context, addr, namespace string, out io.Writer) (*Result, error) {
	client, err := pdclient.Dial(addr, pdclient.Options{Token: os.Getenv("PD_TOKEN")})
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
	result := &Result{Windows: windows}

	// What is stale? weekly 2024-01-07 was never materialized: it is MISSING (and runnable,
	// since its seven days exist).
	if result.Before, err = weeklyStatus(ctx, client, namespace, asOf, out); err != nil {
		return nil, err
	}
	// Materialize it, then materialize one of its days again: it is STALE, with the cause.
	later := []*pdv1.Event{
		pdclient.Materialization("seed-weekly-2024-01-07", time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC),
			weekly, "2024-01-07", "run-weekly", "w1"),
		pdclient.Materialization("seed-2024-01-09-again", time.Date(2024, 1, 16, 0, 0, 0, 0, time.UTC),
			daily, "2024-01-09", "run-fix", "v2"),
	}
	if _, err := client.Events.ReportEvents(ctx, &pdv1.ReportEventsRequest{Namespace: namespace, Events: later}); err != nil {
		return nil, fmt.Errorf("report events: %w", err)
	}
	fmt.Fprintf(out, "materialized %s 2024-01-07, then %s 2024-01-09 again\n", weekly, daily)
	if result.After, err = weeklyStatus(ctx, client, namespace, asOf, out); err != nil {
		return nil, err
	}
	return result, nil
}

// weeklyStatus asks for the staleness of weekly 2024-01-07 and prints it with its causes.
func weeklyStatus(ctx context.Context, client *pdclient.Client, namespace string, asOf *timestamppb.Timestamp, out io.Writer) (pdv1.StaleStatus, error) {
	answer, err := client.Staleness.GetStaleness(ctx, &pdv1.GetStalenessRequest{
		Namespace:    namespace,
		AssetKeys:    []string{weekly},
		Selection:    pdclient.Keys("2024-01-07"),
		AsOf:         asOf,
		IncludeFresh: true,
	})
	if err != nil {
		return pdv1.StaleStatus_STALE_STATUS_UNSPECIFIED, fmt.Errorf("staleness: %w", err)
	}
	for _, partition := range answer.Partitions {
		fmt.Fprintf(out, "staleness of %s %s: %s\n", partition.AssetKey, partition.GetPartitionKey(), partition.Status)
		for _, cause := range partition.Causes {
			fmt.Fprintf(out, "  because %s (%s)\n", cause.Message, cause.Kind)
		}
		return partition.Status, nil
	}
	return pdv1.StaleStatus_STALE_STATUS_UNSPECIFIED, fmt.Errorf("staleness: no answer for %s 2024-01-07", weekly)
}
