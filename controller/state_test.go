package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"google.golang.org/protobuf/proto"
)

// stTopicBatch is a batch creating one topic whose id is derived from its name.
func stTopicBatch(name string) *metadatapb.RecordBatch {
	id := make([]byte, 16)
	copy(id, name)
	id[15] = byte(len(name))
	return &metadatapb.RecordBatch{Records: []*metadatapb.Record{{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: name, TopicId: id}}}}}
}

func stData(t *testing.T, b *metadatapb.RecordBatch) []byte {
	t.Helper()
	data, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// stEntry is a committed entry; an empty name gives Raft's own empty entry.
func stEntry(t *testing.T, offset, epoch uint64, topic string) metadatalog.Entry {
	t.Helper()
	e := metadatalog.Entry{Offset: offset, Epoch: epoch}
	if topic != "" {
		e.Data = stData(t, stTopicBatch(topic))
	}
	return e
}

func stHasTopic(img *metadatalog.Image, name string) bool {
	_, ok := img.TopicByName(name)
	return ok
}

// stRecorder records the completions of parked writes.
type stRecorder struct {
	calls []string
}

func (r *stRecorder) complete(offset uint64) func(bool) {
	return func(committed bool) { r.calls = append(r.calls, fmt.Sprintf("%d:%v", offset, committed)) }
}

func mustApplyCommitted(t *testing.T, s *quorumState, entries ...metadatalog.Entry) bool {
	t.Helper()
	activated, err := s.applyCommitted(entries)
	if err != nil {
		t.Fatalf("applyCommitted: %v", err)
	}
	return activated
}

// stActiveLeader returns node 1 active in epoch 3 with offsets 1..3 committed (3 is its empty entry).
func stActiveLeader(t *testing.T) *quorumState {
	t.Helper()
	s := newQuorumState(1, metadatalog.EmptyImage())
	s.leaderChanged(2, 2)
	mustApplyCommitted(t, s, stEntry(t, 1, 1, ""), stEntry(t, 2, 2, "before"))
	s.leaderChanged(1, 3)
	if !mustApplyCommitted(t, s, stEntry(t, 3, 3, "")) || !s.active {
		t.Fatal("node 1 did not activate on the first entry of its epoch")
	}
	return s
}

func TestQuorumStateFollowerNeverActivates(t *testing.T) {
	tests := []struct {
		name    string
		leader  uint64
		epoch   uint64
		entries [][2]uint64 // offset, epoch
	}{
		{"another node leads", 2, 3, [][2]uint64{{1, 1}, {2, 2}, {3, 3}, {4, 3}}},
		{"no leader known", 0, 3, [][2]uint64{{1, 3}, {2, 3}}},
		{"leader of an earlier epoch", 2, 1, [][2]uint64{{1, 1}, {2, 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newQuorumState(1, metadatalog.EmptyImage())
			s.leaderChanged(tc.leader, tc.epoch)
			for _, oe := range tc.entries {
				name := fmt.Sprintf("t%d", oe[0])
				if mustApplyCommitted(t, s, stEntry(t, oe[0], oe[1], name)) {
					t.Fatalf("follower activated at offset %d", oe[0])
				}
				if s.active {
					t.Fatalf("follower active at offset %d", oe[0])
				}
				if s.committed.Offset != oe[0] || s.committed.Epoch != oe[1] || !stHasTopic(s.committed, name) {
					t.Fatalf("committed image at offset %d epoch %d, want %d/%d with topic %s", s.committed.Offset, s.committed.Epoch, oe[0], oe[1], name)
				}
				if s.speculative != s.committed {
					t.Fatal("a follower's speculative image differs from its committed one")
				}
			}
		})
	}
}

func TestQuorumStateActivation(t *testing.T) {
	type step struct {
		leader, epoch uint64      // leaderChanged before the entries, when epoch != 0
		entries       [][2]uint64 // offset, epoch
		activated     bool        // what applyCommitted reports
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"activates on the first entry of its epoch", []step{
			{1, 3, [][2]uint64{{1, 1}, {2, 2}}, false},
			{0, 0, [][2]uint64{{3, 3}}, true},
			{0, 0, [][2]uint64{{4, 3}}, false},
		}},
		{"earlier-epoch entries in the same call do not count", []step{
			{1, 3, [][2]uint64{{1, 1}, {2, 2}, {3, 3}, {4, 3}}, true},
			{0, 0, [][2]uint64{{5, 3}}, false},
		}},
		{"only earlier-epoch entries", []step{
			{1, 3, [][2]uint64{{1, 1}}, false},
			{0, 0, [][2]uint64{{2, 2}}, false},
			{0, 0, nil, false},
		}},
		{"first leader of an empty log", []step{
			{1, 1, [][2]uint64{{1, 1}}, true},
		}},
		{"followed then led", []step{
			{2, 1, [][2]uint64{{1, 1}, {2, 1}}, false},
			{1, 2, [][2]uint64{{3, 1}}, false},
			{0, 0, [][2]uint64{{4, 2}}, true},
		}},
		{"led then lost before activating", []step{
			{1, 2, [][2]uint64{{1, 1}}, false},
			{3, 3, [][2]uint64{{2, 2}, {3, 3}}, false},
		}},
		{"re-elected in a later epoch activates again", []step{
			{1, 2, [][2]uint64{{1, 2}}, true},
			{1, 4, [][2]uint64{{2, 2}, {3, 2}}, false},
			{0, 0, [][2]uint64{{4, 4}}, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newQuorumState(1, metadatalog.EmptyImage())
			activations := 0
			for i, st := range tc.steps {
				if st.epoch != 0 {
					s.leaderChanged(st.leader, st.epoch)
				}
				var entries []metadatalog.Entry
				for _, oe := range st.entries {
					entries = append(entries, stEntry(t, oe[0], oe[1], ""))
				}
				got := mustApplyCommitted(t, s, entries...)
				if got != st.activated {
					t.Fatalf("step %d: activated = %v, want %v", i, got, st.activated)
				}
				if got {
					activations++
					if !s.active {
						t.Fatalf("step %d: reported activation but not active", i)
					}
					if s.speculative != s.committed {
						t.Fatalf("step %d: activated with a speculative image ahead of the committed one", i)
					}
				}
				if st.activated && s.committed.Epoch != s.epoch {
					t.Fatalf("step %d: active at committed epoch %d, leading epoch %d", i, s.committed.Epoch, s.epoch)
				}
			}
			last := tc.steps[len(tc.steps)-1]
			wantActive := false
			for _, st := range tc.steps {
				if st.epoch != 0 {
					wantActive = false
				}
				if st.activated {
					wantActive = true
				}
			}
			if s.active != wantActive {
				t.Fatalf("active = %v at the end, want %v (last step %+v)", s.active, wantActive, last)
			}
		})
	}
}

func TestQuorumStateWroteAdvancesOnlySpeculative(t *testing.T) {
	s := stActiveLeader(t)
	committed := s.committed
	var rec stRecorder
	if err := stWrote(t, s, 4, stTopicBatch("a"), rec.complete(4)); err != nil {
		t.Fatal(err)
	}
	if err := stWrote(t, s, 5, stTopicBatch("b"), rec.complete(5)); err != nil {
		t.Fatal(err)
	}
	if !stHasTopic(s.speculative, "a") || !stHasTopic(s.speculative, "b") || s.speculative.Offset != 5 {
		t.Fatalf("speculative image at offset %d lacks the writes", s.speculative.Offset)
	}
	if s.committed != committed || stHasTopic(s.committed, "a") || s.committed.Offset != 3 {
		t.Fatal("wrote changed the committed image")
	}
	if len(rec.calls) != 0 {
		t.Fatalf("writes completed before they committed: %v", rec.calls)
	}
	// A write the speculative image cannot take is refused and not parked.
	if err := stWrote(t, s, 6, stTopicBatch("a"), rec.complete(6)); err == nil {
		t.Fatal("wrote accepted a duplicate topic")
	} else if ae := (*metadatalog.ApplyError)(nil); !errors.As(err, &ae) {
		t.Fatalf("wrote error %T, want *metadatalog.ApplyError", err)
	}
	if s.speculative.Offset != 5 || len(s.parked) != 2 {
		t.Fatalf("a refused write moved the speculative image to %d or parked (%d parked)", s.speculative.Offset, len(s.parked))
	}
}

func TestQuorumStateParkedWritesCompleteInOrder(t *testing.T) {
	tests := []struct {
		name    string
		commits [][]uint64 // offsets of each applyCommitted call
		want    [][]string // completions after each call
	}{
		{"one at a time", [][]uint64{{4}, {5}, {6}}, [][]string{{"4:true"}, {"4:true", "5:true"}, {"4:true", "5:true", "6:true"}}},
		{"all at once", [][]uint64{{4, 5, 6}}, [][]string{{"4:true", "5:true", "6:true"}}},
		{"two then one", [][]uint64{{4, 5}, {6}}, [][]string{{"4:true", "5:true"}, {"4:true", "5:true", "6:true"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stActiveLeader(t)
			var rec stRecorder
			for _, off := range []uint64{4, 5, 6} {
				if err := stWrote(t, s, off, stTopicBatch(fmt.Sprintf("t%d", off)), rec.complete(off)); err != nil {
					t.Fatal(err)
				}
			}
			spec := s.speculative
			for i, offs := range tc.commits {
				var entries []metadatalog.Entry
				for _, off := range offs {
					entries = append(entries, stEntry(t, off, 3, fmt.Sprintf("t%d", off)))
				}
				if mustApplyCommitted(t, s, entries...) {
					t.Fatal("an active controller activated again")
				}
				if !slices.Equal(rec.calls, tc.want[i]) {
					t.Fatalf("after commit %d: completions %v, want %v", i, rec.calls, tc.want[i])
				}
				last := offs[len(offs)-1]
				if s.committed.Offset != last || !stHasTopic(s.committed, fmt.Sprintf("t%d", last)) {
					t.Fatalf("committed image at %d, want %d", s.committed.Offset, last)
				}
				if last < 6 {
					if s.speculative != spec || !stHasTopic(s.speculative, "t6") {
						t.Fatal("the speculative image lost uncommitted writes when an earlier one committed")
					}
					if stHasTopic(s.committed, "t6") {
						t.Fatal("an uncommitted write reached the committed image")
					}
				} else if s.speculative != s.committed {
					t.Fatal("with nothing parked, the speculative image should be the committed one")
				}
			}
			if len(s.parked) != 0 || !s.active {
				t.Fatalf("%d writes still parked, active %v", len(s.parked), s.active)
			}
		})
	}
}

func TestQuorumStateLosingLeadershipFailsParkedWrites(t *testing.T) {
	tests := []struct {
		name          string
		leader, epoch uint64
		resigns       bool
	}{
		{"another leader, same epoch", 2, 3, true},
		{"another leader, higher epoch", 2, 4, true},
		{"no leader, higher epoch", 0, 4, true},
		{"no leader, same epoch", 0, 3, true},
		{"this node again, higher epoch", 1, 4, true},
		{"this node, same epoch", 1, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stActiveLeader(t)
			var rec stRecorder
			for _, off := range []uint64{4, 5, 6} {
				if err := stWrote(t, s, off, stTopicBatch(fmt.Sprintf("t%d", off)), rec.complete(off)); err != nil {
					t.Fatal(err)
				}
			}
			mustApplyCommitted(t, s, stEntry(t, 4, 3, "t4"))
			committed := s.committed
			s.leaderChanged(tc.leader, tc.epoch)
			if !tc.resigns {
				if !s.active || len(s.parked) != 2 || !slices.Equal(rec.calls, []string{"4:true"}) {
					t.Fatalf("a same-leader same-epoch notice resigned: active %v, parked %d, calls %v", s.active, len(s.parked), rec.calls)
				}
				if !stHasTopic(s.speculative, "t6") {
					t.Fatal("the speculative image was reset")
				}
				return
			}
			if s.active {
				t.Fatal("still active after losing leadership")
			}
			if want := []string{"4:true", "5:false", "6:false"}; !slices.Equal(rec.calls, want) {
				t.Fatalf("completions %v, want %v", rec.calls, want)
			}
			if len(s.parked) != 0 {
				t.Fatalf("%d writes still parked", len(s.parked))
			}
			if s.speculative != committed || s.committed != committed || stHasTopic(s.speculative, "t5") {
				t.Fatal("the speculative image did not revert to the committed one")
			}
			if s.leader != tc.leader || s.epoch != tc.epoch {
				t.Fatalf("leader %d epoch %d, want %d/%d", s.leader, s.epoch, tc.leader, tc.epoch)
			}
			// The failed writes may still commit under the next leader: they are applied, but nobody is
			// told twice.
			if mustApplyCommitted(t, s, stEntry(t, 5, 3, "t5"), stEntry(t, 6, 3, "t6")) {
				t.Fatal("a deposed controller activated on entries of its old epoch")
			}
			if len(rec.calls) != 3 {
				t.Fatalf("completions after the old writes committed: %v", rec.calls)
			}
			if !stHasTopic(s.committed, "t6") || s.speculative != s.committed {
				t.Fatal("the old epoch's committed writes were not applied")
			}
			// A later notice does not complete anything again.
			s.leaderChanged(3, tc.epoch+1)
			if len(rec.calls) != 3 {
				t.Fatalf("completions after another leader change: %v", rec.calls)
			}
		})
	}
}

func TestQuorumStateCorruptEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		active bool
	}{{"follower", false}, {"active", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var s *quorumState
			if tc.active {
				s = stActiveLeader(t)
			} else {
				s = newQuorumState(1, metadatalog.EmptyImage())
				s.leaderChanged(2, 1)
				mustApplyCommitted(t, s, stEntry(t, 1, 1, ""), stEntry(t, 2, 1, ""), stEntry(t, 3, 1, ""))
			}
			// 0xff is field 31 with wire type 7, which does not exist.
			_, err := s.applyCommitted([]metadatalog.Entry{stEntry(t, 4, s.epoch, "ok"), {Offset: 5, Epoch: s.epoch, Data: []byte{0xff, 0xff, 0xff}}})
			if !errors.Is(err, metadatalog.ErrCorruptLog) {
				t.Fatalf("applyCommitted = %v, want an error wrapping ErrCorruptLog", err)
			}
			if want := "offset 5"; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
			if s.committed.Offset == 5 {
				t.Fatal("the committed image moved past a corrupt entry")
			}
		})
	}
}

