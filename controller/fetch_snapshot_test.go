package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// startSnapshottingController runs a controller that snapshots after every few hundred bytes and keeps a
// catch-up tail of one entry, writes topics until its log has been compacted, and returns it with its
// newest snapshot.
func startSnapshottingController(t *testing.T) (*Controller, *metadatalog.Log, snapshot.Info) {
	t.Helper()
	c, mlog := startSingleControllerWith(t, metadatalog.SnapshotPolicy{MaxBytes: 200}, 1)
	for i := 0; mlog.FirstOffset() <= 1; i++ {
		if i > 200 {
			t.Fatal("the log was never compacted after snapshots")
		}
		// A cluster-wide config change: a write that needs no broker.
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType = kmsg.ConfigResourceTypeBroker
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "log.retention.ms", kmsg.StringPtr(fmt.Sprint(1000+i))
		res.Configs = append(res.Configs, cfg)
		req.Resources = append(req.Resources, res)
		if _, err := c.Handle(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	snaps, err := snapshot.List(mlog.SnapshotDir())
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot after compaction: %v", err)
	}
	return c, mlog, snaps[len(snaps)-1]
}

// A fetch below the log start is pointed at the newest snapshot, which downloads in chunks to the
// controller's own image; fetching resumes after it.
func TestFetchBelowLogStartPointsToSnapshot(t *testing.T) {
	c, mlog, newest := startSnapshottingController(t)
	p := doFetch(t, c, fetchRequest(12, MetadataTopic, 0, 1, 0))
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("fetch below the log start: error %v, %d bytes of records; want no error and no records", kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches))
	}
	// The policy may have written a newer one meanwhile; the pointer names a snapshot the dir holds.
	if p.SnapshotID.EndOffset < int64(newest.Offset) || p.SnapshotID.Epoch <= 0 {
		t.Fatalf("SnapshotID = %+v, want at least offset %d", p.SnapshotID, newest.Offset)
	}
	if p.LogStartOffset != int64(mlog.FirstOffset()) && p.LogStartOffset > p.SnapshotID.EndOffset+1 {
		t.Fatalf("log start %d is past the snapshot at %d: the fetcher could not resume after it", p.LogStartOffset, p.SnapshotID.EndOffset)
	}

	dir := t.TempDir()
	fetch := func(ctx context.Context, req *kmsg.FetchSnapshotRequest) (*kmsg.FetchSnapshotResponse, error) {
		r, err := c.Handle(ctx, req)
		if err != nil {
			return nil, err
		}
		return r.(*kmsg.FetchSnapshotResponse), nil
	}
	path, err := snapshot.Download(context.Background(), snapshot.DownloadRequest{
		Dir: dir, ClusterID: c.cfg.ClusterID, ReplicaID: 101, Offset: uint64(p.SnapshotID.EndOffset), Epoch: uint64(p.SnapshotID.Epoch), ChunkBytes: 300,
	}, fetch)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got, h, err := metadatalog.ReadSnapshotImage(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER, "", "log.retention.ms"); h.ClusterID != c.cfg.ClusterID || got.Offset != uint64(p.SnapshotID.EndOffset) || !ok {
		t.Fatalf("downloaded snapshot: cluster %s offset %d, holds the config written: %v", h.ClusterID, got.Offset, ok)
	}
	want, _, err := metadatalog.ReadSnapshotImage(snapshotPath(mlog, got.Offset, got.Epoch))
	if err != nil {
		t.Fatal(err)
	}
	g, w := got.Records(), want.Records()
	if len(g) != len(w) {
		t.Fatalf("downloaded %d records, the controller's file holds %d", len(g), len(w))
	}
	for i := range g {
		if !proto.Equal(g[i], w[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	next := doFetch(t, c, fetchRequest(12, MetadataTopic, 0, p.SnapshotID.EndOffset+1, 0))
	if next.ErrorCode != 0 || next.SnapshotID.EndOffset > 0 {
		t.Fatalf("fetch after the snapshot: error %v, snapshot %+v; want entries or nothing, no pointer", kerr.ErrorForCode(next.ErrorCode), next.SnapshotID)
	}
}

func snapshotPath(mlog *metadatalog.Log, offset, epoch uint64) string {
	return mlog.SnapshotDir() + "/" + snapshot.FileName(offset, epoch)
}

func TestFetchSnapshotErrors(t *testing.T) {
	c, _, newest := startSnapshottingController(t)
	ask := func(cluster *string, topic string, offset int64, epoch int32, pos int64) (*kmsg.FetchSnapshotResponse, *kmsg.FetchSnapshotResponseTopicPartition) {
		req := kmsg.NewPtrFetchSnapshotRequest()
		req.Version, req.ClusterID, req.MaxBytes = 1, cluster, 1000
		rt := kmsg.NewFetchSnapshotRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchSnapshotRequestTopicPartition()
		rp.SnapshotID.EndOffset, rp.SnapshotID.Epoch, rp.Position = offset, epoch, pos
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		r, err := c.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		resp := r.(*kmsg.FetchSnapshotResponse)
		// Every answer must survive the wire at the request's version.
		back := kmsg.NewPtrFetchSnapshotResponse()
		back.Version = req.Version
		if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("the answer does not decode: %v", err)
		}
		if len(back.Topics) == 0 {
			return back, nil
		}
		return back, &back.Topics[0].Partitions[0]
	}
	off, ep := int64(newest.Offset), int32(newest.Epoch)
	other := metadatalog.RandomUUID()
	if resp, _ := ask(&other, MetadataTopic, off, ep, 0); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.InconsistentClusterID) {
		t.Errorf("another cluster's id: %v, want INCONSISTENT_CLUSTER_ID", kerr.ErrorForCode(resp.ErrorCode))
	}
	cases := []struct {
		name   string
		topic  string
		offset int64
		epoch  int32
		pos    int64
		want   error
	}{
		{"a snapshot the controller does not hold", MetadataTopic, off + 1000, ep, 0, kerr.SnapshotNotFound},
		{"a negative id", MetadataTopic, -1, -1, 0, kerr.SnapshotNotFound},
		{"a position past the end", MetadataTopic, off, ep, newest.Size + 1, kerr.PositionOutOfRange},
		{"a negative position", MetadataTopic, off, ep, -1, kerr.PositionOutOfRange},
		{"another topic", "orders", off, ep, 0, kerr.UnknownTopicOrPartition},
	}
	for _, tc := range cases {
		_, p := ask(nil, tc.topic, tc.offset, tc.epoch, tc.pos)
		if got := kerr.ErrorForCode(p.ErrorCode); !errors.Is(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A chunk at the end is empty and says the size; one in the middle is at most MaxBytes.
	if _, p := ask(nil, MetadataTopic, off, ep, newest.Size); p.ErrorCode != 0 || len(p.Bytes) != 0 || p.Size != newest.Size {
		t.Errorf("chunk at the end: error %v, %d bytes, size %d; want none of %d", kerr.ErrorForCode(p.ErrorCode), len(p.Bytes), p.Size, newest.Size)
	}
	if _, p := ask(nil, MetadataTopic, off, ep, 10); p.ErrorCode != 0 || len(p.Bytes) != int(min(1000, newest.Size-10)) || p.Position != 10 {
		t.Errorf("chunk at 10: error %v, %d bytes at %d", kerr.ErrorForCode(p.ErrorCode), len(p.Bytes), p.Position)
	}
}
