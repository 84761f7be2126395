package controller

// The cluster-membership core without an event loop around it. membership is what the loop runs for
// BrokerRegistration, BrokerHeartbeat and session expiry: the pure decisions of clusterControl together
// with the soft state (sessions) they read and update. The loop's handlers call it directly;
// MembershipCore exports the same calls for test/sim, which drives them on a logical clock and a
// simulated log. Keeping both on one code path is the point: the simulation checks the decisions the
// product makes, not a copy of them.

import (
	"math/rand/v2"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// membership is the active controller's cluster-membership state and the decisions over it.
type membership struct {
	cluster  clusterControl
	sessions *brokerSessions
}

func (c *Controller) membership() membership {
	return membership{cluster: c.cluster, sessions: c.sessions}
}

// register decides a registration against img, whose next batch lands at offset, and keeps the soft
// state in step: registering counts as hearing from the broker, and a new incarnation starts a fresh
// session.
func (m membership) register(img *metadatalog.Image, r brokerRegistration, offset uint64, now time.Time) ([]*metadatapb.Record, registerOutcome) {
	out := m.cluster.register(img, r, offset, m.sessions.liveFor(r.id, now))
	if out.code != nil {
		return nil, out
	}
	if out.newIncarnation {
		m.sessions.remove(r.id)
	}
	m.sessions.touch(r.id, out.epoch, now)
	return out.records, out
}

// heartbeat decides a heartbeat against img, whose next batch lands at offset. Only a heartbeat the
// state machine accepts refreshes the session: a zombie's (another epoch) must not keep the id alive.
func (m membership) heartbeat(img *metadatalog.Image, hb brokerHeartbeat, offset uint64, now time.Time) ([]*metadatapb.Record, heartbeatOutcome) {
	progress := shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { return m.sessions.lowestActiveOffset(img) }}
	if sess := m.sessions.get(hb.id); sess != nil && sess.epoch == hb.epoch {
		progress.startedAt = sess.controlledShutdownOffset
	}
	out := m.cluster.heartbeat(img, hb, offset, progress)
	if out.code != nil {
		return nil, out
	}
	sess := m.sessions.touch(hb.id, hb.epoch, now)
	sess.metadataOffset = hb.metadataOffset
	sess.controlledShutdownOffset = -1
	if out.to == brokerControlledShutdown {
		sess.controlledShutdownOffset = out.shutdownOffset
	}
	return out.records, out
}

// expire takes the sessions that expired by now and returns the next batch of fences they call for,
// decided against img (the speculative image, so a fence in flight is not written twice). It returns
// nil when nothing is left to fence; the caller writes each batch and asks again, so that the next one
// is decided against an image that holds it.
func (m membership) expire(img *metadatalog.Image, now time.Time) (records []*metadatapb.Record, fenced []int32) {
	for {
		expired := m.sessions.popExpired(now, maxFencesPerBatch)
		if len(expired) == 0 {
			return nil, nil
		}
		if records, fenced = m.cluster.fenceExpired(img, expired); len(records) > 0 {
			return records, fenced
		}
	}
}

// registrationInFlight reports whether a change to the broker's registration is written but not yet
// committed: an answer that writes nothing but describes that registration must then wait for it.
func registrationInFlight(speculative, committed *metadatalog.Image, broker int32) bool {
	spec, _ := speculative.Broker(broker)
	comm, _ := committed.Broker(broker)
	return spec != comm
}

func heartbeatFromRequest(req *kmsg.BrokerHeartbeatRequest) brokerHeartbeat {
	return brokerHeartbeat{
		id: req.BrokerID, epoch: req.BrokerEpoch, metadataOffset: req.CurrentMetadataOffset,
		wantFence: req.WantFence, wantShutDown: req.WantShutdown,
	}
}

// fill writes an accepted heartbeat's answer.
func (o heartbeatOutcome) fill(resp *kmsg.BrokerHeartbeatResponse) {
	resp.IsCaughtUp = o.caughtUp
	resp.IsFenced = o.to.fenced()
	resp.ShouldShutdown = o.to == brokerShutdownNow
}

// MembershipCore is the active controller's cluster-membership logic with its soft state, exported for
// deterministic simulation (test/sim). The controller's event loop runs the same code: each method is
// the call the loop makes, minus the I/O. It is not safe for concurrent use.
//
// The caller plays the event loop: it keeps the speculative image and the offset its next batch will land
// at, writes the records each call returns, and sends an answer only once they commit (or, when nothing
// was written, once AnswerWaits says nothing in flight concerns the broker). The loop writes them as one
// batch unless they are too many for one (it then cuts them in order over several; see writeInBatches).
type MembershipCore struct {
	m membership
}

// NewMembershipCore returns the core of a controller of clusterID whose broker sessions last
// sessionTimeout (0: DefaultSessionTimeout). It holds no sessions until Activate.
func NewMembershipCore(clusterID string, sessionTimeout time.Duration) *MembershipCore {
	return &MembershipCore{m: membership{cluster: clusterControl{clusterID: clusterID}, sessions: newBrokerSessions(sessionTimeout)}}
}

