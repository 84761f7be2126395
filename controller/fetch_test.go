package controller

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// fetchTestDeadline bounds every wait; generous, since CI machines stall.
const fetchTestDeadline = 30 * time.Second

// startSingleController runs a one-voter metadata log and its controller, and waits until the controller
// is active and has committed its bootstrap records.
func startSingleController(t *testing.T) (*Controller, *metadatalog.Log) {
	t.Helper()
	return startSingleControllerWith(t, metadatalog.SnapshotPolicy{}, 0)
}

// startSingleControllerWith is startSingleController with a snapshot policy and catch-up tail.
func startSingleControllerWith(t *testing.T, policy metadatalog.SnapshotPolicy, catchUp uint64) (*Controller, *metadatalog.Log) {
	t.Helper()
	return startSingleControllerAt(t, metadatalog.LatestMetadataVersion.Level, policy, catchUp)
}

// startControllerAt starts a single-voter controller whose log is formatted at metadata.version level.
func startControllerAt(t *testing.T, level int16) *Controller {
	t.Helper()
	c, _ := startSingleControllerAt(t, level, metadatalog.SnapshotPolicy{}, 0)
	return c
}

// startSingleControllerAt runs a one-voter metadata log formatted at metadata.version level, with a
// snapshot policy and catch-up tail, and its controller, and waits until the controller is active at
// that level.
func startSingleControllerAt(t *testing.T, level int16, policy metadatalog.SnapshotPolicy, catchUp uint64) (*Controller, *metadatalog.Log) {
	t.Helper()
	mv, ok := metadatalog.MetadataVersionByLevel(level)
	if !ok {
		t.Fatalf("no metadata.version %d", level)
	}
	clusterID := metadatalog.RandomUUID()
	dir := filepath.Join(t.TempDir(), "node-1")
	if err := metadatalog.Format(dir, metadatalog.MetaProperties{ClusterID: clusterID, NodeID: 1}, metadatalog.BootstrapRecords(mv), false); err != nil {
		t.Fatal(err)
	}
	bootstrap, err := metadatalog.ReadBootstrap(dir)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	// The only voter needs no listener: a one-node quorum never sends to a peer.
	mlog, err := metadatalog.OpenLog(metadatalog.LogConfig{
		NodeID: 1, ClusterID: clusterID, Voters: map[uint64]string{1: "127.0.0.1:1"}, Dir: dir,
		ElectionTimeout: 100 * time.Millisecond, CatchUpEntries: catchUp, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{NodeID: 1, ClusterID: clusterID, Voters: map[int32]string{1: "127.0.0.1:1"}, Log: mlog, Bootstrap: bootstrap, Logger: logger,
		SnapshotPolicy: policy, OnFatal: func(err error) { t.Errorf("controller stopped: %v", err) }})
	mlog.Start()
	c.Start()
	t.Cleanup(func() {
		c.Close()
		mlog.Close()
	})
	deadline := time.Now().Add(fetchTestDeadline)
	for !c.Active() || c.Image().MetadataVersion() != level {
		if time.Now().After(deadline) {
			t.Fatalf("the controller never became active at metadata.version %d", level)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c, mlog
}

func fetchRequest(version int16, topic string, partition int32, offset int64, maxWait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.ReplicaID = 101
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// doFetch sends req through Handle and returns its only partition, after checking the answer survives
// the wire at the request's version.
func doFetch(t *testing.T, c *Controller, req *kmsg.FetchRequest) kmsg.FetchResponseTopicPartition {
	t.Helper()
	r, err := c.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle(Fetch): %v", err)
	}
	sent := r.(*kmsg.FetchResponse)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = req.Version
	if err := resp.ReadFrom(sent.AppendTo(nil)); err != nil {
		t.Fatalf("the Fetch v%d answer does not decode: %v", req.Version, err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Fetch answer %+v, want one topic with one partition and no top-level error", resp)
	}
	if resp.Topics[0].Topic != req.Topics[0].Topic {
		t.Fatalf("answer for topic %q, asked for %q", resp.Topics[0].Topic, req.Topics[0].Topic)
	}
	return resp.Topics[0].Partitions[0]
}

func decodeFetched(t *testing.T, p kmsg.FetchResponseTopicPartition) []logfetch.Entry {
	t.Helper()
	if p.ErrorCode != 0 {
		t.Fatalf("partition error %v", kerr.ErrorForCode(p.ErrorCode))
	}
	entries, err := logfetch.DecodeEntries(p.RecordBatches)
	if err != nil {
		t.Fatalf("the record batches do not decode: %v", err)
	}
	return entries
}

func metadataVersionIn(t *testing.T, data []byte) int32 {
	t.Helper()
	var batch metadatapb.RecordBatch
	if err := proto.Unmarshal(data, &batch); err != nil {
		t.Fatalf("entry data is not a record batch: %v", err)
	}
	for _, r := range batch.GetRecords() {
		if fl := r.GetFeatureLevel(); fl != nil && fl.GetName() == metadatalog.MetadataVersionFeature {
			return fl.GetFeatureLevel()
		}
	}
	return -1
}

func TestFetchReturnsCommittedEntries(t *testing.T) {
	c, mlog := startSingleController(t)
	for _, version := range []int16{4, 5, 11, 12} {
		p := doFetch(t, c, fetchRequest(version, MetadataTopic, 0, 1, time.Second))
		entries := decodeFetched(t, p)
		commit := mlog.CommittedOffset()
		wantStart := int64(1)
		if version < 5 {
			wantStart = -1 // LogStartOffset is on the wire from v5
		}
		if p.HighWatermark != int64(commit) || p.LastStableOffset != int64(commit) || p.LogStartOffset != wantStart {
			t.Fatalf("v%d: high watermark %d, last stable %d, log start %d; want %d, %d, %d", version, p.HighWatermark, p.LastStableOffset, p.LogStartOffset, commit, commit, wantStart)
		}
		if uint64(len(entries)) != commit {
			t.Fatalf("v%d: %d entries up to commit %d", version, len(entries), commit)
		}
		bootstrapped := false
		for i, e := range entries {
			if e.Offset != uint64(i)+1 || e.Epoch == 0 {
				t.Fatalf("v%d: entry %d at offset %d epoch %d", version, i, e.Offset, e.Epoch)
			}
			if len(e.Data) > 0 && metadataVersionIn(t, e.Data) == int32(metadatalog.LatestMetadataVersion.Level) {
				bootstrapped = true
			}
		}
		if !bootstrapped {
			t.Fatalf("v%d: the bootstrap metadata.version record is not among the entries", version)
		}
	}

	// A budget smaller than one entry still brings one.
	req := fetchRequest(12, MetadataTopic, 0, 1, time.Second)
	req.MaxBytes, req.Topics[0].Partitions[0].PartitionMaxBytes = 1, 1
	if entries := decodeFetched(t, doFetch(t, c, req)); len(entries) != 1 || entries[0].Offset != 1 {
		t.Fatalf("a one-byte fetch brought %+v, want just offset 1", entries)
	}
}

func TestFetchLongPoll(t *testing.T) {
	c, mlog := startSingleController(t)
	commit := mlog.CommittedOffset()

	// Nothing new: the poll ends at MaxWaitMillis with no batches but the high watermark, which is how
	// a broker knows it is current without new records.
	start := time.Now()
	p := doFetch(t, c, fetchRequest(12, MetadataTopic, 0, int64(commit)+1, 200*time.Millisecond))
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Fatalf("an empty poll answered after %v, before its MaxWaitMillis", waited)
	}
	if entries := decodeFetched(t, p); len(entries) != 0 || p.HighWatermark != int64(commit) {
		t.Fatalf("empty poll: %d entries, high watermark %d; want none and %d", len(entries), p.HighWatermark, commit)
	}
	// MinBytes 0 asks not to wait at all, as in Kafka.
	req := fetchRequest(12, MetadataTopic, 0, int64(commit)+1, 5*time.Second)
	req.MinBytes = 0
	start = time.Now()
	if p := doFetch(t, c, req); p.HighWatermark != int64(commit) || len(p.RecordBatches) != 0 {
		t.Fatalf("MinBytes 0: %+v", p)
	} else if time.Since(start) > 3*time.Second {
		t.Fatal("a MinBytes 0 fetch waited")
	}

	// A parked poll wakes as soon as a new entry commits: UpdateFeatures at the current level writes one.
	got := make(chan kmsg.FetchResponseTopicPartition, 1)
	go func() {
		r, err := c.Handle(context.Background(), fetchRequest(12, MetadataTopic, 0, int64(commit)+1, time.Minute))
		if err != nil {
			t.Errorf("Handle(Fetch): %v", err)
			close(got)
			return
		}
		got <- r.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}()
	time.Sleep(50 * time.Millisecond) // let it park; if it has not, it answers with the entry at once anyway
	start = time.Now()
	uf := kmsg.NewPtrUpdateFeaturesRequest()
	uf.Version = 1
	uf.TimeoutMillis = 5000
	fu := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	fu.Feature, fu.MaxVersionLevel, fu.UpgradeType = metadatalog.MetadataVersionFeature, metadatalog.LatestMetadataVersion.Level, upgradeTypeUpgrade
	uf.FeatureUpdates = append(uf.FeatureUpdates, fu)
	ctx, cancel := context.WithTimeout(context.Background(), fetchTestDeadline)
	defer cancel()
	r, err := c.Handle(ctx, uf)
	if err != nil {
		t.Fatal(err)
	}
	if code := r.(*kmsg.UpdateFeaturesResponse).ErrorCode; code != 0 {
		t.Fatalf("UpdateFeatures: %v", kerr.ErrorForCode(code))
	}
	var woken kmsg.FetchResponseTopicPartition
	select {
	case p, ok := <-got:
		if !ok {
			t.FailNow()
		}
		woken = p
	case <-time.After(fetchTestDeadline):
		t.Fatal("the parked fetch never answered")
	}
	// maxFetchWait caps the minute asked for; waking well before it shows the commit woke the poll.
	if waited := time.Since(start); waited >= maxFetchWait {
		t.Fatalf("the parked fetch answered after %v: it was not woken by the commit", waited)
	}
	entries := decodeFetched(t, woken)
	if len(entries) != 1 || entries[0].Offset != commit+1 || woken.HighWatermark != int64(commit+1) {
		t.Fatalf("woken fetch: %+v, high watermark %d; want the entry at %d", entries, woken.HighWatermark, commit+1)
	}
	if mv := metadataVersionIn(t, entries[0].Data); mv != int32(metadatalog.LatestMetadataVersion.Level) {
		t.Fatalf("the new entry sets metadata.version %d", mv)
	}
}

func TestFetchErrors(t *testing.T) {
	c, mlog := startSingleController(t)
	commit := int64(mlog.CommittedOffset())
	for _, tc := range []struct {
		topic     string
		partition int32
	}{{"payments", 0}, {MetadataTopic, 1}} {
		start := time.Now()
		p := doFetch(t, c, fetchRequest(12, tc.topic, tc.partition, 1, 2*time.Second))
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.Partition != tc.partition || len(p.RecordBatches) != 0 {
			t.Fatalf("%s/%d: %+v, want UNKNOWN_TOPIC_OR_PARTITION", tc.topic, tc.partition, p)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("%s/%d: an unknown partition waited for MaxWaitMillis", tc.topic, tc.partition)
		}
	}
	p := doFetch(t, c, fetchRequest(12, MetadataTopic, 0, 0, 2*time.Second))
	if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 1 || p.HighWatermark != commit || len(p.RecordBatches) != 0 {
		t.Fatalf("offset 0: %+v, want OFFSET_OUT_OF_RANGE with log start 1 and high watermark %d", p, commit)
	}
}

func TestFetchGate(t *testing.T) {
	for _, tc := range []struct {
		name           string
		active         bool
		level          int16
		leader, epoch  uint64
		refused        bool
		leaderID, lepo int32
	}{
		{"active at level 1", true, 1, 1, 3, false, -1, -1},
		{"active before bootstrap", true, 0, 1, 3, false, -1, -1},
		{"standby at level 1", false, 1, 2, 3, true, 2, 3},
		{"standby before bootstrap", false, 0, 2, 3, true, 2, 3},
		{"standby with no leader", false, 1, 0, 3, true, -1, -1},
		{"standby at level 2", false, 2, 2, 3, false, -1, -1},
		{"standby at level 4", false, 4, 0, 3, false, -1, -1},
	} {
		refused, id, epoch := fetchGate(tc.active, tc.level, tc.leader, tc.epoch)
		if refused != tc.refused || id != tc.leaderID || epoch != tc.lepo {
			t.Errorf("%s: fetchGate = %v, %d, %d; want %v, %d, %d", tc.name, refused, id, epoch, tc.refused, tc.leaderID, tc.lepo)
		}
	}
}

// TestFetchGateOnStandby drives the handler of a standby controller at level 1: it refuses at once,
// naming the leader, and the leader reaches the broker only from v12, where CurrentLeader is on the wire.
func TestFetchGateOnStandby(t *testing.T) {
	c := New(Config{NodeID: 2, Logger: slog.New(slog.DiscardHandler)}) // never started: a standby that replays nothing
	img, err := metadatalog.EmptyImage().Apply(1, 3, metadatalog.BootstrapRecords(metadatalog.MinMetadataVersion))
	if err != nil {
		t.Fatal(err)
	}
	c.image.Store(img)
	c.leader.Store(1)
	c.epoch.Store(3)
	for _, version := range []int16{4, 12} {
		start := time.Now()
		p := doFetch(t, c, fetchRequest(version, MetadataTopic, 0, 2, 2*time.Second))
		if p.ErrorCode != kerr.NotLeaderForPartition.Code || len(p.RecordBatches) != 0 || p.HighWatermark != -1 {
			t.Fatalf("v%d: %+v, want NOT_LEADER_OR_FOLLOWER with no high watermark", version, p)
		}
		if time.Since(start) > time.Second {
			t.Fatalf("v%d: a refused fetch waited for MaxWaitMillis", version)
		}
		wantID, wantEpoch := int32(-1), int32(-1) // tagged fields: absent before v12
		if version >= 12 {
			wantID, wantEpoch = 1, 3
		}
		if p.CurrentLeader.LeaderID != wantID || p.CurrentLeader.LeaderEpoch != wantEpoch {
			t.Fatalf("v%d: current leader %+v, want %d/%d", version, p.CurrentLeader, wantID, wantEpoch)
		}
	}
}

func TestEncodeFetchEntriesBudget(t *testing.T) {
	entries := []metadatalog.Entry{{Offset: 5, Epoch: 1, Data: make([]byte, 100)}, {Offset: 6, Epoch: 1}, {Offset: 7, Epoch: 1, Data: make([]byte, 100)}}
	one := logfetch.BatchSize(logfetch.Entry{Data: entries[0].Data})
	empty := logfetch.BatchSize(logfetch.Entry{})
	for _, tc := range []struct{ budget, want int }{{0, 1}, {one, 1}, {one + empty, 2}, {2*one + empty - 1, 2}, {2*one + empty, 3}} {
		b := encodeFetchEntries(entries, tc.budget)
		got, err := logfetch.DecodeEntries(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want || (tc.want > 1 && len(b) > tc.budget) {
			t.Errorf("budget %d: %d entries in %d bytes, want %d", tc.budget, len(got), len(b), tc.want)
		}
	}
	if b := encodeFetchEntries(nil, 100); b != nil {
		t.Errorf("no entries encoded to %d bytes", len(b))
	}
}
