package sim

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"runtime/debug"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	// tickEvery is how many steps make one Raft tick. Message delays are drawn in steps, so a tick of
	// several steps lets a heartbeat arrive before, at, or after the next tick.
	tickEvery = 10
	// electionTicks and heartbeatTicks match what metadatalog.OpenLog uses in production.
	electionTicks  = 10
	heartbeatTicks = 1
	// checkpointEvery is how often (in steps) every image is compared with a fresh replay.
	checkpointEvery = 500
	// settleSteps bounds convergence after healing; an election takes 100–200 steps, so this is
	// generous, and a quorum that has not converged by then is stuck.
	settleSteps = 5000
)

// Faults are the probabilities the simulation draws its faults from.
type Faults struct {
	Drop, Duplicate float64 // per message
	// MaxDelay bounds the usual delay of a message in steps; LongDelay is the chance of one up to
	// eight times longer, which reorders it behind many later messages.
	MaxDelay  int
	LongDelay float64
	// Crash is the chance per step that a running node crashes; it is down for 20–420 steps.
	Crash float64
	// LeaderBias is the chance that a crash picks the leader rather than any node.
	LeaderBias float64
	// CrashDuringSync is the chance per step that some node's next synced Save is cut half way.
	CrashDuringSync float64
	// Partition is the chance per step, while healed, of splitting the voters for 50–850 steps.
	Partition float64
	// Client is the chance per step that a client proposes one to three batches.
	Client float64

	// Brokers (see brokers.go). BrokerCrash, BrokerShutdown and BrokerIsolate are the chances per step
	// that a random broker crashes (down for 20–420 steps), starts a controlled shutdown, or is cut off
	// for 50–850 steps from every controller or from the leader alone. Metadata is the chance per step
	// and broker that its Metadata answer is checked.
	BrokerCrash, BrokerShutdown, BrokerIsolate float64
	Metadata                                   float64
}

// DefaultFaults are tuned so that a 5,000-step run sees a few crashes (some of the leader), a few
// partitions, and a few hundred acknowledged writes.
func DefaultFaults() Faults {
	return Faults{
		Drop: 0.05, Duplicate: 0.02, MaxDelay: 12, LongDelay: 0.03,
		Crash: 1.0 / 600, LeaderBias: 0.5, CrashDuringSync: 1.0 / 1500,
		Partition: 1.0 / 700, Client: 0.08,
		BrokerCrash: 1.0 / 500, BrokerShutdown: 1.0 / 900, BrokerIsolate: 1.0 / 500, Metadata: 0.02,
	}
}

// HeavyFaults crash, tear, cut and lose several times as often, for soaks: rare interleavings, such as a
// crash that tears a node's very first write, come up within hundreds of seeds instead of thousands.
func HeavyFaults() Faults {
	f := DefaultFaults()
	f.Drop, f.Duplicate, f.LongDelay = 0.15, 0.05, 0.08
	f.Crash, f.CrashDuringSync, f.Partition = 1.0/400, 1.0/250, 1.0/400
	f.Client = 0.15
	return f
}

// Config is one simulated run. Seed and Voters fully determine it, given a deterministic source for
// Raft's own randomness (see the package comment).
type Config struct {
	Seed   uint64
	Voters int
	// Steps is the length of the fault phase; settling afterwards is bounded separately.
	Steps  int
	Faults Faults
	// BrokenDisk makes every disk ignore mustSync, so a crash can lose what Raft was promised was
	// durable. Only the harness's self-check sets it.
	BrokenDisk bool
	// Brokers is how many brokers run: 0 draws 3–5 from the seed, a negative number runs none.
	Brokers int
	// Sabotage breaks one behaviour on purpose; only the self-checks set it.
	Sabotage Sabotage
}

// Violation is a broken invariant (see the package comment for the numbering).
type Violation struct {
	Invariant int
	Step      int64
	Msg       string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("invariant %d violated at step %d: %s", v.Invariant, v.Step, v.Msg)
}

// Stats say what a run exercised, so that a quiet harness can be told from a healthy one.
type Stats struct {
	Steps, SettleSteps                    int64
	Epochs                                int // epochs that had a leader
	Crashes, LeaderCrashes, CrashesInSync int
	TornRecordsKept, TornRecordsLost      int
	Partitions                            int
	Proposed, Rejected, Acked, Superseded int
	Activations, Predicted                int
	Sent, SentEarly, Dropped, Duplicated  int
	Unreachables                          int
	CommitIndex                           uint64
	Brokers                               BrokerStats
	Snapshots                             SnapshotStats
	Features                              FeatureStats
}

// Result is the outcome of Run. Trace is a digest of everything observable that happened, so two runs
// of one seed can be compared for determinism.
type Result struct {
	Stats Stats
	Err   *Violation
	Trace uint64
}

