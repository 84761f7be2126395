package controller

import (
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
)

// An active controller's own batch, committed where it was written, becomes the committed image
// without a second Apply: the committed image is the very image the speculative Apply built, and it
// equals a replay of the log.
func TestQuorumStateCommitReusesTheSpeculativeImage(t *testing.T) {
	s := stActiveLeader(t)
	var rec stRecorder
	var built []*metadatalog.Image
	for _, off := range []uint64{4, 5, 6} {
		if err := stWrote(t, s, off, stTopicBatch(stName(off)), rec.complete(off)); err != nil {
			t.Fatal(err)
		}
		built = append(built, s.speculative)
	}
	replay := s.committed
	for i, off := range []uint64{4, 5, 6} {
		e := stEntry(t, off, 3, stName(off))
		mustApplyCommitted(t, s, e)
		if s.committed != built[i] {
			t.Fatalf("offset %d: the commit built a new image instead of taking the speculative one", off)
		}
		replay = stReplay(t, replay, e)
		stSameImage(t, s.committed, replay)
	}
	if len(s.speculated) != 0 || s.speculative != s.committed {
		t.Fatalf("%d speculations left; speculative image is the committed one: %v", len(s.speculated), s.speculative == s.committed)
	}
}

// Whatever commits that is not exactly what was speculated is applied from the log: an entry of
// another epoch at a speculated offset, and every speculation built on top of it.
func TestQuorumStateCommitAppliesWhatWasNotSpeculated(t *testing.T) {
	tests := []struct {
		name   string
		commit func(t *testing.T, s *quorumState)
	}{
		{"another epoch at the offset", func(t *testing.T, s *quorumState) {
			mustApplyCommitted(t, s, stEntry(t, 4, 4, "other4"), stEntry(t, 5, 3, "t5"))
		}},
		{"after a resignation", func(t *testing.T, s *quorumState) {
			s.leaderChanged(2, 4)
			mustApplyCommitted(t, s, stEntry(t, 4, 3, "other4"), stEntry(t, 5, 3, "t5"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stActiveLeader(t)
			var rec stRecorder
			var built []*metadatalog.Image
			for _, off := range []uint64{4, 5} {
				if err := stWrote(t, s, off, stTopicBatch(stName(off)), rec.complete(off)); err != nil {
					t.Fatal(err)
				}
				built = append(built, s.speculative)
			}
			tc.commit(t, s)
			if s.committed == built[0] || s.committed == built[1] {
				t.Fatal("a speculative image was taken for an entry it was not built from")
			}
			if !stHasTopic(s.committed, "other4") || stHasTopic(s.committed, "t4") || !stHasTopic(s.committed, "t5") {
				t.Fatal("the committed image is not the log's")
			}
		})
	}
}

func stName(off uint64) string { return "t" + string(rune('0'+off)) }

func stReplay(t *testing.T, img *metadatalog.Image, e metadatalog.Entry) *metadatalog.Image {
	t.Helper()
	s := newQuorumState(9, metadatalog.EmptyImage())
	s.committed = img
	mustApplyCommitted(t, s, e)
	return s.committed
}

func stSameImage(t *testing.T, got, want *metadatalog.Image) {
	t.Helper()
	g, w := got.Records(), want.Records()
	if got.Offset != want.Offset || got.Epoch != want.Epoch || len(g) != len(w) {
		t.Fatalf("image at %d/%d with %d records, replay at %d/%d with %d", got.Offset, got.Epoch, len(g), want.Offset, want.Epoch, len(w))
	}
	for i := range g {
		if g[i].String() != w[i].String() {
			t.Fatalf("record %d: %v, replay has %v", i, g[i], w[i])
		}
	}
}
