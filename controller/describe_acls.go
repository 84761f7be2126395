package controller

// DescribeAcls (key 29), versions 0–3: the bindings a filter matches, grouped by resource pattern.
// v1 added the filter's ResourcePatternType (KIP-290; v0 means LITERAL, which kmsg fills in) and each
// resource's; v2 is flexible; v3 adds the USER resource type (KIP-554), which needs nothing here.
//
// The controller answers from its committed image, on standby controllers too, with the answer
// brokers give (metadatalog.Image.DescribeACLsResponse).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDescribeACLs(_ context.Context, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	return c.Image().DescribeACLsResponse(req), nil
}