type proposal struct {
	epoch uint64
	data  []byte
}

type ack struct {
	offset, epoch uint64
	data          []byte
	node          uint64
}

type historyEntry struct {
	epoch uint64
	data  string
	node  uint64
	step  int64
}

type node struct {
	id        uint64
	disk      *fakeDisk
	r         *metadatalog.Replica // nil while crashed
	ms        *raft.MemoryStorage  // the replica's storage, for its log start
	restartAt int64
	phase     int64

	// What this incarnation applied, and the image built from it batch by batch. base is the offset
	// of the snapshot the incarnation started from or last installed (0: the beginning), baseImage
	// that snapshot's image, and log holds the entries applied after it.
	image     *metadatalog.Image
	base      uint64
	baseImage *metadatalog.Image
	log       []metadatalog.Entry
	// Clients' writes this incarnation accepted, by offset, until that offset is applied.
	pending map[uint64]proposal
	// maxEpoch is the highest epoch this node ever reported, across crashes.
	maxEpoch uint64

	// The active-controller model of invariant 6. leader and epoch are from the last Output; a leader
	// activates when it applies the first entry of its own epoch and then predicts every offset, as
	// the controller's ProposeAt does. An epoch in which it proposed before activating, or had a
	// proposal refused, is one the controller would have resigned from: no prediction is checked.
	leader, epoch uint64
	activeEpoch   uint64 // 0 when not active
	nextOffset    uint64
	unpredictable uint64

	inbox       []*raftpb.Message
	unreachable []uint64
	proposing   [][]byte
	// expect holds, for each entry of proposing, where the active controller expects it (brokers.go).
	expect []expectation

	// The simulated controller (brokers.go), its broker requests, and the last offset this node
	// proposed in proposedEpoch.
	ctl           *ctlState
	brokerInbox   []*rpc
	proposedEpoch uint64
	proposedUpTo  uint64

	// Snapshots (snapshots.go). snaps is the snapshot directory, which survives crashes, oldest
	// first; the rest is the incarnation's: the write under way, the entries applied since the last
	// snapshot and its offset, the compactions asked of the log, and the leader's snapshot being
	// downloaded or downloaded and waiting for the next offer.
	policy      snapPolicy
	snaps       []*snapFile
	writing     *snapWrite
	sinceSnap   int
	lastSnap    uint64
	compactions []compaction
	fetching    *download
	fetched     *fetchedSnap
	// The Snapshotter's view of metadata.version (snapshots.go): the level of the last image it saw
	// this incarnation (0 at a start, as NewSnapshotter has it), and whether a drop makes the next
	// snapshot a purge.
	snapLevel int16
	purge     bool
}

// applied is the offset of the last entry the node applied (or of the snapshot it holds).
func (n *node) applied() uint64 { return n.base + uint64(len(n.log)) }

// entry is the entry the node applied at off, which must be after its base.
func (n *node) entry(off uint64) metadatalog.Entry { return n.log[off-n.base-1] }

type sim struct {
	cfg    Config
	f      Faults
	rng    *rand.Rand
	now    int64
	nodes  []*node
	voters []uint64
	net    *network
	healAt int64
	// faulty is false while settling: no crashes, partitions, loss or clients.
	faulty bool

	leaders map[uint64]uint64 // epoch → the leader anyone reported
	history []historyEntry    // offset-1 → what was first applied there
	acked   []ack
	seq     int // batches generated, to keep every batch distinct

	// forced, when set, receives one proposal in the next step: the liveness probe, remembered by
	// content until some node acknowledges it.
	forced     *node
	probe      []byte
	probeAcked uint64

	cur   uint64 // node being driven, to attribute Raft panics
	due   []*envelope
	stats Stats
	trace hash.Hash64

	bw brokerWorld
	fw featureWorld
}

