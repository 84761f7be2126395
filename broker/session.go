package broker

// The broker's session with the active controller: register (BrokerRegistration), then heartbeat
// (BrokerHeartbeat) until the session is lost, in which case register again, or until a controlled
// shutdown is granted. One goroutine runs it and is the only one that moves the lifecycle state while
// the broker runs.

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) runSession() {
	for {
		// A shutdown requested before the broker holds a registration ends the session at once: no
		// controller has anything of ours to hand over.
		regCtx, cancel := context.WithCancel(b.ctx)
		stop := context.AfterFunc(b.shutdownCtx, cancel)
		epoch, err := b.register(regCtx)
		stop()
		cancel()
		if err != nil {
			if b.ctx.Err() == nil && b.shutdownCtx.Err() != nil {
				b.transition(lifecycleEvent{kind: evShutdownRequested})
				b.log.Info("controlled shutdown: not registered, so nothing to hand over")
				b.controlledShutdownDone()
			}
			return
		}
		b.epoch.Store(epoch)
		b.transition(lifecycleEvent{kind: evRegistered})
		b.log.Info("registered with the controller quorum; fenced until the controller sees this broker catch up",
			"broker_epoch", epoch, "controller", b.active.Load(), "offset", b.image.Load().Offset)
		if !b.heartbeatLoop(epoch) {
			return
		}
		b.epoch.Store(-1)
	}
}

// callActive sends the request mk builds to the active controller. It starts with the controller it
// last knew as active, or with a random voter, and moves round robin to the next voter, after a
// backoff, whenever one cannot be reached or answers NOT_CONTROLLER. It returns the first other answer,
// and the voter that gave it, who is then the active controller. It fails only when ctx ends.
//
// mk is called for every attempt, so each carries fresh values (the applied offset, a shutdown wish).
func (b *Broker) callActive(ctx context.Context, what string, mk func() kmsg.Request) (kmsg.Response, int32, error) {
	bo := b.newBackoff()
	id := b.active.Load()
	if !b.q.known(id) {
		id = b.searchStart()
	}
	// A new active controller gives every broker a fresh session and fences those that do not
	// heartbeat within it, so the search must find it well inside one session: one attempt may take
	// at most a heartbeat interval (a hung controller must not eat the session), the voters of one
	// sweep are tried back to back, and a pause comes only after a whole sweep failed, never longer
	// than half a heartbeat interval.
	attemptTimeout := min(b.cfg.RequestTimeout, max(b.cfg.HeartbeatInterval, 500*time.Millisecond))
	maxPause := max(b.cfg.HeartbeatInterval/2, b.cfg.Knobs.BackoffMin)
	for failures := 1; ; failures++ {
		reqCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := b.q.request(reqCtx, id, mk())
		cancel()
		if ctx.Err() != nil {
			return nil, -1, ctx.Err()
		}
		if err == nil && responseErrorCode(resp) != kerr.NotController.Code {
			b.setActive(id)
			return resp, id, nil
		}
		b.lostActive(id)
		if err != nil {
			// One line per outage, then one per 20 attempts: a dead controller is news once, and a
			// quorum unreachable for long should keep saying so without flooding the log.
			lvl := slog.LevelDebug
			if failures == 1 || failures%20 == 0 {
				lvl = slog.LevelWarn
			}
			b.log.Log(ctx, lvl, "cannot reach a controller; trying the next one", "request", what, "controller", id, "attempts", failures, "err", err)
		} else {
			b.log.Debug("not the active controller; trying the next one", "request", what, "controller", id)
		}
		id = b.q.next(id)
		if failures%len(b.q.ids) != 0 {
			continue
		}
		if !sleep(ctx, min(bo.next(), maxPause)) {
			return nil, -1, ctx.Err()
		}
	}
}

// searchStart is where a search for the active controller begins: a random voter, so brokers that
// start together spread their first attempts over the quorum.
func (b *Broker) searchStart() int32 {
	if b.cfg.Knobs.NoRandomStart {
		return b.q.at(0)
	}
	return b.q.at(rand.IntN(len(b.q.ids)))
}

// setActive records id as the active controller.
func (b *Broker) setActive(id int32) {
	if old := b.active.Swap(id); old != id {
		b.log.Info("active controller changed", "from", old, "to", id)
		poke(b.activeChanged)
	}
}

// lostActive forgets id as the active controller if it was the one: it just failed or refused.
func (b *Broker) lostActive(id int32) {
	if b.active.CompareAndSwap(id, -1) {
		b.log.Info("lost the active controller; searching", "was", id)
	}
}

// responseErrorCode is the top-level error code of the quorum responses the session sends.
func responseErrorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		return r.ErrorCode
	case *kmsg.BrokerHeartbeatResponse:
		return r.ErrorCode
	case *kmsg.AlterPartitionResponse:
		return r.ErrorCode
	}
	return 0
}

// controlledShutdownDone tells Shutdown that the controller has let the broker go.
func (b *Broker) controlledShutdownDone() {
	b.once.controlled.Do(func() { close(b.controlledDone) })
}
