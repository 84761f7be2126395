package controller

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
)

var sessT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sessAt(d time.Duration) time.Time { return sessT0.Add(d) }

func sessIDs(expired []expiredSession) []int32 {
	ids := []int32{}
	for _, e := range expired {
		ids = append(ids, e.id)
	}
	return ids
}

// sessOrder lists the sessions front to back, checking the links both ways and the deadline order.
func sessOrder(t *testing.T, s *brokerSessions) []int32 {
	t.Helper()
	ids := []int32{}
	for at := s.root.next; at != &s.root; at = at.next {
		if at.next.prev != at {
			t.Fatalf("broken link after broker %d", at.id)
		}
		if at.next != &s.root && at.next.deadline.Before(at.deadline) {
			t.Fatalf("broker %d (deadline %v) is before broker %d (deadline %v)", at.id, at.deadline, at.next.id, at.next.deadline)
		}
		ids = append(ids, at.id)
	}
	if len(ids) != s.len() {
		t.Fatalf("%d sessions in the list, %d in the map", len(ids), s.len())
	}
	return ids
}

func TestSessionsExpireInDeadlineOrder(t *testing.T) {
	s := newBrokerSessions(9 * time.Second)
	s.touch(3, 30, sessAt(0))
	s.touch(1, 10, sessAt(time.Second))
	s.touch(2, 20, sessAt(2*time.Second))
	if got := sessOrder(t, s); !slices.Equal(got, []int32{3, 1, 2}) {
		t.Fatalf("order = %v", got)
	}
	if got := s.popExpired(sessAt(9*time.Second-time.Nanosecond), 100); len(got) != 0 {
		t.Fatalf("expired before any deadline: %v", got)
	}
	got := s.popExpired(sessAt(10*time.Second), 100)
	if want := []expiredSession{{3, 30}, {1, 10}}; !slices.Equal(got, want) {
		t.Fatalf("expired = %v, want %v", got, want)
	}
	// Expiry removes them: asking again yields nothing more until broker 2's deadline.
	if got := s.popExpired(sessAt(10*time.Second), 100); len(got) != 0 {
		t.Fatalf("expired twice: %v", got)
	}
	if got := sessOrder(t, s); !slices.Equal(got, []int32{2}) {
		t.Fatalf("left = %v", got)
	}
	if s.liveFor(3, sessAt(10*time.Second)) != 0 || s.liveFor(2, sessAt(10*time.Second)) != time.Second {
		t.Fatalf("liveFor: 3 → %v, 2 → %v", s.liveFor(3, sessAt(10*time.Second)), s.liveFor(2, sessAt(10*time.Second)))
	}
}

func TestSessionsPopExpiredIsBounded(t *testing.T) {
	s := newBrokerSessions(time.Second)
	for id := range int32(10) {
		s.touch(id, 1, sessAt(0))
	}
	var batches [][]int32
	for {
		b := s.popExpired(sessAt(time.Hour), 4)
		if len(b) == 0 {
			break
		}
		batches = append(batches, sessIDs(b))
	}
	if fmt.Sprint(batches) != "[[0 1 2 3] [4 5 6 7] [8 9]]" {
		t.Fatalf("batches = %v", batches)
	}
}

func TestSessionsRefreshMovesToBack(t *testing.T) {
	s := newBrokerSessions(9 * time.Second)
	for i, id := range []int32{1, 2, 3, 4} {
		s.touch(id, int64(id), sessAt(time.Duration(i)*time.Second))
	}
	s.touch(1, 1, sessAt(5*time.Second))
	s.touch(3, 3, sessAt(6*time.Second))
	if got := sessOrder(t, s); !slices.Equal(got, []int32{2, 4, 1, 3}) {
		t.Fatalf("order = %v, want [2 4 1 3]", got)
	}
	if got := sessIDs(s.popExpired(sessAt(14*time.Second), 100)); !slices.Equal(got, []int32{2, 4, 1}) {
		t.Fatalf("expired = %v, want [2 4 1]", got)
	}
	// A clock that steps back still keeps the list ordered.
	s.touch(7, 7, sessAt(time.Second))
	if got := sessOrder(t, s); !slices.Equal(got, []int32{7, 3}) {
		t.Fatalf("order = %v, want [7 3]", got)
	}
}

