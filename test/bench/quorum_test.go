//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
)

// Workload sizes. The whole benchmark takes about a minute and a half on a 2-core machine.
const (
	appendWarmup   = 200
	appendRequests = 2000
	createWarmup   = 100
	createRequests = 1000
	loadDuration   = 5 * time.Second

	// Commit → visible: sequential appends, each timed until every in-process broker has applied it.
	visibleWarmup  = 20
	visibleAppends = 500
	visiblePace    = 5 * time.Millisecond
	fleetFirstID   = 1000 // the in-process brokers' ids; voters are 1-3

	// Heartbeats: brokers registered only to heartbeat, from raw connections.
	heartbeatBrokers  = 1000
	heartbeatFirstID  = 2000
	heartbeatDuration = 5 * time.Second
	// brokerHeartbeatInterval is broker.heartbeat.interval.ms's default: what one broker costs the
	// active controller in heartbeats per second is 1 / this.
	brokerHeartbeatInterval = 2 * time.Second

	// committedRecordsTarget is DESIGN.md's "committed metadata records/s, 3 controllers (batched)".
	committedRecordsTarget = 200_000
	// visibleTarget is DESIGN.md's "commit → visible on 100 brokers, p99".
	visibleTarget = 50 * time.Millisecond
)

var (
	loadLevels      = []int{1, 16, 64, 256}
	fleetSizes      = []int{3, 100}
	heartbeatLevels = []int{1, 64}
)

// run holds everything measured in one run, so that each target is compared with floors measured
// minutes apart at most, on the same machine, in the same directory.
type run struct {
	dir     string
	bin     string
	cluster *cluster
	leader  int32

	fsync, fdatasync, rtt         *latencies
	single, singleCreate          *latencies
	placement                     *placement
	fleet                         *fleet
	visible                       []visibility
	brokerComplaints              []string
	beats                         []heartbeats
	loads, creates                []loadFigures
	applyPartitions, applyConfigs *applyResult
	perfNote                      string
	loadAvg                       string
	started                       time.Time
}

type loadFigures struct {
	loadResult
	what            string // the request, for the report
	lat             latencies
	recordsPerEntry float64         // read back from the leader's WAL (0 if unreadable)
	syncs           map[int32]int64 // fdatasync+fsync calls per node over the window (nil without perf)
}

