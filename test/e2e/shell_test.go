package e2e

// `kraftctl shell` against a real cluster (three controllers at metadata.version 1.0-IV0, where only
// the active controller serves the log, and one broker): the shell builds the committed image from the
// metadata log, through the broker (which names the quorum's leader) and through a standby controller
// (which refuses the fetch and names the leader).

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	harness "github.com/kraftgo/kraft/test/cluster"
)

func TestKraftctlShell(t *testing.T) {
	bc := newBrokerCluster(t, 3, 1)
	for _, id := range bc.ids {
		if _, err := harness.RunOK(exitTimeout, kraftctl, "storage", "format", "--config", bc.conf, "--node-id", strconv.Itoa(int(id)),
			"--cluster-id", bc.clusterID, "--release-version", "1.0-IV0"); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range bc.ids {
		bc.start(id)
	}
	q := bc.waitLeader(bc.controllers, nil)
	broker := bc.brokers[0]
	bc.waitBrokerStates(bc.addrs[q.Leader], map[int32]bool{broker: false}, bc.ids)
	brk := bc.addrs[broker]
	standby := bc.others(q.Leader, broker)[0]

	kctlOK(t, "topics", "create", "--topic", "shelled", "--partitions", "2", "--replication-factor", "1",
		"--config", "retention.ms=3600000", "--bootstrap-server", brk)

	// shellSees runs the shell until the topic's partition 0 has a leader; what it printed is returned.
	shellSees := func(t *testing.T, flag, addr string) string {
		t.Helper()
		commands := "ls /image/topics/byName; cat /image/topics/byName/shelled/0; cat /image/configs/topic/shelled/retention.ms; " +
			"cat /image/cluster/brokers/" + strconv.Itoa(int(broker)) + "/registration; cat /image/features/metadata.version; cat /image/provenance"
		r := kctlEventually(t, "the shell to show topic shelled with a leader", func(r runResult) (bool, string) {
			if r.Code != 0 {
				return false, "exit code " + strconv.Itoa(r.Code)
			}
			return strings.Contains(r.Stdout, `"leader": `+strconv.Itoa(int(broker))+",\n"), "no leader yet"
		}, "shell", flag, addr, "-c", commands)
		if r.Stderr != "" {
			t.Errorf("shell %s %s printed on stderr: %q", flag, addr, r.Stderr)
		}
		return r.Stdout
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		if !strings.HasPrefix(out, "shelled\n{\n") {
			t.Errorf("ls /image/topics/byName does not list only shelled:\n%s", out)
		}
		objects := jsonObjects(t, out)
		if len(objects) != 3 {
			t.Fatalf("want 3 JSON objects (partition, registration, provenance) in:\n%s", out)
		}
		part, reg, prov := objects[0], objects[1], objects[2]
		if fmt.Sprint(part["replicas"]) != fmt.Sprintf("[%d]", broker) || fmt.Sprint(part["isr"]) != fmt.Sprintf("[%d]", broker) {
			t.Errorf("partition shelled-0: %v", part)
		}
		if reg["id"] != float64(broker) || reg["fenced"] != false {
			t.Errorf("broker %d's registration: %v", broker, reg)
		}
		if !strings.Contains(out, "\n3600000\n") || !strings.Contains(out, "\n1 (1.0-IV0)\n") {
			t.Errorf("the retention.ms config or metadata.version is missing:\n%s", out)
		}
		// At metadata.version 1.0-IV0 only the active controller serves the log.
		if src, _ := prov["source"].(string); !strings.HasPrefix(src, fmt.Sprintf("controller %d at ", q.Leader)) ||
			prov["clusterId"] != bc.clusterID || prov["offset"] != prov["highWatermark"] {
			t.Errorf("provenance: %v, want the leader %d, cluster %s, and offset = highWatermark", prov, q.Leader, bc.clusterID)
		}
	}

	t.Run("through the broker", func(t *testing.T) {
		check(t, shellSees(t, "--bootstrap-server", brk))
	})
	t.Run("through a standby controller", func(t *testing.T) {
		check(t, shellSees(t, "--bootstrap-controller", bc.addrs[standby]))
	})
	t.Run("errors", func(t *testing.T) {
		kctlFails(t, 1, []string{"shell: cat: /image/topics/byName/shelled/9: no such file or directory"},
			"shell", "--bootstrap-server", brk, "-c", "ls /image/topics/byName/shelled; cat /image/topics/byName/shelled/9")
		kctlFails(t, 2, []string{"--snapshot", "--bootstrap-server"}, "shell", "--bootstrap-server", brk, "--bootstrap-controller", bc.addrs[standby], "-c", "ls")
		// Nothing listens there: the load gives up at the timeout, naming what it tried.
		port := freePorts(t, 1)[0]
		addr := "127.0.0.1:" + strconv.Itoa(port)
		r := run(t, kraftctl, "shell", "--bootstrap-controller", addr, "--timeout", "2s", "-c", "ls")
		lines := nonEmptyLines(r.Stderr)
		if r.Code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "gave up loading the metadata image after 2s") || !strings.Contains(lines[0], addr) {
			t.Errorf("shell against a closed port: %v", r)
		}
	})
}

// jsonObjects parses the multi-line JSON objects the shell printed ("{" to "}" on lines of their own).
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objects []map[string]any
	var cur []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case line == "{":
			cur = []string{line}
		case line == "}" && cur != nil:
			cur = append(cur, line)
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.Join(cur, "\n")), &m); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, strings.Join(cur, "\n"))
			}
			objects = append(objects, m)
			cur = nil
		case cur != nil:
			cur = append(cur, line)
		}
	}
	return objects
}
