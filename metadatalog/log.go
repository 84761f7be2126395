package metadatalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// LogConfig configures a controller's replica of the metadata log.
type LogConfig struct {
	NodeID    uint64
	ClusterID string
	// Voters maps every voter id to its controller address (controller.quorum.voters).
	Voters map[uint64]string
	// Dir is the formatted metadata directory; the WAL lives in its wal/ subdirectory.
	Dir string
	// ElectionTimeout is controller.quorum.election.timeout.ms; Raft ticks at a tenth of it, heartbeats
	// every tick, and campaigns after a randomized 10–20 ticks without a leader.
	ElectionTimeout time.Duration
	// CatchUpEntries is how many entries before a snapshot stay in the log when it is compacted, so
	// that a follower a little behind catches up from the log rather than by snapshot
	// (metadata.log.snapshot.catchup.entries). Zero means DefaultCatchUpEntries.
	CatchUpEntries uint64
	Logger         *slog.Logger
}

// maxReadiesPerEvent bounds the further Readies the log's goroutine processes after one event before
// it looks at its channels again.
const maxReadiesPerEvent = 64

// DefaultCatchUpEntries is the catch-up tail kept before a snapshot, as etcd keeps by default.
const DefaultCatchUpEntries = 5000

// AppendResult is the fate of one Append: Done closes when the batch commits (Err nil) or can no longer
// commit under the epoch it was written in (Err is ErrNotLeader).
type AppendResult struct {
	Offset uint64
	Epoch  uint64
	done   chan struct{}
	err    error
}

// Done closes when the outcome is known.
func (r *AppendResult) Done() <-chan struct{} { return r.done }

// Err is the outcome once Done has closed.
func (r *AppendResult) Err() error { return r.err }

func (r *AppendResult) finish(err error) {
	r.err = err
	close(r.done)
}

// LeaderChange says who leads the quorum now.
type LeaderChange struct {
	Leader uint64 // 0 when unknown
	Epoch  uint64
}

// Event is what the log tells its state machine, in log order: a leadership change, committed entries,
// or both (the change happened first).
type Event struct {
	Failed *ProposalFailure
	Leader *LeaderChange
	// Restored is the image of a snapshot received from the leader: it replaces the state machine's
	// image before Committed (which follows it) is applied.
	Restored  *Image
	Committed []Entry
	// HighWatermark is the commit offset known when the event was produced.
	HighWatermark uint64
}

// VoterState is one voter's replication progress as the leader sees it (DescribeQuorum).
type VoterState struct {
	ID                      uint64
	LogEndOffset            uint64
	LastFetch, LastCaughtUp time.Time
}

// QuorumStatus is this node's view of the quorum. Voters is only filled on the leader.
type QuorumStatus struct {
	NodeID, Leader, Epoch uint64
	HighWatermark         uint64
	LastIndex             uint64
	Voters                []VoterState
}

type appendRequest struct {
	data []byte
	// reply is nil for ProposeAt, whose outcome arrives as an Event.
	reply chan appendReply
	// expected is the offset a ProposeAt caller has already built on (0 for Append).
	expected uint64
}

// ProposalFailure says that a ProposeAt did not land at the offset its caller expected, so whatever
// the caller built on that offset is void.
type ProposalFailure struct {
	Expected uint64
	Err      error
}

type appendReply struct {
	res *AppendResult
	err error
}

