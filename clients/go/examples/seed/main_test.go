package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

func TestSeedExample(t *testing.T) {
	addr := os.Getenv("PD_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PD_ADDR is not set: CI must run this test against a live server (scripts/client_tests.sh)")
		}
		t.Skip("PD_ADDR is not set; start a server and set PD_ADDR=host:port")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	result, err := Run(ctx, addr, fmt.Sprintf("seed-go-example-%d", time.Now().UnixNano()), &out)
	if err != nil {
		t.Fatalf("example failed: %v\n%s", err, out.String())
	}
	if result.Before != pdv1.StaleStatus_STALE_STATUS_MISSING || result.After != pdv1.StaleStatus_STALE_STATUS_STALE {
		t.Fatalf("staleness before/after: %v/%v\n%s", result.Before, result.After, out.String())
	}
	windows := result.Windows
	if len(windows) != 7 {
		t.Fatalf("want 7 windows, got %d\n%s", len(windows), out.String())
	}
	day := time.Date(2024, 1, 7, 0, 0, 0, 0, time.UTC)
	for i, w := range windows {
		start := day.AddDate(0, 0, i)
		if w.Key != start.Format("2006-01-02") || !w.Start.Equal(start) || !w.End.Equal(start.AddDate(0, 0, 1)) {
			t.Errorf("window %d: got %s [%s, %s)", i, w.Key, w.Start, w.End)
		}
	}
}
