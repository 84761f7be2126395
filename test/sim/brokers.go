package sim

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/broker"
	"github.com/kraftgo/kraft/controller"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// Brokers in the simulation. Each simulated broker runs the broker's own pure code (broker.NextState for
// its lifecycle, broker.RegistrationRequest and broker.FetchRequest for what it sends, broker.ApplyFetch
// to follow the log, broker.MetadataResponse for what clients would see), and each node's simulated
// controller runs the controller's (controller.MembershipCore, controller.FetchGate,
// controller.EncodeFetchEntries). What the sim supplies is only what the product's goroutines and
// sockets do: timers, retries, the event loop's speculative image and parked answers.

const (
	// stepDuration maps steps to the clock the controller's sessions read: a Raft tick is tickEvery
	// steps, 100ms at the default 1s election timeout, so a step is 10ms.
	stepDuration = 10 * time.Millisecond
	// Broker timing, in steps. Kafka's defaults are a 2s heartbeat and a 9s session; these keep the same
	// ratio at a scale where a 5,000-step run sees many sessions expire.
	heartbeatEvery           = 30
	pendingShutdownHeartbeat = 10
	sessionTimeout           = 150 * stepDuration
	// rpcTimeout is how long a broker waits for an answer before it tries another controller.
	rpcTimeout = 80
	backoffMin = 10
	backoffMax = 160
	// fetchIdle is the pause after a log-follow answer that brought nothing, standing in for the long
	// poll; an answer with entries is followed by the next fetch at once.
	fetchIdle       = 10
	fetchMaxEntries = 256
	// controlledShutdownTimeout is how long a broker waits for its controlled shutdown before it stops
	// anyway, as Shutdown's context would.
	controlledShutdownTimeout = 400
	// brokerSettleSteps bounds how long after the quorum converges every broker must be registered and
	// unfenced: a few session timeouts (a restarted broker waits out its old incarnation's session).
	brokerSettleSteps = 4000

	simClusterID = "sim-cluster"
	simListener  = "PLAINTEXT"
)

// simEpoch is the clock's zero.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *sim) clock() time.Time { return simEpoch.Add(time.Duration(s.now) * stepDuration) }

// Sabotage breaks one behaviour on purpose, so the self-check can show that the checker notices. Only
// TestBrokenBrokersAreCaught, TestBrokenSnapshotsAreCaught and TestBrokenDowngradesAreCaught set it.
type Sabotage int

const (
	SabotageNone Sabotage = iota
	// SabotageEpochOffByOne registers brokers at an epoch one past the offset their record lands at
	// (invariant 7).
	SabotageEpochOffByOne
	// SabotageDoubleFence writes every session-expiry fence twice (invariant 8).
	SabotageDoubleFence
	// SabotageMetadataListsFenced lets Metadata answers list fenced brokers too (invariant 9).
	SabotageMetadataListsFenced
	// SabotageStaleOffset makes brokers report offset 0 in every heartbeat, so the controller never
	// sees them catch up (invariant 10).
	SabotageStaleOffset
	// SabotageFencedKeepLeading drops the leader moves from every session-expiry fence, so a fenced
	// broker keeps leading (invariant 12).
	SabotageFencedKeepLeading
	// SabotageSnapshotDropsRecord leaves one record of the image out of every snapshot a node writes
	// (invariant 14).
	SabotageSnapshotDropsRecord
	// SabotageSnapshotLoadDropsRecord skips the first record of a snapshot whenever a node loads one,
	// at a restart or from the leader, so the file is right and the image built from it is not
	// (invariant 15).
	SabotageSnapshotLoadDropsRecord
	// SabotageSplitDowngrade writes an unsafe downgrade as two batches, the removals and then, once
	// they have committed, the level, so that a failover in between leaves the removals without the
	// downgrade (invariant 18).
	SabotageSplitDowngrade
	// SabotageDowngradeKeepsOne leaves the first removal out of every unsafe downgrade that removes
	// something, so the level drops under an ACL or quota that remains (invariant 18).
	SabotageDowngradeKeepsOne
)

// BrokerStats say what the brokers went through.
type BrokerStats struct {
	Brokers                                  int
	Crashes, Isolations, Shutdowns, Granted  int
	Registrations, Fences, Unfences          int // committed, counted once per offset
	ExpiryBatches, Activations, Resignations int // by the simulated controllers
	AnswersDropped                           int // parked answers lost with leadership
	Duplicates, SessionsLost, NotController  int // answers brokers got
	// DuplicatesOfFenced counts DUPLICATE_BROKER_REGISTRATION refusals on behalf of a registration
	// that was already fenced (Kafka's hasValidSession does not count a fenced broker's session).
	DuplicatesOfFenced            int
	FetchRefusals, MetadataChecks int
	MetadataWithFenced            int // Metadata answers from an image holding a fenced broker
	TopicsCreated, TopicsRefused  int // by the simulated controllers' CreateTopics, when written
	LeaderMoves, OfflinePartition int // committed leader changes, and changes to leader -1
	ISRGrown, ISRRefused          int // partitions in AlterPartition answers brokers got: granted, refused
	Elections                     int // preferred-leader elections written
}

func (b *BrokerStats) add(o BrokerStats) {
	b.Brokers += o.Brokers
	b.Crashes += o.Crashes
	b.Isolations += o.Isolations
	b.Shutdowns += o.Shutdowns
	b.Granted += o.Granted
	b.Registrations += o.Registrations
	b.Fences += o.Fences
	b.Unfences += o.Unfences
	b.ExpiryBatches += o.ExpiryBatches
	b.Activations += o.Activations
	b.Resignations += o.Resignations
	b.AnswersDropped += o.AnswersDropped
	b.Duplicates += o.Duplicates
	b.DuplicatesOfFenced += o.DuplicatesOfFenced
	b.SessionsLost += o.SessionsLost
	b.NotController += o.NotController
	b.FetchRefusals += o.FetchRefusals
	b.MetadataChecks += o.MetadataChecks
	b.MetadataWithFenced += o.MetadataWithFenced
	b.TopicsCreated += o.TopicsCreated
	b.TopicsRefused += o.TopicsRefused
	b.LeaderMoves += o.LeaderMoves
	b.OfflinePartition += o.OfflinePartition
	b.ISRGrown += o.ISRGrown
	b.ISRRefused += o.ISRRefused
	b.Elections += o.Elections
}

