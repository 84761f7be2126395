//go:build linux

package bench

// Snapshots at a million partitions, against real kraftd processes: the snapshot file (write time, load
// time, size), a standby controller's restart from its snapshot against the same restart replaying the
// whole log, and single appends while snapshots are written against appends while none is. Two clusters
// of three controllers hold the same million side by side: "snapshots", whose controllers snapshot
// after every few KiB of log (so one is being written whenever anything is written), and "full log",
// whose threshold is never reached.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	harness "github.com/kraftgo/kraft/test/cluster"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// snapBusyThreshold is metadata.log.max.record.bytes.between.snapshots on the "snapshots" cluster:
	// about 80 single-record appends, far less than what arrives while one snapshot of a million
	// partitions is written, so that under appends the next snapshot starts as soon as one is done.
	snapBusyThreshold = 4 << 10

	snapFileRounds = 3 // loads and writes of the snapshot file, in-process
	snapRestarts   = 3 // restarts of each cluster's standby, alternated between the clusters

	// Appends: snapAppendRounds rounds, each one window on the quiet cluster and then one on the busy
	// one, of snapAppendWarmup + snapAppendWrites sequential UpdateFeatures. A busy window lasts about
	// two snapshots of the million, so that it covers whole write cycles, fsyncs included.
	snapAppendRounds = 3
	snapAppendWarmup = 50
	snapAppendWrites = 1000

	// markerFirstID: while a standby is down for a restart, a broker with the next id from here is
	// registered; the restart is over once the standby's own image holds it.
	markerFirstID = 9100

	restartTarget = 5 * time.Second // DESIGN.md: controller restart at 1,000,000 partitions
)

// snapCluster is one of the two clusters: three kraftd controllers (a millionRun without brokers) and
// the placement brokers CreateTopics places replicas on.
type snapCluster struct {
	name     string
	setting  string // the snapshot threshold line of its cluster file
	run      *millionRun
	place    *placement
	placeCl  *cluster // only for startPlacement's clients
	standby  int32    // the controller that is restarted
	creation time.Duration
	// headMark is the newest snapshot every controller of the "snapshots" cluster holds once the
	// million is in (zero for "full log").
	headMark metadatalog.SnapshotMark
	headTook []time.Duration // what each controller took to write it, from their logs
}

type restartFigures struct {
	cluster   string
	round     int
	stopped   time.Duration // SIGTERM → exited
	loadedAt  time.Duration // start → "loaded snapshot" logged (0: none)
	loadTook  time.Duration // that line's took=
	startedAt time.Duration // start → "node started" logged: the log is open and the port serves
	answered  time.Duration // start → its first answer (DescribeCluster)
	caughtUp  time.Duration // start → its image holds the marker written while it was down
	cpu       time.Duration // the restarted process's CPU until then
	peersCPU  time.Duration // the cluster's two other controllers meanwhile
	otherCPU  time.Duration // the rest of the machine meanwhile (the other cluster included)
	fromOff   uint64        // snapshot offset it started from (0: the beginning)
	hwm       int64         // the leader's high watermark once the marker committed
	leo       int64         // the standby's log end offset at the leader once caught up
	walBytes  int64         // the standby's WAL directory on disk
}

type appendWindow struct {
	cluster    string
	round      int
	lat        []time.Duration
	sent       []time.Time // when each timed append was sent
	start, end time.Time
	coverage   float64 // share of the window during which the active controller was writing a snapshot
	written    int     // snapshots the active controller finished inside the window
	leaderCPU  float64 // % of one core
	othersCPU  float64 // the two standbys together, % of one core
	otherCPU   float64 // the rest of the machine, the other cluster included, % of one core
	leaderGCs  int     // collections the active controller made in the window (its gctrace)
	// leaderWait is the time the active controller's threads spent runnable but waiting for a CPU
	// (/proc/<pid>/task/*/schedstat) over the window.
	leaderWait time.Duration
}

type snapshotRun struct {
	dir, bin string
	started  time.Time
	loadAvg  string
	busy     *snapCluster // "snapshots"
	quiet    *snapCluster // "full log"

	// The snapshot file, measured in-process.
	filePath   string
	fileSize   int64
	fileParts  int
	fileRecs   uint64
	loads      []time.Duration
	loadGC     []time.Duration // GC CPU during each load
	loadCycles []int           // collections during each load
	writes     []time.Duration
	profileDir string
	// The WAL's disk floor, idle and while snapshots are written (syncWrites of them).
	syncIdle, syncBusy latencies
	syncWrites         int

	restarts []restartFigures
	appends  []appendWindow
	busyTook []time.Duration // snapshots the busy leader wrote during its append windows
}

