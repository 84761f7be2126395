package controller

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"google.golang.org/protobuf/proto"
)

// rcTopic is the id of test topic n.
func rcTopic(n byte) [16]byte {
	var id [16]byte
	id[0], id[15] = n, n^0x5a
	return id
}

// rcBroker registers broker id at epoch 100+id, in the state given by one of "unfenced", "fenced",
// "shutting" (unfenced, in controlled shutdown).
func rcBroker(id int32, state string) *metadatapb.Record {
	rec := ccRegistered(id, 100+int64(id), byte(id), state == "fenced", state == "shutting")
	return rec
}

// rcPartition is a partition of topic n, as "replicas/isr/leader[/leader epoch/partition epoch]", e.g.
// "1,2,3/1,2/1" or "1,2,3/1,2/1/3/5".
func rcPartition(n byte, p int32, spec string) *metadatapb.Record {
	f := strings.Split(spec, "/")
	id := rcTopic(n)
	rec := &metadatapb.PartitionRecord{
		TopicId: id[:], PartitionId: p, Replicas: rcInts(f[0]), Isr: rcInts(f[1]), Leader: rcInts(f[2])[0],
	}
	if len(f) == 5 {
		rec.LeaderEpoch, rec.PartitionEpoch = rcInts(f[3])[0], rcInts(f[4])[0]
	}
	return &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: rec}}
}

func rcInts(s string) []int32 {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		var v int32
		if _, err := fmt.Sscan(f, &v); err != nil {
			panic(err)
		}
		out = append(out, v)
	}
	return out
}

// rcImage is an image with brokers 1–5 in the states given (default unfenced) and topic "t1" with the
// partitions given as specs.
func rcImage(t testing.TB, states map[int32]string, partitions ...string) *metadatalog.Image {
	t.Helper()
	id := rcTopic(1)
	recs := []*metadatapb.Record{{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{
		Name: metadatalog.MetadataVersionFeature, FeatureLevel: int32(metadatalog.LatestMetadataVersion.Level)}}}}
	for b := int32(1); b <= 5; b++ {
		state := states[b]
		if state == "gone" {
			continue
		}
		if state == "" {
			state = "unfenced"
		}
		recs = append(recs, rcBroker(b, state))
	}
	recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: "t1", TopicId: id[:]}}})
	for i, spec := range partitions {
		recs = append(recs, rcPartition(1, int32(i), spec))
	}
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// rcState renders a partition as "replicas/isr/leader le=L pe=P".
func rcState(img *metadatalog.Image, n byte, p int32) string {
	part, ok := img.Partition(rcTopic(n), p)
	if !ok {
		return "missing"
	}
	j := func(s []int32) string {
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = fmt.Sprint(v)
		}
		return strings.Join(out, ",")
	}
	return fmt.Sprintf("%s/%s/%d le=%d pe=%d", j(part.Replicas), j(part.ISR), part.Leader, part.LeaderEpoch, part.Epoch)
}

// rcChanges renders PartitionChangeRecords as "p:isr=…,leader=…" with absent fields left out.
func rcChanges(records []*metadatapb.Record) []string {
	out := []string{}
	for _, r := range records {
		c := r.GetPartitionChange()
		if c == nil {
			out = append(out, ccDescribe([]*metadatapb.Record{r})...)
			continue
		}
		s := fmt.Sprintf("%d:", c.GetPartitionId())
		var parts []string
		if c.Isr != nil {
			parts = append(parts, fmt.Sprintf("isr=%v", c.GetIsr().GetValues()))
		}
		if c.Leader != nil {
			parts = append(parts, fmt.Sprintf("leader=%d", c.GetLeader()))
		}
		out = append(out, s+strings.Join(parts, ","))
	}
	return out
}

