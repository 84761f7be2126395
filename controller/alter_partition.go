package controller

// AlterPartition (key 56), versions 0–3: a partition leader reports that its ISR shrank or grew.
// v1 added LeaderRecoveryState; v2 names topics by id instead of by name and may answer
// INELIGIBLE_REPLICA, NEW_LEADER_ELECTED and UNKNOWN_TOPIC_ID; v3 sends each ISR member with its broker
// epoch (NewEpochISR, KIP-903) instead of the bare ids of NewISR. replicationControl.alterPartition
// decides it; the table of answers is there.
//
// Every accepted partition's answer describes the partition once its change commits, so the answer
// waits for that commit; an answer that writes nothing waits for every write still in flight, since
// it describes the speculative image. NEW_LEADER_ELECTED never happens: without reassignments an ISR
// change never moves the leader.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleAlterPartition(ctx context.Context, req *kmsg.AlterPartitionRequest) (kmsg.Response, error) {
	resp, o := runOpWriting(ctx, c, func(img *metadatalog.Image, _ uint64, _ time.Time) ([]*metadatapb.Record, *kmsg.AlterPartitionResponse) {
		records, resp := replicationControl{}.alterPartition(img, req)
		if resp.ErrorCode != 0 {
			c.log.Info("refused an AlterPartition", "broker", req.BrokerID, "broker_epoch", req.BrokerEpoch, "error", kerr.ErrorForCode(resp.ErrorCode))
		} else if len(records) > 0 {
			c.log.Debug("altering ISRs", "broker", req.BrokerID, "partitions", len(records))
		}
		return records, resp
	}, afterEveryPendingWrite, c.writeInBatches)
	var code *kerr.Error
	switch {
	case o.notController:
		code = kerr.NotController
	case o.err != nil:
		code = kerr.RequestTimedOut
	}
	if code != nil {
		// The broker retries the whole request against the controller it finds next.
		resp = req.ResponseKind().(*kmsg.AlterPartitionResponse)
		resp.ErrorCode = code.Code
	}
	return resp, nil
}

// afterEveryPendingWrite is runOp's mustWait for answers read from the speculative image: one that
// writes nothing still waits for every write before it, as Kafka completes a read-only write event.
func afterEveryPendingWrite() bool { return true }
