// Package e2e runs real kraftd and kraftctl processes, built from this checkout, against cluster files
// written into each test's temporary directory. Tests wait by polling with generous deadlines and
// never assert on how long anything took.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binDir, err := os.MkdirTemp("", "kraft-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/kraftd", "./cmd/kraftctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/kraftd ./cmd/kraftctl in %s: %v\n%s", root, err, out)
		return 1
	}
	kraftd, kraftctl = filepath.Join(binDir, "kraftd"), filepath.Join(binDir, "kraftctl")
	return m.Run()
}

// repoRoot walks up from the test's directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// childEnv is the environment of every child process: ours without KRAFT_* variables, which would
// silently change the configuration under test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRAFT_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("picking a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ---------------------------------------------------------------------------
// Processes

// proc is one kraftd process. Its stdout and stderr go to logPath, which a restart appends to.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	state   *os.ProcessState
}

// startProc starts bin with args, appending its output to logPath.
func startProc(t *testing.T, name, logPath string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", logPath, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== e2e: %s starting: kraftd %s\n", name, strings.Join(args, " "))
	cmd := exec.Command(kraftd, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitExit waits for the process to end and returns its exit code (-1 when a signal ended it);
// ok is false if it did not end within the timeout.
func (p *proc) waitExit(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// stop sends SIGTERM and requires a clean exit with code 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if !p.running() {
		t.Fatalf("%s had already exited (%v) before SIGTERM", p.name, p.state)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	code, ok := p.waitExit(exitTimeout)
	if !ok {
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not exit within %v of SIGTERM; killed it", p.name, exitTimeout)
	}
	if code != 0 {
		t.Fatalf("%s exited with %v after SIGTERM, want exit code 0", p.name, p.state)
	}
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

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
	c := &cluster{t: t, dir: t.TempDir(), addrs: map[int32]string{}, procs: map[int32]*proc{}}
	ports := freePorts(t, n)
	var voters, listeners []string
	for i, port := range ports {
		id := int32(i + 1)
		c.ids = append(c.ids, id)
		c.addrs[id] = fmt.Sprintf("127.0.0.1:%d", port)
		voters = append(voters, fmt.Sprintf("%d@%s", id, c.addrs[id]))
		listeners = append(listeners, fmt.Sprintf("node.%d.listeners=CONTROLLER://%s", id, c.addrs[id]))
	}
	conf := strings.Join([]string{
		"# written by the e2e tests",
		"process.roles=controller",
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"metadata.log.dir=" + filepath.Join(c.dir, "node-${node.id}"),
		"controller.quorum.election.timeout.ms=1000",
		"controller.quorum.fetch.timeout.ms=2000",
		strings.Join(listeners, "\n"),
		"",
	}, "\n")
	c.conf = filepath.Join(c.dir, "cluster.properties")
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
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
	runCtlOK(c.t, "storage", "format", "--config", c.conf, "--node-id", strconv.Itoa(int(id)), "--cluster-id", c.clusterID)
}

// start starts node id; its output is appended to node-<id>.log in the test's directory.
func (c *cluster) start(id int32, overrides ...string) *proc {
	c.t.Helper()
	c.mu.Lock()
	if p := c.procs[id]; p != nil && p.running() {
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

// startAll formats and starts every node.
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
	p.stop(c.t)
}

// stopAll stops every running node with SIGTERM, one after another, requiring exit code 0 from each.
func (c *cluster) stopAll() {
	c.t.Helper()
	for _, id := range c.ids {
		if p := c.proc(id); p != nil && p.running() {
			p.stop(c.t)
		}
	}
}

// kill9 kills node id with SIGKILL.
func (c *cluster) kill9(id int32) {
	c.t.Helper()
	p := c.proc(id)
	if p == nil || !p.running() {
		c.t.Fatalf("node %d is not running", id)
	}
	p.kill()
}

func (c *cluster) killAll() {
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.mu.Unlock()
	for _, p := range procs {
		p.kill()
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
		if p := c.proc(id); p != nil && !p.running() {
			c.t.Fatalf("node %d exited unexpectedly (%v); see its log below", id, p.state)
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraft-e2e"), kgo.DialTimeout(requestTimeout))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return cl.SeedBrokers()[0].Request(ctx, req)
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
type runResult struct {
	code           int
	stdout, stderr string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs bin with args to completion (killing it after a generous deadline).
func run(t *testing.T, bin string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), exitTimeout, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s: %v", bin, err)
	}
	return runResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// runCtlOK runs kraftctl and requires exit code 0; it returns stdout.
func runCtlOK(t *testing.T, args ...string) string {
	t.Helper()
	r := run(t, kraftctl, args...)
	if r.code != 0 {
		t.Fatalf("kraftctl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
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