func TestQuorumStateImpossibleRecord(t *testing.T) {
	s := newQuorumState(1, metadatalog.EmptyImage())
	s.leaderChanged(2, 1)
	mustApplyCommitted(t, s, stEntry(t, 1, 1, "dup"))
	_, err := s.applyCommitted([]metadatalog.Entry{stEntry(t, 2, 1, "dup")})
	var ae *metadatalog.ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("applyCommitted = %T %v, want *metadatalog.ApplyError", err, err)
	}
	if ae.Offset != 2 {
		t.Fatalf("ApplyError offset %d, want 2", ae.Offset)
	}
	if errors.Is(err, metadatalog.ErrCorruptLog) {
		t.Fatal("an impossible record is not a decoding failure")
	}
	if s.committed.Offset != 1 {
		t.Fatalf("the committed image moved to %d past an impossible record", s.committed.Offset)
	}
	// A change for a broker that was never registered is impossible too.
	b := &metadatapb.RecordBatch{Records: []*metadatapb.Record{{Record: &metadatapb.Record_BrokerRegistrationChange{
		BrokerRegistrationChange: &metadatapb.BrokerRegistrationChangeRecord{BrokerId: 9, BrokerEpoch: 1, Fenced: metadatapb.BoolChange_BOOL_CHANGE_FALSE}}}}}
	if _, err := s.applyCommitted([]metadatalog.Entry{{Offset: 2, Epoch: 1, Data: stData(t, b)}}); !errors.As(err, &ae) || ae.Offset != 2 {
		t.Fatalf("applyCommitted = %v, want *metadatalog.ApplyError at offset 2", err)
	}
}

// stWrote appends at the state's next offset and checks that offset is the one the test expects.
func stWrote(t *testing.T, s *quorumState, want uint64, batch *metadatapb.RecordBatch, complete func(bool)) error {
	t.Helper()
	if s.nextOffset != want {
		t.Fatalf("next offset is %d, want %d", s.nextOffset, want)
	}
	off, err := s.wrote(batch, complete)
	if err == nil && off != want {
		t.Fatalf("wrote at offset %d, want %d", off, want)
	}
	return err
}
