package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// errCrashDuringSync is what Save returns when the simulation crashes the node in the middle of a synced
// write: the write may be torn, and the Ready it belonged to must never be acted on.
var errCrashDuringSync = errors.New("simulated crash during fsync")

// diskRecord is one WAL record: an entry or a hard state, never both.
type diskRecord struct {
	ent *raftpb.Entry
	hs  *raftpb.HardState
}

// fakeDisk is a metadatalog.Disk that survives its node's crashes. Only records older than the last sync
// are sure to survive one; later ones survive as a random prefix.
type fakeDisk struct {
	// What survives any crash, already folded as a WAL replay would fold it.
	hs   *raftpb.HardState
	ents []*raftpb.Entry
	// Written but not synced, in write order.
	unsynced []diskRecord

	// ignoreSync makes the disk lie: it treats every Save as unsynced. Only the self-check uses it.
	ignoreSync bool
	// crashNextSync makes the next Save that must sync stop half way, as a power cut would.
	crashNextSync bool

	syncs, writes int
}

// Save writes entries first and the hard state last, the order etcd's WAL uses: a torn tail can then
// hold new entries without the commit index that points into them, never the reverse.
func (d *fakeDisk) Save(hs *raftpb.HardState, ents []*raftpb.Entry, mustSync bool) error {
	for _, e := range ents {
		d.unsynced = append(d.unsynced, diskRecord{ent: proto.CloneOf(e)})
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		d.unsynced = append(d.unsynced, diskRecord{hs: proto.CloneOf(hs)})
	}
	d.writes++
	if !mustSync || d.ignoreSync {
		return nil
	}
	if d.crashNextSync {
		d.crashNextSync = false
		return errCrashDuringSync
	}
	d.syncs++
	d.fold(len(d.unsynced))
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

// fold makes the first n unsynced records durable, replaying them as a WAL reader would: a hard state
// replaces the previous one, and an entry at index i cuts the log back to i-1 before it is appended.
func (d *fakeDisk) fold(n int) {
	for _, r := range d.unsynced[:n] {
		if r.hs != nil {
			d.hs = r.hs
			continue
		}
		idx := r.ent.GetIndex()
		if idx == 0 || idx > uint64(len(d.ents))+1 {
			// Raft never writes past the end of its log; a gap means the replica handed us a broken
			// Ready, and a WAL reader would reject the file.
			panic(fmt.Sprintf("disk: entry %d written after a log that ends at %d", idx, len(d.ents)))
		}
		d.ents = append(d.ents[:idx-1], r.ent)
	}
	d.unsynced = append(d.unsynced[:0], d.unsynced[n:]...)
}

// storage replays the durable state into a fresh MemoryStorage, as metadatalog.OpenWAL does on start.
func (d *fakeDisk) storage() *raft.MemoryStorage {
	ms := raft.NewMemoryStorage()
	if d.hs != nil {
		if err := ms.SetHardState(proto.CloneOf(d.hs)); err != nil {
			panic(fmt.Sprintf("disk: replay hard state: %v", err))
		}
	}
	if len(d.ents) > 0 {
		ents := make([]*raftpb.Entry, len(d.ents))
		for i, e := range d.ents {
			ents[i] = proto.CloneOf(e)
		}
		if err := ms.Append(ents); err != nil {
			panic(fmt.Sprintf("disk: replay entries: %v", err))
		}
	}
	return ms
}
