package e2e

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestQuorumElectsLeader starts three freshly formatted controllers and checks that every one of them,
// and kraftctl pointed at a follower, describes the same quorum.
func TestQuorumElectsLeader(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.formatAndStartAll()
	first := c.waitLeader(c.ids, nil)
	t.Logf("first leader: %v", first)

	// Every node answers DescribeQuorum with the same leader and epoch (a standby forwards to the
	// leader). They must agree in one round; an election in between only makes us look again.
	var agreed quorumView
	c.eventually(pollTimeout, "every node to describe the same quorum with three voters", c.ids, func() (bool, string) {
		var views []string
		var ref *quorumView
		for _, id := range c.ids {
			q, err := describeQuorum(c.addrs[id])
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", id, err)
			}
			views = append(views, fmt.Sprintf("node %d: %v", id, q))
			if q.Leader <= 0 || fmt.Sprint(q.voterIDs()) != "[1 2 3]" {
				return false, strings.Join(views, "; ")
			}
			if ref == nil {
				ref = &q
			} else if q.Leader != ref.Leader || q.Epoch != ref.Epoch {
				return false, strings.Join(views, "; ")
			}
		}
		agreed = *ref
		return true, ""
	})
	leader := agreed.Leader
	follower := c.others(leader)[0]

	// DescribeCluster: the cluster id, and the leader as the controller.
	c.eventually(pollTimeout, "DescribeCluster on every node to name the cluster and the leader", c.ids, func() (bool, string) {
		for _, id := range c.ids {
			dcReq := kmsg.NewPtrDescribeClusterRequest()
			dcReq.EndpointType = 2 // controllers: this test has no brokers
			r, err := request(c.addrs[id], dcReq)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", id, err)
			}
			dc := r.(*kmsg.DescribeClusterResponse)
			if e := kerr.ErrorForCode(dc.ErrorCode); e != nil {
				return false, fmt.Sprintf("node %d: %v: %s", id, e, deref(dc.ErrorMessage))
			}
			if dc.ClusterID != c.clusterID {
				c.t.Fatalf("DescribeCluster on node %d gives cluster id %q, want %q", id, dc.ClusterID, c.clusterID)
			}
			if dc.ControllerID != leader {
				return false, fmt.Sprintf("node %d names controller %d, leader is %d", id, dc.ControllerID, leader)
			}
			if len(dc.Brokers) != 3 {
				return false, fmt.Sprintf("node %d lists %d controllers, want 3", id, len(dc.Brokers))
			}
		}
		return true, ""
	})

	// kraftctl quorum describe --status against a follower.
	status := runCtlOK(t, "quorum", "describe", "--status", "--bootstrap-controller", c.addrs[follower])
	t.Logf("kraftctl quorum describe --status --bootstrap-controller %s (node %d):\n%s", c.addrs[follower], follower, status)
	fields := map[string]string{}
	for _, line := range nonEmptyLines(status) {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if got := fields["LeaderId"]; got != strconv.Itoa(int(leader)) {
		t.Errorf("--status LeaderId: %q, want %d", got, leader)
	}
	if got := fields["LeaderEpoch"]; got != strconv.Itoa(int(agreed.Epoch)) {
		t.Errorf("--status LeaderEpoch: %q, want %d", got, agreed.Epoch)
	}
	if hw, err := strconv.ParseInt(fields["HighWatermark"], 10, 64); err != nil || hw < agreed.HW {
		t.Errorf("--status HighWatermark: %q, want a number ≥ %d", fields["HighWatermark"], agreed.HW)
	}
	if got := fields["ClusterId"]; got != c.clusterID {
		t.Errorf("--status ClusterId: %q, want %q", got, c.clusterID)
	}
	voterIDs := regexp.MustCompile(`"id": (\d+)`).FindAllStringSubmatch(fields["CurrentVoters"], -1)
	var ids []string
	for _, m := range voterIDs {
		ids = append(ids, m[1])
	}
	sort.Strings(ids) // the order of voters is not specified
	if strings.Join(ids, ",") != "1,2,3" {
		t.Errorf("--status CurrentVoters: %q, want voters 1, 2 and 3", fields["CurrentVoters"])
	}
	for _, id := range c.ids {
		if !strings.Contains(fields["CurrentVoters"], strings.TrimPrefix(c.addrs[id], "127.0.0.1:")) {
			t.Errorf("--status CurrentVoters: %q does not show node %d's endpoint %s", fields["CurrentVoters"], id, c.addrs[id])
		}
	}

	// kraftctl quorum describe --replication: one Leader row (the leader) and two Follower rows.
	repl := runCtlOK(t, "quorum", "describe", "--replication", "--bootstrap-controller", c.addrs[follower])
	t.Logf("kraftctl quorum describe --replication:\n%s", repl)
	lines := nonEmptyLines(repl)
	if len(lines) == 0 || strings.Join(strings.Fields(lines[0]), " ") != "NodeId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status" {
		t.Fatalf("--replication header: %q", lines)
	}
	rows := map[string][]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 6 {
			t.Errorf("--replication row %q has %d columns, want 6", line, len(f))
			continue
		}
		for _, col := range f[1:5] {
			if _, err := strconv.ParseInt(col, 10, 64); err != nil {
				t.Errorf("--replication row %q: %q is not a number", line, col)
			}
		}
		rows[f[5]] = append(rows[f[5]], f[0])
	}
	if got := rows["Leader"]; len(got) != 1 || got[0] != strconv.Itoa(int(leader)) {
		t.Errorf("--replication Leader rows: node ids %v, want [%d]", got, leader)
	}
	var wantFollowers []string
	for _, id := range c.others(leader) {
		wantFollowers = append(wantFollowers, strconv.Itoa(int(id)))
	}
	sort.Strings(rows["Follower"])
	if got := rows["Follower"]; strings.Join(got, ",") != strings.Join(wantFollowers, ",") {
		t.Errorf("--replication Follower rows: node ids %v, want %v", got, wantFollowers)
	}
	if len(rows) != 2 {
		t.Errorf("--replication statuses %v, want only Leader and Follower", rows)
	}
	c.stopAll()
}

