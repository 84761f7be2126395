package metadatalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// logTestDeadline bounds every wait of the cluster tests; generous, since CI machines stall.
const logTestDeadline = 30 * time.Second

// logWait polls cond until it holds or the deadline passes.
func logWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(logTestDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logNode is one voter: its Log, the listener that plays the Kafka port's sniffing of PeerMagic, and
// every committed entry its events have reported.
type logNode struct {
	id  uint64
	log *Log
	ln  *peerListener

	// Owned by the test goroutine.
	committed []Entry
	leaders   []LeaderChange
	hw        uint64
	closed    bool
}

// stop closes the log, then the listener and any connection still open, and waits for the handlers.
func (n *logNode) stop(t *testing.T) {
	t.Helper()
	if n.closed {
		return
	}
	n.closed = true
	if err := n.log.Close(); err != nil {
		t.Errorf("node %d Close: %v", n.id, err)
	}
	n.ln.close()
}

// drain moves the node's queued events into committed and leaders, checking their order.
func (n *logNode) drain(t *testing.T) {
	t.Helper()
	for _, ev := range n.log.TakeEvents() {
		if ev.Leader != nil {
			n.leaders = append(n.leaders, *ev.Leader)
		}
		for _, e := range ev.Committed {
			if want := uint64(len(n.committed)) + 1; e.Offset != want {
				t.Fatalf("node %d: committed offset %d after %d: the applied offset must not skip or repeat", n.id, e.Offset, want-1)
			}
			if len(n.committed) > 0 && e.Epoch < n.committed[len(n.committed)-1].Epoch {
				t.Fatalf("node %d: committed epoch went back from %d to %d", n.id, n.committed[len(n.committed)-1].Epoch, e.Epoch)
			}
			n.committed = append(n.committed, e)
		}
		if ev.HighWatermark < n.hw {
			t.Fatalf("node %d: high watermark went back from %d to %d", n.id, n.hw, ev.HighWatermark)
		}
		n.hw = ev.HighWatermark
		if len(n.committed) > 0 && n.hw < n.committed[len(n.committed)-1].Offset {
			t.Fatalf("node %d: high watermark %d below committed offset %d", n.id, n.hw, n.committed[len(n.committed)-1].Offset)
		}
	}
}

func (n *logNode) status(t *testing.T) QuorumStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.log.Status(ctx)
	if err != nil {
		t.Fatalf("node %d Status: %v", n.id, err)
	}
	return st
}

// startLogCluster formats, opens and starts one Log per id.
func startLogCluster(t *testing.T, ids ...uint64) map[uint64]*logNode {
	t.Helper()
	clusterID := RandomUUID()
	nodes := map[uint64]*logNode{}
	voters := map[uint64]string{}
	for _, id := range ids {
		ln := newPeerListener(t)
		nodes[id] = &logNode{id: id, ln: ln}
		voters[id] = ln.addr()
	}
	base := t.TempDir()
	for _, id := range ids {
		n := nodes[id]
		dir := filepath.Join(base, fmt.Sprintf("node-%d", id))
		if err := Format(dir, MetaProperties{ClusterID: clusterID, NodeID: int32(id)}, BootstrapRecords(LatestMetadataVersion), false); err != nil {
			t.Fatal(err)
		}
		l, err := OpenLog(LogConfig{
			NodeID: id, ClusterID: clusterID, Voters: voters, Dir: dir,
			ElectionTimeout: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("OpenLog(node %d): %v", id, err)
		}
		n.log = l
	}
	for _, id := range ids {
		n := nodes[id]
		n.ln.handTo(n.log.HandlePeer)
		n.log.Start()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(t)
		}
	})
	return nodes
}

// waitLeader waits until every live node agrees on one leader, in an epoch above minEpoch.
func waitLeader(t *testing.T, nodes map[uint64]*logNode, minEpoch uint64) (uint64, uint64) {
	t.Helper()
	var leader, epoch uint64
	logWait(t, "one leader that every live node sees", func() bool {
		leader, epoch = 0, 0
		for _, n := range nodes {
			if n.closed {
				continue
			}
			st := n.status(t)
			if st.Leader == 0 || st.Epoch <= minEpoch {
				return false
			}
			if leader == 0 {
				leader, epoch = st.Leader, st.Epoch
			} else if st.Leader != leader || st.Epoch != epoch {
				return false
			}
		}
		return leader != 0 && !nodes[leader].closed && nodes[leader].status(t).Leader == leader
	})
	return leader, epoch
}

