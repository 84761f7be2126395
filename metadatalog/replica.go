package metadatalog

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// ErrNotLeader is returned to a writer when this node cannot (or can no longer) commit its append:
// it is not the leader, or it lost leadership before the entry committed.
var ErrNotLeader = errors.New("not the leader of the metadata quorum")

// Entry is one committed log entry as the state machine sees it. Data is empty for Raft's own entries,
// such as the one every new leader appends at the start of its epoch.
type Entry struct {
	Offset uint64
	Epoch  uint64
	Data   []byte
}

// ReplicaConfig configures a Replica. Storage holds what the disk replayed; Voters is the static quorum
// (controller.quorum.voters), so no membership change ever goes through the log.
type ReplicaConfig struct {
	ID             uint64
	Voters         []uint64
	ElectionTicks  int
	HeartbeatTicks int
	Storage        *raft.MemoryStorage
	Disk           Disk
	Logger         raft.Logger
	// SendEarly, when set, receives a leader's messages before its own disk write rather than in
	// Output: a leader may replicate entries while it persists them (Raft paper §10.2.1), which takes
	// its fsync off the commit path. Followers and candidates always persist first, since their
	// messages (votes, acknowledgements) promise durable state.
	SendEarly func(msgs []*raftpb.Message)
}

// Replica drives one Raft participant and nothing else: it makes each Ready durable through its Disk and
// hands back what to send and what committed. It has no clock (callers Tick it) and no network (callers
// deliver its Messages), so the simulation can run it deterministically and the Log runs it for real.
// It must be used from one goroutine at a time.
type Replica struct {
	id      uint64
	rn      *raft.RawNode
	storage *raft.MemoryStorage
	disk    Disk
	early   func(msgs []*raftpb.Message)

	// proposed counts proposals accepted since the last Process; they are the last entries of the next Ready.
	proposed int

	lead  uint64
	state raft.StateType
	term  uint64
}

// Output is what one Process call produced, in the order the caller must act on it.
type Output struct {
	// Proposed holds the offsets of the proposals accepted since the previous Process, in proposal order;
	// they all belong to Epoch.
	Proposed []uint64
	// Messages are durable already and may be sent right away.
	Messages []*raftpb.Message
	// Committed entries, in log order, to apply.
	Committed []Entry
	// Leader and Epoch after this step; LeaderChanged says whether either moved.
	Leader        uint64
	Epoch         uint64
	LeaderChanged bool
	// LastIndex is this replica's log end after the step.
	LastIndex uint64
	// Restored, when set, is a snapshot received from the leader that now replaces everything this
	// replica held up to its offset: the state machine must load it before applying Committed.
	Restored *SnapshotMark
}

// staticVoters reports the configured quorum as Raft's configuration, whatever the stored snapshot says:
// controller.quorum.voters is fixed, as in Kafka's static quorums.
type staticVoters struct {
	*raft.MemoryStorage
	voters []uint64
}

func (s staticVoters) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, _, err := s.MemoryStorage.InitialState()
	return hs, &raftpb.ConfState{Voters: s.voters}, err
}

// NewReplica starts a replica from what its storage holds. PreVote and CheckQuorum keep a partitioned node
// from disrupting the quorum and a cut-off leader from believing it still leads (the split brain of
// KAFKA-15489); StepDownOnRemoval keeps a removed leader from lingering.
func NewReplica(cfg ReplicaConfig) (*Replica, error) {
	if cfg.ElectionTicks <= cfg.HeartbeatTicks {
		return nil, fmt.Errorf("election ticks (%d) must exceed heartbeat ticks (%d)", cfg.ElectionTicks, cfg.HeartbeatTicks)
	}
	hs, _, err := cfg.Storage.InitialState()
	if err != nil {
		return nil, err
	}
	// The WAL writes a Ready's entries before its hard state, so a crash inside one write can keep the
	// entries and lose the state: a node then restarts with a term below its last entry's, which Raft
	// cannot handle. Raising the term to that entry's, with no vote, is safe: the lost state was never
	// synced, so nothing that depended on it was ever sent.
	if li, _ := cfg.Storage.LastIndex(); li > 0 {
		if lt, err := cfg.Storage.Term(li); err == nil && lt > hs.GetTerm() {
			hs = &raftpb.HardState{Term: new(lt), Vote: new(uint64(0)), Commit: new(hs.GetCommit())}
			if err := cfg.Storage.SetHardState(hs); err != nil {
				return nil, err
			}
		}
	}
	rc := &raft.Config{
		ID:                cfg.ID,
		ElectionTick:      cfg.ElectionTicks,
		HeartbeatTick:     cfg.HeartbeatTicks,
		Storage:           staticVoters{cfg.Storage, cfg.Voters},
		Applied:           0,
		MaxSizePerMsg:     1 << 20,
		MaxInflightMsgs:   256,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		// No cap on uncommitted entries: a dropped proposal would break the controller's offset
		// prediction, and the controller's own request flow already bounds the backlog.
		MaxUncommittedEntriesSize: 0,
		// A follower must never forward: a forwarded proposal would be counted here yet appear in
		// another node's log, and the writer would be told a wrong offset.
		DisableProposalForwarding: true,
		Logger:                    cfg.Logger,
	}
	if rc.Logger == nil {
		rc.Logger = quietRaftLogger{}
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, err
	}
	return &Replica{id: cfg.ID, rn: rn, storage: cfg.Storage, disk: cfg.Disk, early: cfg.SendEarly, term: hs.GetTerm(), state: raft.StateFollower}, nil
}

