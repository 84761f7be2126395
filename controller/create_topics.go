package controller

// CreateTopics (key 19), versions 0–7. v1 added ValidateOnly and the per-topic ErrorMessage; v4 lets
// NumPartitions and ReplicationFactor be -1 for the defaults without a manual assignment (KIP-464; we
// read -1 that way at every version, as Kafka's controller does); v5 is flexible and answers with each
// new topic's configs, partition count and replication factor (KIP-525); v6 may answer
// THROTTLING_QUOTA_EXCEEDED, which we never do (no quotas); v7 answers with the topic id.
//
// The decisions are topicControl.createTopics'. Every topic that passes goes into one batch; the
// answer leaves when that batch commits. ValidateOnly answers the same without writing.

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleCreateTopics(ctx context.Context, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	topics := newTopicsOf(req)
	tc, rng := newTopicControl(c.cfg.MaxPartitionsPerRequest), requestRand()
	outcomes, code, msg := c.runTopicOp(ctx, "CreateTopics", req.ValidateOnly, func(img *metadatalog.Image) ([]*metadatapb.Record, []topicOutcome) {
		return tc.createTopics(img, topics, rng)
	})
	return createTopicsResponse(req, outcomes, code, msg), nil
}

// newTopicsOf reads the topics of a CreateTopics request.
func newTopicsOf(req *kmsg.CreateTopicsRequest) []newTopic {
	topics := make([]newTopic, len(req.Topics))
	for i, t := range req.Topics {
		nt := newTopic{name: t.Topic, numPartitions: t.NumPartitions, replicationFactor: t.ReplicationFactor}
		for _, a := range t.ReplicaAssignment {
			nt.assignments = append(nt.assignments, newAssignment{partition: a.Partition, replicas: a.Replicas})
		}
		for _, cfg := range t.Configs {
			nt.configs = append(nt.configs, requestedConfig{name: cfg.Name, value: cfg.Value})
		}
		topics[i] = nt
	}
	return topics
}

// createTopicsResponse answers a CreateTopics request from its outcomes, or with code and msg for
// every topic when the write itself did not complete.
func createTopicsResponse(req *kmsg.CreateTopicsRequest, outcomes []topicOutcome, code *kerr.Error, msg string) *kmsg.CreateTopicsResponse {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for i, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		switch {
		case code != nil:
			rt.ErrorCode, rt.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			rt.ErrorCode, rt.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		default:
			out := outcomes[i]
			rt.TopicID, rt.NumPartitions, rt.ReplicationFactor = out.id, out.numPartitions, out.replicationFactor
			rt.Configs = createdTopicConfigs(out.configs)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// createdTopicConfigs lists a new topic's configs for CreateTopics v5+.
func createdTopicConfigs(configs []metadatalog.ConfigSynonym) []kmsg.CreateTopicsResponseTopicConfig {
	out := make([]kmsg.CreateTopicsResponseTopicConfig, 0, len(configs))
	for _, c := range configs {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		value := c.Value
		rc.Name, rc.Value, rc.Source = c.Name, &value, int8(c.Source)
		out = append(out, rc)
	}
	return out
}

// alwaysAfterPending makes an answer that wrote nothing wait for the writes before it: it was decided
// against the speculative image, so it may rest on them (a topic "already exists" because a create is
// in flight). Kafka completes such a read-after-write the same way.
func alwaysAfterPending() bool { return true }

// requestRand is the random source of one topic request: topic ids and the placement seed. It is
// seeded from the system's entropy, so topic ids are unpredictable; the decisions themselves stay pure.
func requestRand() *mrand.Rand {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // crypto/rand.Read never fails
	return mrand.New(mrand.NewChaCha8(seed))
}

// runTopicOp runs one topic request on the event loop: decide yields the records and a per-topic
// outcome against the speculative image; validateOnly answers the same and writes nothing. code and
// msg, when set, are what every topic answers because the write itself did not complete.
func (c *Controller) runTopicOp(ctx context.Context, api string, validateOnly bool, decide func(img *metadatalog.Image) ([]*metadatapb.Record, []topicOutcome)) (outcomes []topicOutcome, code *kerr.Error, msg string) {
	outcomes, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, []topicOutcome) {
		records, outcomes := decide(img)
		c.logTopicOutcomes(api, validateOnly, offset, outcomes, len(records))
		if validateOnly {
			return nil, outcomes
		}
		return records, outcomes
	}, alwaysAfterPending)
	code, msg = c.topicWriteFailure(o)
	return outcomes, code, msg
}

// topicWriteFailure turns a write that did not complete into the code and message every topic of the
// request answers with.
func (c *Controller) topicWriteFailure(o writeOutcome) (*kerr.Error, string) {
	switch {
	case o.notController:
		switch leader := c.leader.Load(); leader {
		case 0:
			return kerr.NotController, "This controller is not the active controller, and no controller is active right now (an election is under way); retry shortly."
		case uint64(c.cfg.NodeID):
			return kerr.NotController, "This controller has just been elected and is still catching up with the metadata log; retry shortly."
		default:
			return kerr.NotController, fmt.Sprintf("This controller is not the active controller; node %d is. Send the request to a broker, which forwards it, or to the active controller.", leader)
		}
	case o.err != nil:
		return kerr.RequestTimedOut, "The request did not complete, and its outcome is unknown; check the topics before retrying: " + o.err.Error()
	}
	return nil, ""
}

// logTopicOutcomes logs what a topic request decided.
func (c *Controller) logTopicOutcomes(api string, validateOnly bool, offset uint64, outcomes []topicOutcome, records int) {
	failed := 0
	for _, o := range outcomes {
		if o.code != nil {
			failed++
			c.log.Debug(api+" refused a topic", "topic", o.name, "error", o.code.Message, "reason", o.msg)
		}
	}
	c.log.Info(api, "topics", len(outcomes), "failed", failed, "records", records, "validate_only", validateOnly, "offset", offset)
}