// ctlState is one node's simulated controller: the event loop's side of quorumState (active, the
// speculative image, the next offset, parked answers) around the product's MembershipCore.
type ctlState struct {
	core   *controller.MembershipCore
	active bool
	epoch  uint64
	next   uint64
	spec   *metadatalog.Image
	parked []parkedAnswer
	// resume is set on activation: the leadership moves an earlier controller left unfinished are
	// written before anything else (controller.ResumeLeadership).
	resume bool
	// splitting is set while a downgrade split by SabotageSplitDowngrade has its level still to write.
	splitting bool
}

// parkedAnswer waits for offset to commit; reply is nil for a write nobody waits on.
type parkedAnswer struct {
	offset uint64
	reply  func()
}

// expectation is where the active controller expects a proposal to land; offset 0 when it predicted
// nothing (it was not active).
type expectation struct{ offset, epoch uint64 }

type simBroker struct {
	id          int32
	cfg         broker.Config
	up          bool
	life        uint64 // process starts so far; answers meant for an earlier one are dropped
	incarnation [16]byte
	restartAt   int64

	state broker.State
	epoch int64 // -1 while unregistered
	img   *metadatalog.Image

	// The session: at most one registration or heartbeat in flight, as the broker's session goroutine.
	call       *brokerCall
	active     uint64 // the controller it believes active; 0 when unknown
	searchNext uint64 // where a search for the active controller goes next; 0: a random voter
	nextCallAt int64
	backoff    int64
	reported   int64 // the offset the last heartbeat carried
	shutdownBy int64 // when a controlled shutdown gives up; 0 when none is under way

	// The leader's ISR expansion: at most one AlterPartition in flight, and a pause between them.
	alter       *brokerCall
	nextAlterAt int64

	// The follower.
	fetch       *brokerCall
	fetchFrom   uint64 // a leader a refusal named, tried next
	nextFetchAt int64

	// Isolation from the controllers: from all of them, or from one.
	cutAll  bool
	cutNode uint64
	healAt  int64
}

type brokerCall struct {
	id       uint64
	node     uint64
	deadline int64
}

// rpc is a request from a broker to a controller node, or the answer going back.
type rpc struct {
	at       int64
	seq      uint64
	node     uint64
	b        *simBroker
	life     uint64
	call     uint64
	toBroker bool
	req      kmsg.Request
	resp     kmsg.Response
	// snap is the file a FetchSnapshot answer carries, nil when the node does not hold it.
	snap *snapFile
}

type rpcQueue []*rpc

func (q rpcQueue) Len() int { return len(q) }
func (q rpcQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q rpcQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *rpcQueue) Push(x any)   { *q = append(*q, x.(*rpc)) }
func (q *rpcQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return r
}

// logBroker is what the committed log says about one broker id, for invariants 7 and 8.
type logBroker struct {
	registered  bool
	epoch       int64
	incarnation string
	fenced      bool
	fencedAt    uint64 // offset of the fence (or fenced registration) that fenced it
	byChange    bool   // fenced by a BrokerRegistrationChange rather than by registering
	maxEpoch    int64
}

// brokerWorld is the brokers' part of the simulation.
type brokerWorld struct {
	brokers []*simBroker
	q       rpcQueue
	seq     uint64
	calls   uint64
	topics  int // topics the simulated controllers have asked to create, for unique names
	log     map[int32]*logBroker
	// histImages[i] is the image after offset i+1 of the committed history, to check brokers' images.
	histImages []*metadatalog.Image
	due        []*rpc
}

func newCtl() *ctlState {
	return &ctlState{core: controller.NewMembershipCore(simClusterID, sessionTimeout)}
}

func (s *sim) initBrokers() {
	n := s.cfg.Brokers
	if n == 0 {
		n = 3 + s.rng.IntN(3)
	}
	s.bw.log = map[int32]*logBroker{}
	s.stats.Brokers.Brokers = max(n, 0)
	// Broker ids start at 1, so a broker may share its id with a voter, as in combined mode.
	for i := 1; i <= n; i++ {
		b := &simBroker{id: int32(i)}
		b.cfg = broker.Config{
			NodeID: b.id, ClusterID: simClusterID,
			Listeners: []broker.Listener{{Name: simListener, Host: fmt.Sprintf("broker-%d.sim", i), Port: 9092}},
		}
		s.bw.brokers = append(s.bw.brokers, b)
		s.startBroker(b)
	}
}

func (s *sim) startBroker(b *simBroker) {
	b.up = true
	b.life++
	b.incarnation = [16]byte{}
	for i := range 2 {
		v := s.rng.Uint64()
		for j := range 8 {
			b.incarnation[i*8+j] = byte(v >> (8 * j))
		}
	}
	b.img = metadatalog.EmptyImage()
	b.state = broker.NextState(broker.StateNotRunning, broker.LifecycleEvent{Kind: broker.LifecycleStart})
	b.epoch, b.reported = -1, -1
	b.call, b.fetch, b.alter = nil, nil, nil
	b.active, b.searchNext, b.fetchFrom = 0, 0, 0
	b.nextCallAt, b.nextFetchAt, b.backoff, b.shutdownBy = s.now, s.now, backoffMin, 0
	s.record(uint64(s.now), uint64(b.id), 20, b.life)
}

// stopBroker ends a broker process, crashed or shut down: whatever it had in flight is lost.
func (s *sim) stopBroker(b *simBroker) {
	b.state = broker.NextState(b.state, broker.LifecycleEvent{Kind: broker.LifecycleStopped})
	b.up = false
	b.life++
	b.call, b.fetch, b.alter = nil, nil, nil
	b.restartAt = s.now + 1
	if s.faulty {
		b.restartAt += 20 + s.rng.Int64N(400)
	}
	s.record(uint64(s.now), uint64(b.id), 21)
}

func (s *sim) brokerCut(b *simBroker, node uint64) bool { return b.cutAll || b.cutNode == node }

