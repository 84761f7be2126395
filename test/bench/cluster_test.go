//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	harness "github.com/kraftgo/kraft/test/cluster"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kraftgo/kraft/controller"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// buildBinaries compiles kraftd and kraftctl from this checkout into dir, so that a run never measures
// stale binaries.
func buildBinaries(dir string) error {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found from the package directory: %w", err)
	}
	gobin := "go"
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if p := filepath.Join(goroot, "bin", "go"); fileExists(p) {
			gobin = p
		}
	}
	cmd := exec.Command(gobin, "build", "-o", dir+string(filepath.Separator), "./cmd/kraftd", "./cmd/kraftctl")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/kraftd ./cmd/kraftctl: %v\n%s", err, out)
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cluster is three kraftd processes started from one whole-cluster file on 127.0.0.1.
type cluster struct {
	bin, dir  string
	clusterID string
	ids       []int32
	addrs     map[int32]string
	procs     map[int32]*exec.Cmd
	exited    map[int32]chan struct{}

	mu      sync.Mutex
	clients map[string]*kgo.Client
}

// startCluster formats three metadata directories under dir and starts a controller on each.
func startCluster(bin, dir string) (*cluster, error) {
	ports, err := harness.FreePorts(3)
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir, addrs: map[int32]string{}, procs: map[int32]*exec.Cmd{},
		exited: map[int32]chan struct{}{}, clients: map[string]*kgo.Client{}}
	var voters, listeners []string
	for i, p := range ports {
		id := int32(i + 1)
		c.ids = append(c.ids, id)
		c.addrs[id] = fmt.Sprintf("127.0.0.1:%d", p)
		voters = append(voters, fmt.Sprintf("%d@%s", id, c.addrs[id]))
		listeners = append(listeners, fmt.Sprintf("node.%d.listeners=CONTROLLER://%s", id, c.addrs[id]))
	}
	props := strings.Join(append([]string{
		"process.roles=controller",
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"controller.listener.names=CONTROLLER",
		"metadata.log.dir=" + filepath.Join(dir, "node-${node.id}"),
	}, listeners...), "\n") + "\n"
	conf := filepath.Join(dir, "cluster.properties")
	if err := os.WriteFile(conf, []byte(props), 0o644); err != nil {
		return nil, err
	}
	out, err := exec.Command(filepath.Join(bin, "kraftctl"), "storage", "random-uuid").Output()
	if err != nil {
		return nil, fmt.Errorf("kraftctl storage random-uuid: %w", err)
	}
	clusterID := strings.TrimSpace(string(out))
	c.clusterID = clusterID
	for _, id := range c.ids {
		cmd := exec.Command(filepath.Join(bin, "kraftctl"), "storage", "format", "--config", conf,
			"--node-id", fmt.Sprint(id), "--cluster-id", clusterID)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kraftctl storage format --node-id %d: %v\n%s", id, err, out)
		}
	}
	for _, id := range c.ids {
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("kraftd-%d.log", id)))
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(filepath.Join(bin, "kraftd"), "--config", conf, "--node-id", fmt.Sprint(id))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			c.stop()
			return nil, fmt.Errorf("start kraftd %d: %w", id, err)
		}
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			logf.Close()
			close(done)
		}()
		c.procs[id], c.exited[id] = cmd, done
	}
	return c, nil
}

// cpuWindow is the CPU each node, this process and the rest of the machine used over a window.
type cpuWindow struct {
	elapsed time.Duration
	nodes   map[int32]time.Duration
	self    time.Duration // this benchmark process: clients, in-process brokers
	other   time.Duration // the machine's busy time minus all of the above
}

// startCPU opens a window; the function it returns closes it.
func (c *cluster) startCPU() func() cpuWindow {
	nodes0 := map[int32]time.Duration{}
	for _, id := range c.ids {
		nodes0[id], _ = cpuTime(c.pid(id))
	}
	t0, self0, machine0 := time.Now(), selfCPU(), machineBusy()
	return func() cpuWindow {
		w := cpuWindow{elapsed: time.Since(t0), nodes: map[int32]time.Duration{}, self: selfCPU() - self0}
		w.other = machineBusy() - machine0 - w.self
		for _, id := range c.ids {
			t, _ := cpuTime(c.pid(id))
			w.nodes[id] = t - nodes0[id]
			w.other -= w.nodes[id]
		}
		w.other = max(w.other, 0)
		return w
	}
}