func TestSessionsNewEpochStartsOver(t *testing.T) {
	s := newBrokerSessions(time.Second)
	sess := s.touch(1, 10, sessAt(0))
	sess.metadataOffset, sess.controlledShutdownOffset = 50, 40
	if sess = s.touch(1, 10, sessAt(time.Millisecond)); sess.metadataOffset != 50 || sess.controlledShutdownOffset != 40 {
		t.Fatalf("a refresh lost the soft state: %+v", sess)
	}
	if sess = s.touch(1, 11, sessAt(2*time.Millisecond)); sess.metadataOffset != -1 || sess.controlledShutdownOffset != -1 || sess.epoch != 11 {
		t.Fatalf("a new incarnation inherited the old soft state: %+v", sess)
	}
	s.remove(1)
	s.remove(1)
	if s.len() != 0 || len(sessOrder(t, s)) != 0 {
		t.Fatal("remove left a session")
	}
}

func TestSessionsActivateGivesEveryBrokerAFreshSession(t *testing.T) {
	img := fcImage(t, 4, ccRegistered(1, 10, 1, false, false), ccRegistered(2, 11, 1, true, false), ccRegistered(3, 12, 1, false, true))
	s := newBrokerSessions(9 * time.Second)
	s.touch(99, 1, sessAt(0)) // left over from an earlier term: dropped
	s.activate(img.Brokers(), sessAt(time.Minute))
	if got := sessOrder(t, s); !slices.Equal(got, []int32{1, 2, 3}) {
		t.Fatalf("sessions = %v, want every registered broker", got)
	}
	for _, id := range []int32{1, 2, 3} {
		sess := s.get(id)
		if want := sessAt(time.Minute + 9*time.Second); !sess.deadline.Equal(want) || sess.metadataOffset != -1 {
			t.Fatalf("broker %d: deadline %v offset %d, want %v and -1", id, sess.deadline, sess.metadataOffset, want)
		}
	}
	// No broker has reported to the new controller, so none is known to be caught up with anything.
	if got := s.lowestActiveOffset(img); got != -1 {
		t.Fatalf("lowest active offset = %d, want -1", got)
	}
	s.get(1).metadataOffset = 40
	// Broker 2 is fenced and 3 shutting down: only 1 is active.
	if got := s.lowestActiveOffset(img); got != 40 {
		t.Fatalf("lowest active offset = %d, want 40", got)
	}
	s.reset()
	if s.len() != 0 || s.lowestActiveOffset(img) != math.MaxInt64 {
		t.Fatal("reset kept sessions")
	}
}

// TestSessionExpiryFencesExactlyOnce drives the loop's expiry against a quorumState, as
// Controller.expireSessions does, with the writes landing in the speculative image.
func TestSessionExpiryFencesExactlyOnce(t *testing.T) {
	st := newQuorumState(1, metadatalog.EmptyImage())
	st.leaderChanged(1, 1)
	boot := stData(t, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		fcFeatureRecord(metadatalog.MetadataVersionFeature, 4),
		ccRegistered(1, 1, 1, false, false), ccRegistered(2, 1, 1, false, false), ccRegistered(3, 1, 1, true, false),
	}})
	if _, err := st.applyCommitted([]metadatalog.Entry{{Offset: 1, Epoch: 1, Data: boot}}); err != nil || !st.active {
		t.Fatalf("activation: %v", err)
	}
	cc := clusterControl{clusterID: ccCluster}
	s := newBrokerSessions(time.Second)
	s.activate(st.committed.Brokers(), sessAt(0))
	s.touch(2, 1, sessAt(500*time.Millisecond))

	var written [][]string
	expire := func(now time.Time) {
		for {
			expired := s.popExpired(now, maxFencesPerBatch)
			if len(expired) == 0 {
				return
			}
			records, _ := cc.fenceExpired(st.speculative, expired)
			if len(records) == 0 {
				continue
			}
			written = append(written, ccDescribe(records))
			if _, err := st.wrote(&metadatapb.RecordBatch{Records: records}, func(bool) {}); err != nil {
				t.Fatal(err)
			}
		}
	}
	expire(sessAt(999 * time.Millisecond))
	expire(sessAt(time.Second)) // 1 and 3 expire; 3 is fenced already
	expire(sessAt(1100 * time.Millisecond))
	if want := [][]string{{"change(1,epoch=1,fenced=TRUE,ics=-)"}}; fmt.Sprint(written) != fmt.Sprint(want) {
		t.Fatalf("written = %v, want %v", written, want)
	}
	// The fence is still in flight when broker 2 expires and broker 1 (a zombie that kept quiet) is
	// found again: 1 is not fenced twice.
	s.touch(1, 1, sessAt(1100*time.Millisecond))
	expire(sessAt(3 * time.Second))
	if want := [][]string{{"change(1,epoch=1,fenced=TRUE,ics=-)"}, {"change(2,epoch=1,fenced=TRUE,ics=-)"}}; fmt.Sprint(written) != fmt.Sprint(want) {
		t.Fatalf("written = %v, want %v", written, want)
	}
}