// BenchmarkSnapshots starts two clusters of three controllers, "snapshots" and "full log", creates the
// million (10,000 topics × 100 partitions, RF 3) on each as BenchmarkMillionPartitions does, then:
// loads and writes the "snapshots" cluster's newest snapshot in-process; restarts a standby controller
// of each cluster in turn, 3 times each; and times single appends to each active controller in turn,
// 3 windows each. It runs once; run it with -benchtime 1x (make bench does).
func BenchmarkSnapshots(b *testing.B) {
	r := &snapshotRun{dir: dataDir(b), bin: b.TempDir(), started: time.Now(), loadAvg: loadAverage(),
		profileDir: os.Getenv("KRAFT_BENCH_PROFILE_DIR")}
	b.Cleanup(r.stopAll)
	if err := buildBinaries(r.bin); err != nil {
		b.Fatal(err)
	}
	var err error
	if r.busy, err = r.startCluster("snapshots", fmt.Sprintf("%s=%d", keySnapshotMaxBytes, snapBusyThreshold)); err != nil {
		b.Fatal(err)
	}
	if r.quiet, err = r.startCluster("full log", fmt.Sprintf("%s=%d", keySnapshotMaxBytes, int64(math.MaxInt64))); err != nil {
		b.Fatalf("%v\n%s", err, r.busy.run.tails())
	}
	if !b.Run("create", func(b *testing.B) {
		for _, c := range []*snapCluster{r.quiet, r.busy} {
			if err := r.create(c); err != nil {
				b.Fatalf("%s: %v\n%s", c.name, err, c.run.tails())
			}
		}
		if err := r.snapshotHead(r.busy); err != nil {
			b.Fatalf("%v\n%s", err, r.busy.run.tails())
		}
		if err := r.healthy(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.quiet.creation.Seconds(), "full-log-s")
		b.ReportMetric(r.busy.creation.Seconds(), "snapshots-s")
	}) {
		return
	}
	if !b.Run("file", func(b *testing.B) {
		err := r.measureFile()
		if err == nil {
			err = r.healthy()
		}
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(median(r.writes).Seconds(), "write-s")
		b.ReportMetric(median(r.loads).Seconds(), "load-s")
		b.ReportMetric(float64(r.fileSize)/(1<<20), "MiB")
	}) {
		return
	}
	if !b.Run("restart", func(b *testing.B) {
		for i := range snapRestarts {
			for _, c := range []*snapCluster{r.busy, r.quiet} {
				f, err := r.restart(c, i)
				if err == nil {
					err = r.healthy()
				}
				if err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, c.run.tails())
				}
				r.restarts = append(r.restarts, f)
			}
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.restartMedian("snapshots", func(f restartFigures) time.Duration { return f.caughtUp }).Seconds(), "snapshot-s")
		b.ReportMetric(r.restartMedian("full log", func(f restartFigures) time.Duration { return f.caughtUp }).Seconds(), "full-log-s")
	}) {
		return
	}
	if !b.Run("append", func(b *testing.B) {
		for i := range snapAppendRounds {
			for _, c := range []*snapCluster{r.quiet, r.busy} {
				w, err := r.appendWindow(c, i)
				if err == nil {
					err = r.healthy()
				}
				if err != nil {
					b.Fatalf("%s: %v\n%s", c.name, err, c.run.tails())
				}
				r.appends = append(r.appends, w)
			}
		}
		if err := r.snapshotOverlap(); err != nil {
			b.Fatal(err)
		}
		quiet, busy := r.appendLatencies("full log"), r.appendLatencies("snapshots")
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(ms(quiet.p99), "quiet-p99-ms")
		b.ReportMetric(ms(busy.p99), "busy-p99-ms")
	}) {
		return
	}
	if err := r.healthy(); err != nil {
		b.Fatal(err)
	}
	r.stopAll()
	var sb strings.Builder
	r.print(&sb)
	fmt.Print(sb.String())
}

// healthy fails once either cluster's active controller has changed or a placement broker's heartbeat
// has failed: either would fence the placement brokers and move a million leaders, and every later
// figure would measure that instead.
func (r *snapshotRun) healthy() error {
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		if err := c.place.failed(); err != nil {
			return fmt.Errorf("%s: a placement broker's heartbeat failed: %w\n%s", c.name, err, r.elections())
		}
		if _, err := r.quorum(c); err != nil {
			return fmt.Errorf("%s: %w\n%s", c.name, err, r.elections())
		}
	}
	return nil
}

// elections lists every node's "resigned" and "became active" lines, for failure messages.
func (r *snapshotRun) elections() string {
	var sb strings.Builder
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		for _, id := range c.run.file.Controllers {
			for _, l := range logLines(c.run.procs[id].logPath, r.started, "became active controller", "resigned as active controller", "metadata quorum leader changed") {
				fmt.Fprintf(&sb, "%s %d, %.2f s into the run:%s\n", c.name, id, l.at.Sub(r.started).Seconds(), l.line)
			}
		}
	}
	return sb.String()
}

// keySnapshotMaxBytes is config.KeySnapshotMaxBytes (cmd/internal is out of this package's reach).
const keySnapshotMaxBytes = "metadata.log.max.record.bytes.between.snapshots"