func (s *sim) injectBrokerFaults() {
	bs := s.bw.brokers
	if len(bs) == 0 {
		return
	}
	if s.rng.Float64() < s.f.BrokerCrash {
		if b := bs[s.rng.IntN(len(bs))]; b.up {
			s.stats.Brokers.Crashes++
			s.stopBroker(b)
		}
	}
	if s.rng.Float64() < s.f.BrokerShutdown {
		// Mostly a registered broker, whose controller must let it go; now and then one still
		// registering, which has nothing to hand over and stops at once.
		b := bs[s.rng.IntN(len(bs))]
		if s.rng.Float64() < 0.8 {
			var registered []*simBroker
			for _, x := range bs {
				if x.up && (x.state == broker.StateRecovery || x.state == broker.StateRunning) {
					registered = append(registered, x)
				}
			}
			if len(registered) > 0 {
				b = registered[s.rng.IntN(len(registered))]
			}
		}
		if b.up && b.shutdownBy == 0 {
			s.stats.Brokers.Shutdowns++
			b.state = broker.NextState(b.state, broker.LifecycleEvent{Kind: broker.LifecycleShutdownRequested})
			if b.state == broker.StateShuttingDown {
				s.stopBroker(b)
			} else {
				b.shutdownBy = s.now + controlledShutdownTimeout
				b.nextCallAt = s.now
			}
			s.record(uint64(s.now), uint64(b.id), 22)
		}
	}
	if s.rng.Float64() < s.f.BrokerIsolate {
		if b := bs[s.rng.IntN(len(bs))]; b.healAt == 0 {
			s.stats.Brokers.Isolations++
			// From every controller, so its session expires; or from the leader alone, so it must find
			// that it can reach only controllers that are not active.
			if l := s.leader(); l != nil && s.rng.Float64() < 0.3 {
				b.cutNode = l.id
			} else {
				b.cutAll = true
			}
			b.healAt = s.now + 50 + s.rng.Int64N(800)
			s.record(uint64(s.now), uint64(b.id), 23, b.cutNode)
		}
	}
}

func (s *sim) healBroker(b *simBroker) {
	b.cutAll, b.cutNode, b.healAt = false, 0, 0
}

// sendRPC puts a request or an answer on the wire between a broker and a controller node.
func (s *sim) sendRPC(r *rpc) {
	if s.brokerCut(r.b, r.node) || (s.faulty && s.rng.Float64() < s.f.Drop) {
		return // the sender learns nothing; a broker times out
	}
	s.bw.seq++
	r.seq = s.bw.seq
	r.at = s.now + s.delay()
	heap.Push(&s.bw.q, r)
}

// deliverRPCs hands every request and answer that arrived by now to its node or broker.
func (s *sim) deliverRPCs() {
	s.bw.due = s.bw.due[:0]
	for len(s.bw.q) > 0 && s.bw.q[0].at <= s.now {
		s.bw.due = append(s.bw.due, heap.Pop(&s.bw.q).(*rpc))
	}
	for _, r := range s.bw.due {
		if s.brokerCut(r.b, r.node) {
			continue
		}
		if r.toBroker {
			if r.b.up && r.b.life == r.life {
				s.brokerAnswer(r.b, r)
			}
			continue
		}
		n := s.nodes[r.node-1]
		if n.r == nil {
			continue
		}
		if req, ok := r.req.(*kmsg.FetchRequest); ok {
			s.serveFetch(n, r, req)
			continue
		}
		if req, ok := r.req.(*kmsg.FetchSnapshotRequest); ok {
			s.serveFetchSnapshot(n, r, req)
			continue
		}
		n.brokerInbox = append(n.brokerInbox, r)
	}
}

func (s *sim) answer(n *node, r *rpc, resp kmsg.Response) {
	s.sendRPC(&rpc{node: n.id, b: r.b, life: r.life, call: r.call, toBroker: true, resp: resp})
}

// stepBroker runs one broker's timers: restart, heal, timeouts, the session, the follower, and now and
// then a Metadata answer to check.
func (s *sim) stepBroker(b *simBroker) {
	if !b.up {
		if s.now >= b.restartAt {
			s.startBroker(b)
		}
		return
	}
	if b.healAt != 0 && s.now >= b.healAt {
		s.healBroker(b)
	}
	if b.call != nil && s.now >= b.call.deadline {
		s.searchOn(b, b.call.node) // as unreachable as a refusal
		b.call = nil
	}
	if b.fetch != nil && s.now >= b.fetch.deadline {
		b.fetch = nil
		b.nextFetchAt = s.now
	}
	if b.shutdownBy != 0 && s.now >= b.shutdownBy {
		s.stopBroker(b) // the controlled shutdown did not complete in time
		return
	}
	if b.call == nil {
		switch b.state {
		case broker.StateStarting:
			if s.now >= b.nextCallAt {
				s.brokerCall(b, broker.RegistrationRequest(b.cfg, b.incarnation))
			}
		case broker.StateRecovery, broker.StateRunning, broker.StatePendingControlledShutdown:
			// A fenced broker that has just applied its own registration says so at once, as the
			// broker's heartbeat loop does when its follower pokes it.
			early := b.state == broker.StateRecovery && b.reported < b.epoch && int64(b.img.Offset) >= b.epoch
			if s.now >= b.nextCallAt || early {
				req := kmsg.NewPtrBrokerHeartbeatRequest()
				req.BrokerID, req.BrokerEpoch = b.id, b.epoch
				req.CurrentMetadataOffset = int64(b.img.Offset)
				if s.cfg.Sabotage == SabotageStaleOffset {
					req.CurrentMetadataOffset = 0
				}
				req.WantShutdown = b.state == broker.StatePendingControlledShutdown
				b.reported = req.CurrentMetadataOffset
				s.brokerCall(b, req)
			}
		}
	}
	if b.fetch == nil && s.now >= b.nextFetchAt {
		s.brokerFetch(b)
	}
	if b.alter != nil && s.now >= b.alter.deadline {
		b.alter = nil
	}
	if b.alter == nil && b.active != 0 && b.state == broker.StateRunning && s.now >= b.nextAlterAt {
		if req := broker.ISRExpansion(b.img, b.id, b.epoch); req != nil {
			s.bw.calls++
			b.alter = &brokerCall{id: s.bw.calls, node: b.active, deadline: s.now + rpcTimeout}
			b.nextAlterAt = s.now + alterPause
			s.sendRPC(&rpc{node: b.active, b: b, life: b.life, call: b.alter.id, req: req})
		}
	}
	if s.rng.Float64() < s.f.Metadata {
		s.checkMetadata(b)
	}
}

// brokerCall sends a session request to the controller the broker believes active, or continues the
// search for it: round robin from the last one that failed, starting at a random voter.
func (s *sim) brokerCall(b *simBroker, req kmsg.Request) {
	to := b.active
	if to == 0 {
		to = b.searchNext
	}
	if to == 0 {
		to = s.voters[s.rng.IntN(len(s.voters))]
	}
	s.bw.calls++
	b.call = &brokerCall{id: s.bw.calls, node: to, deadline: s.now + rpcTimeout}
	s.sendRPC(&rpc{node: to, b: b, life: b.life, call: b.call.id, req: req})
}

