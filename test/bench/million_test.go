//go:build linux

package bench

// A million partitions on one machine (DESIGN.md's targets "create 1,000,000 partitions, until every
// broker's image has them", "controller memory ≤ 1 KiB per partition", "broker that leads 100,000
// partitions killed → all leaders moved" and "controlled shutdown of that broker"), measured against
// real kraftd processes started from one cluster file, with default timeouts.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	harness "github.com/kraftgo/kraft/test/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// The million: millionTopics topics of millionPerTopic partitions, replication factor 3, placed by
	// the controller over the first three brokers, created by millionClients clients that each send
	// CreateTopics of millionTopicsPerRequest topics (far below the per-request cap of 100,000
	// partitions) back to back.
	millionTopics           = 10_000
	millionPerTopic         = 100
	millionClients          = 4
	millionTopicsPerRequest = 100

	// The two brokers that join afterwards each lead moveTopics × millionPerTopic = 100,000 partitions
	// of their own (replicas [joiner, first broker, second broker]): one is killed with SIGKILL, the
	// other stopped with SIGTERM.
	moveTopics = 1000

	// probeID is a broker registered by the benchmark only to time heartbeats while the controller
	// moves leaders. It asks to stay fenced, so it is never placed, elected or waited for.
	probeID = 9001
	// probeEvery paces the probe's heartbeats; pollEvery paces the looks at the brokers.
	probeEvery = 10 * time.Millisecond
	pollEvery  = 10 * time.Millisecond

	// Default broker timings (broker.session.timeout.ms, broker.heartbeat.interval.ms): the targets are
	// stated with them.
	defaultSessionTimeout = 9 * time.Second

	createTarget          = 30 * time.Second
	memoryTarget          = 1024 // bytes of controller memory per partition
	controlledStopTarget  = 3 * time.Second
	millionControllers    = 3
	millionInitialBrokers = 3
)

// mproc is one kraftd process of the million run, started with GODEBUG=gctrace=1 so that its log shows
// the live heap after every collection.
type mproc struct {
	id      int32
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	exited  time.Time
}