// startCluster writes a cluster file with three controllers and setting, formats and starts them, and
// registers the placement brokers at the active controller.
func (r *snapshotRun) startCluster(name, setting string) (*snapCluster, error) {
	dir := filepath.Join(r.dir, strings.ReplaceAll(name, " ", "-"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &millionRun{dir: dir, bin: r.bin, procs: map[int32]*mproc{}, clients: map[string]*kgo.Client{}, started: time.Now()}
	c := &snapCluster{name: name, setting: setting, run: m}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         dir,
		Comment:     "written by BenchmarkSnapshots: cluster " + name,
		Controllers: millionControllers,
		Settings:    []string{setting},
	})
	if err != nil {
		return nil, err
	}
	m.file, m.conf = f, f.Path
	out, err := harness.RunOK(30*time.Second, m.ctl(), "storage", "random-uuid")
	if err != nil {
		return nil, err
	}
	m.clusterID = strings.TrimSpace(out)
	for _, id := range f.Controllers {
		if err := harness.Format(m.ctl(), 30*time.Second, m.conf, id, m.clusterID); err != nil {
			return nil, err
		}
		if err := m.startNode(id); err != nil {
			return nil, err
		}
	}
	if m.leader, err = m.awaitLeader(60 * time.Second); err != nil {
		return c, fmt.Errorf("%w\n%s", err, m.tails())
	}
	for _, id := range f.Controllers {
		if id != m.leader {
			c.standby = id // the last standby
		}
	}
	c.placeCl = &cluster{clusterID: m.clusterID, clients: map[string]*kgo.Client{}}
	if c.place, err = startPlacement(c.placeCl, f.Addrs[m.leader]); err != nil {
		return c, fmt.Errorf("%w\n%s", err, m.tails())
	}
	return c, nil
}

func (r *snapshotRun) stopAll() {
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		if c == nil {
			continue
		}
		if c.place != nil {
			c.place.stop()
			c.place = nil
		}
		if c.placeCl != nil {
			c.placeCl.stop() // closes its clients; it has no processes
		}
		c.run.shutdown()
	}
}

// create makes the million on c, as BenchmarkMillionPartitions does (4 clients, CreateTopics of 100
// topics × 100 partitions straight to the active controller), and waits until no controller of c is
// writing a snapshot.
func (r *snapshotRun) create(c *snapCluster) error {
	if err := c.run.createMillion(); err != nil {
		return err
	}
	c.creation = c.run.create.acked
	return r.awaitSnapshotsIdle(c, 120*time.Second)
}

// snapshotHead makes every controller of c hold a snapshot of everything committed so far: the
// creation has left more than the threshold since their last snapshot started, so the next write starts
// one; small writes follow until every controller has finished one at or past the high watermark.
func (r *snapshotRun) snapshotHead(c *snapCluster) error {
	q, err := r.quorum(c)
	if err != nil {
		return err
	}
	target := uint64(q.hwm)
	cl, err := c.run.client(c.run.file.Addrs[c.run.leader])
	if err != nil {
		return err
	}
	since := time.Now()
	deadline := since.Add(120 * time.Second)
	for time.Now().Before(deadline) {
		if err := r.awaitSnapshotsIdle(c, 120*time.Second); err != nil {
			return err
		}
		var marks []metadatalog.SnapshotMark
		for _, id := range c.run.file.Controllers {
			s, err := snapshot.List(metadatalog.SnapshotDir(c.nodeDir(id)))
			if err != nil {
				return err
			}
			if len(s) > 0 && s[len(s)-1].Offset >= target {
				marks = append(marks, metadatalog.SnapshotMark{Offset: s[len(s)-1].Offset, Epoch: s[len(s)-1].Epoch})
			}
		}
		if len(marks) == len(c.run.file.Controllers) {
			c.headMark = slices.MinFunc(marks, func(a, b metadatalog.SnapshotMark) int { return cmp.Compare(a.Offset, b.Offset) })
			for _, id := range c.run.file.Controllers {
				// The first snapshot at or past the target may have started before since, with the
				// creation's last batch.
				for _, e := range snapshotEvents(c.run.procs[id].logPath, c.run.started) {
					if e.done && e.offset >= target {
						c.headTook = append(c.headTook, e.took)
						break
					}
				}
			}
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = updateFeatures(ctx, cl, newUpdateFeatures())
		cancel()
		if err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond) // let the write reach the standbys' snapshotters too
	}
	return fmt.Errorf("no snapshot at offset %d or later on every controller within 120 s", target)
}

func (c *snapCluster) nodeDir(id int32) string {
	return filepath.Join(c.run.dir, fmt.Sprintf("node-%d", id))
}

// quorumView is what the active controller's DescribeQuorum says: the high watermark and each voter's
// log end offset.
type quorumView struct {
	hwm int64
	leo map[int32]int64
}

