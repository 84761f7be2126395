// Package cluster is the process harness the cross-room tests share (test/e2e and test/compat): it
// builds kraftd and kraftctl from this checkout, picks free loopback ports, writes a whole-cluster
// properties file, runs kraftctl, starts kraftd processes with their output in a log file, stops them
// with SIGTERM (requiring exit code 0) or kills them, shows the tail of a log, and sends one Kafka
// request straight to one node.
//
// It reports failures as errors and never touches a *testing.T, so a TestMain can use it as well as a
// test; each test package decides what a failure means.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ---------------------------------------------------------------------------
// Binaries

// Binaries are the paths of the kraftd and kraftctl binaries built by Build.
type Binaries struct {
	Kraftd, Kraftctl string
}

// RepoRoot walks up from the working directory (a test's package directory) to the directory
// holding go.mod.
func RepoRoot() (string, error) {
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

// Build compiles ./cmd/kraftd and ./cmd/kraftctl from this checkout into a new temporary directory
// named after tmpPattern (as for os.MkdirTemp), so a test never runs a stale bin/. The returned cleanup
// removes that directory; it is nil when Build fails (which removes what it made).
func Build(tmpPattern string) (Binaries, func(), error) {
	root, err := RepoRoot()
	if err != nil {
		return Binaries{}, nil, err
	}
	binDir, err := os.MkdirTemp("", tmpPattern)
	if err != nil {
		return Binaries{}, nil, err
	}
	cleanup := func() { os.RemoveAll(binDir) }
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/kraftd", "./cmd/kraftctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return Binaries{}, nil, fmt.Errorf("go build ./cmd/kraftd ./cmd/kraftctl in %s: %v\n%s", root, err, out)
	}
	return Binaries{Kraftd: filepath.Join(binDir, "kraftd"), Kraftctl: filepath.Join(binDir, "kraftctl")}, cleanup, nil
}

// ChildEnv is the environment of every child process: ours without KRAFT_* variables, which would
// silently change the configuration under test.
func ChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRAFT_") {
			env = append(env, kv)
		}
	}
	return env
}

// FreePorts returns n distinct loopback ports that were free a moment ago. They are released before
// kraftd binds them, a small race nothing else on a test machine should run into.
func FreePorts(n int) ([]int, error) {
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
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ---------------------------------------------------------------------------
// Cluster files

// Spec describes a whole-cluster properties file: controllers with ids 1..Controllers and brokers
// with the ids after them, each on its own free loopback port.
type Spec struct {
	// Dir holds the file (cluster.properties) and every node's metadata.log.dir (node-<id>).
	Dir string
	// Comment is the file's first line, after "# ".
	Comment     string
	Controllers int
	Brokers     int
	// Settings are key=value lines written after the common ones and before the nodes' lines.
	Settings []string
	// Extra are lines written after the nodes' lines (for nodes a test adds later, say).
	Extra []string
}

// File is a cluster file written by WriteFile.
type File struct {
	Path                 string
	Text                 string
	Controllers, Brokers []int32
	// Addrs holds each node's own address: a controller's CONTROLLER listener, a broker's PLAINTEXT one.
	Addrs map[int32]string
}

// IDs returns the controllers' ids followed by the brokers'.
func (f *File) IDs() []int32 {
	return append(append([]int32(nil), f.Controllers...), f.Brokers...)
}

// WriteFile writes the cluster file spec describes. A file without brokers says process.roles=controller
// once; a file with brokers gives each node its own node.<id>.process.roles line.
func WriteFile(spec Spec) (*File, error) {
	ports, err := FreePorts(spec.Controllers + spec.Brokers)
	if err != nil {
		return nil, err
	}
	f := &File{Path: filepath.Join(spec.Dir, "cluster.properties"), Addrs: map[int32]string{}}
	perNodeRoles := spec.Brokers > 0
	var voters, nodes []string
	for i, port := range ports {
		id := int32(i + 1)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		f.Addrs[id] = addr
		if i < spec.Controllers {
			f.Controllers = append(f.Controllers, id)
			voters = append(voters, fmt.Sprintf("%d@%s", id, addr))
			if perNodeRoles {
				nodes = append(nodes, fmt.Sprintf("node.%d.process.roles=controller", id))
			}
			nodes = append(nodes, fmt.Sprintf("node.%d.listeners=CONTROLLER://%s", id, addr))
		} else {
			f.Brokers = append(f.Brokers, id)
			nodes = append(nodes, fmt.Sprintf("node.%d.process.roles=broker", id), fmt.Sprintf("node.%d.listeners=PLAINTEXT://%s", id, addr))
		}
	}
	lines := []string{"# " + spec.Comment}
	if !perNodeRoles {
		lines = append(lines, "process.roles=controller")
	}
	lines = append(lines,
		"controller.quorum.voters="+strings.Join(voters, ","),
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"metadata.log.dir="+filepath.Join(spec.Dir, "node-${node.id}"),
		"controller.quorum.election.timeout.ms=1000",
	)
	lines = append(lines, spec.Settings...)
	lines = append(lines, nodes...)
	lines = append(lines, spec.Extra...)
	f.Text = strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(f.Path, []byte(f.Text), 0o644); err != nil {
		return nil, err
	}
	return f, nil
}

// ---------------------------------------------------------------------------
// Command-line runs

// RunResult is one finished command.
type RunResult struct {
	Code           int
	Stdout, Stderr string
}

func (r RunResult) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs bin with args to completion in ChildEnv, killing it after timeout (which is an error, as is
// failing to run it at all; a non-zero exit code is not).
func Run(timeout time.Duration, bin string, args ...string) (RunResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = ChildEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := RunResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("%s %s did not finish within %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), timeout, r.Stdout, r.Stderr)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, fmt.Errorf("run %s: %w", bin, err)
	}
	r.Code = cmd.ProcessState.ExitCode()
	return r, nil
}

// RunOK runs bin like Run and also requires exit code 0; it returns stdout.
func RunOK(timeout time.Duration, bin string, args ...string) (string, error) {
	r, err := Run(timeout, bin, args...)
	if err != nil {
		return "", err
	}
	if r.Code != 0 {
		return "", fmt.Errorf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), r)
	}
	return r.Stdout, nil
}

