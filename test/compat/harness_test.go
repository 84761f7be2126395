// Package compat runs Kafka clients nobody here wrote — franz-go's kadm, librdkafka's kcat and
// kafka-python — against a real cluster of three controllers and three brokers started from one
// cluster file, built from this checkout.
//
// The clients kcat and kafka-python come from Debian (`apt-get install -y kcat python3-kafka`);
// `make test` installs them when it runs as root (test/compat/install-clients.sh). A test whose client
// is missing fails with that command; it never skips.
package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Generous deadlines: a slow machine must not fail a test. Nothing here asserts on a duration.
const (
	readyTimeout   = 90 * time.Second
	requestTimeout = 5 * time.Second
	clientTimeout  = 60 * time.Second
	exitTimeout    = 30 * time.Second
	pollInterval   = 100 * time.Millisecond
	logTailLines   = 60

	installHint = "apt-get install -y kcat python3-kafka"
)

var kraftd, kraftctl string

// shared is the one cluster every test of the package talks to; it is started by the first test that
// asks for it and stopped by TestMain.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "kraft-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir := filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/kraftd", "./cmd/kraftctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "compat: go build ./cmd/kraftd ./cmd/kraftctl in %s: %v\n%s", root, err, out)
		return 1
	}
	kraftd, kraftctl = filepath.Join(binDir, "kraftd"), filepath.Join(binDir, "kraftctl")
	code := m.Run()
	if shared.c != nil {
		if err := shared.c.stopAll(); err != nil {
			fmt.Fprintln(os.Stderr, "compat: stopping the cluster:", err)
			shared.c.printLogs(os.Stderr)
			if code == 0 {
				code = 1
			}
		}
		shared.c.killAll()
	}
	return code
}

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

// sharedCluster returns the running cluster, starting it on first use. A test that fails prints the
// tail of every node's log.
func sharedCluster(t *testing.T) *cluster {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "kraft-compat-cluster-")
		if err != nil {
			shared.err = err
			return
		}
		shared.c, shared.err = startCluster(dir)
	})
	if shared.c != nil {
		c := shared.c
		t.Cleanup(func() {
			if t.Failed() {
				var b bytes.Buffer
				c.printLogs(&b)
				t.Logf("cluster file %s; node logs:\n%s", c.conf, b.String())
			}
		})
	}
	if shared.err != nil {
		t.Fatalf("starting the cluster: %v", shared.err)
	}
	return shared.c
}

// ---------------------------------------------------------------------------
// The cluster

type cluster struct {
	dir, conf, clusterID string
	controllers, brokers []int32
	addrs                map[int32]string // a controller's controller port, a broker's PLAINTEXT port

	mu    sync.Mutex
	procs map[int32]*proc
}

type proc struct {
	id      int32
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// startCluster writes a cluster file for controllers 1–3 and brokers 4–6 on free loopback ports,
// formats every node, starts them, and waits until every broker's Metadata lists all three brokers.
func startCluster(dir string) (*cluster, error) {
	c := &cluster{dir: dir, addrs: map[int32]string{}, procs: map[int32]*proc{}}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	var voters, nodes []string
	for i, port := range ports {
		id := int32(i + 1)
		c.addrs[id] = fmt.Sprintf("127.0.0.1:%d", port)
		if id <= 3 {
			c.controllers = append(c.controllers, id)
			voters = append(voters, fmt.Sprintf("%d@%s", id, c.addrs[id]))
			nodes = append(nodes, fmt.Sprintf("node.%d.process.roles=controller\nnode.%d.listeners=CONTROLLER://%s", id, id, c.addrs[id]))
		} else {
			c.brokers = append(c.brokers, id)
			nodes = append(nodes, fmt.Sprintf("node.%d.process.roles=broker\nnode.%d.listeners=PLAINTEXT://%s", id, id, c.addrs[id]))
		}
	}
	conf := strings.Join([]string{
		"# written by the compat tests: three controllers and three brokers",
		"controller.quorum.voters=" + strings.Join(voters, ","),
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"metadata.log.dir=" + filepath.Join(dir, "node-${node.id}"),
		"controller.quorum.election.timeout.ms=1000",
		"broker.heartbeat.interval.ms=500",
		"broker.session.timeout.ms=3000",
		strings.Join(nodes, "\n"),
		"",
	}, "\n")
	c.conf = filepath.Join(dir, "cluster.properties")
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	out, err := ctl("storage", "random-uuid")
	if err != nil {
		return nil, err
	}
	c.clusterID = strings.TrimSpace(out)
	all := append(slices.Clone(c.controllers), c.brokers...)
	for _, id := range all {
		if _, err := ctl("storage", "format", "--config", c.conf, "--node-id", fmt.Sprint(id), "--cluster-id", c.clusterID); err != nil {
			return c, err
		}
	}
	for _, id := range all {
		if err := c.start(id); err != nil {
			c.killAll()
			return c, err
		}
	}
	if err := c.waitReady(); err != nil {
		return c, err
	}
	return c, nil
}

func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// childEnv drops KRAFT_* variables, which would silently change the configuration under test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRAFT_") {
			env = append(env, kv)
		}
	}
	return env
}

