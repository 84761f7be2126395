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
	hb := heartbeatFromRequest(req)
	// The decision and its session bookkeeping live in membership (simcore.go), shared with test/sim.
	out, o := runMembership(ctx, c, hb.id, func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, heartbeatOutcome) {
		records, out := c.membership().heartbeat(img, hb, offset, now)
		if out.code == nil && out.from != out.to {
			c.log.Info("broker changes state", "broker", hb.id, "epoch", hb.epoch, "from", out.from, "to", out.to,
				"metadata_offset", hb.metadataOffset, "offset", offset, "records", len(records))
		}
		return records, out
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
	out.fill(resp)
	return resp, nil
}
