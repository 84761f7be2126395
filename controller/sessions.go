package controller

import (
	"context"
	"math"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
)

// DefaultSessionTimeout is broker.session.timeout.ms's default, as in Kafka.
const DefaultSessionTimeout = 9 * time.Second

// maxFencesPerBatch bounds how many expired brokers one write fences, so that a mass expiry becomes
// several writes rather than one giant one; the leader moves of a write are bounded in turn by
// maxRecordsPerBatch (writeInBatches).
const maxFencesPerBatch = 128

// brokerSession is the soft state of one registered broker, held only by the active controller.
type brokerSession struct {
	id       int32
	epoch    int64
	deadline time.Time
	// metadataOffset is the offset the broker last reported having applied; -1 before it reported one
	// to this controller.
	metadataOffset int64
	// controlledShutdownOffset is where its controlled shutdown was written; -1 if none began here.
	controlledShutdownOffset int64

	prev, next *brokerSession
}

// brokerSessions keeps every session in a list ordered by deadline. The timeout is the same for every
// broker and the loop's clock only moves forward, so a refreshed session always belongs at the back:
// refresh, expiry and removal are O(1), and finding the expired ones costs only what expired.
type brokerSessions struct {
	timeout time.Duration
	byID    map[int32]*brokerSession
	// root is the sentinel of a circular list: root.next has the earliest deadline, root.prev the latest.
	root brokerSession
}

func newBrokerSessions(timeout time.Duration) *brokerSessions {
	if timeout <= 0 {
		timeout = DefaultSessionTimeout
	}
	s := &brokerSessions{timeout: timeout, byID: map[int32]*brokerSession{}}
	s.root.next, s.root.prev = &s.root, &s.root
	return s
}

func (s *brokerSessions) len() int { return len(s.byID) }

func (s *brokerSessions) get(id int32) *brokerSession { return s.byID[id] }

// touch starts or refreshes a broker's session: its deadline becomes now + timeout. A session of another
// epoch (a new incarnation) starts over.
func (s *brokerSessions) touch(id int32, epoch int64, now time.Time) *brokerSession {
	sess := s.byID[id]
	if sess == nil {
		sess = &brokerSession{id: id}
		s.byID[id] = sess
	} else {
		s.unlink(sess)
	}
	if sess.epoch != epoch || sess.deadline.IsZero() {
		sess.epoch, sess.metadataOffset, sess.controlledShutdownOffset = epoch, -1, -1
	}
	sess.deadline = now.Add(s.timeout)
	// Normally at the back; walking back from there only matters if the clock stepped back.
	at := s.root.prev
	for at != &s.root && at.deadline.After(sess.deadline) {
		at = at.prev
	}
	sess.prev, sess.next = at, at.next
	at.next.prev = sess
	at.next = sess
	return sess
}

func (s *brokerSessions) unlink(sess *brokerSession) {
	sess.prev.next = sess.next
	sess.next.prev = sess.prev
	sess.prev, sess.next = nil, nil
}

// liveFor is how long the broker's session has left at now; 0 if it has none or it has expired.
func (s *brokerSessions) liveFor(id int32, now time.Time) time.Duration {
	sess := s.byID[id]
	if sess == nil || !now.Before(sess.deadline) {
		return 0
	}
	return sess.deadline.Sub(now)
}

func (s *brokerSessions) remove(id int32) {
	if sess := s.byID[id]; sess != nil {
		s.unlink(sess)
		delete(s.byID, id)
	}
}

// popExpired removes and returns up to max sessions whose deadline is not after now, earliest first.
func (s *brokerSessions) popExpired(now time.Time, max int) []expiredSession {
	var out []expiredSession
	for len(out) < max {
		sess := s.root.next
		if sess == &s.root || sess.deadline.After(now) {
			break
		}
		out = append(out, expiredSession{id: sess.id, epoch: sess.epoch})
		s.unlink(sess)
		delete(s.byID, sess.id)
	}
	return out
}

// reset drops every session: this node is no longer the active controller.
func (s *brokerSessions) reset() {
	clear(s.byID)
	s.root.next, s.root.prev = &s.root, &s.root
}

// activate gives every registered broker a fresh session, as a new active controller must: it cannot
// know when they last heard from the old one.
func (s *brokerSessions) activate(brokers []*metadatalog.Broker, now time.Time) {
	s.reset()
	for _, b := range brokers {
		s.touch(b.ID, b.Epoch, now)
	}
}

// lowestActiveOffset is the lowest metadata offset reported by the active brokers (unfenced and not in
// controlled shutdown), math.MaxInt64 if there are none. It walks every session, which is fine for what
// asks: the heartbeat of a broker in controlled shutdown that leads nothing any more.
func (s *brokerSessions) lowestActiveOffset(img *metadatalog.Image) int64 {
	lowest := int64(math.MaxInt64)
	for id, sess := range s.byID {
		b, ok := img.Broker(id)
		if !ok || b.Epoch != sess.epoch || b.Fenced || b.InControlledShutdown {
			continue
		}
		lowest = min(lowest, sess.metadataOffset)
	}
	return lowest
}

// sessionCheckInterval is how often the loop looks for expired sessions. A look costs O(1) when nothing
// expired, so this only bounds how late a fence can come.
func sessionCheckInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/8, 10*time.Millisecond), 125*time.Millisecond)
}

// syncSessions keeps the soft state in step with activity, after each log event: a new active controller
// gives every registered broker a fresh session, and one that stopped being active forgets them all.
func (c *Controller) syncSessions(activated bool) {
	switch {
	case activated:
		c.sessions.activate(c.state.committed.Brokers(), time.Now())
	case !c.state.active && c.sessions.len() > 0:
		c.sessions.reset()
	}
}

// expireSessions fences every unfenced broker whose session expired by now, in bounded batches.
func (c *Controller) expireSessions(now time.Time) {
	if !c.state.active {
		return
	}
	for {
		// membership.expire (simcore.go) is shared with test/sim.
		records, fenced := c.membership().expire(c.state.speculative, now)
		if len(records) == 0 {
			return
		}
		c.log.Info("fencing brokers whose sessions expired", "brokers", fenced, "session_timeout", c.sessions.timeout, "offset", c.state.nextOffset)
		// The leader moves come first and the fences last, so they may span batches (writeInBatches).
		if err := c.writeInBatches(records, func(bool) {}); err != nil {
			c.fatal(err)
			return
		}
	}
}

// runMembership is runOp for a broker's request: when it writes nothing but a change to that broker is
// still in flight, its answer waits for that change to commit, as Kafka's does. Its records are a
// non-atomic result, as in Kafka: a state change and the leader moves it brings may span batches
// (writeInBatches), in the order clusterControl puts them.
func runMembership[T any](ctx context.Context, c *Controller, broker int32, op func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, T)) (T, writeOutcome) {
	return runOpWriting(ctx, c, op, func() bool {
		return registrationInFlight(c.state.speculative, c.state.committed, broker) // simcore.go, shared with test/sim
	}, c.writeInBatches)
}
