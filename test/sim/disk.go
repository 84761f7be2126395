package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/kraftgo/kraft/metadatalog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// errCrashDuringSync is what Save returns when the simulation crashes the node in the middle of a synced
// write: the write may be torn, and the Ready it belonged to must never be acted on.
var errCrashDuringSync = errors.New("simulated crash during fsync")

// diskRecord is one WAL record: an entry, a hard state or a snapshot marker, never two of them.
type diskRecord struct {
	ent  *raftpb.Entry
	hs   *raftpb.HardState
	mark *metadatalog.SnapshotMark
}

// segment is one WAL segment file: the first offset it may hold (from its name, as etcd names it) and
// its durable entries and markers. The hard state is kept apart: etcd writes it again at the start of
// every segment, so releasing old segments never loses the newest one.
type segment struct {
	first uint64
	recs  []diskRecord
}

// fakeDisk is a metadatalog.Disk that survives its node's crashes, laid out as etcd's WAL is: a chain of
// segments, the last of which (the tail) takes every write. Only records older than the last sync are
// sure to survive a crash; later ones survive as a random prefix. Release deletes whole segments, as
// metadatalog.WALDisk does, and open replays the segments from a snapshot marker as OpenWALAt does.
type fakeDisk struct {
	// The newest durable hard state, and the durable records segment by segment.
	hs   *raftpb.HardState
	segs []*segment
	// Written but not synced, in write order; they belong to the tail segment.
	unsynced []diskRecord
	// enti is the last entry index written, raised by a snapshot marker, as etcd's WAL tracks it: a
	// new segment is named after it.
	enti uint64

	// rng draws segment cuts; cutChance is the chance that a Save fills the tail segment (the WAL then
	// syncs it and starts a new one).
	rng       *rand.Rand
	cutChance float64
	// ignoreSync makes the disk lie: it treats every Save as unsynced. Only the self-check uses it.
	ignoreSync bool
	// crashNextSync makes the next write that must sync (a Save with mustSync, or a snapshot marker)
	// stop half way, as a power cut would.
	crashNextSync bool

	syncs, writes, cuts, released int
}

func newFakeDisk(rng *rand.Rand, cutChance float64, ignoreSync bool) *fakeDisk {
	// wal.Create writes an empty snapshot marker into the first segment, which a log opened at its
	// beginning must find.
	first := &segment{recs: []diskRecord{{mark: &metadatalog.SnapshotMark{}}}}
	return &fakeDisk{segs: []*segment{first}, rng: rng, cutChance: cutChance, ignoreSync: ignoreSync}
}

// Save writes entries first and the hard state last, the order etcd's WAL uses: a torn tail can then
// hold new entries without the commit index that points into them, never the reverse.
func (d *fakeDisk) Save(hs *raftpb.HardState, ents []*raftpb.Entry, mustSync bool) error {
	for _, e := range ents {
		idx := e.GetIndex()
		if idx == 0 || idx > d.enti+1 {
			// Raft never writes past the end of its log; a gap means the replica handed us a broken
			// Ready, and a WAL reader would reject the file.
			panic(fmt.Sprintf("disk: entry %d written after a log that ends at %d", idx, d.enti))
		}
		d.unsynced = append(d.unsynced, diskRecord{ent: proto.CloneOf(e)})
		d.enti = idx
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		d.unsynced = append(d.unsynced, diskRecord{hs: proto.CloneOf(hs)})
	}
	d.writes++
	if d.ignoreSync {
		return nil
	}
	if mustSync {
		if d.crashNextSync {
			d.crashNextSync = false
			return errCrashDuringSync
		}
		d.sync()
	}
	if d.rng.Float64() < d.cutChance {
		// The tail is full: etcd syncs it and starts a segment named after the last entry written.
		d.sync()
		d.segs = append(d.segs, &segment{first: d.enti + 1})
		d.cuts++
	}
	return nil
}

// SaveSnapshot writes a snapshot marker and syncs, as etcd's WAL does: the marker is durable, and so is
// everything written before it.
func (d *fakeDisk) SaveSnapshot(index, term uint64, _ []uint64) error {
	d.unsynced = append(d.unsynced, diskRecord{mark: &metadatalog.SnapshotMark{Offset: index, Epoch: term}})
	d.enti = max(d.enti, index)
	d.writes++
	if d.ignoreSync {
		return nil
	}
	if d.crashNextSync {
		d.crashNextSync = false
		return errCrashDuringSync
	}
	d.sync()
	return nil
}

// Release deletes, oldest first, every segment whose successor starts at or before index, exactly as
// metadatalog.WALDisk.Release does: such a segment holds only entries before index (and whatever
// markers and hard states were written among them). The tail is never deleted.
func (d *fakeDisk) Release(index uint64) error {
	n := 0
	for n+1 < len(d.segs) && d.segs[n+1].first <= index {
		n++
	}
	if n > 0 {
		clear(d.segs[:n])
		d.segs = d.segs[n:]
		d.released += n
	}
	return nil
}