// searchOn gives up on node as the active controller: the next attempt goes to the next voter after a
// backoff.
func (s *sim) searchOn(b *simBroker, node uint64) {
	b.active = 0
	b.searchNext = node%uint64(len(s.voters)) + 1
	b.nextCallAt = s.now + b.backoff
	b.backoff = min(2*b.backoff, backoffMax)
}

func (s *sim) brokerFetch(b *simBroker) {
	to := b.fetchFrom
	b.fetchFrom = 0
	if to == 0 || s.nodes[to-1].r == nil {
		up := s.up()
		if len(up) == 0 {
			b.nextFetchAt = s.now + fetchIdle
			return
		}
		to = up[s.rng.IntN(len(up))].id
	}
	s.bw.calls++
	b.fetch = &brokerCall{id: s.bw.calls, node: to, deadline: s.now + rpcTimeout}
	s.sendRPC(&rpc{node: to, b: b, life: b.life, call: b.fetch.id, req: broker.FetchRequest(b.cfg, b.img)})
}

// brokerAnswer is what a broker does with an answer, as its session and follower goroutines do.
func (s *sim) brokerAnswer(b *simBroker, r *rpc) {
	if resp, ok := r.resp.(*kmsg.FetchResponse); ok {
		if b.fetch == nil || b.fetch.id != r.call {
			return
		}
		b.fetch = nil
		s.brokerFetched(b, r.node, resp)
		return
	}
	if _, ok := r.resp.(*kmsg.FetchSnapshotResponse); ok {
		if b.fetch == nil || b.fetch.id != r.call {
			return
		}
		b.fetch = nil
		s.brokerSnapshotFetched(b, r.node, r.snap)
		return
	}
	if resp, ok := r.resp.(*kmsg.AlterPartitionResponse); ok {
		if b.alter != nil && b.alter.id == r.call {
			b.alter = nil
			s.alterAnswered(resp)
		}
		return
	}
	if b.call == nil || b.call.id != r.call {
		return // an answer to a request the broker gave up on
	}
	b.call = nil
	switch resp := r.resp.(type) {
	case *kmsg.BrokerRegistrationResponse:
		s.brokerRegistered(b, r.node, resp)
	case *kmsg.BrokerHeartbeatResponse:
		s.brokerHeartbeatAnswered(b, r.node, resp)
	}
}

func (s *sim) brokerRegistered(b *simBroker, node uint64, resp *kmsg.BrokerRegistrationResponse) {
	err := kerr.ErrorForCode(resp.ErrorCode)
	if errors.Is(err, kerr.NotController) {
		s.stats.Brokers.NotController++
		s.searchOn(b, node)
		return
	}
	b.active = node
	switch {
	case err == nil && resp.BrokerEpoch >= 0:
		b.backoff = backoffMin
		b.epoch = resp.BrokerEpoch
		b.state = broker.NextState(b.state, broker.LifecycleEvent{Kind: broker.LifecycleRegistered})
		b.nextCallAt = s.now // the first heartbeat goes at once
		b.reported = -1
		s.record(uint64(s.now), uint64(b.id), 24, uint64(b.epoch))
	case errors.Is(err, kerr.DuplicateBrokerRegistration):
		s.stats.Brokers.Duplicates++
		b.nextCallAt = s.now + b.backoff
		b.backoff = min(2*b.backoff, backoffMax)
	case errors.Is(err, kerr.InconsistentClusterID), errors.Is(err, kerr.UnsupportedVersion):
		// The real broker stops for good on these; nothing in the simulation should provoke them.
		s.fail(0, "broker %d: registration refused by node %d: %v", b.id, node, err)
	default:
		b.nextCallAt = s.now + b.backoff
		b.backoff = min(2*b.backoff, backoffMax)
	}
}

func (s *sim) brokerHeartbeatAnswered(b *simBroker, node uint64, resp *kmsg.BrokerHeartbeatResponse) {
	err := kerr.ErrorForCode(resp.ErrorCode)
	if errors.Is(err, kerr.NotController) {
		s.stats.Brokers.NotController++
		s.searchOn(b, node)
		return
	}
	b.active = node
	switch {
	case err == nil:
		b.backoff = backoffMin
		b.state = broker.NextState(b.state, broker.LifecycleEvent{Kind: broker.LifecycleHeartbeat, Fenced: resp.IsFenced, ShouldShutDown: resp.ShouldShutdown})
		if b.state == broker.StateShuttingDown {
			s.stats.Brokers.Granted++
			s.stopBroker(b)
			return
		}
		b.nextCallAt = s.now + heartbeatEvery
		if b.state == broker.StatePendingControlledShutdown {
			b.nextCallAt = s.now + pendingShutdownHeartbeat
		}
	case errors.Is(err, kerr.StaleBrokerEpoch), errors.Is(err, kerr.BrokerIDNotRegistered):
		s.stats.Brokers.SessionsLost++
		b.state = broker.NextState(b.state, broker.LifecycleEvent{Kind: broker.LifecycleSessionLost})
		if b.state == broker.StateShuttingDown {
			s.stopBroker(b)
			return
		}
		b.epoch = -1
		b.nextCallAt = s.now
	default:
		b.nextCallAt = s.now + b.backoff
		b.backoff = min(2*b.backoff, backoffMax)
	}
}

func (s *sim) brokerFetched(b *simBroker, node uint64, resp *kmsg.FetchResponse) {
	out := broker.ApplyFetch(b.img, resp)
	if out.Fatal != nil {
		s.fail(2, "broker %d following node %d: %v", b.id, node, out.Fatal)
	}
	progressed := out.Image != b.img
	s.checkLevels(out.Image, fmt.Sprintf("broker %d's image", b.id))
	b.img = out.Image
	if out.Snapshot != nil {
		s.brokerFetchSnapshot(b, node, *out.Snapshot)
		return
	}
	switch {
	case out.Refused == nil && progressed:
		b.nextFetchAt = s.now + 1
		s.record(uint64(s.now), uint64(b.id), 25, b.img.Offset)
	case out.Refused == nil:
		b.nextFetchAt = s.now + fetchIdle
	case errors.Is(out.Refused, kerr.NotLeaderForPartition):
		s.stats.Brokers.FetchRefusals++
		if out.Leader > 0 {
			b.fetchFrom = uint64(out.Leader)
		}
		b.nextFetchAt = s.now + 2
	default:
		s.fail(0, "broker %d: node %d refused a fetch: %v", b.id, node, out.Refused)
	}
}