// quorum asks c's active controller for its DescribeQuorum, and fails if it no longer leads.
func (r *snapshotRun) quorum(c *snapCluster) (quorumView, error) {
	out := quorumView{leo: map[int32]int64{}}
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	t.Partitions = append(t.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, t)
	resp, err := c.run.request(c.run.file.Addrs[c.run.leader], 5*time.Second, req)
	if err != nil {
		return out, err
	}
	q := resp.(*kmsg.DescribeQuorumResponse)
	if len(q.Topics) != 1 || len(q.Topics[0].Partitions) != 1 {
		return out, errors.New("DescribeQuorum answered without the metadata partition")
	}
	p := q.Topics[0].Partitions[0]
	if p.LeaderID != c.run.leader {
		return out, fmt.Errorf("the leader moved from %d to %d", c.run.leader, p.LeaderID)
	}
	out.hwm = p.HighWatermark
	for _, v := range p.CurrentVoters {
		out.leo[v.ReplicaID] = v.LogEndOffset
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// The controllers' logs

// snapEvent is one snapshot a controller's log shows: started ("writing a snapshot"), and finished
// ("snapshot written", with what it took) unless done is false.
type snapEvent struct {
	offset      uint64
	start, end  time.Time
	took        time.Duration
	done        bool
	failedWrite bool
}

// snapshotEvents lists the snapshots a node's log shows starting at or after since, in order.
func snapshotEvents(logPath string, since time.Time) []snapEvent {
	var out []snapEvent
	for _, l := range logLines(logPath, since, "writing a snapshot", "snapshot written", "snapshot failed; serving from the log and retrying later") {
		switch l.msg {
		case "writing a snapshot":
			var off uint64
			fmt.Sscan(logField(l.line, "offset"), &off)
			out = append(out, snapEvent{offset: off, start: l.at})
		default:
			if len(out) == 0 || out[len(out)-1].done {
				continue // finished a write that started before since
			}
			e := &out[len(out)-1]
			e.end, e.done, e.failedWrite = l.at, true, l.msg != "snapshot written"
			e.took, _ = time.ParseDuration(logField(l.line, "took"))
		}
	}
	return out
}

type logLine struct {
	at        time.Time
	msg, line string
}

// logLines are a node's log lines at or after since whose message is one of msgs.
func logLines(logPath string, since time.Time, msgs ...string) []logLine {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	var out []logLine
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "time=") {
			continue
		}
		line = " " + line // logField wants a space before each key, and time comes first
		msg := logField(line, "msg")
		if !slices.Contains(msgs, msg) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, logField(line, "time"))
		if err != nil || at.Before(since.Truncate(time.Millisecond)) {
			continue
		}
		out = append(out, logLine{at: at, msg: msg, line: line})
	}
	return out
}

