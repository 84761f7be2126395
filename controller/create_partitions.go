package controller

// CreatePartitions (key 37), versions 0–3. v1 is v0; v2 is flexible; v3 may answer
// THROTTLING_QUOTA_EXCEEDED, which we never do (no quotas).
//
// The decisions are topicControl.createPartitions'. The new partitions of every topic that passes go
// into one batch as PartitionRecords, placed like a new topic's unless the request assigns them;
// ValidateOnly answers the same without writing.

import (
	"context"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleCreatePartitions(ctx context.Context, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	incs := make([]partitionIncrease, len(req.Topics))
	for i, t := range req.Topics {
		incs[i] = partitionIncrease{name: t.Topic, count: t.Count}
		if t.Assignment != nil {
			incs[i].assignments = make([][]int32, len(t.Assignment))
			for j, a := range t.Assignment {
				incs[i].assignments[j] = a.Replicas
			}
		}
	}
	tc, rng := newTopicControl(c.cfg.MaxPartitionsPerRequest), requestRand()
	outcomes, code, msg := c.runTopicOp(ctx, "CreatePartitions", req.ValidateOnly, func(img *metadatalog.Image) ([]*metadatapb.Record, []topicOutcome) {
		return tc.createPartitions(img, incs, rng)
	})
	for i, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		switch {
		case code != nil:
			rt.ErrorCode, rt.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			rt.ErrorCode, rt.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
