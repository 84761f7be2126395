package e2e

// Helpers for clusters with brokers: three controllers and some brokers described by one cluster file,
// and the requests and tool runs that show what the brokers are doing.

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaext"
	harness "github.com/kraftgo/kraft/test/cluster"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Short broker timings keep fencing tests fast; the defaults (2000 and 9000) would only make them wait.
const (
	testHeartbeatMs = 500
	testSessionMs   = 3000
)

// brokerCluster is a cluster whose file names controllers (ids 1..n) and brokers (the ids after them).
// The embedded cluster's ids hold both, and addrs holds each node's own port: the controller port
// of a controller, the PLAINTEXT port of a broker.
type brokerCluster struct {
	*cluster
	controllers, brokers []int32
}

// newBrokerCluster writes a cluster file for nControllers controllers and nBrokers brokers on free
// loopback ports, plus extra lines (for nodes a test adds later), and picks a cluster id. Nothing is
// formatted or started.
func newBrokerCluster(t *testing.T, nControllers, nBrokers int, extra ...string) *brokerCluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), procs: map[int32]*proc{}}
	f, err := harness.WriteFile(harness.Spec{
		Dir:         c.dir,
		Comment:     "written by the e2e tests: controllers and brokers of one cluster",
		Controllers: nControllers,
		Brokers:     nBrokers,
		Settings: []string{
			"controller.quorum.fetch.timeout.ms=2000",
			"broker.heartbeat.interval.ms=" + strconv.Itoa(testHeartbeatMs),
			"broker.session.timeout.ms=" + strconv.Itoa(testSessionMs),
		},
		Extra: extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.conf, c.ids, c.addrs = f.Path, f.IDs(), f.Addrs
	bc := &brokerCluster{cluster: c, controllers: f.Controllers, brokers: f.Brokers}
	conf := f.Text
	c.clusterID = strings.TrimSpace(runCtlOK(t, "storage", "random-uuid"))
	if len(c.clusterID) != 22 {
		t.Fatalf("kraftctl storage random-uuid printed %q, want a 22-character id", c.clusterID)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("cluster file %s:\n%s", c.conf, conf)
			c.dumpLogs()
		}
	})
	t.Cleanup(c.killAll)
	return bc
}

// stopAll stops the running brokers (each completes a controlled shutdown while the quorum is still
// there), then the controllers, each with SIGTERM and requiring exit code 0.
func (bc *brokerCluster) stopAll() {
	bc.t.Helper()
	for _, id := range append(slices.Clone(bc.brokers), bc.controllers...) {
		if p := bc.proc(id); p != nil && p.Running() {
			stopProc(bc.t, p)
		}
	}
}

// ---------------------------------------------------------------------------
// What the cluster says about its brokers

// brokerInfo is one broker entry of a DescribeCluster answer.
type brokerInfo struct {
	id         int32
	endpoint   string
	fenced     bool
	epoch      int64 // -1 when the answer did not carry it
	inShutdown bool
}

func (b brokerInfo) String() string {
	state := "unfenced"
	switch {
	case b.inShutdown:
		state = "controlled-shutdown"
	case b.fenced:
		state = "fenced"
	}
	return fmt.Sprintf("%d@%s(epoch %d, %s)", b.id, b.endpoint, b.epoch, state)
}

// describeBrokers sends DescribeCluster v2 (IncludeFencedBrokers) to addr, a controller or a broker,
// and returns its brokers by id.
func describeBrokers(addr string) (map[int32]brokerInfo, string, error) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 2
	req.EndpointType = 1
	req.IncludeFencedBrokers = true
	r, err := request(addr, req)
	if err != nil {
		return nil, "", err
	}
	dc := r.(*kmsg.DescribeClusterResponse)
	if e := kerr.ErrorForCode(dc.ErrorCode); e != nil {
		return nil, "", fmt.Errorf("DescribeCluster: %w: %s", e, deref(dc.ErrorMessage))
	}
	out := map[int32]brokerInfo{}
	for i := range dc.Brokers {
		b := &dc.Brokers[i]
		info := brokerInfo{id: b.NodeID, endpoint: fmt.Sprintf("%s:%d", b.Host, b.Port), fenced: b.IsFenced, epoch: -1}
		if epoch, inShutdown, ok := kafkaext.BrokerState(b); ok {
			info.epoch, info.inShutdown = epoch, inShutdown
		}
		out[b.NodeID] = info
	}
	return out, dc.ClusterID, nil
}