// serveFetch answers a log-follow fetch from node n's committed log, as the controller's Fetch handler
// does, gated by metadata.version.
func (s *sim) serveFetch(n *node, r *rpc, req *kmsg.FetchRequest) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	t := kmsg.NewFetchResponseTopic()
	t.Topic = req.Topics[0].Topic
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition = 0
	if refused, leader, epoch := controller.FetchGate(n.ctl.active, n.image.MetadataVersion(), n.leader, n.epoch); refused {
		p.ErrorCode, p.HighWatermark = kerr.NotLeaderForPartition.Code, -1
		p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = leader, epoch
	} else {
		// As the controller serves its log's storage: below the log start (compacted after a
		// snapshot) it names its newest snapshot instead (pointToSnapshot).
		commit := int64(n.applied())
		first, _ := n.ms.FirstIndex()
		p.HighWatermark, p.LastStableOffset, p.LogStartOffset = commit, commit, int64(first)
		switch from := req.Topics[0].Partitions[0].FetchOffset; {
		case from < int64(first):
			if f := n.newestFile(); f != nil {
				p.SnapshotID.EndOffset, p.SnapshotID.Epoch = int64(f.mark.Offset), int32(f.mark.Epoch)
			} else {
				p.ErrorCode = kerr.OffsetOutOfRange.Code
			}
		case from >= 1 && from <= commit:
			lo, hi := uint64(from)-n.base-1, uint64(min(commit, from-1+fetchMaxEntries))-n.base
			p.RecordBatches = controller.EncodeFetchEntries(n.log[lo:hi], int(req.MaxBytes))
		}
	}
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	s.answer(n, r, resp)
}

// brokerFetchSnapshot is the broker's follower catching up by snapshot (catchUpFromSnapshot): it asks
// the controller that named the snapshot for the file, unless the snapshot is not past what it applied,
// when it asks again elsewhere.
func (s *sim) brokerFetchSnapshot(b *simBroker, node uint64, snap broker.SnapshotID) {
	if snap.Offset <= b.img.Offset {
		b.nextFetchAt = s.now + 2
		return
	}
	req := kmsg.NewPtrFetchSnapshotRequest()
	t := kmsg.NewFetchSnapshotRequestTopic()
	t.Topic = "__cluster_metadata"
	p := kmsg.NewFetchSnapshotRequestTopicPartition()
	p.SnapshotID.EndOffset, p.SnapshotID.Epoch = int64(snap.Offset), int32(snap.Epoch)
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	s.bw.calls++
	b.fetch = &brokerCall{id: s.bw.calls, node: node, deadline: s.now + rpcTimeout}
	s.sendRPC(&rpc{node: node, b: b, life: b.life, call: b.fetch.id, req: req})
}

// serveFetchSnapshot answers a broker's FetchSnapshot from n's snapshot directory, as any controller
// serves the files it holds (snapshot.ServeChunk); the sim hands over the whole file at once.
func (s *sim) serveFetchSnapshot(n *node, r *rpc, req *kmsg.FetchSnapshotRequest) {
	id := req.Topics[0].Partitions[0].SnapshotID
	resp := req.ResponseKind().(*kmsg.FetchSnapshotResponse)
	f := n.file(metadatalog.SnapshotMark{Offset: uint64(id.EndOffset), Epoch: uint64(id.Epoch)})
	if f == nil {
		resp.ErrorCode = kerr.SnapshotNotFound.Code
	}
	s.sendRPC(&rpc{node: n.id, b: r.b, life: r.life, call: r.call, toBroker: true, resp: resp, snap: f})
}

// brokerSnapshotFetched swaps a downloaded snapshot's image in, or, if the controller no longer held
// it, fetches again from the same controller to learn its newest.
func (s *sim) brokerSnapshotFetched(b *simBroker, node uint64, f *snapFile) {
	if f == nil {
		s.stats.Snapshots.BrokerNotFound++
		b.fetchFrom = node
		b.nextFetchAt = s.now + 2
		return
	}
	img, err := loadFile(f)
	if err != nil {
		s.fail(15, "broker %d: the snapshot at offset %d from node %d does not load: %v", b.id, f.mark.Offset, node, err)
	}
	if img.Offset <= b.img.Offset {
		s.fail(16, "broker %d at offset %d loaded a snapshot at offset %d: its image would go back", b.id, b.img.Offset, img.Offset)
	}
	s.checkHistoryImage(img, img.Offset, fmt.Sprintf("broker %d's image, caught up by snapshot from node %d,", b.id, node))
	s.checkLevels(img, fmt.Sprintf("broker %d's image, caught up by snapshot from node %d,", b.id, node))
	b.img = img
	b.nextFetchAt = s.now + 1
	s.stats.Snapshots.BrokerLoads++
	s.record(uint64(s.now), uint64(b.id), 28, img.Offset)
}