// Run simulates one seed and checks every invariant; it never panics.
func Run(cfg Config) (res Result) {
	if cfg.Faults == (Faults{}) {
		cfg.Faults = DefaultFaults()
	}
	s := &sim{
		cfg: cfg, f: cfg.Faults, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(cfg.Voters))),
		leaders: map[uint64]uint64{}, faulty: true, trace: fnv.New64a(),
	}
	defer func() {
		if r := recover(); r != nil {
			v, ok := r.(*Violation)
			if !ok {
				where := ""
				if s.cur != 0 {
					where = fmt.Sprintf("node %d: ", s.cur)
				}
				v = &Violation{Invariant: 0, Step: s.now, Msg: fmt.Sprintf("%spanic: %v\n%s", where, r, debug.Stack())}
			}
			res.Err = v
		}
		s.stats.Epochs = len(s.leaders)
		for _, n := range s.nodes {
			s.stats.Snapshots.SegmentsReleased += n.disk.released
		}
		res.Stats, res.Trace = s.stats, s.trace.Sum64()
	}()
	for i := 1; i <= cfg.Voters; i++ {
		s.voters = append(s.voters, uint64(i))
	}
	s.net = newNetwork(s.voters)
	for _, id := range s.voters {
		// Segments fill at one of three paces, so Release deletes a few large ones or many small ones.
		cut := []float64{0.01, 0.05, 0.2}[s.rng.IntN(3)]
		n := &node{id: id, disk: newFakeDisk(s.rng, cut, cfg.BrokenDisk), phase: s.rng.Int64N(tickEvery), policy: s.drawSnapPolicy()}
		s.nodes = append(s.nodes, n)
		// Processes start at different times: a late node meets a quorum that already has a log, and
		// its first write then carries both its first epoch and entries.
		if s.rng.Float64() < 0.3 {
			n.restartAt = 1 + s.rng.Int64N(600)
		} else {
			s.start(n)
		}
	}
	s.initBrokers()
	for s.now < int64(cfg.Steps) {
		s.step()
		if s.now%checkpointEvery == 0 {
			s.checkImages()
		}
	}
	s.stats.Steps = s.now
	s.settle()
	s.stats.SettleSteps = s.now - s.stats.Steps
	return res
}

func (s *sim) fail(invariant int, format string, args ...any) {
	panic(&Violation{Invariant: invariant, Step: s.now, Msg: fmt.Sprintf(format, args...)})
}

func (s *sim) record(vals ...uint64) {
	var b [8]byte
	for _, v := range vals {
		binary.LittleEndian.PutUint64(b[:], v)
		s.trace.Write(b[:])
	}
}