func TestSessionCheckInterval(t *testing.T) {
	for _, tt := range []struct{ timeout, want time.Duration }{
		{9 * time.Second, 125 * time.Millisecond},
		{400 * time.Millisecond, 50 * time.Millisecond},
		{10 * time.Millisecond, 10 * time.Millisecond},
	} {
		if got := sessionCheckInterval(tt.timeout); got != tt.want {
			t.Errorf("sessionCheckInterval(%v) = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}

// BenchmarkSessionRefresh is one heartbeat's soft-state cost: it must not grow with the cluster.
func BenchmarkSessionRefresh(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("brokers=%d", n), func(b *testing.B) {
			s := newBrokerSessions(9 * time.Second)
			now := sessT0
			for id := range int32(n) {
				s.touch(id, 1, now)
			}
			i := 0
			for b.Loop() {
				now = now.Add(time.Microsecond)
				s.touch(int32(i%n), 1, now)
				i++
			}
		})
	}
}

// BenchmarkSessionExpiryCheck is the timer's look when nothing expired, whatever the cluster size.
func BenchmarkSessionExpiryCheck(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("brokers=%d", n), func(b *testing.B) {
			s := newBrokerSessions(9 * time.Second)
			for id := range int32(n) {
				s.touch(id, 1, sessT0)
			}
			for b.Loop() {
				if len(s.popExpired(sessT0.Add(time.Second), maxFencesPerBatch)) != 0 {
					b.Fatal("expired")
				}
			}
		})
	}
}

// TestAfterPending: an answer that wrote nothing but describes an in-flight write leaves when that
// write commits, after the write's own answer, and fails with it if leadership goes.
func TestAfterPending(t *testing.T) {
	s := stActiveLeader(t)
	var rec stRecorder
	s.afterPending(rec.complete(0))
	if fmt.Sprint(rec.calls) != "[0:true]" {
		t.Fatalf("with nothing pending: %v", rec.calls)
	}
	rec.calls = nil
	if err := stWrote(t, s, 4, stTopicBatch("a"), rec.complete(4)); err != nil {
		t.Fatal(err)
	}
	s.afterPending(rec.complete(40))
	if len(rec.calls) != 0 {
		t.Fatalf("completed before the commit: %v", rec.calls)
	}
	mustApplyCommitted(t, s, metadatalog.Entry{Offset: 4, Epoch: 3, Data: stData(t, stTopicBatch("a"))})
	if fmt.Sprint(rec.calls) != "[4:true 40:true]" {
		t.Fatalf("after the commit: %v", rec.calls)
	}
	rec.calls = nil
	if err := stWrote(t, s, 5, stTopicBatch("b"), rec.complete(5)); err != nil {
		t.Fatal(err)
	}
	s.afterPending(rec.complete(50))
	s.leaderChanged(2, 4)
	if fmt.Sprint(rec.calls) != "[5:false 50:false]" {
		t.Fatalf("after losing leadership: %v", rec.calls)
	}
}