// HasReady reports whether Raft has something for Process: more committed entries than one Ready
// carried, for instance.
func (r *Replica) HasReady() bool { return r.rn.HasReady() }

// Tick advances Raft's logical clock by one tick.
func (r *Replica) Tick() { r.rn.Tick() }

// Step hands Raft a message from a peer. Messages for another node or from an unknown one are dropped
// by Raft itself; a stale one is harmless.
func (r *Replica) Step(m *raftpb.Message) error { return r.rn.Step(m) }

// Propose appends data to the log if this replica leads; its offset comes out of the next Process,
// which must run before any further Step so that nothing else can reach the log in between.
func (r *Replica) Propose(data []byte) error {
	if r.state != raft.StateLeader {
		return ErrNotLeader
	}
	if err := r.rn.Propose(data); err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			return ErrNotLeader
		}
		return err
	}
	r.proposed++
	return nil
}

// ReportUnreachable tells Raft that a message to id was lost, so it probes instead of streaming.
func (r *Replica) ReportUnreachable(id uint64) { r.rn.ReportUnreachable(id) }

// Leader returns the known leader (0 if none) and the current epoch.
func (r *Replica) Leader() (uint64, uint64) { return r.lead, r.term }

// IsLeader reports whether this replica currently leads.
func (r *Replica) IsLeader() bool { return r.state == raft.StateLeader }

// Status is Raft's view, including each voter's progress when leading.
func (r *Replica) Status() raft.Status { return r.rn.Status() }

// Match is how far the leader knows id's log matches its own (0 when unknown or not leading). Unlike
// Status it allocates nothing, so it is cheap enough to call per message.
func (r *Replica) Match(id uint64) uint64 {
	var match uint64
	r.rn.WithProgress(func(pid uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pid == id {
			match = pr.Match
		}
	})
	return match
}

// LastIndex is the offset of this replica's last log entry.
func (r *Replica) LastIndex() uint64 {
	li, _ := r.storage.LastIndex()
	return li
}