// Close is a no-op: the disk outlives the replica that wrote to it.
func (d *fakeDisk) Close() error { return nil }

// crash keeps a random prefix of the unsynced records, possibly none, and drops the rest.
func (d *fakeDisk) crash(rng *rand.Rand) (kept, lost int) {
	kept = rng.IntN(len(d.unsynced) + 1)
	lost = len(d.unsynced) - kept
	d.fold(kept)
	d.unsynced = nil
	return kept, lost
}

func (d *fakeDisk) sync() {
	d.syncs++
	d.fold(len(d.unsynced))
}

// fold makes the first n unsynced records durable, in the tail segment.
func (d *fakeDisk) fold(n int) {
	tail := d.segs[len(d.segs)-1]
	for _, r := range d.unsynced[:n] {
		if r.hs != nil {
			d.hs = r.hs
			continue
		}
		tail.recs = append(tail.recs, r)
	}
	d.unsynced = append(d.unsynced[:0], d.unsynced[n:]...)
}

// marks lists the snapshot markers a restart may start from, as wal.ValidSnapshotEntries does: every
// durable marker at or below the durable commit index (a marker past it was written ahead of the hard
// state that commits it, which may never have reached the disk).
func (d *fakeDisk) marks() []metadatalog.SnapshotMark {
	var out []metadatalog.SnapshotMark
	for _, s := range d.segs {
		for _, r := range s.recs {
			if r.mark != nil && r.mark.Offset > 0 && r.mark.Offset <= d.hs.GetCommit() {
				out = append(out, *r.mark)
			}
		}
	}
	return out
}

// firstOffset is the first offset the oldest segment may hold: 0 while the log starts at the
// beginning (metadatalog's walFirstOffset).
func (d *fakeDisk) firstOffset() uint64 { return d.segs[0].first }

// open replays the durable log from the snapshot marker mark (the zero mark: the beginning) into a fresh
// MemoryStorage, as metadatalog.OpenWALAt does over etcd's wal.Open and ReadAll: the segments read are
// the one that may hold mark and those after it; the marker itself must be among their records; each
// entry after mark replaces every entry from its index on, and one that would leave a gap is an error.
// The storage starts with a snapshot of voters at mark, and the hard state is raised to the snapshot
// (commit at least its offset, and its epoch with no vote if the term is older).
func (d *fakeDisk) open(mark metadatalog.SnapshotMark, voters []uint64) (*raft.MemoryStorage, error) {
	if len(d.unsynced) > 0 {
		panic("disk: opened with unsynced records; a crash should have settled them")
	}
	from := -1
	for i, s := range d.segs {
		if s.first <= mark.Offset {
			from = i
		}
	}
	if from < 0 {
		return nil, fmt.Errorf("no WAL segment may hold offset %d: the oldest starts at %d", mark.Offset, d.segs[0].first)
	}
	var ents []*raftpb.Entry
	found := false
	for _, s := range d.segs[from:] {
		for _, r := range s.recs {
			if r.mark != nil && r.mark.Offset == mark.Offset {
				if r.mark.Epoch != mark.Epoch {
					return nil, fmt.Errorf("the snapshot marker at offset %d has epoch %d, want %d", mark.Offset, r.mark.Epoch, mark.Epoch)
				}
				found = true
			}
			if r.ent == nil || r.ent.GetIndex() <= mark.Offset {
				continue
			}
			off := r.ent.GetIndex() - mark.Offset - 1
			if off > uint64(len(ents)) {
				return nil, fmt.Errorf("entry %d follows a log that ends at %d (replaying from offset %d)", r.ent.GetIndex(), mark.Offset+uint64(len(ents)), mark.Offset)
			}
			ents = append(ents[:off], proto.CloneOf(r.ent))
		}
	}
	if !found {
		return nil, fmt.Errorf("the WAL holds no snapshot marker at offset %d epoch %d", mark.Offset, mark.Epoch)
	}
	hs := &raftpb.HardState{}
	if d.hs != nil {
		hs = proto.CloneOf(d.hs)
	}
	ms := raft.NewMemoryStorage()
	if mark.Offset > 0 {
		snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(mark.Offset), Term: new(mark.Epoch), ConfState: &raftpb.ConfState{Voters: voters}}}
		if err := ms.ApplySnapshot(snap); err != nil {
			return nil, err
		}
		if hs.GetCommit() < mark.Offset || hs.GetTerm() < mark.Epoch {
			term, vote := hs.GetTerm(), hs.GetVote()
			if term < mark.Epoch {
				term, vote = mark.Epoch, 0
			}
			hs = &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(max(hs.GetCommit(), mark.Offset))}
		}
	}
	if err := ms.SetHardState(hs); err != nil {
		return nil, err
	}
	if err := ms.Append(ents); err != nil {
		return nil, err
	}
	d.enti, _ = ms.LastIndex()
	return ms, nil
}