// start (re)creates a node's replica from what its disk and snapshot store kept, as OpenLog does: the
// log opens at the newest snapshot the WAL holds a marker for (or at the beginning), the image starts as
// that snapshot's, and Raft redelivers every committed entry after it (Replica sets Applied to 0, which
// Raft reads as the snapshot's offset), which replays the rest.
//
// Most incarnations send a leader's messages before its own disk write (SendEarly), as the Log does:
// that is where a crash in the middle of an fsync is most interesting. The rest keep every message
// until the write is durable, so both paths of Replica.Process stay covered, in mixed clusters too.
func (s *sim) start(n *node) {
	s.cur = n.id
	st, err := s.openLog(n)
	if err != nil {
		s.fail(17, "node %d (snapshot every %d entries, catch-up tail %d, keeping %d files) cannot restart: %v", n.id, n.policy.every, n.policy.keep, n.policy.retain, err)
	}
	s.checkHistoryImage(st.img, st.mark.Offset, fmt.Sprintf("node %d's image, restarting from its snapshot,", n.id))
	s.checkLevels(st.img, fmt.Sprintf("node %d's image, restarting from its snapshot,", n.id))
	if st.mark.Offset > 0 {
		s.stats.Snapshots.RestartsFromSnapshot++
	}
	cfg := metadatalog.ReplicaConfig{
		ID: n.id, Voters: s.voters, ElectionTicks: electionTicks, HeartbeatTicks: heartbeatTicks,
		Storage: st.ms, Disk: n.disk,
	}
	early := s.rng.Float64() < 0.75
	if early {
		cfg.SendEarly = func(msgs []*raftpb.Message) {
			s.stats.SentEarly += len(msgs)
			for _, m := range msgs {
				s.transmit(n, m)
			}
		}
	}
	r, err := metadatalog.NewReplica(cfg)
	if err != nil {
		s.fail(0, "node %d: restart: %v", n.id, err)
	}
	n.r, n.ms, n.log, n.pending = r, st.ms, nil, map[uint64]proposal{}
	n.image, n.baseImage, n.base = st.img, st.img, st.mark.Offset
	n.ctl, n.proposedEpoch, n.proposedUpTo = newCtl(), 0, 0
	n.sinceSnap, n.lastSnap = 0, st.mark.Offset
	n.snapLevel, n.purge = s.snapshotterStartLevel(n, st.img), false
	s.record(uint64(s.now), n.id, 1, boolBit(early), st.mark.Offset)
	s.cur = 0
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// crash throws away everything a process holds in memory and tears the disk's unsynced tail.
func (s *sim) crash(n *node) {
	kept, lost := n.disk.crash(s.rng)
	s.stats.Crashes++
	s.stats.TornRecordsKept += kept
	s.stats.TornRecordsLost += lost
	if n.writing != nil {
		s.stats.Snapshots.WritesLost++ // only its .part was on disk, and the next start removes it
	}
	if len(n.compactions) > 0 {
		s.stats.Snapshots.CompactionsLost++
	}
	n.r, n.ms, n.image, n.baseImage, n.log, n.pending = nil, nil, nil, nil, nil, nil
	n.writing, n.compactions, n.fetching, n.fetched = nil, nil, nil, nil
	n.inbox, n.unreachable, n.proposing, n.expect = nil, nil, nil, nil
	n.ctl, n.brokerInbox = newCtl(), nil
	n.disk.crashNextSync = false
	n.leader, n.epoch, n.activeEpoch = 0, 0, 0
	n.restartAt = s.now + 20 + s.rng.Int64N(400)
	s.markRaced(func(id uint64) bool { return id == n.id })
	s.record(uint64(s.now), n.id, 2, uint64(kept), uint64(lost))
}

func (s *sim) up() []*node {
	var out []*node
	for _, n := range s.nodes {
		if n.r != nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *sim) leader() *node {
	for _, n := range s.nodes {
		if n.r != nil && n.r.IsLeader() {
			return n
		}
	}
	return nil
}

// step advances the clock by one: faults, restarts, deliveries, clients, then every running node in a
// random order, each as one Tick/Step/Propose group followed by Process.
func (s *sim) step() {
	s.now++
	if s.faulty {
		s.injectFaults()
	}
	for _, n := range s.nodes {
		if n.r == nil && s.now >= n.restartAt {
			s.start(n)
		}
	}
	// Background work that finished by now: snapshot writes and snapshot downloads.
	for _, n := range s.nodes {
		if n.r == nil {
			continue
		}
		if n.writing != nil && s.now >= n.writing.doneAt {
			s.finishSnapshot(n)
		}
		if n.fetching != nil && s.now >= n.fetching.doneAt {
			s.finishDownload(n)
		}
		if n.purge {
			s.maybeSnapshot(n) // the controller's periodic Applied retries a snapshot that is due
		}
	}
	s.due = s.net.due(s.now, s.due[:0])
	for _, e := range s.due {
		dst := s.nodes[e.to-1]
		if dst.r == nil || s.net.cut(e.from, e.to) {
			s.stats.Dropped++
			continue
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(e.data, m); err != nil {
			s.fail(0, "message from %d to %d does not decode: %v", e.from, e.to, err)
		}
		dst.inbox = append(dst.inbox, m)
	}
	s.deliverRPCs()
	var target *node
	count, probing := 0, false
	switch {
	case s.forced != nil:
		target, count, probing, s.forced = s.forced, 1, true, nil
	case s.faulty && s.rng.Float64() < s.f.Client:
		// Mostly the leader, and mostly once it is active, as the controller only writes then; the
		// rest probe proposals on a fresh leader and on nodes that do not lead.
		up := s.up()
		if l := s.leader(); l != nil && s.rng.Float64() < 0.9 {
			if l.activeEpoch != 0 || s.rng.Float64() < 0.2 {
				target = l
			}
		} else if len(up) > 0 {
			target = up[s.rng.IntN(len(up))]
		}
		count = 1 + s.rng.IntN(3)
	}
	for _, i := range s.rng.Perm(len(s.nodes)) {
		n := s.nodes[i]
		if n.r == nil {
			continue
		}
		c := 0
		if n == target {
			c = count
		}
		s.drive(n, c, probing)
	}
	s.cur = 0
	for _, b := range s.bw.brokers {
		s.stepBroker(b)
	}
}

func (s *sim) injectFaults() {
	s.injectBrokerFaults()
	s.raceFaults()
	if s.rng.Float64() < s.f.Crash {
		up := s.up()
		if len(up) > 0 {
			victim := up[s.rng.IntN(len(up))]
			if l := s.leader(); l != nil && s.rng.Float64() < s.f.LeaderBias {
				victim = l
			}
			// Now and then one that is writing a snapshot, or whose log has yet to record one.
			var busy []*node
			for _, n := range up {
				if n.writing != nil || len(n.compactions) > 0 {
					busy = append(busy, n)
				}
			}
			if len(busy) > 0 && s.rng.Float64() < crashSnapshotting {
				victim = busy[s.rng.IntN(len(busy))]
			}
			if victim.r.IsLeader() {
				s.stats.LeaderCrashes++
			}
			s.crash(victim)
		}
	}
	if s.rng.Float64() < s.f.CrashDuringSync {
		if up := s.up(); len(up) > 0 {
			up[s.rng.IntN(len(up))].disk.crashNextSync = true
		}
	}
	if s.net.split() {
		if s.now >= s.healAt {
			s.net.heal()
			s.record(uint64(s.now), 0, 4)
		}
	} else if s.rng.Float64() < s.f.Partition {
		// Either cut the leader off alone, the classic split-brain setup, or split at random.
		l := s.leader()
		if l != nil && s.rng.Float64() < 0.4 {
			s.net.group[l.id] = 1
		} else {
			for _, id := range s.voters {
				s.net.group[id] = s.rng.IntN(2)
			}
			if !s.net.split() { // everyone landed on one side: move one voter across
				id := s.voters[s.rng.IntN(len(s.voters))]
				s.net.group[id] ^= 1
			}
		}
		s.healAt = s.now + 50 + s.rng.Int64N(800)
		s.stats.Partitions++
		s.markRaced(func(id uint64) bool { return s.minority(id) })
		s.record(uint64(s.now), 0, 3)
	}
}

// drive runs one Tick/Step/Propose group on n, then Process. Proposals come last in the group because
// Process must follow Propose before any further Step.
func (s *sim) drive(n *node, proposals int, probing bool) {
	s.cur = n.id
	if !s.runCompactions(n) {
		return // crashed writing the snapshot marker
	}
	if (s.now+n.phase)%tickEvery == 0 {
		n.r.Tick()
	}
	// Usually one Ready covers everything that arrived, as in the Log; sometimes each message gets its
	// own, so that Raft's Readies come in other shapes too.
	perMessage := s.rng.Float64() < 0.2
	inbox := n.inbox
	n.inbox = nil
	for _, m := range inbox {
		if m.GetType() == raftpb.MsgSnap && !s.snapshotReady(n, m) {
			continue // the leader offers it again at its next heartbeat
		}
		_ = n.r.Step(m) // a stale or unknown message is Raft's to ignore
		if perMessage {
			if s.process(n); n.r == nil {
				return // crashed in the middle of a sync
			}
		}
	}
	for _, id := range n.unreachable {
		n.r.ReportUnreachable(id)
		s.stats.Unreachables++
	}
	n.unreachable = n.unreachable[:0]
	for range proposals {
		data, batch := s.newBatch(n)
		if probing {
			s.probe = data
		}
		s.propose(n, data, batch, nil)
	}
	s.serveBrokers(n)
	s.process(n)
}

func (s *sim) process(n *node) {
	proposing, expect := n.proposing, n.expect
	n.proposing, n.expect = nil, nil
	reported := false
	out, err := n.r.Process(func(offsets []uint64, epoch uint64) {
		reported = true
		if len(offsets) != len(proposing) {
			s.fail(0, "node %d: %d proposals accepted but %d offsets reported", n.id, len(proposing), len(offsets))
		}
		for i, off := range offsets {
			if i > 0 && off != offsets[i-1]+1 {
				s.fail(0, "node %d: proposals got offsets %v, not consecutive", n.id, offsets)
			}
			n.pending[off] = proposal{epoch: epoch, data: proposing[i]}
			s.predict(n, off, epoch)
			if exp := expect[i]; exp.offset != 0 && (exp.offset != off || exp.epoch != epoch) {
				s.fail(6, "node %d's controller, active in epoch %d, wrote a batch for offset %d, but Raft put it at offset %d in epoch %d", n.id, exp.epoch, exp.offset, off, epoch)
			}
			n.proposedEpoch, n.proposedUpTo = epoch, off
		}
		s.stats.Proposed += len(offsets)
	})
	if isCrash(err) {
		s.stats.CrashesInSync++
		s.crash(n)
		return
	}
	if err != nil {
		s.fail(0, "node %d: process: %v", n.id, err)
	}
	if len(proposing) > 0 && !reported {
		s.fail(0, "node %d: %d proposals accepted but onProposed was never called", n.id, len(proposing))
	}
	s.observeLeader(n, out.Leader, out.Epoch)
	n.leader, n.epoch = out.Leader, out.Epoch
	if n.activeEpoch != 0 && (n.leader != n.id || n.epoch != n.activeEpoch) {
		n.activeEpoch = 0
	}
	if n.ctl.active && (n.leader != n.id || n.epoch != n.ctl.epoch) {
		s.resign(n)
	}
	if out.Restored != nil {
		s.restored(n, *out.Restored)
	}
	for _, e := range out.Committed {
		s.apply(n, e)
	}
	n.sinceSnap += len(out.Committed)
	if len(out.Committed) > 0 || out.Restored != nil {
		s.maybeSnapshot(n)
	}
	for _, m := range out.Messages {
		s.transmit(n, m)
	}
	if len(out.Committed) > 0 || out.LeaderChanged || len(out.Messages) > 0 {
		s.record(uint64(s.now), n.id, 5, out.Leader, out.Epoch, uint64(len(out.Committed)), uint64(len(out.Messages)), out.LastIndex)
	}
}

// observeLeader checks invariant 1 against whatever leader n reports, be it itself or the one it
// follows: Raft only follows a leader it heard from in the current epoch, so both views must agree.
func (s *sim) observeLeader(n *node, leader, epoch uint64) {
	if epoch < n.maxEpoch {
		s.fail(1, "node %d: epoch went back from %d to %d (a lost term or vote lets one epoch elect twice)", n.id, n.maxEpoch, epoch)
	}
	n.maxEpoch = epoch
	if leader == 0 {
		return
	}
	if prev, ok := s.leaders[epoch]; !ok {
		s.leaders[epoch] = leader
	} else if prev != leader {
		s.fail(1, "two leaders in epoch %d: %d and %d (reported by node %d)", epoch, prev, leader, n.id)
	}
}

// predict checks invariant 6 for one accepted proposal.
func (s *sim) predict(n *node, off, epoch uint64) {
	if n.activeEpoch != epoch {
		n.unpredictable = epoch
		return
	}
	if n.unpredictable == epoch {
		return
	}
	if off != n.nextOffset {
		s.fail(6, "node %d, active in epoch %d, expected its next batch at offset %d but Raft put it at %d", n.id, epoch, n.nextOffset, off)
	}
	n.nextOffset++
	s.stats.Predicted++
}

// apply checks invariants 2 and 16 for one committed entry, folds it into n's image, and completes the
// client's write if n proposed it in that same epoch.
func (s *sim) apply(n *node, e metadatalog.Entry) {
	if want := n.applied() + 1; e.Offset != want {
		s.fail(16, "node %d applied offset %d, but its next offset is %d", n.id, e.Offset, want)
	}
	if e.Offset > uint64(len(s.history))+1 {
		s.fail(16, "node %d applied offset %d, but no node has applied offset %d", n.id, e.Offset, len(s.history)+1)
	}
	if e.Offset <= uint64(len(s.history)) {
		h := s.history[e.Offset-1]
		if h.epoch != e.Epoch || h.data != string(e.Data) {
			s.fail(2, "offset %d: node %d applied epoch %d data %x, but node %d applied epoch %d data %x at step %d",
				e.Offset, n.id, e.Epoch, short(e.Data), h.node, h.epoch, short([]byte(h.data)), h.step)
		}
	} else {
		s.history = append(s.history, historyEntry{epoch: e.Epoch, data: string(e.Data), node: n.id, step: s.now})
		batch, err := decodeBatch(e)
		if err != nil {
			s.fail(4, "node %d: %v", n.id, err)
		}
		prev := metadatalog.EmptyImage()
		if k := len(s.bw.histImages); k > 0 {
			prev = s.bw.histImages[k-1]
		}
		acls, quotas := s.checkDowngradeBatch(prev, batch, fmt.Sprintf("the entry committed at offset %d epoch %d", e.Offset, e.Epoch))
		next, err := prev.Apply(e.Offset, e.Epoch, batch)
		if err != nil {
			s.fail(4, "node %d: %v", n.id, err)
		}
		s.checkLevels(next, "the committed history's image")
		s.bw.histImages = append(s.bw.histImages, next)
		s.checkLogBrokers(e.Offset, batch)
		s.checkPartitions(next)
		s.featureCommitted(e.Offset, prev, next, batch, acls, quotas)
	}
	img, err := applyEntry(n.image, e)
	if err != nil {
		s.fail(4, "node %d: %v", n.id, err)
	}
	s.checkLevels(img, fmt.Sprintf("node %d's image", n.id))
	n.image = img
	n.log = append(n.log, e)
	if n.leader == n.id && e.Epoch == n.epoch && n.activeEpoch != n.epoch {
		// The first entry of our own epoch: everything before it is applied, and the log ends here.
		n.activeEpoch, n.nextOffset = n.epoch, e.Offset+1
		s.stats.Activations++
	}
	s.ctlApplied(n, e)
	if p, ok := n.pending[e.Offset]; ok {
		delete(n.pending, e.Offset)
		if p.epoch != e.Epoch {
			s.stats.Superseded++ // another leader's entry won the offset: the write failed, honestly
			return
		}
		if string(p.data) != string(e.Data) {
			s.fail(3, "node %d acknowledged offset %d epoch %d, but the committed data is not what was proposed", n.id, e.Offset, e.Epoch)
		}
		s.acked = append(s.acked, ack{offset: e.Offset, epoch: e.Epoch, data: p.data, node: n.id})
		s.stats.Acked++
		if s.probe != nil && string(p.data) == string(s.probe) {
			s.probeAcked = e.Offset
		}
	}
}

func applyEntry(img *metadatalog.Image, e metadatalog.Entry) (*metadatalog.Image, error) {
	batch, err := decodeBatch(e)
	if err != nil {
		return nil, err
	}
	return img.Apply(e.Offset, e.Epoch, batch)
}

func decodeBatch(e metadatalog.Entry) (*metadatapb.RecordBatch, error) {
	var batch *metadatapb.RecordBatch
	if len(e.Data) > 0 { // Raft's own empty entries carry no batch but still advance the offset
		batch = new(metadatapb.RecordBatch)
		if err := proto.Unmarshal(e.Data, batch); err != nil {
			return nil, fmt.Errorf("offset %d does not decode as a record batch: %w", e.Offset, err)
		}
	}
	return batch, nil
}

// transmit puts one message on the wire, unless the network loses it.
func (s *sim) transmit(n *node, m *raftpb.Message) {
	to := m.GetTo()
	if to == n.id {
		return // sync-mode Raft keeps self-messages to itself; never loop one back
	}
	if to == 0 || to > uint64(len(s.nodes)) {
		s.fail(0, "node %d sent a message to unknown node %d", n.id, to)
	}
	s.stats.Sent++
	if s.nodes[to-1].r == nil || s.net.cut(n.id, to) {
		// A real transport sees the connection fail; Raft then probes instead of streaming.
		s.stats.Dropped++
		if !containsID(n.unreachable, to) {
			n.unreachable = append(n.unreachable, to)
		}
		return
	}
	if s.faulty && s.rng.Float64() < s.f.Drop {
		s.stats.Dropped++
		return
	}
	data, err := proto.Marshal(m)
	if err != nil {
		s.fail(0, "node %d: message does not encode: %v", n.id, err)
	}
	s.net.send(s.now+s.delay(), n.id, to, data)
	if s.faulty && s.rng.Float64() < s.f.Duplicate {
		s.stats.Duplicated++
		s.net.send(s.now+s.delay(), n.id, to, data)
	}
}

func (s *sim) delay() int64 {
	if s.faulty && s.rng.Float64() < s.f.LongDelay {
		return 1 + s.rng.Int64N(int64(8*s.f.MaxDelay))
	}
	return 1 + s.rng.Int64N(int64(s.f.MaxDelay))
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// newBatch builds a distinguishable batch: its config value is unique, and now and then it deletes a
// config, so images have state to diverge. (Topics are the simulated controllers' to create, through the
// product's CreateTopics decision: see createTopics; metadata.version, ACLs and quotas are theirs too,
// through UpdateMetadataVersion: see decideFeatures. A raw FeatureLevelRecord could lower the level
// under ACLs the image holds, which no product writer does and the image refuses.)
func (s *sim) newBatch(n *node) ([]byte, *metadatapb.RecordBatch) {
	s.seq++
	key := fmt.Sprintf("key.%d", s.rng.IntN(6))
	recs := []*metadatapb.Record{{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
		ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER, ResourceName: fmt.Sprint(n.id),
		Name: key, Value: new(fmt.Sprintf("batch-%d-step-%d", s.seq, s.now)),
	}}}}
	if s.rng.Float64() < 0.3 {
		recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_NoOp{NoOp: &metadatapb.NoOpRecord{}}})
	}
	if s.rng.Float64() < 0.1 {
		recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
			ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER,
			ResourceName: fmt.Sprint(1 + s.rng.IntN(len(s.nodes))), Name: fmt.Sprintf("key.%d", s.rng.IntN(6)),
		}}})
	}
	batch := &metadatapb.RecordBatch{Records: recs, AppendTimeMs: s.now}
	data, err := proto.Marshal(batch)
	if err != nil {
		s.fail(0, "marshal batch: %v", err)
	}
	return data, batch
}

