package controller

// DeleteTopics (key 20), versions 0–6. v0–v3 are the same; v4 is flexible; v5 adds the per-topic
// ErrorMessage (and THROTTLING_QUOTA_EXCEEDED, which we never answer: no quotas); v6 names each topic by
// name or by id and answers with both.
//
// The decisions are topicControl.deleteTopics'. Each deleted topic is one RemoveTopicRecord, all in one
// batch; replaying it drops the topic's partitions and configs. Answers are in request order (Kafka
// shuffles them, which no client relies on).

import (
	"context"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDeleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	var refs []topicRef
	if req.Version >= 6 {
		for _, t := range req.Topics {
			refs = append(refs, topicRef{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, name := range req.TopicNames {
			refs = append(refs, topicRef{name: &name})
		}
	}
	tc := newTopicControl(c.cfg.MaxPartitionsPerRequest)
	outcomes, code, msg := c.runTopicOp(ctx, "DeleteTopics", false, func(img *metadatalog.Image) ([]*metadatapb.Record, []topicOutcome) {
		return tc.deleteTopics(img, refs)
	})
	for i, ref := range refs {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = ref.name, ref.id
		switch {
		case code != nil:
			rt.ErrorCode, rt.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			rt.ErrorCode, rt.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		default:
			name := outcomes[i].name
			rt.Topic, rt.TopicID = &name, outcomes[i].id
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
