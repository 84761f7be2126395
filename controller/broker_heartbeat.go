package controller

// BrokerHeartbeat (key 63), versions 0–2. v1 added OfflineLogDirs and v2 CordonedLogDirs, both tagged
// fields; this controller keeps no log directories yet, so it reads and ignores them. No version has an
// error message, so a refusal carries only its code.
//
// Every valid heartbeat refreshes the broker's session, which is soft state and never written. Only a
// change of state writes a record (see clusterControl for the state machine), so a steady cluster's
// heartbeats cost the log nothing, and their answers leave at once.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleBrokerHeartbeat(ctx context.Context, req *kmsg.BrokerHeartbeatRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	hb := brokerHeartbeat{
		id: req.BrokerID, epoch: req.BrokerEpoch, metadataOffset: req.CurrentMetadataOffset,
		wantFence: req.WantFence, wantShutDown: req.WantShutdown,
	}
	out, o := runMembership(ctx, c, hb.id, func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, heartbeatOutcome) {
		progress := shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { return c.sessions.lowestActiveOffset(img) }}
		if sess := c.sessions.get(hb.id); sess != nil && sess.epoch == hb.epoch {
			progress.startedAt = sess.controlledShutdownOffset
		}
		out := c.cluster.heartbeat(img, hb, offset, progress)
		if out.code != nil {
			return nil, out
		}
		sess := c.sessions.touch(hb.id, hb.epoch, now)
		sess.metadataOffset = hb.metadataOffset
		sess.controlledShutdownOffset = -1
		if out.to == brokerControlledShutdown {
			sess.controlledShutdownOffset = out.shutdownOffset
		}
		if out.from != out.to {
			c.log.Info("broker changes state", "broker", hb.id, "epoch", hb.epoch, "from", out.from, "to", out.to,
				"metadata_offset", hb.metadataOffset, "offset", offset, "records", len(out.records))
		}
		return out.records, out
	})
	code := out.code
	switch {
	case o.notController:
		code = kerr.NotController
	case o.err != nil:
		code = kerr.RequestTimedOut
	}
	if code != nil {
		if out.msg != "" {
			c.log.Debug("refused a broker heartbeat", "broker", hb.id, "error", code.Message, "reason", out.msg)
		}
		resp.ErrorCode = code.Code
		return resp, nil
	}
	resp.IsCaughtUp = out.caughtUp
	resp.IsFenced = out.to.fenced()
	resp.ShouldShutdown = out.to == brokerShutdownNow
	return resp, nil
}