// Register decides a BrokerRegistration against the speculative image img, whose next batch lands at
// nextOffset, at time now. It returns the records to write (none for a refusal or an unchanged
// re-registration) and the answer to send once they commit.
func (c *MembershipCore) Register(img *metadatalog.Image, req *kmsg.BrokerRegistrationRequest, nextOffset uint64, now time.Time) ([]*metadatapb.Record, *kmsg.BrokerRegistrationResponse) {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	records, out := c.m.register(img, registrationFromRequest(req), nextOffset, now)
	if out.code != nil {
		resp.ErrorCode = out.code.Code
		return nil, resp
	}
	resp.BrokerEpoch = out.epoch
	return records, resp
}

// Heartbeat decides a BrokerHeartbeat as Register does a registration.
func (c *MembershipCore) Heartbeat(img *metadatalog.Image, req *kmsg.BrokerHeartbeatRequest, nextOffset uint64, now time.Time) ([]*metadatapb.Record, *kmsg.BrokerHeartbeatResponse) {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	records, out := c.m.heartbeat(img, heartbeatFromRequest(req), nextOffset, now)
	if out.code != nil {
		resp.ErrorCode = out.code.Code
		return nil, resp
	}
	out.fill(resp)
	return records, resp
}

// Expire returns the next batch of fences for sessions that expired by now, decided against the
// speculative image img; nil when there is none. Write each batch, then call again with the image that
// holds it, until nil.
func (c *MembershipCore) Expire(img *metadatalog.Image, now time.Time) []*metadatapb.Record {
	records, _ := c.m.expire(img, now)
	return records
}

// Activate gives every broker registered in committed a fresh session, as a newly active controller
// does.
func (c *MembershipCore) Activate(committed *metadatalog.Image, now time.Time) {
	c.m.sessions.activate(committed.Brokers(), now)
}

// Resign forgets every session: the controller is no longer active.
func (c *MembershipCore) Resign() { c.m.sessions.reset() }

// AnswerWaits reports whether an answer that wrote nothing about broker must wait for the writes in
// flight (speculative differs from committed for it), as the event loop parks it behind them.
func AnswerWaits(speculative, committed *metadatalog.Image, broker int32) bool {
	return registrationInFlight(speculative, committed, broker)
}

// FetchGate is the metadata.version rule for serving the log to brokers (see fetch.go): below level 2
// only the active controller serves, and a refusal names the leader (-1 when none is known).
func FetchGate(active bool, metadataVersion int16, leader, epoch uint64) (refused bool, leaderID, leaderEpoch int32) {
	return fetchGate(active, metadataVersion, leader, epoch)
}

// EncodeFetchEntries encodes committed entries for a Fetch answer as the controller does: the longest
// prefix that fits budget bytes, and at least the first entry.
func EncodeFetchEntries(entries []metadatalog.Entry, budget int) []byte {
	return encodeFetchEntries(entries, budget)
}

// ResumeStages is the number of stages of ResumeLeadership.
const ResumeStages = resumeStages

// ResumeLeadership returns the leadership moves of one stage that a newly active controller writes
// before anything else (Controller.resumeLeadership), decided against the speculative image img: stage
// 0 moves leadership away from brokers that may not lead, stage 1 elects leaders for offline
// partitions. Write each stage's records before deciding the next against the image that holds them.
func ResumeLeadership(img *metadatalog.Image, stage int) []*metadatapb.Record {
	records, _ := resumedMoves(img, stage)
	return records
}

// CreateTopics decides a CreateTopics request against the speculative image img as the event loop does,
// with rng for topic ids and placement, and returns the records to write (none for validateOnly) and
// the answer to send once they commit.
func CreateTopics(img *metadatalog.Image, req *kmsg.CreateTopicsRequest, rng *rand.Rand) ([]*metadatapb.Record, *kmsg.CreateTopicsResponse) {
	records, outcomes := newTopicControl(0).createTopics(img, newTopicsOf(req), rng)
	if req.ValidateOnly {
		records = nil
	}
	return records, createTopicsResponse(req, outcomes, nil, "")
}

// AlterPartition decides an AlterPartition request against the speculative image img as the event loop
// does, and returns the records to write and the answer to send once they commit (or, when nothing is
// written, once every write in flight has).
func AlterPartition(img *metadatalog.Image, req *kmsg.AlterPartitionRequest) ([]*metadatapb.Record, *kmsg.AlterPartitionResponse) {
	return replicationControl{}.alterPartition(img, req)
}

// ElectLeaders decides an ElectLeaders request as AlterPartition does.
func ElectLeaders(img *metadatalog.Image, req *kmsg.ElectLeadersRequest) ([]*metadatapb.Record, *kmsg.ElectLeadersResponse) {
	return replicationControl{}.electLeaders(img, req)
}

// UpdateMetadataVersion decides an UpdateFeatures request for metadata.version against the speculative
// image img, as the event loop does with every voter supporting every level: upgradeType is 1
// (upgrade), 2 (safe downgrade) or 3 (unsafe downgrade). It returns the records to write as one batch
// (none when refused) and the answer's message: the refusal, or what an unsafe downgrade dropped.
func UpdateMetadataVersion(img *metadatalog.Image, level int16, upgradeType int8) ([]*metadatapb.Record, string) {
	updates := []featureUpdate{{name: metadatalog.MetadataVersionFeature, level: level, upgradeType: upgradeType}}
	res := featureControl{}.updateFeatures(img, updates, nil)
	if res.code != nil {
		return nil, res.msg
	}
	return res.records, res.dropped(false, upgradeType == upgradeTypeUnsafeDowngrade && lowers(img, updates))
}
