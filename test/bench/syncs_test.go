//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Counting each node's fsyncs gives the grouping the log achieves: entries committed per fsync. It
// uses perf's syscall tracepoints (in-kernel counters, so the nodes are not slowed the way strace
// would slow them) and is skipped, with a note, where perf is missing or not permitted.

var syncEvents = "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync"

var perfCheck = sync.OnceValue(func() error {
	if _, err := exec.LookPath("perf"); err != nil {
		return errors.New("perf is not installed")
	}
	if out, err := exec.Command("perf", "stat", "-x,", "-e", syncEvents, "--", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("perf cannot count syscall tracepoints here: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
})

// syncCounter counts fdatasync and fsync calls of some processes until stopped.
type syncCounter struct {
	cmds map[int32]*exec.Cmd
	outs map[int32]*bytes.Buffer
}

func startSyncCount(pids map[int32]int) (*syncCounter, error) {
	if err := perfCheck(); err != nil {
		return nil, err
	}
	s := &syncCounter{cmds: map[int32]*exec.Cmd{}, outs: map[int32]*bytes.Buffer{}}
	for id, pid := range pids {
		cmd := exec.Command("perf", "stat", "-x,", "-e", syncEvents, "-p", strconv.Itoa(pid))
		out := &bytes.Buffer{}
		cmd.Stderr = out
		if err := cmd.Start(); err != nil {
			s.stop()
			return nil, err
		}
		s.cmds[id], s.outs[id] = cmd, out
	}
	return s, nil
}

// stop ends the counting (perf prints its counts on SIGINT) and returns the calls per process.
func (s *syncCounter) stop() (map[int32]int64, error) {
	for _, cmd := range s.cmds {
		cmd.Process.Signal(os.Interrupt)
	}
	counts := map[int32]int64{}
	var first error
	for id, cmd := range s.cmds {
		if err := cmd.Wait(); err != nil && !isInterrupted(err) && first == nil {
			first = fmt.Errorf("perf stat -p %d: %v: %s", cmd.Process.Pid, err, s.outs[id])
		}
		for _, line := range strings.Split(s.outs[id].String(), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:") {
				continue
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				if first == nil {
					first = fmt.Errorf("perf stat: %q", line)
				}
				continue
			}
			counts[id] += n
		}
	}
	return counts, first
}

func isInterrupted(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && (ws.Signaled() && ws.Signal() == syscall.SIGINT || ws.ExitStatus() == 130)
}