// checkImages checks invariants 4 and 15 on every running node.
func (s *sim) checkImages() {
	for _, n := range s.nodes {
		if n.r != nil {
			s.checkImage(n)
		}
	}
	s.checkBrokerImages()
}

func (s *sim) checkImage(n *node) {
	fresh := n.baseImage
	for _, e := range n.log {
		var err error
		if fresh, err = applyEntry(fresh, e); err != nil {
			s.fail(4, "node %d: replay: %v", n.id, err)
		}
	}
	if n.image.Offset != fresh.Offset || n.image.Epoch != fresh.Epoch {
		s.fail(4, "node %d: image is at offset %d epoch %d, its log at offset %d epoch %d", n.id, n.image.Offset, n.image.Epoch, fresh.Offset, fresh.Epoch)
	}
	if d := diffRecords(n.image.Records(), fresh.Records()); d != "" {
		s.fail(4, "node %d: image at offset %d differs from a fresh replay of its log: %s", n.id, n.image.Offset, d)
	}
	if n.image.MetadataVersion() != fresh.MetadataVersion() {
		s.fail(4, "node %d: metadata.version %d, a fresh replay says %d", n.id, n.image.MetadataVersion(), fresh.MetadataVersion())
	}
	s.checkHistoryImage(n.image, n.applied(), fmt.Sprintf("node %d's image (from its snapshot at offset %d and %d entries)", n.id, n.base, len(n.log)))
}