// BenchmarkQuorum measures, in order: the fsync and loopback floors; against a three-process cluster,
// single-write latency (UpdateFeatures, CreateTopics), commit → visible on 3 and 100 in-process
// brokers, heartbeats/s, committed appends/s and batched CreateTopics records/s; and the state
// machine's apply rate. The in-process brokers run before the throughput levels, since they replay the
// whole log when they start, and the large topics come last, since every later write would run against
// an image that holds them. Every sub-benchmark does a fixed amount of work; run it
// with -benchtime 1x (make bench does).
func BenchmarkQuorum(b *testing.B) {
	r := &run{dir: dataDir(b), bin: b.TempDir(), loadAvg: loadAverage(), started: time.Now()}
	b.Cleanup(func() {
		if r.placement != nil {
			r.placement.stop()
		}
		if r.fleet != nil {
			for _, br := range r.fleet.brokers {
				br.Close()
			}
		}
		if r.cluster != nil {
			r.cluster.stop()
		}
	})

	b.Run("fsync", func(b *testing.B) {
		d, err := measureFsync(r.dir)
		if err != nil {
			b.Fatal(err)
		}
		r.fsync = reportLatency(b, d)
	})
	b.Run("fdatasync-prealloc", func(b *testing.B) {
		d, err := measureFdatasync(r.dir)
		if err != nil {
			b.Fatal(err)
		}
		r.fdatasync = reportLatency(b, d)
	})
	b.Run("loopback-rtt", func(b *testing.B) {
		d, err := measureRTT()
		if err != nil {
			b.Fatal(err)
		}
		r.rtt = reportLatency(b, d)
	})
	b.Run("append-latency", func(b *testing.B) {
		addr := r.leaderAddr(b)
		d, err := sequentialWrites(addr, appendWarmup, appendRequests, appendOp)
		if err != nil {
			b.Fatalf("%v\n%s", err, r.cluster.alive())
		}
		r.single = reportLatency(b, d)
		if bound, ok := r.latencyBound(); ok {
			b.ReportMetric(ms(bound), "target-ms")
			b.ReportMetric(float64(r.single.p99)/float64(bound), "p99/target")
		}
	})
	b.Run("create-topic-latency", func(b *testing.B) {
		addr := r.placementAddr(b)
		d, err := sequentialWrites(addr, createWarmup, createRequests, createTopicOp("single", 1))
		if err != nil {
			b.Fatalf("%v\n%s", err, r.cluster.alive())
		}
		r.singleCreate = reportLatency(b, d)
		if bound, ok := r.latencyBound(); ok {
			b.ReportMetric(ms(bound), "target-ms")
			b.ReportMetric(float64(r.singleCreate.p99)/float64(bound), "p99/target")
		}
	})
	for i, n := range fleetSizes {
		b.Run(fmt.Sprintf("commit-to-visible/brokers=%d", n), func(b *testing.B) {
			v := r.visibility(b, n, i == len(fleetSizes)-1)
			r.visible = append(r.visible, v)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(v.fromSend.p50), "p50-ms")
			b.ReportMetric(ms(v.fromSend.p99), "p99-ms")
			b.ReportMetric(ms(v.fromAnswer.p99), "p99-from-answer-ms")
		})
	}
	for _, n := range heartbeatLevels {
		b.Run(fmt.Sprintf("heartbeats/conns=%d", n), func(b *testing.B) {
			addr := r.leaderAddr(b)
			h, err := measureHeartbeats(r.cluster, addr, heartbeatFirstID, heartbeatBrokers, n, heartbeatDuration)
			if err != nil {
				b.Fatalf("%v\n%v", err, r.cluster.alive())
			}
			r.beats = append(r.beats, h)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(h.perSecond(), "heartbeats/s")
			b.ReportMetric(ms(h.lat.p50), "p50-ms")
			b.ReportMetric(ms(h.lat.p99), "p99-ms")
			b.ReportMetric(h.cpu.pct(h.cpu.nodes[r.leader]), "leader-cpu-%")
		})
	}
	for _, n := range loadLevels {
		b.Run(fmt.Sprintf("append-throughput/clients=%d", n), func(b *testing.B) {
			lf := r.load(b, n, "UpdateFeatures", appendOp)
			r.loads = append(r.loads, lf)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(lf.perSecond(), "appends/s")
			b.ReportMetric(ms(lf.lat.p50), "p50-ms")
			b.ReportMetric(ms(lf.lat.p99), "p99-ms")
			if e := lf.entriesPerSync(r.leader); e > 0 {
				b.ReportMetric(e, "leader-entries/fsync")
			}
			b.ReportMetric(lf.cpu.pct(lf.cpu.nodes[r.leader]), "leader-cpu-%")
		})
	}
	for _, n := range createLevels {
		b.Run(fmt.Sprintf("create-topics-throughput/partitions=%d/clients=%d", batchPartitions, n), func(b *testing.B) {
			r.placementAddr(b)
			lf := r.load(b, n, fmt.Sprintf("CreateTopics, %d partitions", batchPartitions), createTopicOp(fmt.Sprintf("batch%d", n), batchPartitions))
			r.creates = append(r.creates, lf)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(lf.perSecond()*lf.recordsPerEntryOr(batchPartitions+1), "records/s")
			b.ReportMetric(ms(lf.lat.p50), "p50-ms")
			b.ReportMetric(ms(lf.lat.p99), "p99-ms")
			b.ReportMetric(lf.cpu.pct(lf.cpu.nodes[r.leader]), "leader-cpu-%")
		})
	}
	b.Run("apply/partitions", func(b *testing.B) {
		res, err := measureApply(partitionBatches())
		if err != nil {
			b.Fatal(err)
		}
		r.applyPartitions = &res
		reportApply(b, res)
	})
	b.Run("apply/configs", func(b *testing.B) {
		res, err := measureApply(configBatches())
		if err != nil {
			b.Fatal(err)
		}
		r.applyConfigs = &res
		reportApply(b, res)
	})

	var sb strings.Builder
	r.print(&sb)
	fmt.Print(sb.String())
}

