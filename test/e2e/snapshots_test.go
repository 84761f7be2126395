package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
)

// Low thresholds make a small cluster behave as a big one does over hours: controllers and brokers
// snapshot every ~100 KB of records, the log keeps a tail of 2 entries before a snapshot, and WAL
// segments are cut every MiB, so the writes below trim the log more than once.
var lowSnapshotSettings = []string{
	"metadata.log.max.record.bytes.between.snapshots=100000",
	"metadata.log.snapshot.catchup.entries=2",
	"metadata.log.segment.bytes=1048576",
}

// After many writes the log is trimmed; a controller stopped during those writes rejoins by snapshot;
// a broker started after the trim catches up from one; a full restart keeps every topic; and the tools
// read the snapshots.
func TestSnapshotsTrimTheLogAndCatchNodesUp(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	lateBroker := int32(5)
	lateAddr := fmt.Sprintf("127.0.0.1:%d", port)
	extra := append([]string{fmt.Sprintf("node.%d.process.roles=broker\nnode.%d.listeners=PLAINTEXT://%s", lateBroker, lateBroker, lateAddr)}, lowSnapshotSettings...)
	bc := newBrokerCluster(t, 3, 1, extra...)
	bc.formatAndStartAll()
	bc.appendOK(bc.controllers)
	broker := bc.brokers[0]
	bc.waitBrokerStates(bc.addrs[bc.controllers[0]], map[int32]bool{broker: false}, bc.ids)

	// Controller 3 stops before the writes; 1 and 2 still form a quorum.
	lagging := bc.controllers[2]
	bc.stop(lagging)
	live := bc.others(lagging)

	// About 2.5 MB of records: 300 topics of 200 partitions, in batches of 20 topics, so the WAL is cut twice.
	adm := newAdmin(t, bc.addrs[broker])
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("snap-%03d", i))
	}
	for i := 0; i < len(names); i += 20 {
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		created, err := adm.CreateTopics(ctx, 200, 1, nil, names[i:i+20]...)
		cancel()
		if err != nil {
			t.Fatalf("CreateTopics: %v", err)
		}
		for name, r := range created {
			if r.Err != nil {
				t.Fatalf("topic %s: %v (%s)", name, r.Err, r.ErrMessage)
			}
		}
	}
	wantPartitions := len(names) * 200

	// Every live node snapshotted, and the controllers released WAL segments from the start of the log.
	for _, id := range live {
		bc.eventually(pollTimeout, fmt.Sprintf("node %d holds snapshots", id), live, func() (bool, string) {
			snaps, err := snapshot.List(metadatalog.SnapshotDir(bc.logDir(id)))
			return err == nil && len(snaps) > 0, fmt.Sprintf("%d snapshots, %v", len(snaps), err)
		})
	}
	for _, id := range bc.controllers[:2] {
		bc.eventually(pollTimeout, fmt.Sprintf("controller %d releases the log's first WAL segment", id), live, func() (bool, string) {
			segs, _ := filepath.Glob(filepath.Join(bc.walDir(id), "*.wal"))
			return len(segs) > 0 && !strings.HasPrefix(filepath.Base(segs[0]), "0000000000000000-0000000000000000"), fmt.Sprint(segs)
		})
	}

	// The stopped controller rejoins: its log is below the leader's start, so it installs a snapshot.
	bc.start(lagging)
	bc.eventually(pollTimeout, "the stopped controller installs a snapshot and catches up", bc.ids, func() (bool, string) {
		log, _ := os.ReadFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", lagging)))
		if !strings.Contains(string(log), "installed the leader's snapshot") || !strings.Contains(string(log), "rewritten from a snapshot installed from the leader") {
			return false, "no snapshot installed (and the WAL rewritten from it) yet"
		}
		q, err := describeQuorum(bc.addrs[bc.controllers[0]])
		if err != nil {
			return false, err.Error()
		}
		v, ok := q.voter(lagging)
		return ok && v.LogEndOffset >= q.HW, q.String()
	})

	// A broker started after the trim catches up from a snapshot and serves every topic.
	bc.format(lateBroker)
	bc.start(lateBroker)
	waitTopics := func(addr string, who string, live []int32) {
		bc.eventually(pollTimeout, who+" shows every partition", live, func() (bool, string) {
			v, err := topicsMetadata(addr)
			if err != nil {
				return false, err.Error()
			}
			return len(v) == wantPartitions, fmt.Sprintf("%d of %d partitions", len(v), wantPartitions)
		})
	}
	waitTopics(lateAddr, "the late broker", append(bc.ids, lateBroker))
	if log, _ := os.ReadFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", lateBroker))); !strings.Contains(string(log), "caught up from snapshot") {
		t.Fatalf("the late broker did not catch up from a snapshot; its log:\n%s", tailFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", lateBroker)), 30))
	}

	// A full restart keeps every topic: controllers load their snapshots and replay the tail.
	for _, id := range []int32{broker, lateBroker} {
		bc.stop(id)
	}
	for _, id := range bc.controllers {
		bc.stop(id)
	}
	for _, id := range append(bc.controllers, broker) {
		bc.start(id)
	}
	waitTopics(bc.addrs[broker], "the restarted broker", bc.ids)
	for _, id := range bc.controllers {
		if log, _ := os.ReadFile(filepath.Join(bc.dir, fmt.Sprintf("node-%d.log", id))); strings.Count(string(log), "loaded snapshot") == 0 {
			t.Errorf("controller %d did not start from a snapshot", id)
		}
	}

	// The tools read a snapshot: log dump prints its records, the shell lists its topics.
	snaps, err := snapshot.List(metadatalog.SnapshotDir(bc.logDir(bc.controllers[0])))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot to read: %v", err)
	}
	newest := snaps[len(snaps)-1].Path
	dump := runCtlOK(t, "log", "dump", newest)
	if !strings.Contains(dump, `"type":"TopicRecord"`) || !strings.Contains(dump, `"type":"PartitionRecord"`) {
		t.Fatalf("log dump of %s shows no topic or partition records:\n%.500s", newest, dump)
	}
	ls := nonEmptyLines(runCtlOK(t, "shell", "--snapshot", newest, "-c", "ls /image/topics/byName"))
	if len(ls) < len(names)/2 || !containsString(ls, "snap-000") {
		t.Fatalf("shell ls /image/topics/byName on %s: %d names (%v...), want the topics", newest, len(ls), ls[:min(3, len(ls))])
	}
	// Against the live cluster the shell reads the log as a broker does: the log's start is gone, so it
	// downloads the snapshot first.
	shellOut := runCtlOK(t, "shell", "--bootstrap-server", bc.addrs[broker], "-c", "ls /image/topics/byName; cat /image/provenance")
	if !strings.Contains(shellOut, "snap-299") || !strings.Contains(shellOut, `"snapshot"`) {
		t.Fatalf("shell against the cluster lists no snap-299 or started from no snapshot:\n%.800s", shellOut)
	}
}