func diffRecords(got, want []*metadatapb.Record) string {
	for i := range min(len(got), len(want)) {
		if !proto.Equal(got[i], want[i]) {
			return fmt.Sprintf("record %d is %v, want %v", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d records, want %d", len(got), len(want))
	}
	return ""
}

// settle heals everything and runs until the quorum converges, then checks liveness (invariant 5) and
// the end-state invariants 3 and 4.
func (s *sim) settle() {
	s.faulty = false
	s.net.heal()
	for _, n := range s.nodes {
		if n.r == nil {
			s.start(n)
		}
	}
	for _, b := range s.bw.brokers {
		s.healBroker(b)
		if !b.up {
			s.startBroker(b)
		}
	}
	deadline := s.now + settleSteps
	s.runUntil(deadline, "converge after healing", s.converged)

	// Liveness: a fresh write must commit everywhere. If leadership moves before it commits, propose
	// again on whoever leads then; the deadline bounds the retries.
	for s.probeAcked == 0 {
		if s.now >= deadline {
			s.fail(5, "no proposal committed within %d steps of healing: %s", settleSteps, s.describe())
		}
		if l := s.leader(); l != nil && !s.probePending(l) {
			s.forced = l
		}
		s.step()
	}
	probe := s.probeAcked
	s.runUntil(deadline, fmt.Sprintf("apply the probe at offset %d everywhere", probe), func() bool {
		return s.converged() && s.nodes[0].applied() >= probe
	})
	s.stats.CommitIndex = s.nodes[0].applied()

	for _, a := range s.acked {
		// A node holds the entries up to its snapshot only as the snapshot's image, which invariant 15
		// holds to the committed history's; the history must have the write, and the node's own log
		// whatever it applied after the snapshot.
		if h := s.history[a.offset-1]; h.epoch != a.epoch || h.data != string(a.data) {
			s.fail(3, "write acknowledged by node %d at offset %d epoch %d was replaced in the committed history by epoch %d data %x", a.node, a.offset, a.epoch, h.epoch, short([]byte(h.data)))
		}
		for _, n := range s.nodes {
			if n.applied() < a.offset {
				s.fail(3, "write acknowledged by node %d at offset %d epoch %d is missing on node %d, whose log ends at %d", a.node, a.offset, a.epoch, n.id, n.applied())
			}
			if a.offset <= n.base {
				continue
			}
			if e := n.entry(a.offset); e.Epoch != a.epoch || string(e.Data) != string(a.data) {
				s.fail(3, "write acknowledged by node %d at offset %d epoch %d was replaced on node %d by epoch %d data %x", a.node, a.offset, a.epoch, n.id, e.Epoch, short(e.Data))
			}
		}
	}
	s.checkImages()
	want := s.nodes[0].image.Records()
	for _, n := range s.nodes[1:] {
		if d := diffRecords(n.image.Records(), want); d != "" {
			s.fail(4, "node %d's image differs from node 1's after convergence: %s", n.id, d)
		}
	}
	s.settleBrokers()
	s.settlePartitions()
	s.checkImages()
	s.checkDowngradesWhole()
}

// minority reports whether the current partition leaves node id on a side without a majority.
func (s *sim) minority(id uint64) bool {
	same := 0
	for _, v := range s.voters {
		if !s.net.cut(id, v) {
			same++
		}
	}
	return 2*same <= len(s.voters)
}

func (s *sim) probePending(l *node) bool {
	for _, p := range l.pending {
		if string(p.data) == string(s.probe) {
			return true
		}
	}
	return false
}

func (s *sim) runUntil(deadline int64, what string, done func() bool) {
	for !done() {
		if s.now >= deadline {
			s.fail(5, "did not %s within %d steps of healing: %s", what, settleSteps, s.describe())
		}
		s.step()
	}
}

// converged holds when exactly one node leads, every node follows it in its epoch, and every log and
// applied offset equals the leader's.
func (s *sim) converged() bool {
	var l *node
	for _, n := range s.nodes {
		if n.r == nil {
			return false
		}
		if n.r.IsLeader() {
			if l != nil {
				return false
			}
			l = n
		}
	}
	if l == nil {
		return false
	}
	lead, epoch := l.r.Leader()
	last := l.r.LastIndex()
	for _, n := range s.nodes {
		nl, ne := n.r.Leader()
		if nl != lead || ne != epoch || n.r.LastIndex() != last || n.applied() != last {
			return false
		}
	}
	return true
}

func (s *sim) describe() string {
	var b strings.Builder
	for _, n := range s.nodes {
		if n.r == nil {
			fmt.Fprintf(&b, "[node %d down] ", n.id)
			continue
		}
		lead, epoch := n.r.Leader()
		st := n.r.Status()
		fmt.Fprintf(&b, "[node %d %v epoch %d leader %d last %d commit %d applied %d] ",
			n.id, st.RaftState, epoch, lead, n.r.LastIndex(), st.HardState.GetCommit(), n.applied())
	}
	return strings.TrimSpace(b.String())
}

func short(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