// serveBrokers runs n's controller for this step, as its event loop would: the session check, then the
// broker requests that arrived. It runs where the step's proposals go, right before Process.
func (s *sim) serveBrokers(n *node) {
	inbox := n.brokerInbox
	n.brokerInbox = nil
	c := n.ctl
	now := s.clock()
	if c.active && c.resume {
		c.resume = false
		for stage := range controller.ResumeStages {
			if records := controller.ResumeLeadership(c.spec, stage); len(records) > 0 {
				s.ctlWrite(n, records, nil)
			}
		}
	}
	for c.active {
		records := c.core.Expire(c.spec, now)
		if len(records) == 0 {
			break
		}
		switch s.cfg.Sabotage {
		case SabotageDoubleFence:
			records = append(records, records...)
		case SabotageFencedKeepLeading:
			records = slices.DeleteFunc(records, func(r *metadatapb.Record) bool { return r.GetPartitionChange() != nil })
		}
		s.stats.Brokers.ExpiryBatches++
		s.ctlWrite(n, records, nil)
	}
	for _, r := range inbox {
		if !c.active {
			var resp kmsg.Response
			switch req := r.req.(type) {
			case *kmsg.BrokerRegistrationRequest:
				a := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
				a.ErrorCode = kerr.NotController.Code
				resp = a
			case *kmsg.BrokerHeartbeatRequest:
				a := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
				a.ErrorCode = kerr.NotController.Code
				resp = a
			case *kmsg.AlterPartitionRequest:
				a := req.ResponseKind().(*kmsg.AlterPartitionResponse)
				a.ErrorCode = kerr.NotController.Code
				resp = a
			}
			s.answer(n, r, resp)
			continue
		}
		var (
			records []*metadatapb.Record
			resp    kmsg.Response
			id      int32
		)
		switch req := r.req.(type) {
		case *kmsg.BrokerRegistrationRequest:
			offset := c.next
			if s.cfg.Sabotage == SabotageEpochOffByOne {
				offset++
			}
			id = req.BrokerID
			records, resp = c.core.Register(c.spec, req, offset, now)
			if resp.(*kmsg.BrokerRegistrationResponse).ErrorCode == kerr.DuplicateBrokerRegistration.Code {
				if held, ok := c.spec.Broker(id); ok && held.Fenced {
					s.stats.Brokers.DuplicatesOfFenced++
				}
			}
		case *kmsg.BrokerHeartbeatRequest:
			id = req.BrokerID
			records, resp = c.core.Heartbeat(c.spec, req, c.next, now)
		case *kmsg.AlterPartitionRequest:
			records, resp = controller.AlterPartition(c.spec, req)
			reply := func() { s.answer(n, r, resp) }
			switch {
			case len(records) > 0:
				s.ctlWrite(n, records, reply)
			case len(c.parked) > 0:
				// As afterEveryPendingWrite: the answer describes the speculative image.
				c.parked = append(c.parked, parkedAnswer{offset: c.parked[len(c.parked)-1].offset, reply: reply})
			default:
				reply()
			}
			continue
		}
		reply := func() { s.answer(n, r, resp) }
		switch {
		case len(records) > 0:
			s.ctlWrite(n, records, reply)
		case controller.AnswerWaits(c.spec, n.image, id) && len(c.parked) > 0:
			// As the event loop's afterPending: behind the last write in flight.
			c.parked = append(c.parked, parkedAnswer{offset: c.parked[len(c.parked)-1].offset, reply: reply})
		default:
			reply()
		}
	}
	if c.active && s.rng.Float64() < createTopicsChance {
		s.createTopics(n)
	}
	if c.active && s.faulty && s.rng.Float64() < featureChance {
		s.decideFeatures(n)
	}
	if c.active && s.rng.Float64() < electChance {
		req := kmsg.NewPtrElectLeadersRequest() // null topics: every partition
		req.ElectionType = 0                    // preferred
		if records, _ := controller.ElectLeaders(c.spec, req); len(records) > 0 {
			s.stats.Brokers.Elections++
			s.ctlWrite(n, records, nil)
		}
	}
}

const (
	// electChance is the chance per step that the active controller gets a preferred-leader election
	// for every partition.
	electChance = 1.0 / 400
	// alterPause is how long a leader waits between two AlterPartition requests.
	alterPause = 20
)

// alterAnswered counts an AlterPartition answer's partitions.
func (s *sim) alterAnswered(resp *kmsg.AlterPartitionResponse) {
	if resp.ErrorCode != 0 {
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				s.stats.Brokers.ISRGrown++
			} else {
				s.stats.Brokers.ISRRefused++
			}
		}
	}
}

// createTopicsChance is the chance per step that the active controller gets a CreateTopics request.
const createTopicsChance = 1.0 / 150

// createTopics has n's active controller decide and write a client's CreateTopics request of one or two
// topics, with the product's own decision (controller.CreateTopics): 1–4 partitions each, and a
// replication factor of 1 up to one more than there are brokers, so that refusals happen too. The
// placement reads the speculative image, so the brokers' fencing and shutdowns shape it.
func (s *sim) createTopics(n *node) {
	req := kmsg.NewPtrCreateTopicsRequest()
	for range 1 + s.rng.IntN(2) {
		s.bw.topics++
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = fmt.Sprintf("topic-%d", s.bw.topics)
		t.NumPartitions = int32(1 + s.rng.IntN(4))
		t.ReplicationFactor = int16(1 + s.rng.IntN(len(s.bw.brokers)+1))
		req.Topics = append(req.Topics, t)
	}
	records, resp := controller.CreateTopics(n.ctl.spec, req, rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64())))
	for _, t := range resp.Topics {
		if t.ErrorCode == 0 {
			s.stats.Brokers.TopicsCreated++
		} else {
			s.stats.Brokers.TopicsRefused++
		}
	}
	if len(records) > 0 {
		s.ctlWrite(n, records, nil)
	}
}

// checkPartitions checks invariants 11 and 12 on the image after one offset of the committed history:
// every partition has a non-empty ISR drawn from its replicas and a leader in that ISR, or none (-1);
// and no leader is fenced or unregistered.
func (s *sim) checkPartitions(img *metadatalog.Image) {
	for _, t := range img.Topics() {
		for id := range t.Partitions {
			p, ok := img.Partition(t.ID, id)
			switch {
			case !ok:
				s.fail(11, "at offset %d topic %s has %d partitions but no partition %d", img.Offset, t.Name, t.Partitions, id)
			case len(p.ISR) == 0:
				s.fail(11, "at offset %d partition %s-%d has an empty ISR (replicas %v)", img.Offset, t.Name, id, p.Replicas)
			case slices.ContainsFunc(p.ISR, func(b int32) bool { return !slices.Contains(p.Replicas, b) }):
				s.fail(11, "at offset %d partition %s-%d has ISR %v outside its replicas %v", img.Offset, t.Name, id, p.ISR, p.Replicas)
			case p.Leader < 0:
				continue
			case !slices.Contains(p.ISR, p.Leader):
				s.fail(11, "at offset %d partition %s-%d is led by %d, outside its ISR %v", img.Offset, t.Name, id, p.Leader, p.ISR)
			}
			if b, ok := img.Broker(p.Leader); !ok || b.Fenced {
				s.fail(12, "at offset %d partition %s-%d is led by broker %d, which is %s", img.Offset, t.Name, id, p.Leader, map[bool]string{true: "fenced", false: "unregistered"}[ok])
			}
		}
	}
}

// unhealthyPartitions lists the partitions of img without a leader or with an ISR short of their
// replicas.
func unhealthyPartitions(img *metadatalog.Image) []string {
	var out []string
	for _, t := range img.Topics() {
		for id := range t.Partitions {
			if p, ok := img.Partition(t.ID, id); ok && (p.Leader < 0 || len(p.ISR) < len(p.Replicas)) {
				out = append(out, fmt.Sprintf("%s-%d (leader %d, replicas %v, ISR %v)", t.Name, id, p.Leader, p.Replicas, p.ISR))
			}
		}
	}
	return out
}