// Log is a controller's replica of the metadata log: Raft over the WAL and the peer transport, driven by
// one goroutine. Writers call Append; the state machine consumes Events.
type Log struct {
	cfg       LogConfig
	log       *slog.Logger
	replica   *Replica
	disk      *WALDisk
	transport *Transport
	// storage holds the log's entries; it is safe for concurrent reads, so followers' fetches read
	// committed entries from it without going through the run goroutine.
	storage *raft.MemoryStorage

	// initial is the image of the snapshot the log was opened at (EmptyImage for none).
	initial *Image
	voters  []uint64

	propc    chan appendRequest
	compactc chan *compactRequest
	fetchedc chan fetchedSnapshot
	recvc    chan *raftpb.Message
	unreachc chan uint64
	statusc  chan chan QuorumStatus
	stopc    chan struct{}
	donec    chan struct{}
	stopOnce sync.Once

	events eventQueue

	// Owned by the run goroutine.
	pending      map[uint64]*AppendResult
	lastFetch    map[uint64]time.Time
	lastCaughtUp map[uint64]time.Time
	commit       uint64
	// fetching is the snapshot being downloaded from the leader (zero when none); fetched is the one
	// downloaded and loaded, waiting for the leader's next offer to be stepped into Raft.
	fetching SnapshotMark
	fetched  *fetchedSnapshot
	// fetchCtx ends downloads when the log closes.
	fetchCtx    context.Context
	fetchCancel context.CancelFunc

	failMu sync.Mutex
	failed error

	// committed is the commit offset as the run goroutine last published it; entries up to it are in
	// storage. commitMu.advanced is closed and replaced each time it moves, waking every WaitCommitted.
	committed atomic.Uint64
	commitMu  struct {
		sync.Mutex
		advanced chan struct{}
	}
}

// OpenLog replays the WAL of dir into Raft; call Start to join the quorum.
func OpenLog(cfg LogConfig) (*Log, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = time.Second
	}
	if cfg.CatchUpEntries == 0 {
		cfg.CatchUpEntries = DefaultCatchUpEntries
	}
	voters := make([]uint64, 0, len(cfg.Voters))
	for id := range cfg.Voters {
		voters = append(voters, id)
	}
	slices.Sort(voters)
	start, err := openLatestSnapshot(cfg.Dir, cfg.ClusterID, cfg.Logger)
	if err != nil {
		return nil, err
	}
	disk, storage, err := OpenWALAt(WALDir(cfg.Dir), start.mark, voters)
	if err != nil {
		return nil, err
	}
	l := &Log{
		cfg: cfg, log: cfg.Logger, disk: disk, storage: storage, initial: start.image, voters: voters,
		propc: make(chan appendRequest, 1024), compactc: make(chan *compactRequest, 4), fetchedc: make(chan fetchedSnapshot, 1),
		recvc:    make(chan *raftpb.Message, 4096),
		unreachc: make(chan uint64, 64), statusc: make(chan chan QuorumStatus),
		stopc: make(chan struct{}), donec: make(chan struct{}),
		pending: map[uint64]*AppendResult{}, lastFetch: map[uint64]time.Time{}, lastCaughtUp: map[uint64]time.Time{},
	}
	l.fetchCtx, l.fetchCancel = context.WithCancel(context.Background())
	if start.mark.Offset > 0 {
		l.commit = start.mark.Offset
		l.committed.Store(start.mark.Offset)
	}
	l.events.signal = make(chan struct{}, 1)
	l.commitMu.advanced = make(chan struct{})
	replica, err := NewReplica(ReplicaConfig{ID: cfg.NodeID, Voters: voters, ElectionTicks: 10, HeartbeatTicks: 1, Storage: storage, Disk: disk, SendEarly: l.send})
	if err != nil {
		disk.Close()
		return nil, err
	}
	l.replica = replica
	l.transport = NewTransport(TransportConfig{
		Self: cfg.NodeID, ClusterID: cfg.ClusterID, Peers: cfg.Voters, Logger: cfg.Logger,
		Deliver: func(m *raftpb.Message) {
			select {
			case l.recvc <- m:
			case <-l.stopc:
			}
		},
		Unreachable: func(id uint64) {
			select {
			case l.unreachc <- id:
			default: // Raft will notice on its own; never block a sender.
			}
		},
	})
	return l, nil
}

// Start runs the log's goroutine.
func (l *Log) Start() { go l.run() }

// HandlePeer serves an inbound peer stream (the Kafka listener hands it over after PeerMagic).
func (l *Log) HandlePeer(conn net.Conn) { l.transport.HandleInbound(conn) }

// Append proposes one batch. It returns once the batch has its offset (before it is durable or
// committed); the result completes on commit. ErrNotLeader when this node does not lead.
func (l *Log) Append(ctx context.Context, data []byte) (*AppendResult, error) {
	req := appendRequest{data: data, reply: make(chan appendReply, 1)}
	select {
	case l.propc <- req:
	case <-l.donec:
		return nil, l.stoppedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-l.donec:
		return nil, l.stoppedErr()
	}
}