// Process takes one Ready from Raft, makes it durable, and returns what to send and apply. onProposed,
// when set, learns the offsets of the accepted proposals before the disk write, so that writers can go
// on while the fsync runs. A disk error is returned as is: the caller must stop the node, since Raft's
// promises no longer hold.
func (r *Replica) Process(onProposed func(offsets []uint64, epoch uint64)) (Output, error) {
	var out Output
	if !r.rn.HasReady() {
		out.Leader, out.Epoch, out.LastIndex = r.lead, r.term, r.LastIndex()
		return out, nil
	}
	rd := r.rn.Ready()
	if rd.SoftState != nil {
		if rd.SoftState.Lead != r.lead || rd.SoftState.RaftState != r.state {
			out.LeaderChanged = true
		}
		r.lead, r.state = rd.SoftState.Lead, rd.SoftState.RaftState
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) && rd.HardState.GetTerm() != r.term {
		r.term = rd.HardState.GetTerm()
		out.LeaderChanged = true
	}
	if r.proposed > 0 {
		// Since every Ready is fully processed before the next proposal, the unstable entries are at
		// most the new leader's empty entry followed by exactly our proposals.
		n := len(rd.Entries)
		if n < r.proposed {
			return out, fmt.Errorf("raft accepted %d proposals but the ready holds %d entries", r.proposed, n)
		}
		for _, e := range rd.Entries[n-r.proposed:] {
			out.Proposed = append(out.Proposed, e.GetIndex())
		}
		r.proposed = 0
		if onProposed != nil {
			onProposed(out.Proposed, r.term)
		}
	}
	restored := rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot)
	if restored {
		// The snapshot file is already durable (the caller lets a snapshot message through only once
		// it holds the file), so the marker can go first, before the hard state that commits it.
		meta := rd.Snapshot.GetMetadata()
		if err := r.disk.SaveSnapshot(meta.GetIndex(), meta.GetTerm(), meta.GetConfState().GetVoters()); err != nil {
			return out, fmt.Errorf("persist raft snapshot marker: %w", err)
		}
		out.Restored = &SnapshotMark{Offset: meta.GetIndex(), Epoch: meta.GetTerm()}
	}
	sentEarly := false
	if r.early != nil && r.state == raft.StateLeader && len(rd.Messages) > 0 {
		r.early(rd.Messages)
		sentEarly = true
	}
	// Installing a snapshot moves only the commit index, which Raft does not ask to sync; but the
	// acknowledgement that follows promises the snapshot, and a restart trusts only a marker at or below
	// the durable commit.
	if err := r.disk.Save(rd.HardState, rd.Entries, rd.MustSync || restored); err != nil {
		return out, fmt.Errorf("persist raft state: %w", err)
	}
	if restored {
		if err := r.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return out, fmt.Errorf("install raft snapshot: %w", err)
		}
		// Nothing before the snapshot is needed any more, on disk either. Up to its offset only: the
		// segment before one that starts right after the marker must stay for a restart to find it.
		if err := r.disk.Release(out.Restored.Offset); err != nil {
			return out, fmt.Errorf("release the log before the snapshot: %w", err)
		}
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := r.storage.SetHardState(rd.HardState); err != nil {
			return out, err
		}
	}
	if len(rd.Entries) > 0 {
		if err := r.storage.Append(rd.Entries); err != nil {
			return out, err
		}
	}
	if !sentEarly {
		out.Messages = rd.Messages
	}
	for _, e := range rd.CommittedEntries {
		switch e.GetType() {
		case raftpb.EntryNormal:
			out.Committed = append(out.Committed, Entry{Offset: e.GetIndex(), Epoch: e.GetTerm(), Data: e.GetData()})
		default:
			// Voters are static, so no configuration change is ever proposed; record the offset anyway so
			// that the applied offset never skips.
			out.Committed = append(out.Committed, Entry{Offset: e.GetIndex(), Epoch: e.GetTerm()})
		}
	}
	r.rn.Advance(rd)
	for _, m := range rd.Messages {
		if m.GetType() == raftpb.MsgSnap {
			// A snapshot message carries only the snapshot's offset and epoch; the follower fetches the
			// file itself, in chunks, and takes the message only once it holds it. Reporting the send as
			// failed puts the follower back into probing, so the leader offers the snapshot again at the
			// next heartbeat until the follower acknowledges it.
			r.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		}
	}
	out.Leader, out.Epoch, out.LastIndex = r.lead, r.term, r.LastIndex()
	return out, nil
}

// Compact records that a snapshot of the log up to offset is durable (the caller has written the
// file) and drops from memory and disk the entries up to offset - keep: the last keep entries before
// the snapshot stay, so a follower a little behind catches up from the log, not the snapshot. offset
// must be applied. It does nothing for a snapshot older than the one the replica already holds.
func (r *Replica) Compact(offset, keep uint64, voters []uint64) error {
	term, err := r.storage.Term(offset)
	if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
		return nil // a newer snapshot (received from the leader) already covers it
	}
	if err != nil {
		return err
	}
	if _, err := r.storage.CreateSnapshot(offset, &raftpb.ConfState{Voters: voters}, nil); errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	} else if err != nil {
		return err
	}
	if err := r.disk.SaveSnapshot(offset, term, voters); err != nil {
		return fmt.Errorf("persist snapshot marker: %w", err)
	}
	if offset <= keep {
		return nil
	}
	upTo := offset - keep
	if first, _ := r.storage.FirstIndex(); upTo < first {
		return nil
	}
	if err := r.storage.Compact(upTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	// Never past the marker's offset, so its segment (and the one a restart opens at) stays.
	return r.disk.Release(min(upTo+1, offset))
}

// quietRaftLogger keeps Raft's chatter (every vote and term change) out of the node's log; the Log
// reports leadership changes itself, once, with slog attributes.
type quietRaftLogger struct{}

func (quietRaftLogger) Debug(...any)                   {}
func (quietRaftLogger) Debugf(string, ...any)          {}
func (quietRaftLogger) Error(...any)                   {}
func (quietRaftLogger) Errorf(string, ...any)          {}
func (quietRaftLogger) Info(...any)                    {}
func (quietRaftLogger) Infof(string, ...any)           {}
func (quietRaftLogger) Warning(...any)                 {}
func (quietRaftLogger) Warningf(string, ...any)        {}
func (quietRaftLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (quietRaftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (quietRaftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (quietRaftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
