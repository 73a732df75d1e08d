package pdclient

import (
	"context"
	"iter"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pdv1 "partition-deps/clients/go/gen/partitiondeps/v1"
)

// pagedResponse is any answer of a paged call.
type pagedResponse interface {
	proto.Message
	GetNextPageToken() string
}

// Pages calls call(ctx, req) and then again with each answer's next_page_token, yielding every
// page until the last one (or the first error, yielded with a nil page). req is not changed.
//
//	for page, err := range pdclient.Pages(ctx, c.Definitions.ListAssets, req) { ... }
func Pages[Req proto.Message, Resp pagedResponse](
	ctx context.Context,
	call func(context.Context, Req, ...grpc.CallOption) (Resp, error),
	req Req,
) iter.Seq2[Resp, error] {
	return func(yield func(Resp, error) bool) {
		paged := proto.Clone(req).(Req)
		token := paged.ProtoReflect().Descriptor().Fields().ByName("page_token")
		for {
			page, err := call(ctx, paged)
			if err != nil {
				var none Resp
				yield(none, err)
				return
			}
			if !yield(page, nil) || page.GetNextPageToken() == "" {
				return
			}
			paged.ProtoReflect().Set(token, protoreflect.ValueOfString(page.GetNextPageToken()))
		}
	}
}

// items flattens pages into their entries.
func items[Resp pagedResponse, T any](pages iter.Seq2[Resp, error], entries func(Resp) []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for page, err := range pages {
			if err != nil {
				var none T
				yield(none, err)
				return
			}
			for _, entry := range entries(page) {
				if !yield(entry, nil) {
					return
				}
			}
		}
	}
}

// Assets yields every asset of a namespace, page after page (pageSize 0: the server's default).
func (c *Client) Assets(ctx context.Context, namespace string, pageSize int32) iter.Seq2[*pdv1.Asset, error] {
	req := &pdv1.ListAssetsRequest{Namespace: namespace, PageSize: pageSize}
	return items(Pages(ctx, c.Definitions.ListAssets, req), (*pdv1.ListAssetsResponse).GetAssets)
}

// DynamicPartitions yields the keys of a dynamic partitions definition, page after page.
func (c *Client) DynamicPartitions(ctx context.Context, req *pdv1.ListDynamicPartitionsRequest) iter.Seq2[*pdv1.DynamicPartition, error] {
	return items(Pages(ctx, c.Definitions.ListDynamicPartitions, req), (*pdv1.ListDynamicPartitionsResponse).GetPartitions)
}

// PartitionKeys yields the partition keys of a ListPartitions request, page after page.
func (c *Client) PartitionKeys(ctx context.Context, req *pdv1.ListPartitionsRequest) iter.Seq2[string, error] {
	return items(Pages(ctx, c.Queries.ListPartitions, req), (*pdv1.ListPartitionsResponse).GetPartitionKeys)
}

// StalePartitions yields the partitions of a GetStaleness request, page after page.
func (c *Client) StalePartitions(ctx context.Context, req *pdv1.GetStalenessRequest) iter.Seq2[*pdv1.PartitionStaleness, error] {
	return items(Pages(ctx, c.Staleness.GetStaleness, req), (*pdv1.GetStalenessResponse).GetPartitions)
}

// PlannedRuns yields the runs of a PlanRuns request, page after page.
func (c *Client) PlannedRuns(ctx context.Context, req *pdv1.PlanRunsRequest) iter.Seq2[*pdv1.PlannedRun, error] {
	return items(Pages(ctx, c.Staleness.PlanRuns, req), (*pdv1.PlanRunsResponse).GetRuns)
}