// awaitSnapshotsIdle waits until no controller of c has a snapshot started and not finished.
func (r *snapshotRun) awaitSnapshotsIdle(c *snapCluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		busy := int32(0)
		for _, id := range c.run.file.Controllers {
			ev := snapshotEvents(c.run.procs[id].logPath, c.run.started)
			if len(ev) > 0 && !ev[len(ev)-1].done {
				busy = id
			}
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("controller %d still writing a snapshot after %v", busy, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitCalm waits until the six controllers together use less than a tenth of a core over half a
// second, so that a measurement does not share the machine with what the step before left running (a
// controller collecting the garbage of its last snapshot, say).
func (r *snapshotRun) awaitCalm() error {
	const window, limit = 500 * time.Millisecond, 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var used time.Duration
		before := []map[int32]time.Duration{r.busy.run.cpuNow(), r.quiet.run.cpuNow()}
		time.Sleep(window)
		for i, c := range []*snapCluster{r.busy, r.quiet} {
			for _, d := range c.run.cpuSince(before[i]) {
				used += d
			}
		}
		if used < limit {
			return nil
		}
	}
	return errors.New("the controllers did not settle within 30 s")
}

// ---------------------------------------------------------------------------
// The snapshot file

// measureFile copies the newest snapshot of the "snapshots" cluster's standby beside the clusters,
// then loads it (ReadSnapshotImage) and writes the image it gives (WriteSnapshot, with its fsyncs)
// snapFileRounds times each, in this process, with a collection before each.
func (r *snapshotRun) measureFile() error {
	c := r.busy
	snaps, err := snapshot.List(metadatalog.SnapshotDir(c.nodeDir(c.standby)))
	if err != nil {
		return err
	}
	if len(snaps) == 0 {
		return fmt.Errorf("controller %d holds no snapshot", c.standby)
	}
	src := snaps[len(snaps)-1]
	work := filepath.Join(r.dir, "snapshot-file")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(work)
	r.filePath = filepath.Join(work, filepath.Base(src.Path))
	if err := copyFile(src.Path, r.filePath); err != nil {
		return err
	}
	r.fileSize = src.Size
	var img *metadatalog.Image
	var h snapshot.Header
	for i := range snapFileRounds {
		img = nil
		runtime.GC()
		gc0, cycles0 := gcStats()
		t0 := time.Now()
		img, h, err = metadatalog.ReadSnapshotImage(r.filePath)
		if err != nil {
			return err
		}
		r.loads = append(r.loads, time.Since(t0))
		gc1, cycles1 := gcStats()
		r.loadGC = append(r.loadGC, gc1-gc0)
		r.loadCycles = append(r.loadCycles, int(cycles1-cycles0))
		if i == 0 {
			if n := img.PartitionCount(); n < millionTopics*millionPerTopic {
				return fmt.Errorf("the snapshot holds %d partitions", n)
			}
			r.fileParts, r.fileRecs = img.PartitionCount(), h.RecordCount
		}
	}
	for i := range snapFileRounds {
		runtime.GC()
		out := filepath.Join(work, fmt.Sprintf("write-%d", i))
		t0 := time.Now()
		_, path, err := metadatalog.WriteSnapshot(out, img, h.ClusterID, h.Voters, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		r.writes = append(r.writes, time.Since(t0))
		os.Remove(path)
	}
	if err := r.syncsBesideWrites(img, h, work); err != nil {
		return err
	}
	if r.profileDir != "" {
		err := r.profile(img, h)
		img = nil
		if err != nil {
			return err
		}
	}
	img = nil
	debug.FreeOSMemory()
	return nil
}

// syncsBesideWrites measures the WAL's disk floor (measureFdatasync: 4 KiB + fdatasync into a
// preallocated file) on an idle disk, then again while this process writes the image as a snapshot
// over and over, as a controller does: what a snapshot costs an append through the disk alone.
func (r *snapshotRun) syncsBesideWrites(img *metadatalog.Image, h snapshot.Header, work string) error {
	idle, err := measureFdatasync(work)
	if err != nil {
		return err
	}
	r.syncIdle = summarize(idle)
	stop := make(chan struct{})
	done := make(chan error, 1)
	var written atomic.Int32
	go func() {
		out := filepath.Join(work, "beside-syncs")
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			_, path, err := metadatalog.WriteSnapshot(out, img, h.ClusterID, h.Voters, time.Now().UnixMilli())
			if err != nil {
				done <- err
				return
			}
			written.Add(1)
			os.Remove(path)
		}
	}()
	// Rounds of measureFdatasync until snapFileRounds snapshots have been written beside them.
	var busy []time.Duration
	for err == nil && written.Load() < snapFileRounds {
		var d []time.Duration
		d, err = measureFdatasync(work)
		busy = append(busy, d...)
	}
	close(stop)
	if werr := <-done; err == nil {
		err = werr
	}
	r.syncBusy, r.syncWrites = summarize(busy), int(written.Load())
	return err
}

// gcStats is the CPU this process has spent collecting so far and the number of collections.
func gcStats() (time.Duration, uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	var cpu time.Duration
	if s[0].Value.Kind() == metrics.KindFloat64 {
		cpu = time.Duration(s[0].Value.Float64() * float64(time.Second))
	}
	var cycles uint64
	if s[1].Value.Kind() == metrics.KindUint64 {
		cycles = s[1].Value.Uint64()
	}
	return cpu, cycles
}

// profile writes CPU profiles of one more write and one more load into KRAFT_BENCH_PROFILE_DIR. It
// drops the caller's last reference to img.
func (r *snapshotRun) profile(img *metadatalog.Image, h snapshot.Header) error {
	run := func(name string, fn func() error) error {
		f, err := os.Create(filepath.Join(r.profileDir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		runtime.GC()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		err = fn()
		pprof.StopCPUProfile()
		return err
	}
	out := filepath.Join(filepath.Dir(r.filePath), "write-profile")
	if err := run("snapshot-write.pprof", func() error {
		_, _, err := metadatalog.WriteSnapshot(out, img, h.ClusterID, h.Voters, time.Now().UnixMilli())
		return err
	}); err != nil {
		return err
	}
	// The load starts from a small heap, as in a controller that has just started.
	img = nil
	return run("snapshot-load.pprof", func() error {
		_, _, err := metadatalog.ReadSnapshotImage(r.filePath)
		return err
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ---------------------------------------------------------------------------
// Restart

// restart stops c's standby with SIGTERM, registers a marker broker at the active controller while it
// is down, starts it again and times, from the start of the process: the snapshot loaded, the node
// started, its first answer, and the marker in its own image (DescribeCluster with fenced brokers),
// which it can only hold once it has applied everything before it.
func (r *snapshotRun) restart(c *snapCluster, round int) (restartFigures, error) {
	f := restartFigures{cluster: c.name, round: round}
	if err := r.awaitSnapshotsIdle(c, 60*time.Second); err != nil {
		return f, err
	}
	p := c.run.procs[c.standby]
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return f, err
	}
	select {
	case <-p.done:
		f.stopped = time.Since(t0)
	case <-time.After(30 * time.Second):
		return f, fmt.Errorf("controller %d still running 30 s after SIGTERM", c.standby)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return f, fmt.Errorf("controller %d exited with code %d after SIGTERM", c.standby, code)
	}
	marker := int32(markerFirstID + round)
	cl, err := quorumClient(c.run.file.Addrs[c.run.leader])
	if err != nil {
		return f, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err = registerBroker(ctx, cl, c.run.clusterID, marker)
	cancel()
	cl.Close()
	if err != nil {
		return f, err
	}
	q, err := r.quorum(c)
	if err != nil {
		return f, err
	}
	f.hwm = q.hwm
	f.walBytes = dirBytes(metadatalog.WALDir(c.nodeDir(c.standby)))

	addr := c.run.file.Addrs[c.standby]
	probe, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return f, err
	}
	defer probe.Close()
	if err := r.awaitCalm(); err != nil {
		return f, err
	}
	peers0 := c.run.cpuNow()
	self0, busy0 := selfCPU(), machineBusy()
	start := time.Now()
	if err := c.run.startNode(c.standby); err != nil {
		return f, err
	}
	p = c.run.procs[c.standby]
	deadline := start.Add(120 * time.Second)
	for f.caughtUp == 0 {
		if time.Now().After(deadline) {
			return f, fmt.Errorf("controller %d did not show broker %d within 120 s of its start", c.standby, marker)
		}
		if !p.running() {
			return f, fmt.Errorf("controller %d exited during its restart", c.standby)
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version, req.EndpointType, req.IncludeFencedBrokers = 2, 1, true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := probe.SeedBrokers()[0].Request(ctx, req)
		cancel()
		at := time.Since(start)
		if err != nil {
			time.Sleep(pollEvery)
			continue
		}
		if f.answered == 0 {
			f.answered = at
		}
		for _, br := range resp.(*kmsg.DescribeClusterResponse).Brokers {
			if br.NodeID == marker {
				f.caughtUp = at
			}
		}
		if f.caughtUp == 0 {
			time.Sleep(pollEvery)
		}
	}
	f.cpu, _ = cpuTime(p.cmd.Process.Pid)
	for id, d := range c.run.cpuSince(peers0) {
		if id != c.standby {
			f.peersCPU += d
		}
	}
	f.otherCPU = max(0, machineBusy()-busy0-(selfCPU()-self0)-f.cpu-f.peersCPU)
	// The leader learns the standby's log end from its acknowledgement, which may trail the standby's
	// applying an entry the leader had already committed.
	for until := time.Now().Add(5 * time.Second); ; time.Sleep(pollEvery) {
		if q, err = r.quorum(c); err != nil {
			return f, err
		}
		if f.leo = q.leo[c.standby]; f.leo >= f.hwm {
			break
		}
		if time.Now().After(until) {
			return f, fmt.Errorf("controller %d shows broker %d, but the leader has its log end at %d, below %d", c.standby, marker, f.leo, f.hwm)
		}
	}
	for _, l := range logLines(p.logPath, start, "loaded snapshot", "node started") {
		switch {
		case l.msg == "loaded snapshot" && f.loadedAt == 0:
			f.loadedAt = l.at.Sub(start)
			f.loadTook, _ = time.ParseDuration(logField(l.line, "took"))
			fmt.Sscan(logField(l.line, "offset"), &f.fromOff)
		case l.msg == "node started" && f.startedAt == 0:
			f.startedAt = l.at.Sub(start)
		}
	}
	return f, nil
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func (r *snapshotRun) restartMedian(cluster string, field func(restartFigures) time.Duration) time.Duration {
	var d []time.Duration
	for _, f := range r.restarts {
		if f.cluster == cluster {
			d = append(d, field(f))
		}
	}
	return median(d)
}

// median is the middle value (the lower middle of an even count).
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// ---------------------------------------------------------------------------
// Appends

// appendWindow sends snapAppendWarmup + snapAppendWrites UpdateFeatures, one at a time, to c's active
// controller. Before a window on "full log", the "snapshots" cluster must have finished its snapshots:
// the two clusters share the machine's two cores.
func (r *snapshotRun) appendWindow(c *snapCluster, round int) (appendWindow, error) {
	w := appendWindow{cluster: c.name, round: round}
	if err := r.awaitSnapshotsIdle(r.busy, 60*time.Second); err != nil {
		return w, err
	}
	if err := r.awaitCalm(); err != nil {
		return w, err
	}
	leaderPid := c.run.procs[c.run.leader].cmd.Process.Pid
	gc0, _ := lastGC(c.run.procs[c.run.leader].logPath)
	wait0 := runqueueWait(leaderPid)
	cpu0, self0, busy0 := c.run.cpuNow(), selfCPU(), machineBusy()
	w.start = time.Now()
	op := func(ctx context.Context, cl *kgo.Client, i, seq int) error {
		if seq >= snapAppendWarmup {
			w.sent = append(w.sent, time.Now())
		}
		return appendOp(ctx, cl, i, seq)
	}
	lat, err := sequentialWrites(c.run.file.Addrs[c.run.leader], snapAppendWarmup, snapAppendWrites, op)
	w.end = time.Now()
	if err != nil {
		return w, err
	}
	w.lat = lat
	w.leaderWait = runqueueWait(leaderPid) - wait0
	cpu := c.run.cpuSince(cpu0)
	el := w.end.Sub(w.start).Seconds()
	other := machineBusy() - busy0 - (selfCPU() - self0)
	for id, d := range cpu {
		other -= d
		if id == c.run.leader {
			w.leaderCPU = 100 * d.Seconds() / el
		} else {
			w.othersCPU += 100 * d.Seconds() / el
		}
	}
	w.otherCPU = 100 * max(0, other).Seconds() / el
	gc1, _ := lastGC(c.run.procs[c.run.leader].logPath)
	w.leaderGCs = gc1 - gc0
	return w, nil
}

// runqueueWait is the time the threads of process pid have spent runnable, waiting for a CPU (the
// second field of each /proc/<pid>/task/<tid>/schedstat, in nanoseconds).
func runqueueWait(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		var run, wait int64
		if _, err := fmt.Sscan(string(b), &run, &wait); err == nil {
			total += time.Duration(wait)
		}
	}
	return total
}

// snapshotOverlap works out, for every window, the share of it during which each cluster's active
// controller was writing a snapshot, from its log, once those writes have finished.
func (r *snapshotRun) snapshotOverlap() error {
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		if err := r.awaitSnapshotsIdle(c, 60*time.Second); err != nil {
			return err
		}
	}
	for i := range r.appends {
		w := &r.appends[i]
		c := r.quiet
		if w.cluster == r.busy.name {
			c = r.busy
		}
		var covered time.Duration
		for _, e := range snapshotEvents(c.run.procs[c.run.leader].logPath, w.start) {
			if e.start.After(w.end) {
				break
			}
			end := e.end
			if !e.done {
				end = w.end
			}
			from, to := e.start, end
			if from.Before(w.start) {
				from = w.start
			}
			if to.After(w.end) {
				to = w.end
			}
			covered += max(0, to.Sub(from))
			if e.done && !e.end.After(w.end) {
				w.written++
				if c == r.busy {
					r.busyTook = append(r.busyTook, e.took)
				}
			}
		}
		w.coverage = covered.Seconds() / w.end.Sub(w.start).Seconds()
	}
	return nil
}

// slowAppends relates the slow appends of the "snapshots" windows to the ends of that cluster's
// snapshot writes, when the file is fsynced (and the log then compacted): how many appends took over
// slowAppend, how many of those overlapped the last fsyncWindow of some controller's write, and what
// share of the windows' time those stretches cover (what chance alone would give).
func (r *snapshotRun) slowAppends() (slow, near int, chance float64) {
	var ends []time.Time
	for _, id := range r.busy.run.file.Controllers {
		for _, e := range snapshotEvents(r.busy.run.procs[id].logPath, r.busy.run.started) {
			if e.done {
				ends = append(ends, e.end)
			}
		}
	}
	// The stretch [end − fsyncWindow, end + 1 ms] of each write, the log's millisecond included.
	var covered, total time.Duration
	for _, w := range r.appends {
		if w.cluster != r.busy.name {
			continue
		}
		total += w.end.Sub(w.start)
		// Time in the window within some stretch, by 1 ms steps.
		for t := w.start; t.Before(w.end); t = t.Add(time.Millisecond) {
			for _, e := range ends {
				if !t.Before(e.Add(-fsyncWindow)) && t.Before(e.Add(time.Millisecond)) {
					covered += time.Millisecond
					break
				}
			}
		}
		for i, d := range w.lat {
			if d <= slowAppend {
				continue
			}
			slow++
			from, to := w.sent[i], w.sent[i].Add(d)
			for _, e := range ends {
				if from.Before(e.Add(time.Millisecond)) && to.After(e.Add(-fsyncWindow)) {
					near++
					break
				}
			}
		}
	}
	if total > 0 {
		chance = covered.Seconds() / total.Seconds()
	}
	return slow, near, chance
}

const (
	slowAppend  = 10 * time.Millisecond
	fsyncWindow = 100 * time.Millisecond
)

func (r *snapshotRun) appendLatencies(cluster string) latencies {
	var all []time.Duration
	for _, w := range r.appends {
		if w.cluster == cluster {
			all = append(all, w.lat...)
		}
	}
	return summarize(all)
}

// ---------------------------------------------------------------------------
// Report

func (r *snapshotRun) print(out io.Writer) {
	const n = millionTopics * millionPerTopic
	fmt.Fprintf(out, "\nSnapshots at a million partitions, %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	fmt.Fprintf(out, "two clusters of %d controllers, default timeouts, placement brokers registered by the benchmark; data directory on %s; load average at the start %s; the run took %v\n",
		millionControllers, fsName(r.dir), r.loadAvg, time.Since(r.started).Round(time.Second))
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		fmt.Fprintf(out, "  %q: %s\n", c.name, c.setting)
	}
	fmt.Fprintf(out, "\ncreate %d topics × %d partitions, RF 3, on each: all answered after %.2f s (snapshots) and %.2f s (full log)\n",
		millionTopics, millionPerTopic, r.busy.creation.Seconds(), r.quiet.creation.Seconds())
	fmt.Fprintf(out, "  \"snapshots\": newest snapshot on every controller at offset %d; what each controller took to write it (all three at once): %s\n",
		r.busy.headMark.Offset, durList(r.busy.headTook))

	fmt.Fprintf(out, "\nsnapshot file (controller %d's newest): %d partitions, %d records, %.1f MiB (%.1f bytes a partition)\n",
		r.busy.standby, r.fileParts, r.fileRecs, float64(r.fileSize)/(1<<20), float64(r.fileSize)/float64(r.fileParts))
	fmt.Fprintf(out, "  load (ReadSnapshotImage), %d times: median %.2f s (%s)\n", len(r.loads), median(r.loads).Seconds(), durList(r.loads))
	fmt.Fprintf(out, "    collections meanwhile: %v; GC CPU %s\n", r.loadCycles, durList(r.loadGC))
	fmt.Fprintf(out, "  write (WriteSnapshot: Image.Records, encode, fsync), %d times: median %.2f s (%s)\n", len(r.writes), median(r.writes).Seconds(), durList(r.writes))
	fmt.Fprintf(out, "  4 KiB + fdatasync into a preallocated file (the WAL's floor): idle, %d: p50 %.3f ms, p99 %.3f ms, max %.3f ms; while this process wrote %d snapshots back to back, %d: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
		r.syncIdle.n, ms(r.syncIdle.p50), ms(r.syncIdle.p99), ms(r.syncIdle.max), r.syncWrites, r.syncBusy.n, ms(r.syncBusy.p50), ms(r.syncBusy.p99), ms(r.syncBusy.max))
	if r.profileDir != "" {
		fmt.Fprintf(out, "  CPU profiles of one more load and write in %s\n", r.profileDir)
	}

	fmt.Fprintf(out, "\nrestart of a standby controller (SIGTERM, then start), %d times on each cluster, alternated; times from the process's start\n", snapRestarts)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "cluster\tround\tstarts from offset\tentries to replay\tWAL on disk\tSIGTERM→exit\tsnapshot loaded\tof which load\tnode started\tfirst answer\tcaught up\tCPU\tits peers' CPU\tother CPU\t")
	for _, f := range r.restarts {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d MiB\t%.2f s\t%s\t%s\t%.2f s\t%.2f s\t%.2f s\t%.2f s\t%.2f s\t%.2f s\t\n", f.cluster, f.round+1, f.fromOff, f.hwm-int64(f.fromOff),
			f.walBytes>>20, f.stopped.Seconds(), secs(f.loadedAt), secs(f.loadTook), f.startedAt.Seconds(), f.answered.Seconds(), f.caughtUp.Seconds(), f.cpu.Seconds(),
			f.peersCPU.Seconds(), f.otherCPU.Seconds())
	}
	for _, c := range []string{"snapshots", "full log"} {
		get := func(fn func(restartFigures) time.Duration) string { return secs(r.restartMedian(c, fn)) }
		fmt.Fprintf(w, "%s\tmedian\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c,
			get(func(f restartFigures) time.Duration { return f.stopped }),
			get(func(f restartFigures) time.Duration { return f.loadedAt }),
			get(func(f restartFigures) time.Duration { return f.loadTook }),
			get(func(f restartFigures) time.Duration { return f.startedAt }),
			get(func(f restartFigures) time.Duration { return f.answered }),
			get(func(f restartFigures) time.Duration { return f.caughtUp }),
			get(func(f restartFigures) time.Duration { return f.cpu }),
			get(func(f restartFigures) time.Duration { return f.peersCPU }),
			get(func(f restartFigures) time.Duration { return f.otherCPU }))
	}
	w.Flush()
	snap := r.restartMedian("snapshots", func(f restartFigures) time.Duration { return f.caughtUp })
	full := r.restartMedian("full log", func(f restartFigures) time.Duration { return f.caughtUp })
	fmt.Fprintf(out, "  caught up: from the snapshot %.2f s, replaying the whole log %.2f s: ratio %.2f\n", snap.Seconds(), full.Seconds(), snap.Seconds()/full.Seconds())

	fmt.Fprintf(out, "\nsingle appends (UpdateFeatures, 1 client, sequential) to the active controller, %d windows of %d (after %d not timed) on each cluster, alternated\n",
		snapAppendRounds, snapAppendWrites, snapAppendWarmup)
	w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "cluster\tround\tp50 ms\tp99 ms\tmax ms\twindow\twriting a snapshot\tsnapshots finished\tleader CPU\tstandbys CPU\tother CPU\tleader GCs\tleader waiting for a CPU\t")
	for _, a := range r.appends {
		l := summarize(a.lat)
		fmt.Fprintf(w, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.2f s\t%.0f %%\t%d\t%.0f %%\t%.0f %%\t%.0f %%\t%d\t%.2f ms/append\t\n", a.cluster, a.round+1, ms(l.p50), ms(l.p99), ms(l.max),
			a.end.Sub(a.start).Seconds(), 100*a.coverage, a.written, a.leaderCPU, a.othersCPU, a.otherCPU, a.leaderGCs,
			ms(a.leaderWait)/float64(snapAppendWarmup+snapAppendWrites))
	}
	w.Flush()
	quiet, busy := r.appendLatencies("full log"), r.appendLatencies("snapshots")
	fmt.Fprintf(out, "  no snapshot (\"full log\"), %d appends: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", quiet.n, ms(quiet.p50), ms(quiet.p99), ms(quiet.max))
	fmt.Fprintf(out, "  snapshots being written (\"snapshots\"), %d appends: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", busy.n, ms(busy.p50), ms(busy.p99), ms(busy.max))
	fmt.Fprintf(out, "  ratio, with / without: p50 %.2f, p99 %.2f; the active controller finished %d snapshots in its windows, median %s each\n",
		ms(busy.p50)/ms(quiet.p50), ms(busy.p99)/ms(quiet.p99), len(r.busyTook), secs(median(r.busyTook)))
	slow, near, chance := r.slowAppends()
	quietSlow := 0
	for _, a := range r.appends {
		if a.cluster == r.quiet.name {
			for _, d := range a.lat {
				if d > slowAppend {
					quietSlow++
				}
			}
		}
	}
	fmt.Fprintf(out, "  appends over %v: %d with snapshots (%d without); %d of the %d overlapped the last %v of a controller's snapshot write (its fsync), stretches that cover %.0f %% of those windows\n",
		slowAppend, slow, quietSlow, near, slow, fsyncWindow, 100*chance)

	var complaints []string
	for _, c := range []*snapCluster{r.busy, r.quiet} {
		for _, id := range c.run.file.Controllers {
			b, _ := os.ReadFile(c.run.procs[id].logPath)
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					complaints = append(complaints, fmt.Sprintf("%s %d: %s", c.name, id, line))
				}
			}
		}
	}
	fmt.Fprintf(out, "node logs: %d WARN/ERROR lines\n", len(complaints))
	for _, line := range complaints[:min(len(complaints), 10)] {
		fmt.Fprintf(out, "  %s\n", line)
	}
	fmt.Fprintln(out, "\ntargets (DESIGN.md)")
	fmt.Fprintf(out, "  controller restart at %d partitions, from a snapshot: %.2f s vs %v: ratio %.2f, %s\n",
		n, snap.Seconds(), restartTarget, snap.Seconds()/restartTarget.Seconds(), verdict(snap <= restartTarget))
	fmt.Fprintln(out)
}

func secs(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func durList(d []time.Duration) string {
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%.2f", x.Seconds()))
	}
	return strings.Join(parts, ", ") + " s"
}
