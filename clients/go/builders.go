package pdclient

import (
	"time"

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

// Materialization is an event saying that a partition of an asset was written.
func Materialization(idempotencyKey string, at time.Time, asset, partition, runID, dataVersion string) *pdv1.Event {
	return &pdv1.Event{
		IdempotencyKey: idempotencyKey,
		EventTime:      timestamppb.New(at),
		Kind: &pdv1.Event_Materialization{Materialization: &pdv1.Materialization{
			AssetKey:     asset,
			PartitionKey: &partition,
			RunId:        runID,
			DataVersion:  dataVersion,
		}},
	}
}