func TestEvict(t *testing.T) {
	for _, tc := range []struct {
		name    string
		states  map[int32]string
		parts   []string
		evict   []int32
		changes []string
		after   []string // each partition once applied: replicas/isr/leader le= pe=
	}{{
		name:    "leader fenced with the ISR remaining: the next ISR member in replica order leads",
		parts:   []string{"1,2,3/1,2,3/1", "1,3,2/1,2,3/1"},
		evict:   []int32{1},
		changes: []string{"0:isr=[2 3],leader=2", "1:isr=[2 3],leader=3"},
		after:   []string{"1,2,3/2,3/2 le=1 pe=1", "1,3,2/2,3/3 le=1 pe=1"},
	}, {
		name:    "leader fenced as the last ISR member: offline, the ISR kept",
		parts:   []string{"1,2,3/1/1"},
		evict:   []int32{1},
		changes: []string{"0:leader=-1"},
		after:   []string{"1,2,3/1/-1 le=1 pe=1"},
	}, {
		name:    "follower fenced: the ISR shrinks, the leader and leader epoch stay",
		parts:   []string{"1,2,3/1,2,3/1", "2,1/2,1/2"},
		evict:   []int32{3},
		changes: []string{"0:isr=[1 2]"},
		after:   []string{"1,2,3/1,2/1 le=0 pe=1", "2,1/2,1/2 le=0 pe=0"},
	}, {
		name:    "a broker in no ISR: nothing to write",
		parts:   []string{"1,2,3/1,2,3/1"},
		evict:   []int32{4},
		changes: []string{},
		after:   []string{"1,2,3/1,2,3/1 le=0 pe=0"},
	}, {
		name:    "leadership never goes to a broker in controlled shutdown",
		states:  map[int32]string{2: "shutting"},
		parts:   []string{"1,2,3/1,2,3/1"},
		evict:   []int32{1},
		changes: []string{"0:isr=[2 3],leader=3"},
		after:   []string{"1,2,3/2,3/3 le=1 pe=1"},
	}, {
		name:    "fenced and unregistered brokers are never elected, even from the ISR",
		states:  map[int32]string{2: "fenced", 3: "gone"},
		parts:   []string{"1,2,3,4/1,2,3,4/1", "1,2,3/1,2,3/1"},
		evict:   []int32{1},
		changes: []string{"0:isr=[2 3 4],leader=4", "1:isr=[2 3],leader=-1"},
		after:   []string{"1,2,3,4/2,3,4/4 le=1 pe=1", "1,2,3/2,3/-1 le=1 pe=1"},
	}, {
		name:    "a partition holding several evicted brokers changes once",
		parts:   []string{"1,2,3/1,2,3/1", "2,3,1/2,3,1/2", "4,5/4,5/4"},
		evict:   []int32{1, 2},
		changes: []string{"0:isr=[3],leader=3", "1:isr=[3],leader=3"},
		after:   []string{"1,2,3/3/3 le=1 pe=1", "2,3,1/3/3 le=1 pe=1", "4,5/4,5/4 le=0 pe=0"},
	}, {
		name:    "all ISR members evicted together: offline, the ISR kept",
		parts:   []string{"1,2,3/1,2/2"},
		evict:   []int32{2, 1},
		changes: []string{"0:leader=-1"},
		after:   []string{"1,2,3/1,2/-1 le=1 pe=1"},
	}, {
		name:    "an offline partition loses the evicted broker from its ISR and comes back on another",
		states:  map[int32]string{},
		parts:   []string{"1,2,3/1,2/-1"},
		evict:   []int32{1},
		changes: []string{"0:isr=[2],leader=2"},
		after:   []string{"1,2,3/2/2 le=1 pe=1"},
	}, {
		name:    "a leader outside its own ISR still loses leadership",
		parts:   []string{"1,2,3/2,3/1"},
		evict:   []int32{1},
		changes: []string{"0:leader=2"},
		after:   []string{"1,2,3/2,3/2 le=1 pe=1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			img := rcImage(t, tc.states, tc.parts...)
			records := replicationControl{}.evict(img, tc.evict)
			if got := rcChanges(records); !slices.Equal(got, tc.changes) {
				t.Fatalf("records %q, want %q", got, tc.changes)
			}
			img = ccApply(t, img, 2, records)
			for i, want := range tc.after {
				if got := rcState(img, 1, int32(i)); got != want {
					t.Errorf("partition %d is %s, want %s", i, got, want)
				}
			}
			for _, b := range tc.evict {
				if img.LeadsAny(b) {
					t.Errorf("broker %d still leads", b)
				}
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		states  map[int32]string
		parts   []string
		admit   int32
		changes []string
		after   []string
	}{{
		name:    "unfencing brings back the partitions whose ISR holds it",
		states:  map[int32]string{1: "fenced", 2: "fenced"},
		parts:   []string{"1,2,3/1/-1", "2,1/1,2/-1", "1,2/2/-1"},
		admit:   1,
		changes: []string{"0:leader=1", "1:leader=1"},
		after:   []string{"1,2,3/1/1 le=1 pe=1", "2,1/1,2/1 le=1 pe=1", "1,2/2/-1 le=0 pe=0"},
	}, {
		name:    "an offline partition whose ISR holds only brokers still away stays offline: no unclean election",
		states:  map[int32]string{2: "fenced", 3: "fenced"},
		parts:   []string{"1,2,3/2,3/-1"},
		admit:   1,
		changes: []string{},
		after:   []string{"1,2,3/2,3/-1 le=0 pe=0"},
	}, {
		name:    "replica order decides among acceptable ISR members",
		states:  map[int32]string{1: "fenced", 3: "fenced"},
		parts:   []string{"3,2,1/1,2,3/-1"},
		admit:   1,
		changes: []string{"0:leader=2"},
		after:   []string{"3,2,1/1,2,3/2 le=1 pe=1"},
	}, {
		name:    "partitions that have a leader are left alone",
		states:  map[int32]string{1: "fenced"},
		parts:   []string{"1,2,3/1,2,3/2"},
		admit:   1,
		changes: []string{},
		after:   []string{"1,2,3/1,2,3/2 le=0 pe=0"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			img := rcImage(t, tc.states, tc.parts...)
			records := replicationControl{}.admit(img, tc.admit)
			if got := rcChanges(records); !slices.Equal(got, tc.changes) {
				t.Fatalf("records %q, want %q", got, tc.changes)
			}
			img = ccApply(t, img, 2, records)
			for i, want := range tc.after {
				if got := rcState(img, 1, int32(i)); got != want {
					t.Errorf("partition %d is %s, want %s", i, got, want)
				}
			}
		})
	}
}

// TestResumeLeadership: what a new active controller finishes when a cut-short write left brokers
// that may not lead still leading, or offline partitions that an ISR member could lead.
func TestResumeLeadership(t *testing.T) {
	rc := replicationControl{}
	img := rcImage(t, map[int32]string{2: "shutting", 4: "fenced"},
		"2,1,3/2,1,3/2", // led by a broker in controlled shutdown
		"4,5/4,5/4",     // led by a fenced broker
		"1,2/1/-1",      // offline, but broker 1 can lead
		"4/4/-1",        // offline, and only a fenced broker could lead
		"1,3/1,3/1",     // fine
	)
	records, brokers := rc.unfinishedEvictions(img)
	if !slices.Equal(brokers, []int32{2, 4}) {
		t.Fatalf("brokers %v, want [2 4]", brokers)
	}
	if got, want := rcChanges(records), []string{"0:isr=[1 3],leader=1", "1:isr=[5],leader=5"}; !slices.Equal(got, want) {
		t.Fatalf("evictions %q, want %q", got, want)
	}
	img = ccApply(t, img, 2, records)
	if got, want := rcChanges(rc.electOffline(img)), []string{"2:leader=1"}; !slices.Equal(got, want) {
		t.Fatalf("elections %q, want %q", got, want)
	}
	if records, brokers := rc.unfinishedEvictions(rcImage(t, nil, "1,2/1,2/1")); len(records) != 0 || len(brokers) != 0 {
		t.Fatalf("a healthy image: %q for %v", rcChanges(records), brokers)
	}
}

func TestLeads(t *testing.T) {
	img := rcImage(t, nil, "1,2,3/1,2,3/1", "2,3/2,3/-1")
	rc := replicationControl{}
	if !rc.leads(img, 1) || rc.leads(img, 2) || rc.leads(img, 3) || rc.leads(img, 9) {
		t.Fatal("leads is wrong")
	}
}

// TestLeadershipThroughTheBrokerStateMachine drives clusterControl, with the real replication manager,
// through fencing, unfencing and controlled shutdown, applying what each step writes.
func TestLeadershipThroughTheBrokerStateMachine(t *testing.T) {
	cc := clusterControl{clusterID: ccCluster}
	img := rcImage(t, nil, "1,2,3/1,2,3/1", "2,1,3/2,1,3/2", "1,2/1/1")
	offset := uint64(2)
	step := func(id int32, wantFence, wantShutDown bool) heartbeatOutcome {
		t.Helper()
		b, _ := img.Broker(id)
		out := cc.heartbeat(img, brokerHeartbeat{id: id, epoch: b.Epoch, metadataOffset: 1 << 40, wantFence: wantFence, wantShutDown: wantShutDown}, offset,
			shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { return 1 << 40 }})
		if out.code != nil {
			t.Fatalf("heartbeat refused: %v", out.code)
		}
		img = ccApply(t, img, offset, out.records)
		offset++
		return out
	}
	states := func() []string {
		return []string{rcState(img, 1, 0), rcState(img, 1, 1), rcState(img, 1, 2)}
	}

	// Broker 1 asks to shut down while it leads: controlled shutdown moves every leadership away, and
	// never to broker 1.
	if out := step(1, false, true); out.to != brokerControlledShutdown {
		t.Fatalf("to %v, want CONTROLLED_SHUTDOWN", out.to)
	}
	want := []string{"1,2,3/2,3/2 le=1 pe=1", "2,1,3/2,3/2 le=0 pe=1", "1,2/1/-1 le=1 pe=1"}
	if got := states(); !slices.Equal(got, want) {
		t.Fatalf("after controlled shutdown: %q, want %q", got, want)
	}
	if img.LeadsAny(1) {
		t.Fatal("broker 1 leads in controlled shutdown")
	}
	// Broker 2 is fenced: broker 3 takes what it led; 1 is still shutting down, so 1-2 stays offline.
	if out := step(2, true, false); out.to != brokerFenced {
		t.Fatalf("to %v, want FENCED", out.to)
	}
	want = []string{"1,2,3/3/3 le=2 pe=2", "2,1,3/3/3 le=1 pe=2", "1,2/1/-1 le=1 pe=1"}
	if got := states(); !slices.Equal(got, want) {
		t.Fatalf("after fencing 2: %q, want %q", got, want)
	}
	// Broker 1 completes its shutdown (fenced), registers again and is unfenced: 1-2 comes back on it.
	if out := step(1, false, true); out.to != brokerShutdownNow {
		t.Fatalf("to %v, want SHUTDOWN_NOW", out.to)
	}
	out := cc.register(img, ccRequest(1, 9), offset, 0)
	img = ccApply(t, img, offset, out.records)
	offset++
	if out := step(1, false, false); out.to != brokerUnfenced {
		t.Fatalf("to %v, want UNFENCED", out.to)
	}
	want = []string{"1,2,3/3/3 le=2 pe=2", "2,1,3/3/3 le=1 pe=2", "1,2/1/1 le=2 pe=2"}
	if got := states(); !slices.Equal(got, want) {
		t.Fatalf("after unfencing 1: %q, want %q", got, want)
	}
}

// rcLeaderImage is an image with brokers 1–5 unfenced and partitions partitions, all led by broker 1
// with replicas {1, x, y}, perTopic to a topic.
func rcLeaderImage(tb testing.TB, partitions, perTopic int) *metadatalog.Image {
	tb.Helper()
	recs := []*metadatapb.Record{{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{
		Name: metadatalog.MetadataVersionFeature, FeatureLevel: int32(metadatalog.LatestMetadataVersion.Level)}}}}
	for b := int32(1); b <= 5; b++ {
		recs = append(recs, rcBroker(b, "unfenced"))
	}
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: recs})
	if err != nil {
		tb.Fatal(err)
	}
	offset := uint64(1)
	for start := 0; start < partitions; start += 10_000 {
		recs = recs[:0]
		for i := start; i < min(start+10_000, partitions); i++ {
			var id [16]byte
			binary.BigEndian.PutUint32(id[:], uint32(i/perTopic))
			id[15] = 7
			if i%perTopic == 0 {
				recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: fmt.Sprintf("t%06d", i/perTopic), TopicId: id[:]}}})
			}
			x := int32(2 + i%4)
			y := int32(2 + (i+1)%4)
			recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{
				TopicId: id[:], PartitionId: int32(i % perTopic), Replicas: []int32{1, x, y}, Isr: []int32{1, x, y}, Leader: 1,
			}}})
		}
		offset++
		if img, err = img.Apply(offset, 1, &metadatapb.RecordBatch{Records: recs}); err != nil {
			tb.Fatal(err)
		}
	}
	return img
}

