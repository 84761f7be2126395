//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
)

// Workload sizes. The whole benchmark takes under a minute on a 2-core machine.
const (
	appendWarmup   = 200
	appendRequests = 2000
	loadDuration   = 5 * time.Second
	// committedRecordsTarget is DESIGN.md's "committed metadata records/s, 3 controllers (batched)".
	committedRecordsTarget = 200_000
)

var loadLevels = []int{1, 16, 64, 256}

// run holds everything measured in one run, so that each target is compared with floors measured
// minutes apart at most, on the same machine, in the same directory.
type run struct {
	dir     string
	bin     string
	cluster *cluster
	leader  int32

	fsync, fdatasync, rtt, single *latencies
	loads                         []loadFigures
	applyPartitions, applyConfigs *applyResult
	perfNote                      string
	loadAvg                       string
}

type loadFigures struct {
	loadResult
	lat             latencies
	cpu             map[int32]time.Duration // per node, over the window
	client          time.Duration           // this process's CPU (the clients) over the window
	recordsPerEntry float64                 // read back from the leader's WAL (0 if unreadable)
	otherCPU        time.Duration           // CPU the rest of the machine used over the window
	syncs           map[int32]int64         // fdatasync+fsync calls per node over the window (nil without perf)
}

// BenchmarkQuorum measures, in order: the fsync and loopback floors, single-write latency and
// committed appends/s against a three-process cluster, and the state machine's apply rate. Every
// sub-benchmark does a fixed amount of work; run it with -benchtime 1x (make bench does).
func BenchmarkQuorum(b *testing.B) {
	r := &run{dir: dataDir(b), bin: b.TempDir(), loadAvg: loadAverage()}
	b.Cleanup(func() {
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
		d, err := sequentialAppends(addr, appendWarmup, appendRequests)
		if err != nil {
			b.Fatalf("%v\n%s", err, r.cluster.alive())
		}
		r.single = reportLatency(b, d)
		if bound, ok := r.latencyBound(); ok {
			b.ReportMetric(ms(bound), "target-ms")
			b.ReportMetric(float64(r.single.p99)/float64(bound), "p99/target")
		}
	})
	for _, n := range loadLevels {
		b.Run(fmt.Sprintf("append-throughput/clients=%d", n), func(b *testing.B) {
			lf := r.load(b, n)
			r.loads = append(r.loads, lf)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(lf.perSecond(), "appends/s")
			b.ReportMetric(ms(lf.lat.p50), "p50-ms")
			b.ReportMetric(ms(lf.lat.p99), "p99-ms")
			if e := lf.entriesPerSync(r.leader); e > 0 {
				b.ReportMetric(e, "leader-entries/fsync")
			}
			b.ReportMetric(100*lf.cpu[r.leader].Seconds()/lf.elapsed.Seconds(), "leader-cpu-%")
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

// latencyBound is DESIGN.md's single-write bound, 2 × (fsync latency + loopback round trip), with the
// medians of the floors measured in this run.
func (r *run) latencyBound() (time.Duration, bool) {
	if r.fsync == nil || r.rtt == nil {
		return 0, false
	}
	return 2 * (r.fsync.p50 + r.rtt.p50), true
}

// load runs one level of concurrency and gathers what explains its figure: CPU per process, records
// per entry, and how many entries each fsync made durable.
func (r *run) load(b *testing.B, clients int) loadFigures {
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
	cpu0 := map[int32]time.Duration{}
	for _, id := range c.ids {
		cpu0[id], _ = cpuTime(pids[id])
	}
	self0, machine0 := selfCPU(), machineBusy()
	res, err := concurrentAppends(addr, clients, loadDuration)
	if err != nil {
		b.Fatalf("%d clients: %v\n%v", clients, err, c.alive())
	}
	self1, machine1 := selfCPU(), machineBusy()
	lf := loadFigures{loadResult: res, lat: summarize(res.lat), cpu: map[int32]time.Duration{}, client: self1 - self0}
	lf.otherCPU = machine1 - machine0 - lf.client
	for _, id := range c.ids {
		t, _ := cpuTime(pids[id])
		lf.cpu[id] = t - cpu0[id]
		lf.otherCPU -= lf.cpu[id]
	}
	lf.otherCPU = max(lf.otherCPU, 0)
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

// entriesPerSync is how many log entries one fsync of node id made durable over the window (0 when
// the fsyncs were not counted).
func (l loadFigures) entriesPerSync(id int32) float64 {
	n, ok := l.syncs[id]
	if !ok || n == 0 {
		return 0
	}
	return float64(l.lastHWM-l.firstHWM) / float64(n)
}

// print writes the side-by-side table and the verdict on each target.
func (r *run) print(out io.Writer) {
	fmt.Fprintf(out, "\nKRaft quorum benchmark, %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	fmt.Fprintf(out, "data directory on %s; load average at the start %s; all figures from this one run\n\n", fsName(r.dir), r.loadAvg)
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
	row("single append, 1 client sequential", r.single)
	for _, l := range r.loads {
		fmt.Fprintf(w, "appends for %v, %s\t%d\t%.3f\t%.3f\t%.3f\t%.0f/s\t\n", loadDuration, clientsName(l.clients), l.appends, ms(l.lat.p50), ms(l.lat.p99), ms(l.lat.max), l.perSecond())
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

	if len(r.loads) > 0 {
		fmt.Fprintf(out, "\nunder load (CPU in %% of one core over the window; the machine has %d%%)\n", 100*runtime.NumCPU())
		w = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "clients\tappends/s\tleader CPU\tfollowers CPU\tclients CPU\tother CPU\trecords/entry\tentries/fsync leader\tfollowers\t")
		for _, l := range r.loads {
			secs := l.elapsed.Seconds()
			var fol, folSync []string
			for _, id := range r.cluster.ids {
				if id != r.leader {
					fol = append(fol, fmt.Sprintf("%.0f%%", 100*l.cpu[id].Seconds()/secs))
					folSync = append(folSync, perSync(l.entriesPerSync(id)))
				}
			}
			rec := "?"
			if l.recordsPerEntry > 0 {
				rec = fmt.Sprintf("%.2f", l.recordsPerEntry)
			}
			fmt.Fprintf(w, "%d\t%.0f\t%.0f%%\t%s\t%.0f%%\t%.0f%%\t%s\t%s\t%s\t\n", l.clients, l.perSecond(),
				100*l.cpu[r.leader].Seconds()/secs, strings.Join(fol, " + "), 100*l.client.Seconds()/secs,
				100*l.otherCPU.Seconds()/secs, rec, perSync(l.entriesPerSync(r.leader)), strings.Join(folSync, " + "))
		}
		w.Flush()
		fmt.Fprintln(out, "  entries/fsync: committed entries over the window / fdatasync+fsync calls of that node (perf)")
		fmt.Fprintln(out, "  other CPU: what the rest of the machine (perf included) used meanwhile: /proc/stat busy time minus the above")
		fmt.Fprintln(out, "  records/entry: metadata records per Raft entry, read back from the leader's WAL")
		if r.perfNote != "" {
			fmt.Fprintln(out, "  "+r.perfNote)
		}
	}

	if r.cluster != nil {
		complaints := r.cluster.logComplaints()
		fmt.Fprintf(out, "\nnode logs: %d WARN/ERROR lines\n", len(complaints))
		for i, line := range complaints {
			if i == 5 {
				fmt.Fprintf(out, "  ... and %d more\n", len(complaints)-i)
				break
			}
			fmt.Fprintln(out, "  "+line)
		}
	}

	fmt.Fprintln(out, "\ntargets (DESIGN.md)")
	if bound, ok := r.latencyBound(); ok && r.single != nil {
		ratio := float64(r.single.p99) / float64(bound)
		fmt.Fprintf(out, "  single write p99 %.3f ms vs 2 × (fsync p50 %.3f + RTT p50 %.3f) = %.3f ms: ratio %.2f, %s\n",
			ms(r.single.p99), ms(r.fsync.p50), ms(r.rtt.p50), ms(bound), ratio, verdict(ratio <= 1))
		strict := 2 * (r.fsync.p99 + r.rtt.p99)
		fmt.Fprintf(out, "    (with the floors' p99s instead: bound %.3f ms, ratio %.2f)\n", ms(strict), float64(r.single.p99)/float64(strict))
	}
	if len(r.loads) > 0 {
		best := r.loads[0]
		for _, l := range r.loads {
			if l.perSecond() > best.perSecond() {
				best = l
			}
		}
		perEntry := best.recordsPerEntry
		if perEntry == 0 {
			perEntry = 1 // UpdateFeatures of one feature writes one record
		}
		rate := best.perSecond() * perEntry
		fmt.Fprintf(out, "  committed records/s %.0f (%d clients, %.2f records per append) vs %d: ratio %.3f, %s\n",
			rate, best.clients, perEntry, committedRecordsTarget, rate/committedRecordsTarget, verdict(rate >= committedRecordsTarget))
	}
	fmt.Fprintln(out)
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