// pct is d as a percentage of one core over the window.
func (w cpuWindow) pct(d time.Duration) float64 {
	if w.elapsed <= 0 {
		return 0
	}
	return 100 * d.Seconds() / w.elapsed.Seconds()
}

// nodeDir is a node's metadata directory.
func (c *cluster) nodeDir(id int32) string { return filepath.Join(c.dir, fmt.Sprintf("node-%d", id)) }

// pid is a node's process id.
func (c *cluster) pid(id int32) int { return c.procs[id].Process.Pid }

// alive reports an error naming the first node that has exited.
func (c *cluster) alive() error {
	for _, id := range c.ids {
		select {
		case <-c.exited[id]:
			return fmt.Errorf("kraftd %d exited: %s", id, c.logTail(id))
		default:
		}
	}
	return nil
}

// logTail is the end of a node's log, for failure messages.
func (c *cluster) logTail(id int32) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("kraftd-%d.log", id)))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// stop sends SIGTERM to every node, and SIGKILL to any still running after 10 s.
func (c *cluster) stop() {
	c.mu.Lock()
	for addr, cl := range c.clients {
		cl.Close()
		delete(c.clients, addr)
	}
	c.mu.Unlock()
	for _, cmd := range c.procs {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for id, done := range c.exited {
		select {
		case <-done:
		case <-deadline:
			c.procs[id].Process.Kill()
			<-done
		}
	}
}

// client returns a cached control client for addr (DescribeQuorum, warm-up writes).
func (c *cluster) client(addr string) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[addr]; ok {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	c.clients[addr] = cl
	return cl, nil
}

// quorum is what DescribeQuorum says about the metadata partition.
type quorum struct {
	leader int32
	hwm    int64
}

func (c *cluster) describeQuorum(ctx context.Context, addr string) (quorum, error) {
	cl, err := c.client(addr)
	if err != nil {
		return quorum{}, err
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = controller.MetadataTopic
	t.Partitions = append(t.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, t)
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return quorum{}, err
	}
	resp := r.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorum{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorum{}, errors.New("DescribeQuorum answered without the metadata partition")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return quorum{}, err
	}
	return quorum{leader: p.LeaderID, hwm: p.HighWatermark}, nil
}

// awaitActive waits until some node leads and has accepted a write, and returns the leader.
func (c *cluster) awaitActive(timeout time.Duration) (int32, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := c.alive(); err != nil {
			return 0, err
		}
		for _, id := range c.ids {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			q, err := c.describeQuorum(ctx, c.addrs[id])
			if err == nil && q.leader > 0 {
				cl, cerr := c.client(c.addrs[q.leader])
				if cerr == nil {
					err = updateFeatures(ctx, cl, newUpdateFeatures())
				} else {
					err = cerr
				}
				if err == nil {
					cancel()
					return q.leader, nil
				}
			}
			cancel()
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no active controller within %v: %v", timeout, last)
}

// newUpdateFeatures is the write the benchmark repeats: finalize metadata.version at the level the
// cluster was formatted with (the latest). The controller accepts it and writes one FeatureLevelRecord.
func newUpdateFeatures() *kmsg.UpdateFeaturesRequest {
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.TimeoutMillis = 30000
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature = metadatalog.MetadataVersionFeature
	u.MaxVersionLevel = metadatalog.LatestMetadataVersion.Level
	u.UpgradeType = 1
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	return req
}

// updateFeatures sends req to the client's seed broker and returns the error the answer carries.
func updateFeatures(ctx context.Context, cl *kgo.Client, req *kmsg.UpdateFeaturesRequest) error {
	r, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.UpdateFeaturesResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return withMessage(err, resp.ErrorMessage)
	}
	for _, res := range resp.Results {
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
			return withMessage(err, res.ErrorMessage)
		}
	}
	return nil
}

func withMessage(err error, msg *string) error {
	if msg == nil {
		return err
	}
	return fmt.Errorf("%w: %s", err, *msg)
}

// logComplaints returns the WARN and ERROR lines of every node's log so far.
func (c *cluster) logComplaints() []string {
	var out []string
	for _, id := range c.ids {
		b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("kraftd-%d.log", id)))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				out = append(out, line)
			}
		}
	}
	return out
}