func (p *mproc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// millionRun is one run of BenchmarkMillionPartitions: the cluster and everything measured on it.
type millionRun struct {
	dir, bin, conf, clusterID string
	file                      *harness.File
	procs                     map[int32]*mproc
	leader                    int32
	brokers                   []int32 // the first three; joiners come after
	killed, stopped           int32   // the joiners
	started                   time.Time
	loadAvg                   string

	mu      sync.Mutex
	clients map[string]*kgo.Client

	// lastTopics are the topics each creating client created last: once a broker shows them all, it
	// has applied every batch of the million.
	lastTopics []string

	create     createFigures
	mem        []memFigures
	joins      []joinFigures
	moveCreate time.Duration
	kill, stop moveFigures
}

type createFigures struct {
	elapsed, acked time.Duration
	perBroker      map[int32]time.Duration // until that broker's image held every topic
	requests       int
	lat            latencies
	cpu            map[int32]time.Duration
	selfCPU        time.Duration
	// otherCPU is what the rest of the machine used meanwhile: /proc/stat's busy time minus the nodes
	// and this process. It shows when something else ran during the measurement.
	otherCPU time.Duration
}

type memFigures struct {
	id                    int32
	role                  string
	rssBefore, rssAfter   int64 // bytes
	heapBefore, heapAfter int64 // live heap after the last collection, bytes (-1 when unknown)
	heapNote              string
}

type joinFigures struct {
	id      int32
	elapsed time.Duration // start → its image holds the last topic and it is unfenced
}

type moveFigures struct {
	what       string
	partitions int           // partitions the broker led
	moved      time.Duration // signal → the last move visible on a surviving broker
	fenced     time.Duration // signal → every surviving broker shows it fenced
	exited     time.Duration // SIGTERM → the process exited (controlled shutdown only)
	exitCode   int
	expired    time.Duration // SIGKILL → the active controller logged the session's expiry (0: not seen)
	probe      latencies     // heartbeat round trips of the probe broker during the window
	probeErrs  int
	othersOK   bool // no other broker was ever shown fenced during the window
	cpu        map[int32]time.Duration
	window     time.Duration
}

// BenchmarkMillionPartitions starts three controllers and three brokers from one cluster file (default
// timeouts), creates 10,000 topics × 100 partitions with replication factor 3, and times it until every
// broker's image has them; measures the memory per partition of a controller and a broker; starts two
// more brokers and times their catch-up with the million; gives each of them 100,000 partitions to lead
// (1,000 topics each, replicas [joiner, broker, broker]); then kills one with SIGKILL and times until
// every partition it led has a new leader, and stops the other with SIGTERM and times its controlled
// shutdown, with a probe timing heartbeats meanwhile. It runs once; run it with -benchtime 1x (make
// bench does).
func BenchmarkMillionPartitions(b *testing.B) {
	r := &millionRun{dir: dataDir(b), bin: b.TempDir(), procs: map[int32]*mproc{}, clients: map[string]*kgo.Client{},
		started: time.Now(), loadAvg: loadAverage()}
	b.Cleanup(r.killAll)
	if err := r.start(); err != nil {
		b.Fatalf("%v\n%s", err, r.tails())
	}
	r.memoryBaseline()
	if !b.Run("create", func(b *testing.B) {
		if err := r.createMillion(); err != nil {
			b.Fatalf("%v\n%s", err, r.tails())
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.create.elapsed.Seconds(), "s")
		b.ReportMetric(float64(millionTopics*(millionPerTopic+1))/r.create.elapsed.Seconds(), "records/s")
	}) {
		return // every later step stands on the one before
	}
	if !b.Run("memory", func(b *testing.B) {
		if err := r.measureMemory(); err != nil {
			b.Fatalf("%v\n%s", err, r.tails())
		}
		b.ReportMetric(0, "ns/op")
		for _, m := range r.mem {
			b.ReportMetric(m.perPartition(), m.role+"-heap-B/partition")
		}
	}) {
		return
	}
	if !b.Run("join", func(b *testing.B) {
		if err := r.joinBrokers(); err != nil {
			b.Fatalf("%v\n%s", err, r.tails())
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.joins[0].elapsed.Seconds(), "catch-up-s")
	}) {
		return
	}
	if !b.Run("kill-leader-of-100k", func(b *testing.B) {
		f, err := r.killLeader()
		if err != nil {
			b.Fatalf("%v\n%s", err, r.tails())
		}
		r.kill = f
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(f.fenced.Seconds(), "s")
		b.ReportMetric(ms(f.probe.p99), "heartbeat-p99-ms")
	}) {
		return
	}
	if !b.Run("controlled-shutdown-of-100k", func(b *testing.B) {
		f, err := r.controlledShutdown()
		if err != nil {
			b.Fatalf("%v\n%s", err, r.tails())
		}
		r.stop = f
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(f.exited.Seconds(), "s")
		b.ReportMetric(ms(f.probe.p99), "heartbeat-p99-ms")
	}) {
		return
	}
	r.shutdown()
	var sb strings.Builder
	r.print(&sb)
	fmt.Print(sb.String())
}

// start writes the cluster file (three controllers, three brokers, two joiners), formats every node and
// starts the controllers and the first three brokers, and waits until they are active and running.
func (r *millionRun) start() error {
	if err := buildBinaries(r.bin); err != nil {
		return err
	}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         r.dir,
		Comment:     "written by BenchmarkMillionPartitions: default broker timings",
		Controllers: millionControllers,
		Brokers:     millionInitialBrokers + 2,
	})
	if err != nil {
		return err
	}
	r.file, r.conf = f, f.Path
	r.brokers = f.Brokers[:millionInitialBrokers]
	r.killed, r.stopped = f.Brokers[millionInitialBrokers], f.Brokers[millionInitialBrokers+1]
	out, err := harness.RunOK(30*time.Second, r.ctl(), "storage", "random-uuid")
	if err != nil {
		return err
	}
	r.clusterID = strings.TrimSpace(out)
	for _, id := range f.IDs() {
		if err := harness.Format(r.ctl(), 30*time.Second, r.conf, id, r.clusterID); err != nil {
			return err
		}
	}
	for _, id := range append(slices.Clone(f.Controllers), r.brokers...) {
		if err := r.startNode(id); err != nil {
			return err
		}
	}
	if r.leader, err = r.awaitLeader(60 * time.Second); err != nil {
		return err
	}
	return r.awaitUnfenced(r.brokers, 60*time.Second)
}

func (r *millionRun) ctl() string { return filepath.Join(r.bin, "kraftctl") }

func (r *millionRun) startNode(id int32) error {
	logPath := filepath.Join(r.dir, fmt.Sprintf("kraftd-%d.log", id))
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(r.bin, "kraftd"), "--config", r.conf, "--node-id", fmt.Sprint(id))
	cmd.Env = append(harness.ChildEnv(), "GODEBUG=gctrace=1")
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start kraftd %d: %w", id, err)
	}
	p := &mproc{id: id, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.exited = time.Now()
		lf.Close()
		close(p.done)
	}()
	r.procs[id] = p
	return nil
}

