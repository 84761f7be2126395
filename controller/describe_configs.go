package controller

// DescribeConfigs (key 32), versions 0–4: the configs of topics and brokers. v1 added each config's
// Source and, on request, its synonyms (v0 has IsDefault instead); v2 changes only throttling; v3 adds
// each config's type and, on request, its documentation; v4 is flexible.
//
// The controller answers from its committed image, on standby controllers too, as node cfg.NodeID:
// metadatalog.Image.DescribeConfigs resolves values and sources, and the BROKER resource named by this
// node's id lists the dynamic broker configs with their effective values. Kafka would list a node's
// static configuration as well; a node's configuration file holds none of these configs, so nothing is
// left out.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDescribeConfigs(_ context.Context, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	return c.Image().DescribeConfigsResponse(c.cfg.NodeID, req), nil
}