func describeString(m map[int32]brokerInfo) string {
	ids := make([]int32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, m[id].String())
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// metadataView is what a Metadata answer says about the cluster.
type metadataView struct {
	brokers    []int32 // sorted
	endpoints  map[int32]string
	clusterID  string
	controller int32
}

func (m metadataView) String() string {
	return fmt.Sprintf("brokers=%v controller=%d cluster=%s", m.brokers, m.controller, m.clusterID)
}

// metadata sends a Metadata request (no topics) to the broker at addr.
func metadata(addr string) (metadataView, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	r, err := request(addr, req)
	if err != nil {
		return metadataView{}, err
	}
	resp := r.(*kmsg.MetadataResponse)
	v := metadataView{endpoints: map[int32]string{}, controller: resp.ControllerID}
	if resp.ClusterID != nil {
		v.clusterID = *resp.ClusterID
	}
	for _, b := range resp.Brokers {
		v.brokers = append(v.brokers, b.NodeID)
		v.endpoints[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
	}
	slices.Sort(v.brokers)
	return v, nil
}

// observers asks addr for DescribeQuorum and returns each observer's reported offset.
func observers(addr string) (map[int32]int64, quorumView, error) {
	r, err := request(addr, newDescribeQuorumRequest())
	if err != nil {
		return nil, quorumView{}, err
	}
	resp := r.(*kmsg.DescribeQuorumResponse)
	q, err := parseDescribeQuorum(resp)
	if err != nil {
		return nil, q, err
	}
	out := map[int32]int64{}
	for _, o := range resp.Topics[0].Partitions[0].Observers {
		out[o.ReplicaID] = o.LogEndOffset
	}
	return out, q, nil
}

// brokersRow is one row of `kraftctl brokers list`.
type brokersRow struct {
	id                                     int32
	endpoint, rack, epoch, state, off, lag string
}

// brokersList runs `kraftctl brokers list` with flag (--bootstrap-server or --bootstrap-controller)
// and parses its table. A failed run is returned as an error, not a test failure, so callers can
// poll.
func brokersList(t *testing.T, flag, addr string) (map[int32]brokersRow, string, error) {
	t.Helper()
	r := run(t, kraftctl, "brokers", "list", flag, addr, "--timeout", "5s")
	if r.Code != 0 {
		return nil, r.Stdout, fmt.Errorf("kraftctl brokers list %s %s: %v", flag, addr, r)
	}
	lines := nonEmptyLines(r.Stdout)
	want := "ID ENDPOINT RACK EPOCH STATE METADATA-OFFSET LAG"
	if len(lines) == 0 || strings.Join(strings.Fields(lines[0]), " ") != want {
		return nil, r.Stdout, fmt.Errorf("kraftctl brokers list: header %q, want %q", firstLine(lines), want)
	}
	rows := map[int32]brokersRow{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 7 {
			return nil, r.Stdout, fmt.Errorf("kraftctl brokers list: row %q has %d columns, want 7", line, len(f))
		}
		id, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil {
			return nil, r.Stdout, fmt.Errorf("kraftctl brokers list: row %q: id %q is not a number", line, f[0])
		}
		rows[int32(id)] = brokersRow{id: int32(id), endpoint: f[1], rack: f[2], epoch: f[3], state: f[4], off: f[5], lag: f[6]}
	}
	return rows, r.Stdout, nil
}

func firstLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

// waitBrokerStates polls DescribeCluster v2 on the controller at addr until every broker in want
// has the wanted fenced state; it returns the last answer.
func (bc *brokerCluster) waitBrokerStates(addr string, want map[int32]bool, live []int32) map[int32]brokerInfo {
	bc.t.Helper()
	var last map[int32]brokerInfo
	bc.eventually(pollTimeout, fmt.Sprintf("brokers' fenced states %v at %s", want, addr), live, func() (bool, string) {
		got, _, err := describeBrokers(addr)
		if err != nil {
			return false, err.Error()
		}
		last = got
		for id, fenced := range want {
			b, ok := got[id]
			if !ok || b.fenced != fenced {
				return false, describeString(got)
			}
		}
		return true, ""
	})
	return last
}

// waitMetadataBrokers polls Metadata on the broker at addr until it lists exactly want.
func (bc *brokerCluster) waitMetadataBrokers(addr string, want []int32, live []int32) metadataView {
	bc.t.Helper()
	want = slices.Sorted(slices.Values(want))
	var last metadataView
	bc.eventually(pollTimeout, fmt.Sprintf("Metadata at %s to list brokers %v", addr, want), live, func() (bool, string) {
		m, err := metadata(addr)
		if err != nil {
			return false, err.Error()
		}
		last = m
		return slices.Equal(m.brokers, want), m.String()
	})
	return last
}

// waitLogContains polls a log file until it holds s.
func (bc *brokerCluster) waitLogContains(path, s string, timeout time.Duration) {
	bc.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(data), s) {
			return
		}
		if time.Now().After(deadline) {
			bc.t.Fatalf("gave up after %v waiting for %q in %s; tail:\n%s", timeout, s, path, tailFile(path, logTailLines))
		}
		time.Sleep(pollInterval)
	}
}