// dataDir is where the nodes keep their logs and where the fsync floor is measured: KRAFT_BENCH_DIR
// when set (to measure a particular disk), else the system's temporary directory.
func dataDir(b *testing.B) string {
	parent := os.Getenv("KRAFT_BENCH_DIR")
	if parent == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "kraft-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func reportLatency(b *testing.B, d []time.Duration) *latencies {
	l := summarize(d)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(l.p50), "p50-ms")
	b.ReportMetric(ms(l.p99), "p99-ms")
	return &l
}

func reportApply(b *testing.B, res applyResult) {
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(res.applyRate(), "records/s")
	b.ReportMetric(res.replayRate(), "decode+apply-records/s")
}

// leaderAddr builds the binaries and starts the cluster on first use, and returns the active
// controller's address.
func (r *run) leaderAddr(b *testing.B) string {
	if r.cluster == nil {
		if err := buildBinaries(r.bin); err != nil {
			b.Fatal(err)
		}
		c, err := startCluster(r.bin, r.dir)
		if err != nil {
			b.Fatal(err)
		}
		r.cluster = c
		leader, err := c.awaitActive(60 * time.Second)
		if err != nil {
			b.Fatal(err)
		}
		r.leader = leader
	}
	if err := r.cluster.alive(); err != nil {
		b.Fatal(err)
	}
	return r.cluster.addrs[r.leader]
}

// placementAddr is leaderAddr, with the placement brokers registered and unfenced, so that CreateTopics
// can place replicas.
func (r *run) placementAddr(b *testing.B) string {
	addr := r.leaderAddr(b)
	if r.placement == nil {
		p, err := startPlacement(r.cluster, addr)
		if err != nil {
			b.Fatal(err)
		}
		r.placement = p
	}
	if err := r.placement.failed(); err != nil {
		b.Fatalf("a placement broker lost its session: %v", err)
	}
	return addr
}

// latencyBound is DESIGN.md's single-write bound, 2 × (fsync latency + loopback round trip), with the
// medians of the floors measured in this run.
func (r *run) latencyBound() (time.Duration, bool) {
	if r.fsync == nil || r.rtt == nil {
		return 0, false
	}
	return 2 * (r.fsync.p50 + r.rtt.p50), true
}