// TestLeaderKillFailover kills the leader with SIGKILL after some appends: the other two elect a leader
// in a later epoch that accepts appends, and the killed node, restarted, catches up.
func TestLeaderKillFailover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.formatAndStartAll()
	var lastHW int64
	var acker int32
	for range 3 {
		acker, lastHW = c.appendOK(c.ids)
	}
	before := c.waitLeader(c.ids, nil)
	t.Logf("before the kill: %v (appends acknowledged by node %d, hw %d)", before, acker, lastHW)
	old := before.Leader

	c.kill9(old)
	survivors := c.others(old)
	after := c.waitLeader(survivors, func(q quorumView) bool { return q.Epoch > before.Epoch })
	t.Logf("after killing node %d: %v", old, after)
	if after.Leader == old {
		t.Fatalf("node %d was killed but is still reported as leader: %v", old, after)
	}

	newLeader, hw := c.appendOK(survivors)
	t.Logf("append acknowledged by node %d, hw %d", newLeader, hw)
	if hw <= lastHW {
		t.Errorf("high watermark %d after an append on the new leader, want > %d (the last one before the kill)", hw, lastHW)
	}
	// Both survivors name the new leader as the controller.
	c.eventually(pollTimeout, "DescribeCluster on the survivors to name the new leader", survivors, func() (bool, string) {
		for _, id := range survivors {
			dcReq := kmsg.NewPtrDescribeClusterRequest()
			dcReq.EndpointType = 2 // controllers: this test has no brokers
			r, err := request(c.addrs[id], dcReq)
			if err != nil {
				return false, fmt.Sprintf("node %d: %v", id, err)
			}
			if got := r.(*kmsg.DescribeClusterResponse).ControllerID; got != newLeader {
				return false, fmt.Sprintf("node %d names controller %d, want %d", id, got, newLeader)
			}
		}
		return true, ""
	})

	// The killed node comes back and catches up: the leader sees its log end reach its own.
	c.start(old)
	c.eventually(pollTimeout, fmt.Sprintf("restarted node %d to catch up with the leader", old), c.ids, func() (bool, string) {
		q, err := describeQuorum(c.addrs[newLeader])
		if err != nil {
			return false, err.Error()
		}
		leaderState, ok1 := q.voter(q.Leader)
		rejoined, ok2 := q.voter(old)
		if !ok1 || !ok2 || q.HW < hw || rejoined.LogEndOffset < leaderState.LogEndOffset {
			return false, q.String()
		}
		return true, ""
	})
	// It also follows what is written after it rejoined, and answers for the quorum itself.
	_, hw2 := c.appendOK(c.ids)
	c.eventually(pollTimeout, fmt.Sprintf("node %d to hold the append made after it rejoined", old), c.ids, func() (bool, string) {
		q, err := describeQuorum(c.addrs[old])
		if err != nil {
			return false, fmt.Sprintf("node %d: %v", old, err)
		}
		v, ok := q.voter(old)
		if !ok || v.LogEndOffset < hw2 {
			return false, q.String()
		}
		return true, ""
	})
	c.stopAll()
}

