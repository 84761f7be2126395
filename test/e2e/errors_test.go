package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestConfigErrors starts kraftd with bad configurations: each must exit with code 2 after one line on
// stderr naming the key, without creating the metadata directory.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 4)
	// The "port in use" case needs node 1's port held by someone else for the whole run: a listener of
	// ours on a port the kernel picks, so no other test can be holding it.
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { occupied.Close() }) // not defer: the parallel subtests run after this function returns
	busyPort := occupied.Addr().(*net.TCPAddr).Port
	// base is a valid whole-cluster file but for the lines a case replaces (by key) or adds.
	base := func(dataDir string, replace map[string]string, extra ...string) string {
		voters := fmt.Sprintf("1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", ports[0], ports[1], ports[2])
		lines := []struct{ k, v string }{
			{"process.roles", "controller"},
			{"controller.quorum.voters", voters},
			{"controller.listener.names", "CONTROLLER"},
			{"metadata.log.dir", filepath.Join(dataDir, "node-${node.id}")},
			{"controller.quorum.election.timeout.ms", "1000"},
			{"node.1.listeners", fmt.Sprintf("CONTROLLER://127.0.0.1:%d", ports[0])},
			{"node.2.listeners", fmt.Sprintf("CONTROLLER://127.0.0.1:%d", ports[1])},
			{"node.3.listeners", fmt.Sprintf("CONTROLLER://127.0.0.1:%d", ports[2])},
		}
		var out []string
		for _, l := range lines {
			if v, ok := replace[l.k]; ok {
				if v != "" {
					out = append(out, v)
				}
				continue
			}
			out = append(out, l.k+"="+l.v)
		}
		return strings.Join(append(out, extra...), "\n") + "\n"
	}

	cases := []struct {
		name string
		// conf builds the file's text for a data directory.
		conf func(dataDir string) string
		args []string
		// want are substrings the error line must hold (the first is the key).
		want []string
	}{
		{
			name: "unknown key with a suggestion",
			conf: func(d string) string {
				return base(d, map[string]string{"process.roles": "proccess.roles=controller"})
			},
			args: []string{"--node-id", "1"},
			want: []string{"proccess.roles", `"process.roles"`},
		},
		{
			name: "missing node.id",
			conf: func(d string) string { return base(d, nil) },
			want: []string{"node.id"},
		},
		{
			name: "controller not a voter",
			conf: func(d string) string {
				return base(d, nil, fmt.Sprintf("node.4.listeners=CONTROLLER://127.0.0.1:%d", ports[3]))
			},
			args: []string{"--node-id", "4"},
			want: []string{"controller.quorum.voters", "4"},
		},
		{
			name: "malformed voters",
			conf: func(d string) string {
				return base(d, map[string]string{"controller.quorum.voters": "controller.quorum.voters=1@localhost"})
			},
			args: []string{"--node-id", "1"},
			want: []string{"controller.quorum.voters", "1@localhost"},
		},
		{
			name: "port in use",
			conf: func(d string) string {
				return base(d, map[string]string{
					"controller.quorum.voters": fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", busyPort, ports[1], ports[2]),
					"node.1.listeners":         fmt.Sprintf("node.1.listeners=CONTROLLER://127.0.0.1:%d", busyPort),
				})
			},
			args: []string{"--node-id", "1"},
			want: []string{"listeners", strconv.Itoa(busyPort)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			conf := filepath.Join(dir, "bad.properties")
			text := tc.conf(dataDir)
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			r := run(t, kraftd, append([]string{"--config", conf}, tc.args...)...)
			if r.Code != 2 {
				t.Errorf("exit code %d, want 2 (bad configuration)\n%v\nconfig:\n%s", r.Code, r, text)
			}
			lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
			if len(lines) != 1 || lines[0] == "" {
				t.Errorf("stderr has %d lines, want exactly one:\n%s", len(lines), r.Stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.Stderr)
				}
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("the metadata directory %s was created (stat: %v); bad configuration must write nothing", dataDir, err)
			}
			t.Logf("stderr: %s", strings.TrimSpace(r.Stderr))
		})
	}
}