// ctlWrite writes records as one batch from n's active controller, as Controller.write does. It returns
// the batch and whether Raft took it.
func (s *sim) ctlWrite(n *node, records []*metadatapb.Record, reply func()) ([]byte, bool) {
	batch := &metadatapb.RecordBatch{Records: records, AppendTimeMs: s.clock().UnixMilli()}
	data, err := proto.Marshal(batch)
	if err != nil {
		s.fail(0, "node %d: marshal a controller batch: %v", n.id, err)
	}
	return data, s.propose(n, data, batch, reply)
}

// propose proposes one batch on n. When n's controller is active the batch is its write: the speculative
// image takes it at the predicted offset and reply waits for the commit. A refusal makes an active
// controller resign, as a ProposalFailure does.
func (s *sim) propose(n *node, data []byte, batch *metadatapb.RecordBatch, reply func()) bool {
	c := n.ctl
	var spec *metadatalog.Image
	if c.active {
		s.checkDowngradeBatch(c.spec, batch, fmt.Sprintf("node %d's controller's batch for offset %d", n.id, c.next))
		var err error
		if spec, err = c.spec.Apply(c.next, c.epoch, batch); err != nil {
			s.fail(0, "node %d: the controller generated a batch it cannot apply: %v", n.id, err)
		}
	}
	switch err := n.r.Propose(data); {
	case err == nil:
		n.proposing = append(n.proposing, data)
		exp := expectation{}
		if c.active {
			exp = expectation{offset: c.next, epoch: c.epoch}
			c.spec = spec
			c.parked = append(c.parked, parkedAnswer{offset: c.next, reply: reply})
			c.next++
		}
		n.expect = append(n.expect, exp)
		return true
	case errors.Is(err, metadatalog.ErrNotLeader):
		s.stats.Rejected++
		if n.activeEpoch != 0 {
			n.unpredictable = n.activeEpoch
		}
		s.resign(n)
		return false
	default:
		s.fail(0, "node %d: propose: %v", n.id, err)
		return false
	}
}

// resign is the event loop losing activity: parked answers are dropped, the speculative image reverts,
// and every session is forgotten.
func (s *sim) resign(n *node) {
	c := n.ctl
	if !c.active {
		return
	}
	for _, p := range c.parked {
		if p.reply != nil {
			s.stats.Brokers.AnswersDropped++
		}
	}
	c.active, c.parked, c.spec, c.splitting = false, nil, nil, false
	c.core.Resign()
	s.stats.Brokers.Resignations++
	s.record(uint64(s.now), n.id, 26, c.epoch)
}

// ctlApplied is the controller's side of applying committed entry e on n (quorumState.applyCommitted):
// an active controller completes the answers parked up to e; otherwise a leader activates once it has
// applied an entry of its own epoch and every entry it proposed in that epoch.
//
// The last clause is the simulation's: its clients also propose on a leader that is not active, which
// no product writer does, and a controller activating before those entries are applied would predict
// its offsets wrong.
func (s *sim) ctlApplied(n *node, e metadatalog.Entry) {
	c := n.ctl
	if c.active {
		for len(c.parked) > 0 && c.parked[0].offset <= e.Offset {
			p := c.parked[0]
			c.parked = c.parked[1:]
			if p.offset == e.Offset && e.Epoch != c.epoch {
				s.fail(6, "node %d, active in epoch %d, had a write parked at offset %d, where epoch %d's entry committed", n.id, c.epoch, e.Offset, e.Epoch)
			}
			if p.reply != nil {
				p.reply()
			}
		}
		if len(c.parked) == 0 {
			c.spec = n.image
		}
		return
	}
	if n.leader != n.id || e.Epoch != n.epoch || (n.proposedEpoch == n.epoch && e.Offset < n.proposedUpTo) {
		return
	}
	if last := n.r.LastIndex(); last != e.Offset {
		s.fail(6, "node %d activates in epoch %d at offset %d, but its log already ends at %d: its next offset is unknown", n.id, n.epoch, e.Offset, last)
	}
	c.active, c.epoch, c.next, c.spec, c.resume = true, n.epoch, e.Offset+1, n.image, true
	c.core.Activate(n.image, s.clock())
	s.stats.Brokers.Activations++
	s.record(uint64(s.now), n.id, 27, c.epoch, c.next)
}

// checkLogBrokers checks invariants 7 and 8 on one batch of the committed history, the first time any
// node applies its offset.
func (s *sim) checkLogBrokers(offset uint64, batch *metadatapb.RecordBatch) {
	for _, r := range batch.GetRecords() {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_PartitionChange:
			if rec.PartitionChange.Leader != nil {
				s.stats.Brokers.LeaderMoves++
				if rec.PartitionChange.GetLeader() < 0 {
					s.stats.Brokers.OfflinePartition++
				}
			}
		case *metadatapb.Record_RegisterBroker:
			reg := rec.RegisterBroker
			lb := s.bw.log[reg.GetBrokerId()]
			if lb == nil {
				lb = &logBroker{maxEpoch: -1}
				s.bw.log[reg.GetBrokerId()] = lb
			}
			if lb.registered && lb.incarnation == string(reg.GetIncarnationId()) {
				// The same process amending its registration keeps its epoch.
				if reg.GetBrokerEpoch() != lb.epoch {
					s.fail(7, "offset %d re-registers broker %d's incarnation %x at epoch %d, but it holds epoch %d", offset, reg.GetBrokerId(), reg.GetIncarnationId(), reg.GetBrokerEpoch(), lb.epoch)
				}
				break
			}
			if reg.GetBrokerEpoch() != int64(offset) {
				s.fail(7, "broker %d registers at epoch %d in the batch at offset %d: a broker epoch is the offset of its registration", reg.GetBrokerId(), reg.GetBrokerEpoch(), offset)
			}
			if reg.GetBrokerEpoch() <= lb.maxEpoch {
				s.fail(7, "broker %d registers at epoch %d (offset %d) after epoch %d: broker epochs only grow", reg.GetBrokerId(), reg.GetBrokerEpoch(), offset, lb.maxEpoch)
			}
			*lb = logBroker{registered: true, epoch: reg.GetBrokerEpoch(), incarnation: string(reg.GetIncarnationId()),
				fenced: reg.GetFenced(), fencedAt: offset, maxEpoch: reg.GetBrokerEpoch()}
			s.stats.Brokers.Registrations++
		case *metadatapb.Record_BrokerRegistrationChange:
			ch := rec.BrokerRegistrationChange
			lb := s.bw.log[ch.GetBrokerId()]
			if lb == nil || !lb.registered || lb.epoch != ch.GetBrokerEpoch() {
				continue // the image refuses it, which invariant 4 reports
			}
			switch ch.GetFenced() {
			case metadatapb.BoolChange_BOOL_CHANGE_TRUE:
				if lb.fenced && lb.byChange {
					s.fail(8, "broker %d epoch %d is fenced at offset %d and again at offset %d, with no unfence in between", ch.GetBrokerId(), lb.epoch, lb.fencedAt, offset)
				}
				if lb.fenced {
					s.fail(8, "broker %d epoch %d is fenced at offset %d, but it registered fenced at offset %d and was never unfenced: a redundant fence", ch.GetBrokerId(), lb.epoch, offset, lb.fencedAt)
				}
				lb.fenced, lb.fencedAt, lb.byChange = true, offset, true
				s.stats.Brokers.Fences++
			case metadatapb.BoolChange_BOOL_CHANGE_FALSE:
				if lb.fenced {
					s.stats.Brokers.Unfences++
				}
				lb.fenced, lb.byChange = false, false
			}
		case *metadatapb.Record_UnregisterBroker:
			if lb := s.bw.log[rec.UnregisterBroker.GetBrokerId()]; lb != nil {
				lb.registered = false
			}
		}
	}
}