// TestFullRestartKeepsCommittedRecords stops the whole quorum with SIGTERM after some appends, checks
// every node's WAL holds every acknowledged batch, and restarts the quorum.
func TestFullRestartKeepsCommittedRecords(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.formatAndStartAll()
	const appends = 5
	var hws []int64
	for range appends {
		_, hw := c.appendOK(c.ids)
		hws = append(hws, hw)
	}
	lastHW := hws[len(hws)-1]
	t.Logf("%d acknowledged appends; high watermark after each: %v", appends, hws)

	// Wait until every voter holds everything committed, so that each WAL must have it on disk.
	c.eventually(pollTimeout, fmt.Sprintf("every voter's log end to reach %d", lastHW), c.ids, func() (bool, string) {
		q, err := describeQuorum(c.addrs[c.ids[0]])
		if err != nil {
			return false, err.Error()
		}
		for _, id := range c.ids {
			if v, ok := q.voter(id); !ok || v.LogEndOffset < lastHW {
				return false, q.String()
			}
		}
		return true, ""
	})
	c.stopAll()

	logs := map[int32]walContents{}
	for _, id := range c.ids {
		w := readWAL(t, c.walDir(id))
		logs[id] = w
		t.Logf("node %d WAL: entries %d..%d, commit %d, term %d, %d batches with a FeatureLevelRecord", id, w.first, w.last, w.commit, w.term, w.featureBatchesUpTo(lastHW))
		if w.last < uint64(lastHW) {
			t.Errorf("node %d's WAL ends at offset %d, before the last acknowledged high watermark %d", id, w.last, lastHW)
		}
		// The bootstrap batch plus one batch per acknowledged append, all at or below the high watermark.
		if got := w.featureBatchesUpTo(lastHW); got < appends+1 {
			t.Errorf("node %d's WAL holds %d FeatureLevelRecord batches at offsets ≤ %d, want ≥ %d (bootstrap + %d acknowledged appends)", id, got, lastHW, appends+1, appends)
		}
		for i, hw := range hws {
			if got := w.featureBatchesUpTo(hw); got < i+2 {
				t.Errorf("node %d's WAL holds %d FeatureLevelRecord batches at offsets ≤ %d, the high watermark after append %d; want ≥ %d", id, got, hw, i+1, i+2)
			}
		}
		for _, e := range w.entries {
			if len(e.data) > 0 && e.batch != nil && e.batch.GetAppendTimeMs() <= 0 {
				t.Errorf("node %d: batch at offset %d has AppendTimeMs %d, want it set", id, e.index, e.batch.GetAppendTimeMs())
			}
		}
	}
	// Committed entries are the same everywhere.
	ref := logs[c.ids[0]]
	for _, id := range c.ids[1:] {
		w := logs[id]
		for off := uint64(1); off <= uint64(lastHW); off++ {
			a, okA := ref.at(off)
			b, okB := w.at(off)
			if !okA || !okB {
				t.Errorf("offset %d: present on node %d: %v, on node %d: %v", off, c.ids[0], okA, id, okB)
				continue
			}
			if a.term != b.term || string(a.data) != string(b.data) {
				t.Errorf("offset %d differs: node %d has epoch %d and %d bytes, node %d has epoch %d and %d bytes", off, c.ids[0], a.term, len(a.data), id, b.term, len(b.data))
			}
		}
	}

	for _, id := range c.ids {
		c.start(id)
	}
	q := c.waitLeader(c.ids, func(q quorumView) bool { return q.HW >= lastHW })
	t.Logf("after the restart: %v", q)
	_, hw := c.appendOK(c.ids)
	if hw <= lastHW {
		t.Errorf("high watermark %d after an append following the restart, want > %d", hw, lastHW)
	}
	c.stopAll()
}

// TestNotControllerOnStandby sends a write to a standby controller: it answers NOT_CONTROLLER with a
// message and keeps running.
func TestNotControllerOnStandby(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.formatAndStartAll()
	leader, _ := c.appendOK(c.ids)
	for _, follower := range c.others(leader) {
		code, msg, err := updateFeatures(c.addrs[follower])
		if err != nil {
			t.Fatalf("UpdateFeatures to standby node %d: %v", follower, err)
		}
		if !errors.Is(code, kerr.NotController) {
			t.Errorf("UpdateFeatures to standby node %d answered %v (%q), want NOT_CONTROLLER", follower, code, msg)
		}
		if strings.TrimSpace(msg) == "" || msg == "<no message>" {
			t.Errorf("NOT_CONTROLLER from node %d carries no message", follower)
		}
		t.Logf("node %d: %v: %s", follower, code, msg)
	}
	// The standbys stay up and keep answering.
	for _, follower := range c.others(leader) {
		c.eventually(pollTimeout, fmt.Sprintf("standby node %d to answer DescribeQuorum", follower), c.ids, func() (bool, string) {
			q, err := describeQuorum(c.addrs[follower])
			if err != nil {
				return false, err.Error()
			}
			return q.Leader == leader, q.String()
		})
	}
	c.requireRunning(c.ids...)
	if _, hw := c.appendOK(c.ids); hw <= 0 {
		t.Errorf("high watermark %d after an append", hw)
	}
	c.stopAll()
}