func (c *cluster) start(id int32) error {
	logPath := filepath.Join(c.dir, fmt.Sprintf("node-%d.log", id))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(kraftd, "--config", c.conf, "--node-id", fmt.Sprint(id))
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start node %d: %w", id, err)
	}
	p := &proc{id: id, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
	return nil
}

// waitReady polls until every broker's Metadata lists all three brokers, failing early if a node
// exits.
func (c *cluster) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		last, ok := "", true
		for _, id := range c.brokers {
			brokers, err := metadataBrokers(c.addrs[id])
			if err != nil || !slices.Equal(brokers, c.brokers) {
				last, ok = fmt.Sprintf("broker %d: brokers %v, err %v", id, brokers, err), false
				break
			}
		}
		if ok {
			return nil
		}
		c.mu.Lock()
		for id, p := range c.procs {
			if !p.running() {
				c.mu.Unlock()
				return fmt.Errorf("node %d exited (%v) while the cluster was starting", id, p.cmd.ProcessState)
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v waiting for every broker to list brokers %v; last seen: %s", readyTimeout, c.brokers, last)
		}
		time.Sleep(pollInterval)
	}
}

// stopAll sends SIGTERM to the brokers, then the controllers, and requires each to exit 0.
func (c *cluster) stopAll() error {
	var errs []error
	for _, id := range append(slices.Clone(c.brokers), c.controllers...) {
		c.mu.Lock()
		p := c.procs[id]
		c.mu.Unlock()
		if p == nil {
			continue
		}
		if !p.running() {
			errs = append(errs, fmt.Errorf("node %d had exited (%v) before the end of the tests", id, p.cmd.ProcessState))
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				errs = append(errs, fmt.Errorf("node %d exited with %v after SIGTERM, want 0", id, p.cmd.ProcessState))
			}
		case <-time.After(exitTimeout):
			errs = append(errs, fmt.Errorf("node %d did not exit within %v of SIGTERM", id, exitTimeout))
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.running() {
			p.cmd.Process.Kill()
		}
		<-p.done
	}
	os.RemoveAll(c.dir)
}

func (c *cluster) printLogs(w interface{ Write([]byte) (int, error) }) {
	c.mu.Lock()
	var paths []string
	for _, p := range c.procs {
		paths = append(paths, p.logPath)
	}
	c.mu.Unlock()
	slices.Sort(paths)
	for _, path := range paths {
		fmt.Fprintf(w, "----- tail of %s -----\n%s\n", path, tailFile(path, logTailLines))
	}
}

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
// Commands and requests

// ctl runs kraftctl and returns its stdout, or an error holding everything it printed.
func ctl(args ...string) (string, error) {
	r, err := runCmd(exitTimeout, kraftctl, args...)
	if err != nil {
		return "", err
	}
	if r.code != 0 {
		return "", fmt.Errorf("kraftctl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout, nil
}

type runResult struct {
	code           int
	stdout, stderr string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCmd runs bin to completion, killing it after timeout (which is an error).
func runCmd(timeout time.Duration, bin string, args ...string) (runResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := runResult{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s %s did not finish within %v\n%v", filepath.Base(bin), strings.Join(args, " "), timeout, r)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, fmt.Errorf("run %s: %w", bin, err)
	}
	r.code = cmd.ProcessState.ExitCode()
	return r, nil
}

// metadataBrokers asks the broker at addr for Metadata (no topics) and returns the broker ids listed.
func metadataBrokers(addr string) ([]int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraft-compat"), kgo.DialTimeout(requestTimeout))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, err
	}
	var ids []int32
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids, nil
}

// ---------------------------------------------------------------------------
// The clients

// kcatPath finds kcat, or fails the test with the command that installs it.
func kcatPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatalf("kcat (librdkafka's command-line client) is not installed; install it with:\n  %s\n(or run `make test` as root, which runs test/compat/install-clients.sh)", installHint)
	return ""
}

// kafkaPython finds a python3 that can import kafka (kafka-python): Debian's python3-kafka installs into
// /usr/bin/python3, which a pyenv or virtualenv python3 earlier on PATH does not see, so that one is
// tried first. It fails the test with the install command when there is none.
func kafkaPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(py)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: not found", py))
			continue
		}
		r, err := runCmd(exitTimeout, path, "-c", "import kafka")
		if err == nil && r.code == 0 {
			return path
		}
		tried = append(tried, fmt.Sprintf("%s: cannot import kafka: %s", path, strings.TrimSpace(lastLine(r.stderr))))
	}
	t.Fatalf("kafka-python is not installed for any python3 (%s); install it with:\n  %s\n(or run `make test` as root, which runs test/compat/install-clients.sh)", strings.Join(tried, "; "), installHint)
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