// load runs one level of concurrency of op and gathers what explains its figure: CPU per process,
// records per entry, and how many entries each fsync made durable.
func (r *run) load(b *testing.B, clients int, what string, op writeOp) loadFigures {
	addr := r.leaderAddr(b)
	c := r.cluster
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pids := map[int32]int{}
	for _, id := range c.ids {
		pids[id] = c.pid(id)
	}
	counter, perfErr := startSyncCount(pids)
	if counter != nil {
		time.Sleep(300 * time.Millisecond) // let perf attach before the window opens
	}
	before, err := c.describeQuorum(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	res, err := concurrentWrites(addr, clients, loadDuration, op, c.startCPU)
	if err != nil {
		b.Fatalf("%s, %d clients: %v\n%v", what, clients, err, c.alive())
	}
	lf := loadFigures{loadResult: res, what: what, lat: summarize(res.lat)}
	after, err := c.describeQuorum(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	if counter != nil {
		lf.syncs, perfErr = counter.stop()
	}
	if perfErr != nil {
		lf.syncs = nil
		r.perfNote = "fsyncs not counted: " + perfErr.Error()
	}
	if after.leader != r.leader {
		b.Fatalf("leadership moved from %d to %d during the run", r.leader, after.leader)
	}
	lf.firstHWM, lf.lastHWM = before.hwm, after.hwm
	entries, records, err := walRecords(metadatalog.WALDir(c.nodeDir(r.leader)), uint64(lf.firstHWM), uint64(lf.lastHWM))
	if err != nil {
		b.Logf("reading the leader's WAL: %v", err)
	} else if entries > 0 {
		lf.recordsPerEntry = float64(records) / float64(entries)
	}
	return lf
}

// recordsPerEntryOr is the records per entry read back from the WAL, or def when it could not be read.
func (l loadFigures) recordsPerEntryOr(def float64) float64 {
	if l.recordsPerEntry > 0 {
		return l.recordsPerEntry
	}
	return def
}

// entriesPerSync is how many log entries one fsync of node id made durable over the window (0 when
// the fsyncs were not counted).
func (l loadFigures) entriesPerSync(id int32) float64 {
	n, ok := l.syncs[id]
	if !ok || n == 0 {
		return 0
	}
	return float64(l.lastHWM-l.firstHWM) / float64(n)
}

// visibility grows the in-process broker fleet to n brokers, waits until every one runs unfenced and
// has caught up, and times commit → visible in all of them. last stops the fleet afterwards (controlled
// shutdown, then UnregisterBroker), so that later measurements see none of it.
func (r *run) visibility(b *testing.B, n int, last bool) visibility {
	addr := r.leaderAddr(b)
	if r.fleet == nil {
		f, err := newFleet(r.cluster, fleetFirstID)
		if err != nil {
			b.Fatal(err)
		}
		r.fleet = f
	}
	start := time.Now()
	r.fleet.grow(n)
	if err := r.fleet.awaitRunning(addr, 60*time.Second); err != nil {
		b.Fatalf("%d brokers: %v\n%v", n, err, r.cluster.alive())
	}
	started := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	q, err := r.cluster.describeQuorum(ctx, addr)
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	v, err := measureVisibility(r.cluster, addr, r.fleet, visibleWarmup, visibleAppends, visiblePace)
	if err != nil {
		b.Fatalf("%d brokers: %v\n%v", n, err, r.cluster.alive())
	}
	v.started, v.startOffset = started, q.hwm
	if last {
		err := r.fleet.stop(addr)
		r.brokerComplaints = r.fleet.complaints()
		r.fleet = nil
		if err != nil {
			b.Fatalf("stopping the brokers: %v", err)
		}
	}
	return v
}

// print writes the side-by-side table and the verdict on each target.
func (r *run) print(out io.Writer) {
	fmt.Fprintf(out, "\nKRaft quorum benchmark, %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	fmt.Fprintf(out, "data directory on %s; load average at the start %s; all figures from this one run, which took %v\n\n",
		fsName(r.dir), r.loadAvg, time.Since(r.started).Round(time.Second))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "measure\tn\tp50 ms\tp99 ms\tmax ms\trate\t")
	row := func(name string, l *latencies) {
		if l != nil {
			fmt.Fprintf(w, "%s\t%d\t%.3f\t%.3f\t%.3f\t\t\n", name, l.n, ms(l.p50), ms(l.p99), ms(l.max))
		}
	}
	row("fsync floor: 4 KiB append + fsync", r.fsync)
	row("4 KiB + fdatasync, preallocated (WAL-like)", r.fdatasync)
	row("loopback TCP round trip, 64 B", r.rtt)
	row("single append (UpdateFeatures), 1 client sequential", r.single)
	row(fmt.Sprintf("single CreateTopics, 1 partition × %d replicas, sequential", replicationFactor), r.singleCreate)
	for _, v := range r.visible {
		row(fmt.Sprintf("commit → visible on %d brokers, from send", v.brokers), &v.fromSend)
		row("  from the leader's answer", &v.fromAnswer)
		row("  the append's own answer", &v.answer)
	}
	for _, h := range r.beats {
		fmt.Fprintf(w, "heartbeats for %v, %s, %d brokers\t%d\t%.3f\t%.3f\t%.3f\t%.0f/s\t\n", heartbeatDuration,
			connsName(h.conns), h.brokers, h.beats, ms(h.lat.p50), ms(h.lat.p99), ms(h.lat.max), h.perSecond())
	}
	for _, l := range r.loads {
		fmt.Fprintf(w, "appends for %v, %s\t%d\t%.3f\t%.3f\t%.3f\t%.0f/s\t\n", loadDuration, clientsName(l.clients), l.appends, ms(l.lat.p50), ms(l.lat.p99), ms(l.lat.max), l.perSecond())
	}
	for _, l := range r.creates {
		fmt.Fprintf(w, "CreateTopics × %d partitions for %v, %s\t%d\t%.3f\t%.3f\t%.3f\t%.0f rec/s\t\n", batchPartitions, loadDuration, clientsName(l.clients),
			l.appends, ms(l.lat.p50), ms(l.lat.p99), ms(l.lat.max), l.perSecond()*l.recordsPerEntryOr(batchPartitions+1))
	}
	if a := r.applyPartitions; a != nil {
		fmt.Fprintf(w, "Image.Apply, Topic+PartitionRecords, 1000/batch\t%d\t\t\t\t%.0f rec/s\t\n", a.records, a.applyRate())
		fmt.Fprintf(w, "  decode + Image.Apply (replay)\t%d\t\t\t\t%.0f rec/s\t\n", a.records, a.replayRate())
	}
	if a := r.applyConfigs; a != nil {
		fmt.Fprintf(w, "Image.Apply, ConfigRecords, 1000/batch\t%d\t\t\t\t%.0f rec/s\t\n", a.records, a.applyRate())
		fmt.Fprintf(w, "  decode + Image.Apply (replay)\t%d\t\t\t\t%.0f rec/s\t\n", a.records, a.replayRate())
	}
	w.Flush()

	if r.cluster != nil && (len(r.loads) > 0 || len(r.creates) > 0 || len(r.beats) > 0 || len(r.visible) > 0) {
		fmt.Fprintf(out, "\nCPU over each window, in %% of one core (the machine has %d%%)\n", 100*runtime.NumCPU())
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "workload\trate/s\tleader CPU\tfollowers CPU\tbench process CPU\tother CPU\trecords/entry\tentries/fsync leader\tfollowers\t")
		cpuRow := func(name string, rate float64, c cpuWindow, rec, sync, folSync string) {
			var fol []string
			for _, id := range r.cluster.ids {
				if id != r.leader {
					fol = append(fol, fmt.Sprintf("%.0f%%", c.pct(c.nodes[id])))
				}
			}
			fmt.Fprintf(w, "%s\t%.0f\t%.0f%%\t%s\t%.0f%%\t%.0f%%\t%s\t%s\t%s\t\n", name, rate, c.pct(c.nodes[r.leader]),
				strings.Join(fol, " + "), c.pct(c.self), c.pct(c.other), rec, sync, folSync)
		}
		for _, v := range r.visible {
			cpuRow(fmt.Sprintf("paced appends, %d brokers following", v.brokers), float64(v.fromSend.n)/v.cpu.elapsed.Seconds(), v.cpu, "", "", "")
		}
		for _, h := range r.beats {
			cpuRow("heartbeats, "+connsName(h.conns), h.perSecond(), h.cpu, "", "", "")
		}
		for _, l := range slices.Concat(r.loads, r.creates) {
			var folSync []string
			for _, id := range r.cluster.ids {
				if id != r.leader {
					folSync = append(folSync, perSync(l.entriesPerSync(id)))
				}
			}
			rec := "?"
			if l.recordsPerEntry > 0 {
				rec = fmt.Sprintf("%.2f", l.recordsPerEntry)
			}
			cpuRow(l.what+", "+clientsName(l.clients), l.perSecond(), l.cpu, rec, perSync(l.entriesPerSync(r.leader)), strings.Join(folSync, " + "))
		}
		w.Flush()
		fmt.Fprintln(out, "  rate/s: answered requests per second")
		fmt.Fprintln(out, "  bench process: the clients, and during the paced appends the in-process brokers and the loop polling their images")
		fmt.Fprintln(out, "  other CPU: what the rest of the machine (perf included) used meanwhile: /proc/stat busy time minus the above")
		fmt.Fprintln(out, "  records/entry: metadata records per Raft entry, read back from the leader's WAL")
		fmt.Fprintln(out, "  entries/fsync: committed entries over the window / fdatasync+fsync calls of that node (perf)")
		if r.perfNote != "" {
			fmt.Fprintln(out, "  "+r.perfNote)
		}
		for _, v := range r.visible {
			fmt.Fprintf(out, "  %d brokers: their images were looked at every %.0f µs on average while a write was in flight\n", v.brokers, float64(v.look)/float64(time.Microsecond))
			fmt.Fprintf(out, "  %d brokers: RUNNING and caught up %.2f s after the new ones started, replaying a log of %d entries\n", v.brokers, v.started.Seconds(), v.startOffset)
			if v.beside > 0 {
				fmt.Fprintf(out, "  %d brokers: %d of %d appends committed next to another write and were timed to the later high watermark\n", v.brokers, v.beside, v.fromSend.n)
			}
		}
		for _, h := range r.beats {
			fmt.Fprintf(out, "  heartbeats, %s: %d entries committed during the window (steady heartbeats write none)\n", connsName(h.conns), h.written)
		}
	}

	if r.cluster != nil {
		complaints := r.cluster.logComplaints()
		fmt.Fprintf(out, "\nnode logs: %d WARN/ERROR lines\n", len(complaints))
		printComplaints(out, complaints)
		if len(r.visible) > 0 {
			fmt.Fprintf(out, "in-process broker logs: %d WARN/ERROR lines\n", len(r.brokerComplaints))
			printComplaints(out, r.brokerComplaints)
		}
	}

	fmt.Fprintln(out, "\ntargets (DESIGN.md)")
	if bound, ok := r.latencyBound(); ok {
		strict := 2 * (r.fsync.p99 + r.rtt.p99)
		for _, x := range []struct {
			name string
			l    *latencies
		}{{"single CreateTopics (1 partition)", r.singleCreate}, {"single UpdateFeatures", r.single}} {
			if x.l == nil {
				continue
			}
			ratio := float64(x.l.p99) / float64(bound)
			fmt.Fprintf(out, "  %s p99 %.3f ms vs 2 × (fsync p50 %.3f + RTT p50 %.3f) = %.3f ms: ratio %.2f, %s\n",
				x.name, ms(x.l.p99), ms(r.fsync.p50), ms(r.rtt.p50), ms(bound), ratio, verdict(ratio <= 1))
			fmt.Fprintf(out, "    (with the floors' p99s instead: bound %.3f ms, ratio %.2f)\n", ms(strict), float64(x.l.p99)/float64(strict))
		}
	}
	for _, set := range [][]loadFigures{r.creates, r.loads} {
		if len(set) == 0 {
			continue
		}
		best := set[0]
		for _, l := range set {
			if l.perSecond()*l.recordsPerEntryOr(1) > best.perSecond()*best.recordsPerEntryOr(1) {
				best = l
			}
		}
		perEntry := best.recordsPerEntryOr(1)
		rate := best.perSecond() * perEntry
		fmt.Fprintf(out, "  committed records/s %.0f (%s, %s, %.2f records per entry) vs %d: ratio %.3f, %s\n",
			rate, best.what, clientsName(best.clients), perEntry, committedRecordsTarget, rate/committedRecordsTarget, verdict(rate >= committedRecordsTarget))
	}
	for _, v := range r.visible {
		ratio := float64(v.fromSend.p99) / float64(visibleTarget)
		fmt.Fprintf(out, "  commit → visible on %d brokers p99 %.3f ms from send (%.3f ms from the answer) vs %v: ratio %.3f, %s\n",
			v.brokers, ms(v.fromSend.p99), ms(v.fromAnswer.p99), visibleTarget, ratio, verdict(ratio <= 1))
	}
	for _, h := range r.beats {
		fmt.Fprintf(out, "  (no target) heartbeats/s %.0f with %s: at one per broker every %v, enough for %.0f brokers\n",
			h.perSecond(), connsName(h.conns), brokerHeartbeatInterval, h.perSecond()*brokerHeartbeatInterval.Seconds())
	}
	fmt.Fprintln(out)
}

// printComplaints groups log lines by level, message and error, most frequent first, with one example
// of each.
func printComplaints(out io.Writer, lines []string) {
	type group struct {
		key, example string
		n            int
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, line := range lines {
		key := logField(line, "level") + " " + logField(line, "msg") + " " + logField(line, "error") + logField(line, "err")
		g := byKey[key]
		if g == nil {
			g = &group{key: key, example: line}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.n++
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return b.n - a.n })
	for i, g := range groups {
		if i == 8 {
			fmt.Fprintf(out, "  ... and %d more kinds\n", len(groups)-i)
			break
		}
		fmt.Fprintf(out, "  %d × %s\n", g.n, g.example)
	}
}

// logField is the value of key in a slog text line: key=value or key="quoted value".
func logField(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if j := strings.Index(v[1:], `"`); j >= 0 {
			return v[1 : j+1]
		}
		return v
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		return v[:j]
	}
	return v
}

func connsName(n int) string {
	if n == 1 {
		return "1 connection"
	}
	return fmt.Sprintf("%d connections", n)
}

func clientsName(n int) string {
	if n == 1 {
		return "1 client"
	}
	return fmt.Sprintf("%d concurrent clients", n)
}

func perSync(e float64) string {
	if e == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", e)
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}
