package metadatalog

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

type nopDisk struct{}

func (nopDisk) Save(*raftpb.HardState, []*raftpb.Entry, bool) error { return nil }
func (nopDisk) SaveSnapshot(uint64, uint64, []uint64) error         { return nil }
func (nopDisk) Release(uint64) error                                { return nil }
func (nopDisk) Close() error                                        { return nil }

// A crash inside one WAL write can keep entries of a new term and lose the hard state that raised
// the term; the replica must start (and answer a pre-vote) rather than panic inside Raft.
func TestReplicaStartsWithEntriesAheadOfItsTerm(t *testing.T) {
	ms := raft.NewMemoryStorage()
	if err := ms.Append([]*raftpb.Entry{{Index: new(uint64(1)), Term: new(uint64(1))}}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReplica(ReplicaConfig{ID: 3, Voters: []uint64{1, 2, 3}, ElectionTicks: 10, HeartbeatTicks: 1, Storage: ms, Disk: nopDisk{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Step(&raftpb.Message{Type: raftpb.MsgPreVote.Enum(), From: new(uint64(1)), To: new(uint64(3)), Term: new(uint64(1)), Index: new(uint64(0)), LogTerm: new(uint64(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Process(nil); err != nil {
		t.Fatal(err)
	}
	if _, epoch := r.Leader(); epoch < 1 {
		t.Fatalf("epoch %d after restart, want at least the last entry's term 1", epoch)
	}
}
