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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	harness "github.com/kraftgo/kraft/test/cluster"
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
	bins, cleanup, err := harness.Build("kraft-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		return 1
	}
	defer cleanup()
	kraftd, kraftctl = bins.Kraftd, bins.Kraftctl
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
	procs map[int32]*harness.Proc
}

// startCluster writes a cluster file for controllers 1–3 and brokers 4–6 on free loopback ports,
// formats every node, starts them, and waits until every broker's Metadata lists all three brokers.
func startCluster(dir string) (*cluster, error) {
	c := &cluster{dir: dir, procs: map[int32]*harness.Proc{}}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         dir,
		Comment:     "written by the compat tests: three controllers and three brokers",
		Controllers: 3,
		Brokers:     3,
		Settings:    []string{"broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000"},
	})
	if err != nil {
		return nil, err
	}
	c.conf, c.controllers, c.brokers, c.addrs = f.Path, f.Controllers, f.Brokers, f.Addrs
	out, err := ctl("storage", "random-uuid")
	if err != nil {
		return nil, err
	}
	c.clusterID = strings.TrimSpace(out)
	all := append(slices.Clone(c.controllers), c.brokers...)
	for _, id := range all {
		if err := harness.Format(kraftctl, exitTimeout, c.conf, id, c.clusterID); err != nil {
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

func (c *cluster) start(id int32) error {
	logPath := filepath.Join(c.dir, fmt.Sprintf("node-%d.log", id))
	p, err := harness.Start(fmt.Sprintf("node %d", id), logPath, "", kraftd, "--config", c.conf, "--node-id", fmt.Sprint(id))
	if err != nil {
		return err
	}
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
			if !p.Running() {
				c.mu.Unlock()
				return fmt.Errorf("node %d exited (%v) while the cluster was starting", id, p.State())
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
		if err := p.Stop(exitTimeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *cluster) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		p.Kill()
	}
	os.RemoveAll(c.dir)
}

func (c *cluster) printLogs(w interface{ Write([]byte) (int, error) }) {
	c.mu.Lock()
	var paths []string
	for _, p := range c.procs {
		paths = append(paths, p.LogPath)
	}
	c.mu.Unlock()
	slices.Sort(paths)
	for _, path := range paths {
		fmt.Fprintf(w, "----- tail of %s -----\n%s\n", path, harness.TailFile(path, logTailLines))
	}
}

// ---------------------------------------------------------------------------
// Commands and requests

// ctl runs kraftctl and returns its stdout, or an error holding everything it printed.
func ctl(args ...string) (string, error) {
	return harness.RunOK(exitTimeout, kraftctl, args...)
}

// runCmd runs bin to completion, killing it after timeout (which is an error).
func runCmd(timeout time.Duration, bin string, args ...string) (harness.RunResult, error) {
	return harness.Run(timeout, bin, args...)
}

// metadataBrokers asks the broker at addr for Metadata (no topics) and returns the broker ids listed.
func metadataBrokers(addr string) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := harness.Request(addr, "kraft-compat", requestTimeout, req)
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
		if err == nil && r.Code == 0 {
			return path
		}
		tried = append(tried, fmt.Sprintf("%s: cannot import kafka: %s", path, strings.TrimSpace(lastLine(r.Stderr))))
	}
	t.Fatalf("kafka-python is not installed for any python3 (%s); install it with:\n  %s\n(or run `make test` as root, which runs test/compat/install-clients.sh)", strings.Join(tried, "; "), installHint)
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