// rcSplit is how Controller.writeInBatches cuts a write.
func rcSplit(records []*metadatapb.Record) [][]*metadatapb.Record {
	var out [][]*metadatapb.Record
	for len(records) > maxRecordsPerBatch {
		out = append(out, records[:maxRecordsPerBatch])
		records = records[maxRecordsPerBatch:]
	}
	return append(out, records)
}

// TestFencingABrokerThatLeads100kPartitions: the fence of a broker that leads 100,000 partitions is
// written in bounded batches, the fence itself in the last, and once that one applies the broker leads
// nothing and is in no ISR. Before it, the broker is never shown fenced while it leads.
func TestFencingABrokerThatLeads100kPartitions(t *testing.T) {
	const partitions = 100_000
	img := rcLeaderImage(t, partitions, 1000)
	b, _ := img.Broker(1)
	cc := clusterControl{clusterID: ccCluster}
	out := cc.heartbeat(img, brokerHeartbeat{id: 1, epoch: b.Epoch, metadataOffset: 1 << 40, wantFence: true}, 100,
		shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { return 1 << 40 }})
	if out.to != brokerFenced || len(out.records) != partitions+1 {
		t.Fatalf("to %v with %d records, want FENCED with %d", out.to, len(out.records), partitions+1)
	}
	batches := rcSplit(out.records)
	if len(batches) != 11 {
		t.Fatalf("%d batches, want 11", len(batches))
	}
	offset := uint64(100)
	for i, batch := range batches {
		if len(batch) > maxRecordsPerBatch {
			t.Fatalf("batch %d holds %d records", i, len(batch))
		}
		img = ccApply(t, img, offset, batch)
		offset++
		b, _ := img.Broker(1)
		if last := i == len(batches)-1; b.Fenced != last {
			t.Fatalf("after batch %d the broker is fenced=%v", i, b.Fenced)
		}
		if b.Fenced && img.LeadsAny(1) {
			t.Fatal("fenced while it leads")
		}
	}
	if img.LeadsAny(1) {
		t.Fatal("broker 1 still leads")
	}
	img.PartitionsInISR(1, func(topic [16]byte, p int32, _ *metadatalog.Partition) bool {
		t.Fatalf("broker 1 still in the ISR of %x-%d", topic, p)
		return false
	})
	n := 0
	for b := int32(2); b <= 5; b++ {
		img.PartitionsLedBy(b, func([16]byte, int32, *metadatalog.Partition) bool { n++; return true })
	}
	if n != partitions {
		t.Fatalf("%d partitions have a new leader, want %d", n, partitions)
	}
}