// checkMetadata checks invariant 9 on the Metadata answer broker b gives from its image now.
func (s *sim) checkMetadata(b *simBroker) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = int16(s.rng.IntN(14))
	resp := broker.MetadataResponse(b.img, simClusterID, b.id, simListener, req)
	fenced := 0
	for _, rb := range b.img.Brokers() {
		if rb.Fenced {
			fenced++
			if s.cfg.Sabotage == SabotageMetadataListsFenced {
				mb := kmsg.NewMetadataResponseBroker()
				mb.NodeID = rb.ID
				resp.Brokers = append(resp.Brokers, mb)
			}
		}
	}
	s.stats.Brokers.MetadataChecks++
	if fenced > 0 {
		s.stats.Brokers.MetadataWithFenced++
	}
	bad := func(what string, id int32) {
		if id < 0 {
			return
		}
		if rb, ok := b.img.Broker(id); !ok || rb.Fenced {
			s.fail(9, "broker %d's Metadata v%d answer at offset %d shows %s %d, which its image has %s", b.id, req.Version, b.img.Offset, what, id, map[bool]string{true: "fenced", false: "unregistered"}[ok])
		}
	}
	for _, mb := range resp.Brokers {
		bad("broker", mb.NodeID)
	}
	bad("controller", resp.ControllerID)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			bad("partition leader", p.Leader)
		}
	}
}

// checkBrokerImages extends invariant 4 to brokers: a broker's image equals the committed history's at
// its offset.
func (s *sim) checkBrokerImages() {
	for _, b := range s.bw.brokers {
		if !b.up || b.img.Offset == 0 {
			continue
		}
		want := s.bw.histImages[b.img.Offset-1]
		if b.img.Epoch != want.Epoch {
			s.fail(4, "broker %d's image is at offset %d epoch %d, the history has epoch %d there", b.id, b.img.Offset, b.img.Epoch, want.Epoch)
		}
		if d := diffRecords(b.img.Records(), want.Records()); d != "" {
			s.fail(4, "broker %d's image at offset %d differs from the committed history's: %s", b.id, b.img.Offset, d)
		}
	}
}

// brokersLive is invariant 10's condition: one leader whose controller is active, and every broker up,
// running, and registered unfenced at its current incarnation and epoch in that leader's committed
// image.
func (s *sim) brokersLive() bool {
	l := s.leader()
	if l == nil || !l.ctl.active {
		return false
	}
	for _, b := range s.bw.brokers {
		if !b.up || b.state != broker.StateRunning {
			return false
		}
		rb, ok := l.image.Broker(b.id)
		if !ok || rb.Fenced || rb.Epoch != b.epoch || !bytes.Equal(rb.IncarnationID, b.incarnation[:]) {
			return false
		}
	}
	return true
}

func (s *sim) describeBrokers() string {
	var sb strings.Builder
	l := s.leader()
	for _, b := range s.bw.brokers {
		fmt.Fprintf(&sb, "[broker %d up=%v %v epoch %d offset %d", b.id, b.up, b.state, b.epoch, b.img.Offset)
		if l != nil {
			if rb, ok := l.image.Broker(b.id); ok {
				fmt.Fprintf(&sb, "; leader %d's image: epoch %d fenced=%v ours=%v", l.id, rb.Epoch, rb.Fenced, bytes.Equal(rb.IncarnationID, b.incarnation[:]))
			} else {
				fmt.Fprintf(&sb, "; not in leader %d's image", l.id)
			}
		}
		sb.WriteString("] ")
	}
	if l != nil {
		fmt.Fprintf(&sb, "leader %d active=%v", l.id, l.ctl.active)
	}
	return strings.TrimSpace(sb.String())
}

// settleBrokers checks invariant 10 once the quorum has converged: within brokerSettleSteps every broker
// is registered and unfenced in the leader's committed image.
func (s *sim) settleBrokers() {
	deadline := s.now + brokerSettleSteps
	for !s.brokersLive() {
		if s.now >= deadline {
			s.fail(10, "brokers are not all registered and unfenced %d steps after the quorum converged: %s; quorum: %s", brokerSettleSteps, s.describeBrokers(), s.describe())
		}
		s.step()
	}
}

// settlePartitions checks invariant 13 once every broker is live: within brokerSettleSteps every
// partition in the leader's committed image has a leader, since every ISR member is unfenced, and an
// ISR of all its replicas, which the leaders grow back with AlterPartition.
func (s *sim) settlePartitions() {
	deadline := s.now + brokerSettleSteps
	for {
		l := s.leader()
		if l != nil && l.ctl.active {
			unhealthy := unhealthyPartitions(l.image)
			if len(unhealthy) == 0 {
				return
			}
			if s.now >= deadline {
				s.fail(13, "every broker is live, yet %d partitions lack a leader or a full ISR %d steps later: %s", len(unhealthy), brokerSettleSteps, strings.Join(unhealthy, ", "))
			}
		} else if s.now >= deadline {
			s.fail(13, "no active controller %d steps after the brokers were live: %s", brokerSettleSteps, s.describe())
		}
		s.step()
	}
}