// TestStorageErrors covers the formatting checks: an unformatted directory refused at start, a second
// format for another cluster refused, --ignore-formatted, a directory of another node refused at
// start, and storage info.
func TestStorageErrors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	dir1, dir2 := c.logDir(1), c.logDir(2)

	// An unformatted directory is refused at start, naming it and the command to run.
	r := run(t, kraftd, c.nodeArgs(1)...)
	if r.Code != 1 {
		t.Errorf("start on an unformatted directory: exit code %d, want 1\n%v", r.Code, r)
	}
	if !strings.Contains(r.Stderr, dir1) || !strings.Contains(r.Stderr, "kraftctl storage format") {
		t.Errorf("start on an unformatted directory: stderr must name %s and say to run `kraftctl storage format`:\n%s", dir1, r.Stderr)
	}
	t.Logf("unformatted: %s", strings.TrimSpace(r.Stderr))

	// Format for cluster A, then try cluster B.
	clusterA := c.clusterID
	clusterB := strings.TrimSpace(runCtlOK(t, "storage", "random-uuid"))
	if clusterA == clusterB {
		t.Fatalf("storage random-uuid gave %s twice", clusterA)
	}
	out := runCtlOK(t, "storage", "format", "--config", c.conf, "--node-id", "1", "--cluster-id", clusterA)
	t.Logf("format: %s", strings.TrimSpace(out))
	r = run(t, kraftctl, "storage", "format", "--config", c.conf, "--node-id", "1", "--cluster-id", clusterB)
	if r.Code == 0 {
		t.Errorf("formatting %s for cluster %s after %s succeeded\n%v", dir1, clusterB, clusterA, r)
	}
	for _, w := range []string{clusterA, clusterB, dir1} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("re-format for another cluster: stderr does not name %s:\n%s", w, r.Stderr)
		}
	}
	t.Logf("re-format for another cluster: %s", strings.TrimSpace(r.Stderr))

	// The same cluster again: refused without --ignore-formatted, accepted with it.
	r = run(t, kraftctl, "storage", "format", "--config", c.conf, "--node-id", "1", "--cluster-id", clusterA)
	if r.Code == 0 || !strings.Contains(r.Stderr, "--ignore-formatted") {
		t.Errorf("re-format for the same cluster without --ignore-formatted: want a failure that mentions --ignore-formatted\n%v", r)
	}
	runCtlOK(t, "storage", "format", "--config", c.conf, "--node-id", "1", "--cluster-id", clusterA, "--ignore-formatted")

	// storage info shows what the directory belongs to.
	info := runCtlOK(t, "storage", "info", "--config", c.conf, "--node-id", "1")
	t.Logf("storage info:\n%s", info)
	if !strings.Contains(info, clusterA) || !strings.Contains(info, dir1) {
		t.Errorf("storage info does not show cluster id %s and directory %s:\n%s", clusterA, dir1, info)
	}
	if !strings.Contains(info, "node.id=1") {
		t.Errorf("storage info does not show node.id=1:\n%s", info)
	}

	// A directory formatted for node 2, used by node 1, is refused naming both nodes.
	runCtlOK(t, "storage", "format", "--config", c.conf, "--node-id", "2", "--cluster-id", clusterA)
	r = run(t, kraftd, c.nodeArgs(1, "metadata.log.dir="+dir2)...)
	if r.Code != 1 {
		t.Errorf("node 1 on node 2's directory: exit code %d, want 1\n%v", r.Code, r)
	}
	for _, w := range []string{dir2, "node 2", "node 1"} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("node 1 on node 2's directory: stderr does not mention %q:\n%s", w, r.Stderr)
		}
	}
	t.Logf("wrong node: %s", strings.TrimSpace(r.Stderr))

	// The refusals left the directories as they were: node 1 still starts on its own.
	c.start(1)
	c.eventually(pollTimeout, "node 1 to answer DescribeQuorum after the refused starts", []int32{1}, func() (bool, string) {
		_, err := request(c.addrs[1], newDescribeQuorumRequest())
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	c.stop(1)
}