func waitAppended(t *testing.T, res *AppendResult) {
	t.Helper()
	select {
	case <-res.Done():
		if err := res.Err(); err != nil {
			t.Fatalf("append at offset %d failed: %v", res.Offset, err)
		}
	case <-time.After(logTestDeadline):
		t.Fatalf("append at offset %d never completed", res.Offset)
	}
}

// waitCommittedEverywhere waits until every live node's events report offset with data.
func waitCommittedEverywhere(t *testing.T, nodes map[uint64]*logNode, offset, epoch uint64, data []byte) {
	t.Helper()
	logWait(t, fmt.Sprintf("offset %d committed on every live node", offset), func() bool {
		for _, n := range nodes {
			if n.closed {
				continue
			}
			n.drain(t)
			if uint64(len(n.committed)) < offset {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if n.closed {
			continue
		}
		e := n.committed[offset-1]
		if e.Offset != offset || e.Epoch != epoch || !bytes.Equal(e.Data, data) {
			t.Fatalf("node %d committed offset %d epoch %d data %q; want epoch %d data %q", n.id, e.Offset, e.Epoch, e.Data, epoch, data)
		}
	}
}

func appendTo(t *testing.T, n *logNode, data []byte) (*AppendResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), logTestDeadline)
	defer cancel()
	return n.log.Append(ctx, data)
}

func TestLogThreeNodes(t *testing.T) {
	goroutinesBefore := runtime.NumGoroutine()
	nodes := startLogCluster(t, 1, 2, 3)

	leader, epoch := waitLeader(t, nodes, 0)
	t.Logf("node %d leads epoch %d", leader, epoch)

	// An append on the leader gets an offset in the leader's epoch and commits everywhere.
	data := []byte("first batch")
	res, err := appendTo(t, nodes[leader], data)
	if err != nil {
		t.Fatalf("Append on the leader: %v", err)
	}
	if res.Offset == 0 || res.Epoch != epoch {
		t.Fatalf("Append = offset %d epoch %d, want a non-zero offset in epoch %d", res.Offset, res.Epoch, epoch)
	}
	waitAppended(t, res)
	waitCommittedEverywhere(t, nodes, res.Offset, epoch, data)

	// Several appends keep their order and get consecutive offsets.
	var results []*AppendResult
	for i := range 5 {
		r, err := appendTo(t, nodes[leader], fmt.Appendf(nil, "batch %d", i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if len(results) > 0 && r.Offset != results[len(results)-1].Offset+1 {
			t.Fatalf("offsets %d then %d", results[len(results)-1].Offset, r.Offset)
		}
		results = append(results, r)
	}
	for i, r := range results {
		waitAppended(t, r)
		waitCommittedEverywhere(t, nodes, r.Offset, epoch, fmt.Appendf(nil, "batch %d", i))
	}

	// Every node heard who leads.
	for _, n := range nodes {
		n.drain(t)
		if len(n.leaders) == 0 {
			t.Fatalf("node %d reported no leader change", n.id)
		}
		if lc := n.leaders[len(n.leaders)-1]; lc.Leader != leader || lc.Epoch != epoch {
			t.Fatalf("node %d last heard of leader %d epoch %d, want %d/%d", n.id, lc.Leader, lc.Epoch, leader, epoch)
		}
	}

	// A follower refuses appends.
	for id, n := range nodes {
		if id == leader {
			continue
		}
		r, err := appendTo(t, n, []byte("not here"))
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("Append on follower %d = %v, %v; want ErrNotLeader", id, r, err)
		}
		if st := n.status(t); st.Voters != nil {
			t.Fatalf("follower %d reports voters %v; only the leader knows them", id, st.Voters)
		}
	}

	// The leader's status lists all three voters with their progress.
	lastOffset := results[len(results)-1].Offset
	logWait(t, "every voter's log end offset to reach the last append", func() bool {
		st := nodes[leader].status(t)
		if len(st.Voters) != 3 {
			return false
		}
		for _, v := range st.Voters {
			if v.LogEndOffset < lastOffset {
				return false
			}
		}
		return true
	})
	st := nodes[leader].status(t)
	if st.NodeID != leader || st.Leader != leader || st.Epoch != epoch || st.HighWatermark < lastOffset || st.LastIndex < lastOffset {
		t.Fatalf("leader status %+v", st)
	}
	var voterIDs []uint64
	for _, v := range st.Voters {
		voterIDs = append(voterIDs, v.ID)
		if v.LastFetch.IsZero() {
			t.Fatalf("voter %d has no last fetch time", v.ID)
		}
		if v.LastCaughtUp.IsZero() {
			t.Fatalf("voter %d has no last caught-up time", v.ID)
		}
	}
	slices.Sort(voterIDs)
	if !slices.Equal(voterIDs, []uint64{1, 2, 3}) {
		t.Fatalf("voters %v, want [1 2 3]", voterIDs)
	}

	// Stop the leader: the two others elect a new one in a higher epoch, which takes appends.
	old := nodes[leader]
	old.stop(t)
	if _, err := appendTo(t, old, []byte("closed")); err == nil {
		t.Fatal("Append on a closed log succeeded")
	}
	newLeader, newEpoch := waitLeader(t, nodes, epoch)
	if newLeader == leader {
		t.Fatalf("the stopped node %d is still the leader", leader)
	}
	t.Logf("node %d leads epoch %d", newLeader, newEpoch)
	data = []byte("after failover")
	var r2 *AppendResult
	// The new leader may still be taking over; retry while it says it does not lead.
	logWait(t, "an append accepted by the new leader", func() bool {
		r2, err = appendTo(t, nodes[newLeader], data)
		if errors.Is(err, ErrNotLeader) {
			return false
		}
		if err != nil {
			t.Fatalf("Append on the new leader: %v", err)
		}
		return true
	})
	if r2.Epoch != newEpoch || r2.Offset <= lastOffset {
		t.Fatalf("Append on the new leader = offset %d epoch %d; want above offset %d, epoch %d", r2.Offset, r2.Epoch, lastOffset, newEpoch)
	}
	waitAppended(t, r2)
	waitCommittedEverywhere(t, nodes, r2.Offset, newEpoch, data)
	// The survivors agree on the whole committed history.
	var survivors []*logNode
	for _, n := range nodes {
		if !n.closed {
			survivors = append(survivors, n)
		}
	}
	a, b := survivors[0], survivors[1]
	for i := uint64(0); i < r2.Offset; i++ {
		ea, eb := a.committed[i], b.committed[i]
		if ea.Offset != eb.Offset || ea.Epoch != eb.Epoch || !bytes.Equal(ea.Data, eb.Data) {
			t.Fatalf("nodes %d and %d disagree at offset %d: %+v vs %+v", a.id, b.id, i+1, ea, eb)
		}
	}

	for _, n := range nodes {
		n.stop(t)
	}
	// No goroutine outlives the cluster (the bound is generous: the runtime and testing have their own).
	logWait(t, "goroutines to wind down", func() bool { return runtime.NumGoroutine() <= goroutinesBefore+5 })
}

// TestLogPendingAppendFailsOnClose checks that a writer waiting on an append is told it failed when
// the log stops, rather than waiting forever.
func TestLogPendingAppendFailsOnClose(t *testing.T) {
	nodes := startLogCluster(t, 1, 2, 3)
	leader, _ := waitLeader(t, nodes, 0)
	// Stop both followers so nothing can commit.
	for id, n := range nodes {
		if id != leader {
			n.stop(t)
		}
	}
	res, err := appendTo(t, nodes[leader], []byte("never commits"))
	if err != nil {
		// The leader may already have stepped down (CheckQuorum); that is a fine answer too.
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("Append: %v", err)
		}
		return
	}
	nodes[leader].stop(t)
	select {
	case <-res.Done():
		if !errors.Is(res.Err(), ErrNotLeader) {
			t.Fatalf("pending append ended with %v, want ErrNotLeader", res.Err())
		}
	case <-time.After(logTestDeadline):
		t.Fatal("pending append never completed after Close")
	}
}
