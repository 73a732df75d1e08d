package pdclient

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

// Cron schedules of Dagster's preset time-window definitions.
const (
	HourlyCron  = "0 * * * *"
	DailyCron   = "0 0 * * *"
	WeeklyCron  = "0 0 * * 0"
	MonthlyCron = "0 0 1 * *"
)

// TimeWindow is a time-window partitions definition in UTC with the default key format.
// start is a wall time such as "2024-01-01" or "2024-01-01T00:00:00".
func TimeWindow(cron, start string) *pdv1.PartitionsDefinition {
	return &pdv1.PartitionsDefinition{Kind: &pdv1.PartitionsDefinition_TimeWindow{
		TimeWindow: &pdv1.TimeWindowPartitions{CronSchedule: cron, Start: wallTime(start)},
	}}
}

// Daily is Dagster's DailyPartitionsDefinition(start_date=start).
func Daily(start string) *pdv1.PartitionsDefinition { return TimeWindow(DailyCron, start) }

// Weekly is Dagster's WeeklyPartitionsDefinition(start_date=start): weeks start on Sunday.
func Weekly(start string) *pdv1.PartitionsDefinition { return TimeWindow(WeeklyCron, start) }

func wallTime(start string) string {
	if len(start) == len("2006-01-02") {
		return start + "T00:00:00"
	}
	return start
}

// Keys selects explicit partition keys (none: an unpartitioned asset as a whole).
func Keys(keys ...string) *pdv1.PartitionSelection {
	return &pdv1.PartitionSelection{Kind: &pdv1.PartitionSelection_Keys{
		Keys: &pdv1.PartitionKeys{PartitionKeys: keys},
	}}
}

// event is an event without its kind; each builder below sets one, so a new kind of event is
// one more builder.
func event(idempotencyKey string, at time.Time) *pdv1.Event {
	return &pdv1.Event{IdempotencyKey: idempotencyKey, EventTime: timestamppb.New(at)}
}

// Materialization is an event saying that a partition of an asset was written ("" for an
// unpartitioned asset).
func Materialization(idempotencyKey string, at time.Time, asset, partition, runID, dataVersion string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_Materialization{Materialization: &pdv1.Materialization{
		AssetKey: asset, PartitionKey: optional(partition), RunId: runID, DataVersion: dataVersion,
	}}
	return e
}

// Observation is an event saying that a source asset's partition was seen with this data version
// ("" for an unpartitioned asset).
func Observation(idempotencyKey string, at time.Time, asset, partition, dataVersion string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_Observation{Observation: &pdv1.Observation{
		AssetKey: asset, PartitionKey: optional(partition), DataVersion: dataVersion,
	}}
	return e
}

// optional is nil for "" (the field unset), else a pointer to the value.
func optional(value string) *string {
	if value == "" {
		return nil
	}
	return &value
}

// Target names a partition a run will write; partition "" is an unpartitioned asset.
func Target(asset, partition string) *pdv1.PartitionTarget {
	return &pdv1.PartitionTarget{AssetKey: asset, PartitionKey: optional(partition)}
}

// RunStarted is an event saying that a run started to write targets. The run holds them for
// lease after at and after each heartbeat; lease 0 leaves the server's default.
func RunStarted(idempotencyKey string, at time.Time, runID string, lease time.Duration, targets ...*pdv1.PartitionTarget) *pdv1.Event {
	body := &pdv1.RunStarted{RunId: runID, Targets: targets}
	if lease != 0 {
		body.Lease = durationpb.New(lease)
	}
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_RunStarted{RunStarted: body}
	return e
}

// RunHeartbeat is an event saying that a run is alive: its lease now ends one lease after at.
func RunHeartbeat(idempotencyKey string, at time.Time, runID string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_RunHeartbeat{RunHeartbeat: &pdv1.RunHeartbeat{RunId: runID}}
	return e
}

// RunSucceeded is an event saying that a run ended well.
func RunSucceeded(idempotencyKey string, at time.Time, runID string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_RunSucceeded{RunSucceeded: &pdv1.RunSucceeded{RunId: runID}}
	return e
}

// RunFailed is an event saying that a run failed: its targets not materialized by then are no
// longer in progress.
func RunFailed(idempotencyKey string, at time.Time, runID, message string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_RunFailed{RunFailed: &pdv1.RunFailed{RunId: runID, Message: message}}
	return e
}

// RunCanceled is an event saying that a run was canceled.
func RunCanceled(idempotencyKey string, at time.Time, runID, message string) *pdv1.Event {
	e := event(idempotencyKey, at)
	e.Kind = &pdv1.Event_RunCanceled{RunCanceled: &pdv1.RunCanceled{RunId: runID, Message: message}}
	return e
}