// rcEncode is the batch as the controller proposes it.
func rcEncode(tb testing.TB, records []*metadatapb.Record) []byte {
	data, err := proto.Marshal(&metadatapb.RecordBatch{Records: records, AppendTimeMs: time.Now().UnixMilli()})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// BenchmarkFenceLeaderOf100kPartitions is the event loop's work to fence a broker that leads 100,000
// partitions (replication factor 3, 100 partitions a topic): deciding the records (evict), encoding
// each batch and applying it to the speculative image, as Controller.write does. ns/partition is the
// total over the partitions moved.
func BenchmarkFenceLeaderOf100kPartitions(b *testing.B) {
	const partitions = 100_000
	img := rcLeaderImage(b, partitions, 100)
	broker, _ := img.Broker(1)
	fence := registrationChange(broker, metadatapb.BoolChange_BOOL_CHANGE_TRUE, metadatapb.BoolChange_BOOL_CHANGE_NONE)
	var decide, encode, apply time.Duration
	var bytes int
	cpu0 := rcCPU()
	for b.Loop() {
		t0 := time.Now()
		records := append(replicationControl{}.evict(img, []int32{1}), fence)
		t1 := time.Now()
		next := img
		offset := uint64(100)
		for _, batch := range rcSplit(records) {
			t2 := time.Now()
			data := rcEncode(b, batch)
			bytes += len(data)
			t3 := time.Now()
			var err error
			if next, err = next.Apply(offset, 1, &metadatapb.RecordBatch{Records: batch}); err != nil {
				b.Fatal(err)
			}
			offset++
			encode += t3.Sub(t2)
			apply += time.Since(t3)
		}
		decide += t1.Sub(t0)
		if next.LeadsAny(1) {
			b.Fatal("still leads")
		}
	}
	n := float64(b.N) * partitions
	b.ReportMetric(float64(rcCPU()-cpu0)/n, "cpu-ns/partition")
	b.ReportMetric(float64(decide+encode+apply)/n, "ns/partition")
	b.ReportMetric(float64(decide)/n, "decide-ns/partition")
	b.ReportMetric(float64(encode)/n, "encode-ns/partition")
	b.ReportMetric(float64(apply)/n, "apply-ns/partition")
	b.ReportMetric(float64(bytes)/n, "log-bytes/partition")
}

// BenchmarkAdmit100kOfflinePartitions is the work of unfencing the only ISR member of 100,000
// offline partitions: electing it everywhere, encoding and applying.
func BenchmarkAdmit100kOfflinePartitions(b *testing.B) {
	const partitions = 100_000
	img := rcLeaderImage(b, partitions, 100)
	// Every partition's ISR is {1}, and 1 was fenced: offline everywhere.
	var shrink []*metadatapb.Record
	img.PartitionsLedBy(1, func(topic [16]byte, p int32, _ *metadatalog.Partition) bool {
		l := int32(-1)
		shrink = append(shrink, &metadatapb.Record{Record: &metadatapb.Record_PartitionChange{PartitionChange: &metadatapb.PartitionChangeRecord{
			TopicId: slices.Clone(topic[:]), PartitionId: p, Isr: &metadatapb.Int32List{Values: []int32{1}}, Leader: &l}}})
		return true
	})
	broker, _ := img.Broker(1)
	shrink = append(shrink, registrationChange(broker, metadatapb.BoolChange_BOOL_CHANGE_TRUE, metadatapb.BoolChange_BOOL_CHANGE_NONE))
	img, err := img.Apply(50, 1, &metadatapb.RecordBatch{Records: shrink})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := rcCPU()
	for b.Loop() {
		records := replicationControl{}.admit(img, 1)
		if len(records) != partitions {
			b.Fatalf("%d records", len(records))
		}
		next, offset := img, uint64(100)
		for _, batch := range rcSplit(records) {
			rcEncode(b, batch)
			if next, err = next.Apply(offset, 1, &metadatapb.RecordBatch{Records: batch}); err != nil {
				b.Fatal(err)
			}
			offset++
		}
	}
	b.ReportMetric(float64(rcCPU()-cpu0)/float64(b.N)/partitions, "cpu-ns/partition")
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/partitions, "ns/partition")
}