func (r *millionRun) killAll() {
	r.mu.Lock()
	for addr, cl := range r.clients {
		cl.Close()
		delete(r.clients, addr)
	}
	r.mu.Unlock()
	for _, p := range r.procs {
		if p.running() {
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// shutdown stops the brokers, then the controllers, with SIGTERM.
func (r *millionRun) shutdown() {
	r.mu.Lock()
	for addr, cl := range r.clients {
		cl.Close()
		delete(r.clients, addr)
	}
	r.mu.Unlock()
	stop := func(ids []int32) {
		for _, id := range ids {
			if p := r.procs[id]; p != nil && p.running() {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		deadline := time.After(30 * time.Second)
		for _, id := range ids {
			if p := r.procs[id]; p != nil {
				select {
				case <-p.done:
				case <-deadline:
					p.cmd.Process.Kill()
					<-p.done
				}
			}
		}
	}
	stop(r.file.Brokers)
	stop(r.file.Controllers)
}

// tails is the end of every node's log, for failure messages.
func (r *millionRun) tails() string {
	var sb strings.Builder
	for _, id := range r.file.IDs() {
		if p := r.procs[id]; p != nil {
			state := "running"
			if !p.running() {
				state = "exited: " + p.cmd.ProcessState.String()
			}
			fmt.Fprintf(&sb, "--- kraftd %d (%s)\n%s\n", id, state, withoutGCLines(harness.TailFile(p.logPath, 200), 15))
		}
	}
	return sb.String()
}

func withoutGCLines(s string, n int) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "gc ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "\n")
}

// client returns a cached client for addr. Answers may be large (Metadata of every topic).
func (r *millionRun) client(addr string) (*kgo.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cl, ok := r.clients[addr]; ok {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.BrokerMaxReadBytes(1<<30))
	if err != nil {
		return nil, err
	}
	r.clients[addr] = cl
	return cl, nil
}

func (r *millionRun) request(addr string, timeout time.Duration, req kmsg.Request) (kmsg.Response, error) {
	cl, err := r.client(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cl.SeedBrokers()[0].Request(ctx, req)
}

// awaitLeader waits until a controller leads and accepts a write, and returns it.
func (r *millionRun) awaitLeader(timeout time.Duration) (int32, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		for _, id := range r.file.Controllers {
			req := kmsg.NewPtrDescribeQuorumRequest()
			t := kmsg.NewDescribeQuorumRequestTopic()
			t.Topic = "__cluster_metadata"
			t.Partitions = append(t.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
			req.Topics = append(req.Topics, t)
			resp, err := r.request(r.file.Addrs[id], 2*time.Second, req)
			if err != nil {
				last = err
				continue
			}
			q := resp.(*kmsg.DescribeQuorumResponse)
			if len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 || q.Topics[0].Partitions[0].LeaderID <= 0 {
				last = errors.New("no leader yet")
				continue
			}
			leader := q.Topics[0].Partitions[0].LeaderID
			cl, err := r.client(r.file.Addrs[leader])
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err = updateFeatures(ctx, cl, newUpdateFeatures())
				cancel()
			}
			if err == nil {
				return leader, nil
			}
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("no active controller within %v: %v", timeout, last)
}

// describeBrokers is a node's DescribeCluster (fenced brokers included): fenced or not, by id.
func (r *millionRun) describeBrokers(addr string) (map[int32]bool, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version, req.EndpointType, req.IncludeFencedBrokers = 2, 1, true
	resp, err := r.request(addr, 5*time.Second, req)
	if err != nil {
		return nil, err
	}
	dc := resp.(*kmsg.DescribeClusterResponse)
	if err := kerr.ErrorForCode(dc.ErrorCode); err != nil {
		return nil, withMessage(err, dc.ErrorMessage)
	}
	out := map[int32]bool{}
	for _, b := range dc.Brokers {
		out[b.NodeID] = b.IsFenced
	}
	return out, nil
}

// awaitUnfenced waits until every broker's own DescribeCluster shows all of ids unfenced.
func (r *millionRun) awaitUnfenced(ids []int32, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok := true
		for _, at := range ids {
			got, err := r.describeBrokers(r.file.Addrs[at])
			if err != nil {
				ok, last = false, err
				break
			}
			for _, id := range ids {
				if fenced, known := got[id]; !known || fenced {
					ok, last = false, fmt.Errorf("broker %d sees broker %d fenced or unregistered", at, id)
				}
			}
		}
		if ok {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("brokers %v not all running within %v: %v", ids, timeout, last)
}

// metadata asks a broker about topics and returns what it knows of each: the partitions, by topic.
func (r *millionRun) metadata(addr string, topics []string) (map[string][]kmsg.MetadataResponseTopicPartition, map[string][16]byte, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := r.request(addr, 30*time.Second, req)
	if err != nil {
		return nil, nil, err
	}
	parts, ids := map[string][]kmsg.MetadataResponseTopicPartition{}, map[string][16]byte{}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic == nil || t.ErrorCode != 0 {
			continue
		}
		parts[*t.Topic], ids[*t.Topic] = t.Partitions, t.TopicID
	}
	return parts, ids, nil
}

// hasAll reports whether a broker's image holds every topic with all its partitions.
func (r *millionRun) hasAll(addr string, topics []string) (bool, error) {
	got, _, err := r.metadata(addr, topics)
	if err != nil {
		return false, err
	}
	for _, t := range topics {
		if len(got[t]) != millionPerTopic {
			return false, nil
		}
	}
	return true, nil
}

// createTopics sends one CreateTopics to addr and fails unless every topic was created.
func (r *millionRun) createTopics(addr string, req *kmsg.CreateTopicsRequest) error {
	resp, err := r.request(addr, 120*time.Second, req)
	if err != nil {
		return err
	}
	for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return withMessage(fmt.Errorf("creating %s: %w", t.Topic, err), t.ErrorMessage)
		}
	}
	return nil
}

func millionTopic(i int) string { return fmt.Sprintf("m-%05d", i) }

// createMillion creates the million through the active controller, millionClients requests at a time,
// and waits until every broker's Metadata shows the last topic of every client: a broker applies the
// log in order, so then it holds every partition.
func (r *millionRun) createMillion() error {
	addr := r.file.Addrs[r.leader]
	requests := millionTopics / millionTopicsPerRequest
	cpu0 := r.cpuNow()
	self0, busy0 := selfCPU(), machineBusy()
	var (
		wg   sync.WaitGroup
		errs = make([]error, millionClients)
		lats = make([][]time.Duration, millionClients)
		last = make([]string, millionClients)
	)
	t0 := time.Now()
	for c := range millionClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := c; q < requests; q += millionClients {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.TimeoutMillis = 120_000
				for i := q * millionTopicsPerRequest; i < (q+1)*millionTopicsPerRequest; i++ {
					t := kmsg.NewCreateTopicsRequestTopic()
					t.Topic, t.NumPartitions, t.ReplicationFactor = millionTopic(i), millionPerTopic, 3
					req.Topics = append(req.Topics, t)
					last[c] = t.Topic
				}
				start := time.Now()
				if err := r.createTopics(addr, req); err != nil {
					errs[c] = err
					return
				}
				lats[c] = append(lats[c], time.Since(start))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.create.acked = time.Since(t0)
	r.lastTopics = last
	r.create.requests = requests
	r.create.lat = summarize(slices.Concat(lats...))
	perBroker, err := r.awaitTopics(r.brokers, last, t0, 120*time.Second)
	if err != nil {
		return err
	}
	r.create.perBroker = perBroker
	for _, d := range perBroker {
		r.create.elapsed = max(r.create.elapsed, d)
	}
	r.create.cpu = r.cpuSince(cpu0)
	r.create.selfCPU = selfCPU() - self0
	r.create.otherCPU = machineBusy() - busy0 - r.create.selfCPU
	for _, d := range r.create.cpu {
		r.create.otherCPU -= d
	}
	r.create.otherCPU = max(r.create.otherCPU, 0)
	// Spot check: a sample of topics is whole, with a leader and three replicas in sync, everywhere.
	var sample []string
	for i := 0; i < millionTopics; i += millionTopics / 50 {
		sample = append(sample, millionTopic(i))
	}
	for _, id := range r.brokers {
		got, _, err := r.metadata(r.file.Addrs[id], sample)
		if err != nil {
			return err
		}
		for _, t := range sample {
			if len(got[t]) != millionPerTopic {
				return fmt.Errorf("broker %d shows %d partitions of %s", id, len(got[t]), t)
			}
			for _, p := range got[t] {
				if p.ErrorCode != 0 || p.Leader < 0 || len(p.Replicas) != 3 || len(p.ISR) != 3 {
					return fmt.Errorf("broker %d shows %s-%d as %+v", id, t, p.Partition, p)
				}
			}
		}
	}
	return nil
}

// awaitTopics polls every broker of ids until its Metadata holds all of topics, and returns for each
// broker the time from since until then.
func (r *millionRun) awaitTopics(ids []int32, topics []string, since time.Time, timeout time.Duration) (map[int32]time.Duration, error) {
	var (
		mu   sync.Mutex
		out  = map[int32]time.Duration{}
		wg   sync.WaitGroup
		errs = make([]error, len(ids))
	)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := since.Add(timeout)
			for time.Now().Before(deadline) {
				ok, err := r.hasAll(r.file.Addrs[id], topics)
				if err == nil && ok {
					mu.Lock()
					out[id] = time.Since(since)
					mu.Unlock()
					return
				}
				time.Sleep(pollEvery)
			}
			errs[i] = fmt.Errorf("broker %d did not show topics %v within %v", id, topics, timeout)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// cpuNow is the CPU each node has used so far.
func (r *millionRun) cpuNow() map[int32]time.Duration {
	out := map[int32]time.Duration{}
	for id, p := range r.procs {
		if p.running() {
			out[id], _ = cpuTime(p.cmd.Process.Pid)
		}
	}
	return out
}

func (r *millionRun) cpuSince(before map[int32]time.Duration) map[int32]time.Duration {
	out := map[int32]time.Duration{}
	for id, t := range r.cpuNow() {
		out[id] = t - before[id]
	}
	return out
}

// ---------------------------------------------------------------------------
// Memory

// rss is a process's resident set, from /proc/<pid>/status.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// gcLine matches gctrace's "gc N @T s P%: ... A->B->C MB, ..." and captures N and C, the heap left live
// once the collection marked it.
var gcLine = regexp.MustCompile(`^gc (\d+) @[0-9.]+s .* (\d+)->(\d+)->(\d+) MB`)

// lastGC is the number of the last collection a node's log shows and the live heap it left.
func lastGC(logPath string) (n int, live int64) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, -1
	}
	defer f.Close()
	live = -1
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if m := gcLine.FindStringSubmatch(sc.Text()); m != nil {
			n, _ = strconv.Atoi(m[1])
			mb, _ := strconv.ParseInt(m[4], 10, 64)
			live = mb << 20
		}
	}
	return n, live
}

// forceGC makes a node collect by sending it small requests that allocate (poke(i) for i = 0, 1, ...),
// until its log shows a collection it had not made before, and returns the live heap that collection
// left. Each request keeps little alive while it runs (a few MB: 10,000 partitions' worth), so the
// figure is the node's own state.
func forceGC(p *mproc, poke func(i int) error) (int64, error) {
	n0, _ := lastGC(p.logPath)
	for i := range 2000 {
		if err := poke(i); err != nil {
			return -1, err
		}
		if i%10 == 9 {
			if n, live := lastGC(p.logPath); n > n0 {
				return live, nil
			}
		}
	}
	return -1, fmt.Errorf("kraftd %d made no collection under load", p.id)
}

// measureMemory reads, for the active controller and one broker, the resident set and the live heap
// after a collection, with the million in place; the "before" figures were taken by memoryBaseline.
func (r *millionRun) measureMemory() error {
	ctlPoke := func(n int) error {
		// A CreateTopics that only validates 10,000 new partitions: the controller decides it in full
		// (and allocates accordingly) but writes nothing.
		req := kmsg.NewPtrCreateTopicsRequest()
		req.ValidateOnly = true
		for i := range 100 {
			t := kmsg.NewCreateTopicsRequestTopic()
			t.Topic, t.NumPartitions, t.ReplicationFactor = fmt.Sprintf("gc-%05d-%03d", n, i), millionPerTopic, 3
			req.Topics = append(req.Topics, t)
		}
		return r.createTopics(r.file.Addrs[r.leader], req)
	}
	brokerPoke := func(addr string) func(int) error {
		return func(n int) error {
			// Metadata of 100 topics, 10,000 partitions.
			var topics []string
			for i := range 100 {
				topics = append(topics, millionTopic((n*100+i)%millionTopics))
			}
			_, _, err := r.metadata(addr, topics)
			return err
		}
	}
	for i, m := range r.mem {
		p := r.procs[m.id]
		m.rssAfter = rss(p.cmd.Process.Pid)
		poke := brokerPoke(r.file.Addrs[m.id])
		if m.role == "controller" {
			poke = ctlPoke
		}
		live, err := forceGC(p, poke)
		if err != nil {
			m.heapNote = strings.TrimPrefix(m.heapNote+"; ", "; ") + err.Error()
		}
		m.heapAfter = live
		r.mem[i] = m
	}
	return nil
}

// memoryBaseline records the "before" memory figures of the active controller and the first broker.
func (r *millionRun) memoryBaseline() {
	for _, x := range []struct {
		id   int32
		role string
	}{{r.leader, "controller"}, {r.brokers[0], "broker"}} {
		p := r.procs[x.id]
		m := memFigures{id: x.id, role: x.role, rssBefore: rss(p.cmd.Process.Pid)}
		if _, m.heapBefore = lastGC(p.logPath); m.heapBefore < 0 {
			// No collection yet: the heap has not reached the runtime's first goal of 4 MB.
			m.heapBefore, m.heapNote = 0, "no collection before the million: its heap was under 4 MB, counted as 0"
		}
		r.mem = append(r.mem, m)
	}
}

// perPartition is the live heap the million added, per partition.
func (m memFigures) perPartition() float64 {
	if m.heapAfter < 0 || m.heapBefore < 0 {
		return 0
	}
	return float64(m.heapAfter-m.heapBefore) / (millionTopics * millionPerTopic)
}

func (m memFigures) rssPerPartition() float64 {
	return float64(m.rssAfter-m.rssBefore) / (millionTopics * millionPerTopic)
}

// ---------------------------------------------------------------------------
// Brokers that join, then leave

// joinBrokers starts the two joiners, times their catch-up with the million, then creates the topics
// they lead: 1,000 topics × 100 partitions each, replicas [joiner, first broker, second broker].
func (r *millionRun) joinBrokers() error {
	for _, id := range []int32{r.killed, r.stopped} {
		t0 := time.Now()
		if err := r.startNode(id); err != nil {
			return err
		}
		if _, err := r.awaitTopics([]int32{id}, r.lastTopics, t0, 120*time.Second); err != nil {
			return err
		}
		if err := r.awaitUnfenced([]int32{id}, 60*time.Second); err != nil {
			return err
		}
		r.joins = append(r.joins, joinFigures{id: id, elapsed: time.Since(t0)})
	}
	t0 := time.Now()
	var last []string
	for _, lead := range []int32{r.killed, r.stopped} {
		replicas := []int32{lead, r.brokers[0], r.brokers[1]}
		for q := 0; q < moveTopics; q += millionTopicsPerRequest {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 120_000
			for i := q; i < q+millionTopicsPerRequest; i++ {
				t := kmsg.NewCreateTopicsRequestTopic()
				t.Topic, t.NumPartitions, t.ReplicationFactor = moveTopic(lead, i), -1, -1
				for p := range int32(millionPerTopic) {
					a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
					a.Partition, a.Replicas = p, replicas
					t.ReplicaAssignment = append(t.ReplicaAssignment, a)
				}
				req.Topics = append(req.Topics, t)
			}
			if err := r.createTopics(r.file.Addrs[r.leader], req); err != nil {
				return err
			}
		}
		last = append(last, moveTopic(lead, moveTopics-1))
	}
	all := append(slices.Clone(r.brokers), r.killed, r.stopped)
	if _, err := r.awaitTopics(all, last, t0, 120*time.Second); err != nil {
		return err
	}
	r.moveCreate = time.Since(t0)
	return nil
}

func moveTopic(lead int32, i int) string { return fmt.Sprintf("lead%d-%04d", lead, i) }

// ledTopics returns the topics broker lead leads, with the one whose id is highest: the controller
// writes a broker's leader moves in (topic id, partition) order, so the last partition of that topic
// is the last move of the write.
func (r *millionRun) ledTopics(lead int32) ([]string, string, error) {
	var names []string
	for i := range moveTopics {
		names = append(names, moveTopic(lead, i))
	}
	parts, ids, err := r.metadata(r.file.Addrs[r.brokers[0]], names)
	if err != nil {
		return nil, "", err
	}
	lastName := ""
	var lastID [16]byte
	for _, n := range names {
		if len(parts[n]) != millionPerTopic {
			return nil, "", fmt.Errorf("broker %d shows %d partitions of %s", r.brokers[0], len(parts[n]), n)
		}
		for _, p := range parts[n] {
			if p.Leader != lead {
				return nil, "", fmt.Errorf("%s-%d is led by %d, not %d", n, p.Partition, p.Leader, lead)
			}
		}
		if id := ids[n]; lastName == "" || string(id[:]) > string(lastID[:]) {
			lastName, lastID = n, id
		}
	}
	return names, lastName, nil
}

// probe registers probeID at the active controller and times one heartbeat every probeEvery until
// stopped. The probe asks to stay fenced, so its heartbeats never write; each one still passes through
// the controller's event loop, like every real broker's.
type probe struct {
	cancel context.CancelFunc
	done   chan struct{}
	lat    []time.Duration
	errs   int
}

func (r *millionRun) startProbe() (*probe, error) {
	cl, err := quorumClient(r.file.Addrs[r.leader])
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	epoch, err := registerBroker(ctx, cl, r.clusterID, probeID)
	cancel()
	if err != nil {
		cl.Close()
		return nil, err
	}
	beat := func(ctx context.Context) error {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.WantFence = probeID, epoch, true
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	err = beat(ctx) // connect and negotiate before timing
	cancel()
	if err != nil {
		cl.Close()
		return nil, err
	}
	loop, stop := context.WithCancel(context.Background())
	p := &probe{cancel: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cl.Close()
		for loop.Err() == nil {
			ctx, cancel := context.WithTimeout(loop, 30*time.Second)
			start := time.Now()
			err := beat(ctx)
			d := time.Since(start)
			cancel()
			if loop.Err() != nil {
				return
			}
			if err != nil {
				p.errs++
			} else {
				p.lat = append(p.lat, d)
			}
			time.Sleep(probeEvery)
		}
	}()
	return p, nil
}

func (p *probe) stop() (latencies, int) {
	p.cancel()
	<-p.done
	return summarize(p.lat), p.errs
}

// watchMove sends sig to broker gone and times, as the surviving brokers see it: the last move of its
// leaderships (lastTopic's last partition led by another broker and gone from its ISR), and its fence
// on every surviving broker. With SIGTERM it also times the process's exit.
func (r *millionRun) watchMove(gone int32, sig os.Signal, what string) (moveFigures, error) {
	names, lastTopic, err := r.ledTopics(gone)
	if err != nil {
		return moveFigures{}, err
	}
	f := moveFigures{what: what, partitions: len(names) * millionPerTopic, othersOK: true}
	var survivors []int32
	for _, id := range append(slices.Clone(r.brokers), r.killed, r.stopped) {
		if id != gone && r.procs[id].running() {
			survivors = append(survivors, id)
		}
	}
	pr, err := r.startProbe()
	if err != nil {
		return f, err
	}
	defer pr.stop()
	cpu0 := r.cpuNow()
	p := r.procs[gone]
	t0 := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return f, err
	}
	deadline := t0.Add(2 * defaultSessionTimeout)
	fencedAt := map[int32]time.Duration{}
	first := r.file.Addrs[r.brokers[0]]
	for time.Now().Before(deadline) && (f.moved == 0 || len(fencedAt) < len(survivors) || (sig == syscall.SIGTERM && p.running())) {
		if f.moved == 0 {
			got, _, err := r.metadata(first, []string{lastTopic})
			if err == nil && len(got[lastTopic]) == millionPerTopic {
				lp := got[lastTopic][millionPerTopic-1]
				if lp.Leader >= 0 && lp.Leader != gone && !slices.Contains(lp.ISR, gone) {
					f.moved = time.Since(t0)
				}
			}
		}
		for _, id := range survivors {
			if _, done := fencedAt[id]; done {
				continue
			}
			got, err := r.describeBrokers(r.file.Addrs[id])
			if err != nil {
				continue
			}
			for _, b := range survivors {
				if got[b] {
					f.othersOK = false
				}
			}
			if got[gone] {
				fencedAt[id] = time.Since(t0)
			}
		}
		time.Sleep(pollEvery)
	}
	time.Sleep(200 * time.Millisecond) // heartbeats just after the moves count too
	f.window = time.Since(t0)
	f.cpu = r.cpuSince(cpu0)
	f.probe, f.probeErrs = pr.stop()
	if len(fencedAt) < len(survivors) || f.moved == 0 {
		return f, fmt.Errorf("%s: within %v, moved after %v, fenced on %d of %d surviving brokers", what, 2*defaultSessionTimeout, f.moved, len(fencedAt), len(survivors))
	}
	for _, d := range fencedAt {
		f.fenced = max(f.fenced, d)
	}
	if sig == syscall.SIGKILL {
		if at, ok := logTimeAfter(r.procs[r.leader].logPath, "fencing brokers whose sessions expired", t0); ok {
			f.expired = at.Sub(t0)
		}
	}
	if sig == syscall.SIGTERM {
		if p.running() {
			return f, fmt.Errorf("%s: the broker had not exited %v after SIGTERM", what, time.Since(t0))
		}
		f.exited, f.exitCode = p.exited.Sub(t0), p.cmd.ProcessState.ExitCode()
	}
	// Every partition it led has another leader, and it is in no ISR.
	got, _, err := r.metadata(first, names)
	if err != nil {
		return f, err
	}
	for _, n := range names {
		for _, part := range got[n] {
			if part.Leader < 0 || part.Leader == gone || slices.Contains(part.ISR, gone) {
				return f, fmt.Errorf("%s: %s-%d still shows leader %d, ISR %v", what, n, part.Partition, part.Leader, part.ISR)
			}
		}
	}
	return f, r.unregisterProbe()
}

// logTimeAfter is the time of the first line of a node's log at or after since whose message is msg.
func logTimeAfter(logPath, msg string, since time.Time) (time.Time, bool) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = " " + line // logField wants a space before each key, and time comes first
		if logField(line, "msg") != msg {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
		if err == nil && !at.Before(since.Truncate(time.Millisecond)) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (r *millionRun) unregisterProbe() error {
	return unregisterAll(r.file.Addrs[r.leader], []int32{probeID}, 1)
}

func (r *millionRun) killLeader() (moveFigures, error) {
	return r.watchMove(r.killed, syscall.SIGKILL, "kill -9")
}

func (r *millionRun) controlledShutdown() (moveFigures, error) {
	return r.watchMove(r.stopped, syscall.SIGTERM, "SIGTERM")
}

// ---------------------------------------------------------------------------
// Report

func (r *millionRun) print(out io.Writer) {
	const n = millionTopics * millionPerTopic
	fmt.Fprintf(out, "\nA million partitions, %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	fmt.Fprintf(out, "%d controllers, %d brokers (+2 that join later), default timeouts; data directory on %s; load average at the start %s; the run took %v\n\n",
		millionControllers, millionInitialBrokers, fsName(r.dir), r.loadAvg, time.Since(r.started).Round(time.Second))
	c := r.create
	fmt.Fprintf(out, "create %d topics × %d partitions, RF 3: %d CreateTopics of %d topics, %d clients\n", millionTopics, millionPerTopic, c.requests, millionTopicsPerRequest, millionClients)
	fmt.Fprintf(out, "  all answered after %.2f s; every broker's image has them after %.2f s (%.0f records/s)\n",
		c.acked.Seconds(), c.elapsed.Seconds(), float64(millionTopics*(millionPerTopic+1))/c.elapsed.Seconds())
	for _, id := range r.brokers {
		fmt.Fprintf(out, "  broker %d: %.2f s\n", id, c.perBroker[id].Seconds())
	}
	fmt.Fprintf(out, "  request round trip: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", ms(c.lat.p50), ms(c.lat.p99), ms(c.lat.max))
	fmt.Fprintf(out, "  CPU over the creation: %s; bench process %.1f s; the rest of the machine %.1f s\n", r.cpuList(c.cpu), c.selfCPU.Seconds(), c.otherCPU.Seconds())

	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nmemory with the million\tnode\tRSS before\tRSS after\tRSS B/partition\tlive heap before\tlive heap after\theap B/partition\t")
	for _, m := range r.mem {
		fmt.Fprintf(w, "%s\t%d\t%d MiB\t%d MiB\t%.0f\t%s\t%s\t%.0f\t\n", m.role, m.id, m.rssBefore>>20, m.rssAfter>>20, m.rssPerPartition(),
			mib(m.heapBefore), mib(m.heapAfter), m.perPartition())
	}
	w.Flush()
	for _, m := range r.mem {
		if m.heapNote != "" {
			fmt.Fprintf(out, "  %s %d: %s\n", m.role, m.id, m.heapNote)
		}
	}
	for _, j := range r.joins {
		fmt.Fprintf(out, "broker %d joins: running with all %d partitions %.2f s after it started\n", j.id, n, j.elapsed.Seconds())
	}
	fmt.Fprintf(out, "%d × %d partitions led by the joiners created and on every broker in %.2f s\n", 2*moveTopics, millionPerTopic, r.moveCreate.Seconds())
	for _, f := range []moveFigures{r.kill, r.stop} {
		if f.what == "" {
			continue
		}
		fmt.Fprintf(out, "%s of a broker leading %d partitions:\n", f.what, f.partitions)
		if f.expired > 0 {
			fmt.Fprintf(out, "  the active controller found the session expired after %.2f s (its last heartbeat was up to one interval before the kill)\n", f.expired.Seconds())
		}
		fmt.Fprintf(out, "  last leader move visible on a surviving broker after %.2f s; fenced on every surviving broker after %.2f s\n", f.moved.Seconds(), f.fenced.Seconds())
		if f.exited > 0 {
			fmt.Fprintf(out, "  the broker exited (code %d) after %.2f s\n", f.exitCode, f.exited.Seconds())
		}
		fmt.Fprintf(out, "  probe heartbeats meanwhile: %d, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d errors; other brokers fenced meanwhile: %v\n",
			f.probe.n, ms(f.probe.p50), ms(f.probe.p99), ms(f.probe.max), f.probeErrs, !f.othersOK)
		fmt.Fprintf(out, "  CPU over %.1f s: %s\n", f.window.Seconds(), r.cpuList(f.cpu))
	}
	complaints := 0
	for _, id := range r.file.IDs() {
		if p := r.procs[id]; p != nil {
			b, _ := os.ReadFile(p.logPath)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					complaints++
				}
			}
		}
	}
	fmt.Fprintf(out, "node logs: %d WARN/ERROR lines\n", complaints)

	fmt.Fprintln(out, "\ntargets (DESIGN.md)")
	fmt.Fprintf(out, "  create 1,000,000 partitions until every broker's image has them: %.2f s vs %v: ratio %.2f, %s\n",
		c.elapsed.Seconds(), createTarget, c.elapsed.Seconds()/createTarget.Seconds(), verdict(c.elapsed <= createTarget))
	for _, m := range r.mem {
		if m.role == "controller" && m.heapAfter >= 0 {
			fmt.Fprintf(out, "  controller memory per partition (live heap) %.0f B vs %d B: ratio %.2f, %s\n",
				m.perPartition(), memoryTarget, m.perPartition()/memoryTarget, verdict(m.perPartition() <= memoryTarget))
		}
	}
	if r.kill.what != "" {
		bound := defaultSessionTimeout + time.Second
		fmt.Fprintf(out, "  broker leading %d partitions killed → all leaders moved: %.2f s vs session timeout + 1 s = %v: ratio %.2f, %s\n",
			r.kill.partitions, r.kill.fenced.Seconds(), bound, r.kill.fenced.Seconds()/bound.Seconds(), verdict(r.kill.fenced <= bound))
	}
	if r.stop.what != "" {
		fmt.Fprintf(out, "  controlled shutdown of a broker leading %d partitions: exited after %.2f s (leaders moved after %.2f s) vs %v: ratio %.2f, %s\n",
			r.stop.partitions, r.stop.exited.Seconds(), r.stop.moved.Seconds(), controlledStopTarget, r.stop.exited.Seconds()/controlledStopTarget.Seconds(), verdict(r.stop.exited <= controlledStopTarget))
	}
	fmt.Fprintln(out)
}

func (r *millionRun) cpuList(cpu map[int32]time.Duration) string {
	var parts []string
	for _, id := range r.file.IDs() {
		d, ok := cpu[id]
		if !ok {
			continue
		}
		role := "broker"
		if slices.Contains(r.file.Controllers, id) {
			role = "controller"
			if id == r.leader {
				role = "leader"
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d %.1f s", role, id, d.Seconds()))
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%d MiB", b>>20)
}
