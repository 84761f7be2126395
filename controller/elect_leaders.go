package controller

// ElectLeaders (key 43), versions 0–2: an operator asks for leader elections. v1 added ElectionType
// and a top-level error code; v2 is the first flexible version. Only preferred election (type 0, and
// v0's only kind) is done: unclean election (type 1) is refused with INVALID_REQUEST and a message, as
// this controller never elects a leader from outside the ISR. replicationControl.electLeaders decides
// it; the table of answers is there.
//
// A null topic list elects for every partition, so its records can be many: they are written as a
// non-atomic result, in bounded batches (writeInBatches), each election standing on its own. The
// answer is sent once the last batch commits.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleElectLeaders(ctx context.Context, req *kmsg.ElectLeadersRequest) (kmsg.Response, error) {
	if req.Topics != nil && len(req.Topics) == 0 {
		// Kafka: an empty list (unlike a null one) asks for nothing.
		return req.ResponseKind(), nil
	}
	resp, o := runOpWriting(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, *kmsg.ElectLeadersResponse) {
		records, resp := replicationControl{}.electLeaders(img, req)
		if len(records) > 0 {
			c.log.Info("electing preferred leaders", "partitions", len(records), "offset", offset)
		}
		return records, resp
	}, afterEveryPendingWrite, c.writeInBatches)
	var code *kerr.Error
	var msg string
	switch {
	case o.notController:
		code, msg = kerr.NotController, "this controller is not the active controller: send the request to the leader shown by `kraftctl quorum describe --status`"
	case o.err != nil:
		code, msg = kerr.RequestTimedOut, "the elections did not complete: "+o.err.Error()
	}
	if code != nil {
		resp = electLeadersFailed(req, code, msg)
	}
	return resp, nil
}

// electLeadersFailed answers every partition of the request with one error, as Kafka's
// ElectLeadersRequest.getErrorResponse does.
func electLeadersFailed(req *kmsg.ElectLeadersRequest, code *kerr.Error, msg string) *kmsg.ElectLeadersResponse {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.ErrorCode = code.Code
	for _, rt := range req.Topics {
		out := kmsg.NewElectLeadersResponseTopic()
		out.Topic = rt.Topic
		for _, id := range rt.Partitions {
			po := kmsg.NewElectLeadersResponseTopicPartition()
			po.Partition, po.ErrorCode, po.ErrorMessage = id, code.Code, &msg
			out.Partitions = append(out.Partitions, po)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp
}