// rcCPU is the CPU time the process has used (every thread, the collector's too), which a busy
// machine inflates less than the time on the clock.
func rcCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rcBatchesAfter reads the committed batches after offset from the controller's log.
func rcBatchesAfter(t *testing.T, c *Controller, offset uint64) []*metadatapb.RecordBatch {
	t.Helper()
	var out []*metadatapb.RecordBatch
	for next := offset + 1; next <= c.Image().Offset; {
		entries := decodeFetched(t, doFetch(t, c, fetchRequest(12, MetadataTopic, 0, int64(next), time.Second)))
		if len(entries) == 0 {
			t.Fatalf("nothing fetched at offset %d", next)
		}
		for _, e := range entries {
			batch := &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(e.Data, batch); err != nil {
				t.Fatal(err)
			}
			out = append(out, batch)
			next = e.Offset + 1
		}
	}
	return out
}

// TestFencingOverTheWireIsBounded: a running controller fences a broker that leads more partitions
// than one batch holds, both when the broker asks and when its session expires. The log shows the
// leader moves in batches of at most maxRecordsPerBatch with the fence last, and once the fence has
// committed the broker leads nothing.
func TestFencingOverTheWireIsBounded(t *testing.T) {
	const partitions = 2*maxRecordsPerBatch + 2500
	const timeout = 5 * time.Second
	c, clusterID := mtController(t, timeout)
	epochs := rcLiveBrokers(t, c, clusterID, 4)
	// Brokers 2–4 stay alive throughout.
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(timeout / 10):
			}
			for id := int32(2); id <= 4; id++ {
				mtHeartbeat(t, c, id, epochs[id], 1<<40, false, false)
			}
		}
	}()
	write := func(topic byte, leader int32) {
		id := rcTopic(topic)
		records := []*metadatapb.Record{{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: fmt.Sprintf("t%d", topic), TopicId: id[:]}}}}
		for p := int32(0); p < partitions; p++ {
			f := 2 + p%3
			records = append(records, rcPartition(topic, p, fmt.Sprintf("%d,%d/%d,%d/%d", leader, f, leader, f, leader)))
		}
		rcWrite(t, c, records)
	}
	check := func(how string, before uint64) {
		t.Helper()
		mtWait(t, "the fence in the published image", func() bool {
			b, _ := c.Image().Broker(1)
			return b.Fenced
		})
		// Batches after the fence (another broker's, should a loaded machine delay its heartbeats)
		// are not this fence's business.
		batches := rcBatchesAfter(t, c, before)
		fence := -1
		for i, b := range batches {
			for j, r := range b.Records {
				if ch := r.GetBrokerRegistrationChange(); ch != nil && ch.GetBrokerId() == 1 && ch.GetFenced() == metadatapb.BoolChange_BOOL_CHANGE_TRUE {
					if j != len(b.Records)-1 {
						t.Fatalf("%s: the fence is record %d of %d in its batch", how, j, len(b.Records))
					}
					fence = i
				}
			}
		}
		if fence < 2 {
			t.Fatalf("%s: the fence is in batch %d", how, fence)
		}
		moves := 0
		for i, b := range batches[:fence+1] {
			if len(b.Records) > maxRecordsPerBatch {
				t.Fatalf("%s: batch %d holds %d records", how, i, len(b.Records))
			}
			for _, r := range b.Records {
				if r.GetPartitionChange() != nil {
					moves++
				}
			}
		}
		if moves != partitions {
			t.Fatalf("%s: %d leader moves, want %d", how, moves, partitions)
		}
		img := c.Image()
		if b, _ := img.Broker(1); !b.Fenced || img.LeadsAny(1) {
			t.Fatalf("%s: broker 1 fenced=%v, leads=%v", how, b.Fenced, img.LeadsAny(1))
		}
	}

	// 1. The broker asks to be fenced: the answer comes once the last batch, with the fence, commits.
	write(1, 1)
	before := c.Image().Offset
	if hb := mtHeartbeat(t, c, 1, epochs[1], 1<<40, true, false); hb.ErrorCode != 0 || !hb.IsFenced {
		t.Fatalf("fence answered %+v", hb)
	}
	check("asked", before)

	// 2. It comes back, leads a second topic, then goes silent: its session expires.
	if hb := mtHeartbeat(t, c, 1, epochs[1], 1<<40, false, false); hb.ErrorCode != 0 || hb.IsFenced {
		t.Fatalf("unfence answered %+v", hb)
	}
	write(2, 1)
	before = c.Image().Offset
	mtWait(t, "broker 1's session to expire", func() bool {
		b, _ := c.Image().Broker(1)
		return b.Fenced
	})
	check("expired", before)
}
