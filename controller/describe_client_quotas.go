package controller

// DescribeClientQuotas (key 48), versions 0–1: the client quotas whose entities match a filter
// (KIP-546). v1 is the first flexible version and changes nothing else.
//
// The controller answers from its committed image, on standby controllers too, with the filter
// brokers use (metadatalog.Image.DescribeClientQuotasResponse). Below metadata.version 1.1-IV1 (level
// 4) the answer is UNSUPPORTED_VERSION saying so.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDescribeClientQuotas(_ context.Context, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
	return c.Image().DescribeClientQuotasResponse(req), nil
}