// ProposeAt proposes one batch that the caller expects at offset expected, without waiting for it:
// the active controller is the only writer of its epoch, so it knows each next offset and can go on
// building on it while Raft groups its proposals into one fsync. If the batch does not land there, a
// ProposalFailure event says so; commits arrive as usual.
func (l *Log) ProposeAt(ctx context.Context, data []byte, expected uint64) error {
	select {
	case l.propc <- appendRequest{data: data, expected: expected}:
		return nil
	case <-l.donec:
		return l.stoppedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Events signals when TakeEvents has something.
func (l *Log) Events() <-chan struct{} { return l.events.signal }

// TakeEvents returns every event queued since the last call, in order.
func (l *Log) TakeEvents() []Event { return l.events.take() }

// Status returns this node's view of the quorum.
func (l *Log) Status(ctx context.Context) (QuorumStatus, error) {
	ch := make(chan QuorumStatus, 1)
	select {
	case l.statusc <- ch:
	case <-l.donec:
		return QuorumStatus{}, l.stoppedErr()
	case <-ctx.Done():
		return QuorumStatus{}, ctx.Err()
	}
	return <-ch, nil
}

// Failed closes when the log has stopped; Err says why (nil after Close).
func (l *Log) Failed() <-chan struct{} { return l.donec }

// Err is the fatal error that stopped the log, if any.
func (l *Log) Err() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failed
}

func (l *Log) stoppedErr() error {
	if err := l.Err(); err != nil {
		return err
	}
	return errors.New("metadata log is closed")
}

// Close stops the goroutine and releases the WAL and the peer connections.
func (l *Log) Close() error {
	l.stopOnce.Do(func() {
		close(l.stopc)
		l.fetchCancel()
	})
	<-l.donec
	return nil
}

// compact runs a Compact on the run goroutine.
func (l *Log) compact(req *compactRequest) error {
	keep := l.cfg.CatchUpEntries
	if req.purge {
		keep = 0
	}
	if err := l.replica.Compact(req.offset, keep, l.voters); err != nil || !req.purge {
		return err
	}
	return l.rewriteWAL(req.offset, "after a metadata.version downgrade")
}

// rewriteWAL replaces the WAL with one that starts at the snapshot at offset and holds the current hard
// state and the entries after it (see WALDisk.Rewrite). It does nothing if a newer snapshot has
// replaced the log meanwhile.
func (l *Log) rewriteWAL(offset uint64, why string) error {
	term, err := l.storage.Term(offset)
	if err != nil {
		return nil // a newer snapshot from the leader replaced the log meanwhile; it holds no old records
	}
	hs, _, err := l.storage.InitialState()
	if err != nil {
		return err
	}
	last, _ := l.storage.LastIndex()
	var ents []*raftpb.Entry
	if last > offset {
		if ents, err = l.storage.Entries(offset+1, last+1, math.MaxUint64); err != nil {
			return err
		}
	}
	if err := l.disk.Rewrite(SnapshotMark{Offset: offset, Epoch: term}, l.voters, hs, ents); err != nil {
		return err
	}
	l.log.Info("metadata log rewritten from a snapshot "+why, "snapshot_offset", offset, "entries_kept", len(ents))
	return nil
}

// InitialImage is the image of the snapshot the log was opened at (an empty image when it starts from
// the beginning): the state machine starts from it, and the first committed entry it is given follows it.
func (l *Log) InitialImage() *Image { return l.initial }

// SnapshotDir is where this log's snapshots live.
func (l *Log) SnapshotDir() string { return SnapshotDir(l.cfg.Dir) }

// Voters are the quorum's voter ids, sorted, as a snapshot records them.
func (l *Log) Voters() []uint64 { return slices.Clone(l.voters) }

// Compact tells the log that a snapshot up to offset is durable in SnapshotDir: the log records its
// marker and drops what comes before it, except the catch-up tail. It returns once that is done (or
// the log has stopped), so older snapshots may be removed only after it: until the marker is in the
// log, a restart cannot use the new snapshot.
//
// With purge, after a metadata.version downgrade, it keeps no tail and rewrites the WAL so that
// nothing before the snapshot stays on disk: no record the lower level cannot represent is left.
//
// An error means the marker may not be in the log (the log stopped, or the compaction failed): the
// caller must then keep its older snapshots.
func (l *Log) Compact(offset uint64, purge bool) error {
	req := &compactRequest{offset: offset, purge: purge, done: make(chan struct{})}
	select {
	case l.compactc <- req:
	case <-l.donec:
		return l.stoppedErr()
	}
	select {
	case <-req.done:
		return req.err
	case <-l.donec:
		return l.stoppedErr()
	}
}

type compactRequest struct {
	offset uint64
	purge  bool
	done   chan struct{}
	err    error // set before done closes
}

func (l *Log) run() {
	defer func() {
		l.transport.Close()
		l.disk.Close()
		for off, r := range l.pending {
			r.finish(ErrNotLeader)
			delete(l.pending, off)
		}
		close(l.donec)
	}()
	tick := l.cfg.ElectionTimeout / 10
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var waiting []appendRequest
	for {
		select {
		case <-l.stopc:
			return
		case <-ticker.C:
			l.replica.Tick()
		case m := <-l.recvc:
			l.step(m)
			// Take what else has arrived, so that one Ready (one fsync) covers it all.
			for n := len(l.recvc); n > 0; n-- {
				l.step(<-l.recvc)
			}
		case id := <-l.unreachc:
			l.replica.ReportUnreachable(id)
		case req := <-l.propc:
			waiting = l.propose(waiting[:0], req)
			for n := len(l.propc); n > 0; n-- {
				waiting = l.propose(waiting, <-l.propc)
			}
		case ch := <-l.statusc:
			ch <- l.status()
		case req := <-l.compactc:
			offset := req.offset
			err := l.compact(req)
			req.err = err
			close(req.done)
			if err != nil {
				l.failMu.Lock()
				l.failed = fmt.Errorf("compact the metadata log after the snapshot at offset %d: %w", offset, err)
				l.failMu.Unlock()
				l.log.Error("metadata log stopped", "err", l.failed)
				return
			}
			l.log.Info("metadata log compacted after a snapshot", "snapshot_offset", offset, "log_start", l.FirstOffset())
		case f := <-l.fetchedc:
			l.fetching = SnapshotMark{}
			if f.image != nil {
				l.fetched = &f
			}
		}
		err := l.process(waiting)
		// Raft hands out at most MaxSizePerMsg of committed entries per Ready, so a replay (a restart,
		// a follower catching up) would otherwise wait for the next tick or message after every MiB.
		// The bound keeps ticks and stop requests served during a long one.
		for n := 0; err == nil && n < maxReadiesPerEvent && l.replica.HasReady(); n++ {
			err = l.process(nil)
		}
		if err != nil {
			l.failMu.Lock()
			l.failed = err
			l.failMu.Unlock()
			l.log.Error("metadata log stopped", "err", err)
			return
		}
		waiting = waiting[:0]
	}
}

func (l *Log) propose(waiting []appendRequest, req appendRequest) []appendRequest {
	if err := l.replica.Propose(req.data); err != nil {
		l.reject(req, err)
		return waiting
	}
	return append(waiting, req)
}

func (l *Log) reject(req appendRequest, err error) {
	if req.reply != nil {
		req.reply <- appendReply{err: err}
		return
	}
	l.events.push(Event{Failed: &ProposalFailure{Expected: req.expected, Err: err}})
}

func (l *Log) step(m *raftpb.Message) {
	from := m.GetFrom()
	if t := m.GetType(); t == raftpb.MsgAppResp || t == raftpb.MsgHeartbeatResp {
		l.lastFetch[from] = time.Now()
	}
	if m.GetType() == raftpb.MsgSnap && !l.snapshotReady(m) {
		return // the leader offers it again at its next heartbeat
	}
	if err := l.replica.Step(m); err != nil {
		return // a message for a stale term or from an unknown peer; Raft has already ignored it
	}
	if l.replica.IsLeader() {
		if l.replica.Match(from) >= l.replica.LastIndex() {
			l.lastCaughtUp[from] = time.Now()
		}
	}
}

// send hands messages for peers to the transport; Raft's messages to this node itself are handled
// inside Raft.
func (l *Log) send(msgs []*raftpb.Message) {
	out := msgs[:0]
	for _, m := range msgs {
		if m.GetTo() != l.cfg.NodeID {
			out = append(out, m)
		}
	}
	l.transport.Send(out)
}

// process handles one Ready: offsets for the accepted proposals, messages out, commits and leadership in.
func (l *Log) process(accepted []appendRequest) error {
	replied := false
	out, err := l.replica.Process(func(offsets []uint64, epoch uint64) {
		replied = true
		for i, off := range offsets {
			req := accepted[i]
			if req.reply == nil {
				if off != req.expected {
					l.reject(req, fmt.Errorf("the batch landed at offset %d, not %d", off, req.expected))
				}
				continue
			}
			res := &AppendResult{Offset: off, Epoch: epoch, done: make(chan struct{})}
			l.pending[off] = res
			req.reply <- appendReply{res: res}
		}
	})
	if !replied {
		for _, req := range accepted {
			l.reject(req, fmt.Errorf("raft did not take the proposal: %v", err))
		}
	}
	if err != nil {
		return err
	}
	l.send(out.Messages)

	var ev Event
	if out.Restored != nil {
		img, err := l.restoredImage(*out.Restored)
		if err != nil {
			return err
		}
		// Entries of this node's own that the snapshot replaced may still sit in the WAL after the
		// marker, where a restart would read them back; the rewritten WAL holds only what Raft holds.
		if err := l.rewriteWAL(out.Restored.Offset, "installed from the leader"); err != nil {
			return fmt.Errorf("rewrite the metadata log after installing the leader's snapshot: %w", err)
		}
		ev.Restored = img
		l.commit = max(l.commit, img.Offset)
	}
	if out.LeaderChanged {
		ev.Leader = &LeaderChange{Leader: out.Leader, Epoch: out.Epoch}
		l.log.Info("metadata quorum leader changed", "leader", out.Leader, "epoch", out.Epoch)
		if out.Leader != l.cfg.NodeID {
			// Entries proposed under our leadership may still commit under the next leader, but we can no
			// longer promise it: writers must retry against the new one.
			for off, r := range l.pending {
				r.finish(ErrNotLeader)
				delete(l.pending, off)
			}
			clear(l.lastFetch)
			clear(l.lastCaughtUp)
		}
	}
	for _, e := range out.Committed {
		if r, ok := l.pending[e.Offset]; ok {
			delete(l.pending, e.Offset)
			if e.Epoch == r.Epoch {
				r.finish(nil)
			} else {
				r.finish(ErrNotLeader)
			}
		}
		l.commit = e.Offset
	}
	if ev.Leader != nil || ev.Restored != nil || len(out.Committed) > 0 {
		ev.Committed = out.Committed
		ev.HighWatermark = l.commit
		l.events.push(ev)
	}
	if ev.Restored != nil || len(out.Committed) > 0 {
		l.publishCommit(l.commit)
	}
	return nil
}

// publishCommit makes offset (whose entries are already in storage) visible to ReadCommitted and wakes
// every WaitCommitted.
func (l *Log) publishCommit(offset uint64) {
	l.committed.Store(offset)
	l.commitMu.Lock()
	close(l.commitMu.advanced)
	l.commitMu.advanced = make(chan struct{})
	l.commitMu.Unlock()
}

// ErrCompacted says that a read asked for offsets the log no longer holds; the reader must catch up
// from a snapshot.
var ErrCompacted = errors.New("the offset is below the start of the metadata log")

// CommittedOffset is the last committed offset this node knows (0 before anything commits).
func (l *Log) CommittedOffset() uint64 { return l.committed.Load() }

// FirstOffset is the first offset still held; older ones are only in snapshots.
func (l *Log) FirstOffset() uint64 {
	first, _ := l.storage.FirstIndex()
	return first
}

// ReadCommitted returns committed entries from offset from on, and the commit offset. It counts each
// entry's Data, and at least one byte per entry, against maxBytes: it returns at least one entry when
// any is committed at or after from, and stops before the next entry would take the total past maxBytes. It never returns
// uncommitted entries, and nothing when from is past the commit offset. ErrCompacted when from is below
// FirstOffset. Raft's own entries come back with empty Data, so offsets never skip. The returned Data
// must not be modified.
//
// It is safe to call from any goroutine: it reads the log's storage, not its run goroutine.
func (l *Log) ReadCommitted(from uint64, maxBytes int) ([]Entry, uint64, error) {
	commit := l.committed.Load()
	if first := l.FirstOffset(); from < first {
		return nil, commit, fmt.Errorf("%w: offset %d, log start %d", ErrCompacted, from, first)
	}
	hi := commit + 1
	if last, err := l.storage.LastIndex(); err == nil && last+1 < hi {
		hi = last + 1 // never the case (a commit is stored before it is published), but Entries would panic
	}
	var out []Entry
	budget := max(maxBytes, 0)
	for from < hi {
		// Raft's limit counts whole encoded entries, never less than their Data, so each call returns
		// no more than the budget allows (but at least one entry); the loop tops up after small ones.
		ents, err := l.storage.Entries(from, hi, uint64(budget))
		if errors.Is(err, raft.ErrCompacted) {
			return nil, commit, fmt.Errorf("%w: offset %d, log start %d", ErrCompacted, from, l.FirstOffset())
		}
		if err != nil {
			return nil, commit, fmt.Errorf("read the metadata log from offset %d: %w", from, err)
		}
		for _, e := range ents {
			ent := Entry{Offset: e.GetIndex(), Epoch: e.GetTerm()}
			if e.GetType() == raftpb.EntryNormal {
				ent.Data = e.GetData()
			}
			// A floor of one byte bounds how many empty entries one read returns.
			cost := max(len(ent.Data), 1)
			if len(out) > 0 && cost > budget {
				return out, commit, nil
			}
			budget = max(budget-cost, 0)
			out = append(out, ent)
		}
		from = out[len(out)-1].Offset + 1
	}
	return out, commit, nil
}

// WaitCommitted blocks until the commit offset is at least offset, ctx ends or the log stops, and
// returns the commit offset then.
func (l *Log) WaitCommitted(ctx context.Context, offset uint64) uint64 {
	for {
		l.commitMu.Lock()
		advanced := l.commitMu.advanced
		l.commitMu.Unlock()
		// Loaded after taking the channel: an advance between the two closes the channel we hold.
		commit := l.committed.Load()
		if commit >= offset {
			return commit
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return l.committed.Load()
		case <-l.donec:
			return l.committed.Load()
		}
	}
}

func (l *Log) status() QuorumStatus {
	st := l.replica.Status()
	qs := QuorumStatus{NodeID: l.cfg.NodeID, Leader: st.Lead, Epoch: st.HardState.GetTerm(), HighWatermark: st.HardState.GetCommit(), LastIndex: l.replica.LastIndex()}
	if st.RaftState != raft.StateLeader {
		return qs
	}
	now := time.Now()
	for _, id := range slices.Sorted(maps.Keys(l.cfg.Voters)) {
		vs := VoterState{ID: id}
		if id == l.cfg.NodeID {
			vs.LogEndOffset, vs.LastFetch, vs.LastCaughtUp = qs.LastIndex, now, now
		} else {
			var pr tracker.Progress
			if p, ok := st.Progress[id]; ok {
				pr = p
			}
			vs.LogEndOffset, vs.LastFetch, vs.LastCaughtUp = pr.Match, l.lastFetch[id], l.lastCaughtUp[id]
		}
		qs.Voters = append(qs.Voters, vs)
	}
	return qs
}

// eventQueue is unbounded so that a slow state machine never stalls Raft's ticks and heartbeats.
type eventQueue struct {
	mu     sync.Mutex
	items  []Event
	signal chan struct{}
}

func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *eventQueue) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
