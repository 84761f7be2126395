package broker

// BrokerHeartbeat (key 63), sent to the active controller every HeartbeatInterval; the version is the
// newest both sides speak (v1 added OfflineLogDirs, v2 CordonedLogDirs, both tagged fields we leave
// empty). It reports CurrentMetadataOffset, the offset of the image this broker has applied, which is
// what the controller unfences on; WantShutDown during a controlled shutdown. The answer's IsFenced moves
// the broker between RECOVERY and RUNNING, and ShouldShutDown ends a controlled shutdown.

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heartbeatLoop keeps the registration at epoch alive. It reports true when the controller no longer
// holds it and the broker must register again; false when the session is over (stopped, or a
// controlled shutdown was granted).
func (b *Broker) heartbeatLoop(epoch int64) (reregister bool) {
	// The first heartbeat goes at once: it is what tells the controller our offset, and so what gets a
	// freshly registered broker unfenced.
	next := time.NewTimer(0)
	defer next.Stop()
	bo := b.newBackoff()
	shutdownReq := b.shutdownCtx.Done()
	b.lastHeartbeat.Store(time.Now().UnixNano())
	warnedSilence := false
	reported := int64(-1) // the offset the last heartbeat carried

	// noteShutdown moves to PENDING_CONTROLLED_SHUTDOWN as soon as a shutdown is requested, even in
	// the middle of a search for the controller, so the next attempt already carries WantShutDown.
	noteShutdown := func() {
		if shutdownReq != nil && b.shutdownCtx.Err() != nil {
			shutdownReq = nil
			b.transition(lifecycleEvent{kind: evShutdownRequested})
			b.log.Info("controlled shutdown: asking the controller to move this broker's leaderships away", "broker_epoch", epoch)
		}
	}
	mk := func() kmsg.Request {
		noteShutdown()
		if silent := time.Since(time.Unix(0, b.lastHeartbeat.Load())); silent > b.cfg.SessionTimeout && !warnedSilence {
			warnedSilence = true
			b.log.Warn("no heartbeat answered for longer than the session timeout; the controller has probably fenced this broker",
				"broker_epoch", epoch, "silent", silent.Round(time.Millisecond), "session_timeout", b.cfg.SessionTimeout)
		}
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = b.cfg.NodeID
		req.BrokerEpoch = epoch
		req.CurrentMetadataOffset = int64(b.image.Load().Offset)
		reported = req.CurrentMetadataOffset
		// The controller decides unfencing from CurrentMetadataOffset; asking to stay fenced would
		// only matter to a broker that knows it cannot serve, and this one can once it is current.
		req.WantFence = false
		req.WantShutdown = b.State() == StatePendingControlledShutdown
		return req
	}

	for {
		select {
		case <-b.ctx.Done():
			return false
		case <-shutdownReq:
			noteShutdown()
		case <-next.C:
		case <-b.applied:
			// Kafka does the same: a fenced broker that has applied its own registration says so at
			// once, since that is all the controller waits for to unfence it.
			// Only the first time the applied offset crosses the epoch, so a broker the controller
			// keeps fenced for other reasons does not heartbeat on every batch.
			if b.State() != StateRecovery || reported >= epoch || int64(b.image.Load().Offset) < epoch {
				continue
			}
		}
		if b.State() == StateShuttingDown {
			b.controlledShutdownDone()
			return false
		}
		resp, _, err := b.callActive(b.ctx, "BrokerHeartbeat", mk)
		if err != nil {
			return false
		}
		r := resp.(*kmsg.BrokerHeartbeatResponse)
		wait := b.cfg.HeartbeatInterval
		switch err := kerr.ErrorForCode(r.ErrorCode); {
		case err == nil:
			bo.reset()
			b.lastHeartbeat.Store(time.Now().UnixNano())
			warnedSilence = false
			from := b.State()
			to := b.transition(lifecycleEvent{kind: evHeartbeat, fenced: r.IsFenced, shouldShutDown: r.ShouldShutdown})
			switch {
			case from == StateRecovery && to == StateRunning:
				b.log.Info("unfenced: the broker is running", "broker_epoch", epoch, "offset", b.image.Load().Offset)
			case from == StateRunning && to == StateRecovery:
				b.log.Warn("fenced by the controller; recovering", "broker_epoch", epoch, "offset", b.image.Load().Offset)
			case to == StateShuttingDown:
				b.log.Info("controlled shutdown: the controller lets this broker go", "broker_epoch", epoch)
				b.controlledShutdownDone()
				return false
			}
		case errors.Is(err, kerr.StaleBrokerEpoch), errors.Is(err, kerr.BrokerIDNotRegistered):
			b.log.Warn("the controller no longer holds this broker's registration; registering again", "broker_epoch", epoch, "err", err)
			if b.transition(lifecycleEvent{kind: evSessionLost}) == StateShuttingDown {
				b.log.Info("controlled shutdown: no registration left, so nothing to hand over")
				b.controlledShutdownDone()
				return false
			}
			return true
		default:
			b.log.Warn("heartbeat refused; retrying", "broker_epoch", epoch, "controller", b.active.Load(), "err", err)
			wait = bo.next()
		}
		if b.State() == StatePendingControlledShutdown {
			wait = min(wait, pendingShutdownHeartbeat)
		}
		next.Reset(wait)
	}
}