// Format formats node id's directory for clusterID with `kraftctl storage format`.
func Format(kraftctl string, timeout time.Duration, conf string, id int32, clusterID string) error {
	_, err := RunOK(timeout, kraftctl, "storage", "format", "--config", conf, "--node-id", fmt.Sprint(id), "--cluster-id", clusterID)
	return err
}

// ---------------------------------------------------------------------------
// Processes

// Proc is one running (or finished) process whose stdout and stderr go to LogPath.
type Proc struct {
	Name    string
	LogPath string
	Cmd     *exec.Cmd
	done    chan struct{} // closed once the process has been reaped
	state   *os.ProcessState
}

// Start starts bin with args in ChildEnv, appending its output to logPath after banner (a line
// written first, when not empty). name names the process in errors.
func Start(name, logPath, banner, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if banner != "" {
		fmt.Fprintln(f, banner)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = ChildEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, Cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	return p, nil
}

// Running reports whether the process has not been reaped yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// State is the process's exit state; nil while it runs.
func (p *Proc) State() *os.ProcessState {
	select {
	case <-p.done:
		return p.state
	default:
		return nil
	}
}

// WaitExit waits for the process to end and returns its exit code (-1 when a signal ended it); ok is
// false if it did not end within the timeout.
func (p *Proc) WaitExit(timeout time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Stop sends SIGTERM and requires the process to exit with code 0 within timeout; if it does not
// exit, Stop kills it. It is an error, too, if the process had already exited.
func (p *Proc) Stop(timeout time.Duration) error {
	if !p.Running() {
		return fmt.Errorf("%s had already exited (%v) before SIGTERM", p.Name, p.state)
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	code, ok := p.WaitExit(timeout)
	if !ok {
		p.Kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed it", p.Name, timeout)
	}
	if code != 0 {
		return fmt.Errorf("%s exited with %v after SIGTERM, want exit code 0", p.Name, p.state)
	}
	return nil
}

// Kill sends SIGKILL (kill -9) if the process still runs, and waits for it to be reaped.
func (p *Proc) Kill() {
	if p.Running() {
		p.Cmd.Process.Kill()
	}
	<-p.done
}

// TailFile returns the last n lines of a file, for failure messages.
func TailFile(path string, n int) string {
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
// Kafka requests

// Request sends one request straight to the node at addr over a new connection, waiting at most
// timeout to connect and for the answer. The client discovers nothing: controllers serve no Metadata.
func Request(addr, clientID string, timeout time.Duration, req kmsg.Request) (kmsg.Response, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(clientID), kgo.DialTimeout(timeout))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return cl.SeedBrokers()[0].Request(ctx, req)
}
