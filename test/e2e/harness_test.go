// Package e2e runs real kraftd and kraftctl processes, built from this checkout, against cluster files
// written into each test's temporary directory. Tests wait by polling with generous deadlines and
// never assert on how long anything took.
package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	harness "github.com/kraftgo/kraft/test/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Deadlines for polling. They are generous on purpose: a slow or loaded machine must not fail a test.
const (
	leaderTimeout  = 60 * time.Second
	pollTimeout    = 60 * time.Second
	exitTimeout    = 30 * time.Second
	requestTimeout = 5 * time.Second
	pollInterval   = 100 * time.Millisecond
	logTailLines   = 80
)

// kraftd and kraftctl are the binaries TestMain builds from this checkout, so a test never runs a
// stale bin/.
var kraftd, kraftctl string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	bins, cleanup, err := harness.Build("kraft-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer cleanup()
	kraftd, kraftctl = bins.Kraftd, bins.Kraftctl
	return m.Run()
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := harness.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// ---------------------------------------------------------------------------
// Processes

// proc is one kraftd process. Its stdout and stderr go to LogPath, which a restart appends to.
type proc = harness.Proc

// startProc starts kraftd with args, appending its output to logPath.
func startProc(t *testing.T, name, logPath string, args ...string) *proc {
	t.Helper()
	p, err := harness.Start(name, logPath, fmt.Sprintf("=== e2e: %s starting: kraftd %s", name, strings.Join(args, " ")), kraftd, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stopProc sends SIGTERM and requires a clean exit with code 0.
func stopProc(t *testing.T, p *proc) {
	t.Helper()
	if err := p.Stop(exitTimeout); err != nil {
		t.Fatal(err)
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string { return harness.TailFile(path, n) }

// ---------------------------------------------------------------------------
// Clusters

// cluster is a set of controllers described by one cluster file in the test's temporary directory.
type cluster struct {
	t         *testing.T
	dir       string
	conf      string
	clusterID string
	ids       []int32
	addrs     map[int32]string

	mu    sync.Mutex
	procs map[int32]*proc
	// logs holds every log file written, including those of processes that have exited.
	logs []string
}

// newCluster writes a cluster file for n controllers (ids 1..n) on free loopback ports and picks a
// cluster id. Every process it starts is killed when the test ends, and a failed test prints the tail
// of every node's log.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), procs: map[int32]*proc{}}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         c.dir,
		Comment:     "written by the e2e tests",
		Controllers: n,
		Settings:    []string{"controller.quorum.fetch.timeout.ms=2000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.conf, c.ids, c.addrs = f.Path, f.IDs(), f.Addrs
	out := runCtlOK(t, "storage", "random-uuid")
	c.clusterID = strings.TrimSpace(out)
	if len(c.clusterID) != 22 {
		t.Fatalf("kraftctl storage random-uuid printed %q, want a 22-character id", out)
	}
	// Cleanups run last-registered first: kill every process, then show the logs.
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
	})
	t.Cleanup(c.killAll)
	return c
}

// logDir is node id's metadata.log.dir.
func (c *cluster) logDir(id int32) string { return filepath.Join(c.dir, fmt.Sprintf("node-%d", id)) }

// walDir is where node id's Raft log lives.
func (c *cluster) walDir(id int32) string { return metadatalog.WALDir(c.logDir(id)) }

func (c *cluster) nodeArgs(id int32, overrides ...string) []string {
	args := []string{"--config", c.conf, "--node-id", strconv.Itoa(int(id))}
	for _, o := range overrides {
		args = append(args, "--override", o)
	}
	return args
}

// format formats node id's directory for the cluster.
func (c *cluster) format(id int32) {
	c.t.Helper()
	if err := harness.Format(kraftctl, exitTimeout, c.conf, id, c.clusterID); err != nil {
		c.t.Fatal(err)
	}
}

// start starts node id; its output is appended to node-<id>.log in the test's directory.
func (c *cluster) start(id int32, overrides ...string) *proc {
	c.t.Helper()
	c.mu.Lock()
	if p := c.procs[id]; p != nil && p.Running() {
		c.mu.Unlock()
		c.t.Fatalf("node %d is already running", id)
	}
	c.mu.Unlock()
	logPath := filepath.Join(c.dir, fmt.Sprintf("node-%d.log", id))
	p := startProc(c.t, fmt.Sprintf("node %d", id), logPath, c.nodeArgs(id, overrides...)...)
	c.mu.Lock()
	c.procs[id] = p
	if !containsString(c.logs, logPath) {
		c.logs = append(c.logs, logPath)
	}
	c.mu.Unlock()
	return p
}

// formatAndStartAll formats every node and starts them in id order: in a broker cluster, controllers
// first, then brokers.
func (c *cluster) formatAndStartAll() {
	c.t.Helper()
	for _, id := range c.ids {
		c.format(id)
	}
	for _, id := range c.ids {
		c.start(id)
	}
}

func (c *cluster) proc(id int32) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

// stop sends SIGTERM to node id and requires exit code 0.
func (c *cluster) stop(id int32) {
	c.t.Helper()
	p := c.proc(id)
	if p == nil {
		c.t.Fatalf("node %d was never started", id)
	}
	stopProc(c.t, p)
}

// stopAll stops every running node with SIGTERM, one after another, requiring exit code 0 from each.
func (c *cluster) stopAll() {
	c.t.Helper()
	for _, id := range c.ids {
		if p := c.proc(id); p != nil && p.Running() {
			stopProc(c.t, p)
		}
	}
}

// kill9 kills node id with SIGKILL.
func (c *cluster) kill9(id int32) {
	c.t.Helper()
	p := c.proc(id)
	if p == nil || !p.Running() {
		c.t.Fatalf("node %d is not running", id)
	}
	p.Kill()
}

func (c *cluster) killAll() {
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
}

func (c *cluster) dumpLogs() {
	c.mu.Lock()
	logs := append([]string(nil), c.logs...)
	c.mu.Unlock()
	sort.Strings(logs)
	for _, l := range logs {
		c.t.Logf("----- tail of %s -----\n%s", l, tailFile(l, logTailLines))
	}
}

// requireRunning fails the test at once if a node that should be up has exited.
func (c *cluster) requireRunning(ids ...int32) {
	c.t.Helper()
	for _, id := range ids {
		if p := c.proc(id); p != nil && !p.Running() {
			c.t.Fatalf("node %d exited unexpectedly (%v); see its log below", id, p.State())
		}
	}
}

// others returns the cluster's ids except the given ones.
func (c *cluster) others(except ...int32) []int32 {
	var out []int32
	for _, id := range c.ids {
		if !containsID(except, id) {
			out = append(out, id)
		}
	}
	return out
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// eventually polls cond until it reports true, failing the test with cond's last description once
// the deadline passes. While it waits it fails at once if one of the live nodes exits.
func (c *cluster) eventually(timeout time.Duration, what string, live []int32, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		c.requireRunning(live...)
		if time.Now().After(deadline) {
			c.t.Fatalf("gave up after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(pollInterval)
	}
}

// ---------------------------------------------------------------------------
// Kafka requests

// request sends one request straight to the node at addr, over a new connection: controllers serve
// no Metadata, so the client must not try to discover anything.
func request(addr string, req kmsg.Request) (kmsg.Response, error) {
	return harness.Request(addr, "kraft-e2e", requestTimeout, req)
}

// quorumView is the metadata partition of a DescribeQuorum answer.
type quorumView struct {
	Leader int32
	Epoch  int32
	HW     int64
	Voters []kmsg.DescribeQuorumResponseTopicPartitionReplicaState
}

func (q quorumView) String() string {
	var vs []string
	for _, v := range q.Voters {
		vs = append(vs, fmt.Sprintf("%d@leo=%d", v.ReplicaID, v.LogEndOffset))
	}
	return fmt.Sprintf("leader=%d epoch=%d hw=%d voters=[%s]", q.Leader, q.Epoch, q.HW, strings.Join(vs, " "))
}

// voter returns the replica state of voter id.
func (q quorumView) voter(id int32) (kmsg.DescribeQuorumResponseTopicPartitionReplicaState, bool) {
	for _, v := range q.Voters {
		if v.ReplicaID == id {
			return v, true
		}
	}
	return kmsg.DescribeQuorumResponseTopicPartitionReplicaState{}, false
}

func (q quorumView) voterIDs() []int32 {
	ids := make([]int32, 0, len(q.Voters))
	for _, v := range q.Voters {
		ids = append(ids, v.ReplicaID)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func newDescribeQuorumRequest() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	return req
}

// parseDescribeQuorum turns a DescribeQuorum answer into a view, or the error it carries.
func parseDescribeQuorum(resp *kmsg.DescribeQuorumResponse) (quorumView, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorumView{}, fmt.Errorf("%w: %s", err, deref(resp.ErrorMessage))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumView{}, fmt.Errorf("answer holds %d topics, want one metadata partition", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return quorumView{}, fmt.Errorf("partition: %w: %s", err, deref(p.ErrorMessage))
	}
	return quorumView{Leader: p.LeaderID, Epoch: p.LeaderEpoch, HW: p.HighWatermark, Voters: p.CurrentVoters}, nil
}

// describeQuorum asks the node at addr for the quorum's state.
func describeQuorum(addr string) (quorumView, error) {
	resp, err := request(addr, newDescribeQuorumRequest())
	if err != nil {
		return quorumView{}, err
	}
	return parseDescribeQuorum(resp.(*kmsg.DescribeQuorumResponse))
}

func deref(s *string) string {
	if s == nil {
		return "<no message>"
	}
	return *s
}

// waitLeader polls the nodes in among until one of them reports a leader that is also in among and
// that accept reports; it returns that view.
func (c *cluster) waitLeader(among []int32, accept func(quorumView) bool) quorumView {
	c.t.Helper()
	var found quorumView
	c.eventually(leaderTimeout, fmt.Sprintf("a leader among nodes %v", among), among, func() (bool, string) {
		var seen []string
		for _, id := range among {
			q, err := describeQuorum(c.addrs[id])
			if err != nil {
				seen = append(seen, fmt.Sprintf("node %d: %v", id, err))
				continue
			}
			if !containsID(among, q.Leader) || (accept != nil && !accept(q)) {
				seen = append(seen, fmt.Sprintf("node %d: %v", id, q))
				continue
			}
			found = q
			return true, ""
		}
		return false, strings.Join(seen, "; ")
	})
	return found
}

// updateFeatures sends an UpdateFeatures that sets metadata.version to the level a new cluster is
// formatted at: the controller accepts it and writes one FeatureLevelRecord batch, so it serves as
// "one append". It returns the error the response carries (nil on success) and its message.
func updateFeatures(addr string) (code error, msg string, err error) {
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = int32(requestTimeout / time.Millisecond)
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature = metadatalog.MetadataVersionFeature
	u.MaxVersionLevel = metadatalog.LatestMetadataVersion.Level
	u.UpgradeType = 1 // upgrade; v0 reads AllowDowngrade=false the same way
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	r, err := request(addr, req)
	if err != nil {
		return nil, "", err
	}
	resp := r.(*kmsg.UpdateFeaturesResponse)
	if e := kerr.ErrorForCode(resp.ErrorCode); e != nil {
		return e, deref(resp.ErrorMessage), nil
	}
	for _, res := range resp.Results {
		if e := kerr.ErrorForCode(res.ErrorCode); e != nil {
			return e, deref(res.ErrorMessage), nil
		}
	}
	return nil, "", nil
}

// appendOK makes one acknowledged append through whichever node of among leads, retrying while there
// is no active controller. It returns the node that acknowledged it and that node's high watermark
// afterwards, which is at or past the append's offset.
func (c *cluster) appendOK(among []int32) (leader int32, hw int64) {
	c.t.Helper()
	c.eventually(pollTimeout, fmt.Sprintf("an acknowledged UpdateFeatures on a leader among %v", among), among, func() (bool, string) {
		q := c.waitLeader(among, nil)
		code, msg, err := updateFeatures(c.addrs[q.Leader])
		switch {
		case err != nil:
			return false, fmt.Sprintf("node %d: %v", q.Leader, err)
		case code != nil:
			return false, fmt.Sprintf("node %d answered %v: %s", q.Leader, code, msg)
		}
		leader = q.Leader
		return true, ""
	})
	// The append committed at the leader before it answered, so the leader's commit offset now covers it.
	c.eventually(pollTimeout, fmt.Sprintf("node %d's high watermark after an append", leader), among, func() (bool, string) {
		q, err := describeQuorum(c.addrs[leader])
		if err != nil {
			return false, err.Error()
		}
		hw = q.HW
		return true, ""
	})
	return leader, hw
}

// ---------------------------------------------------------------------------
// Command-line runs

// runResult is one finished command.
type runResult = harness.RunResult

// run runs bin with args to completion (killing it after a generous deadline).
func run(t *testing.T, bin string, args ...string) runResult {
	t.Helper()
	r, err := harness.Run(exitTimeout, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runCtlOK runs kraftctl and requires exit code 0; it returns stdout.
func runCtlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, err := harness.RunOK(exitTimeout, kraftctl, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nonEmptyLines splits s into its non-blank lines.
func nonEmptyLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			out = append(out, sc.Text())
		}
	}
	return out
}
