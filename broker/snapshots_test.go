package broker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
)

func TestBrokerRestartsFromNewestSnapshot(t *testing.T) {
	f := newFakeController(t, 1, nil)
	addBrokers(t, f, 10)
	dir := t.TempDir()
	sd := metadatalog.SnapshotDir(dir)
	f.writeSnapshot(t, sd, 10, testClusterID)
	f.writeSnapshot(t, sd, 16, testClusterID)
	// What a crash during a write and during a download leave behind.
	leftovers := []string{
		filepath.Join(sd, snapshot.FileName(20, 1)+".part"),
		filepath.Join(sd, snapshot.FileName(30, 1)+".fetch.part"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("half a snapshot"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { cfg.Dir = dir })
	// Start loads before anything is fetched.
	if img := b.Image(); img.Offset < 16 || !hasBrokers(img, 10) {
		t.Fatalf("after Start the image is at offset %d, want the snapshot's 16 with its brokers", img.Offset)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s not removed at start: %v", p, err)
		}
	}
	waitFor(t, "the broker unfenced in its own image", func() bool { return brokerUnfencedInImage(b.Broker) })
	if offsets := f.fetchOffsets(); offsets[0] != 17 {
		t.Fatalf("fetch offsets %v: want the first at 17, after the loaded snapshot", offsets)
	}
}

func TestBrokerSkipsCorruptSnapshot(t *testing.T) {
	f := newFakeController(t, 1, nil)
	addBrokers(t, f, 10)
	dir := t.TempDir()
	sd := metadatalog.SnapshotDir(dir)
	f.writeSnapshot(t, sd, 10, testClusterID)
	newest := f.writeSnapshot(t, sd, 16, testClusterID)
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(newest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A snapshot of another cluster is skipped too, and left where it is.
	foreign := f.writeSnapshot(t, sd, 13, "other-cluster-id-0002")

	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { cfg.Dir = dir })
	if img := b.Image(); img.Offset != 10 {
		t.Fatalf("after Start the image is at offset %d, want the older snapshot's 10", img.Offset)
	}
	if _, err := os.Stat(newest + corruptSuffix); err != nil {
		t.Fatalf("the corrupt snapshot was not moved aside: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("the other cluster's snapshot: %v", err)
	}
	waitFor(t, "the broker unfenced in its own image", func() bool { return brokerUnfencedInImage(b.Broker) })
	if offsets := f.fetchOffsets(); offsets[0] != 11 {
		t.Fatalf("fetch offsets %v: want the first at 11, after the older snapshot", offsets)
	}
}

func TestBrokerSnapshotsByPolicyAndRestartsFromIt(t *testing.T) {
	f := newFakeController(t, 1, nil)
	addBrokers(t, f, 5)
	dir := t.TempDir()
	sd := metadatalog.SnapshotDir(dir)
	policy := func(cfg *Config) {
		cfg.Dir = dir
		cfg.SnapshotPolicy = metadatalog.SnapshotPolicy{MaxBytes: 1} // due after any applied data
	}
	b := startBroker(t, map[int32]string{1: f.addr}, policy)
	waitFor(t, "a snapshot written by policy", func() bool {
		snaps, _ := snapshot.List(sd)
		return len(snaps) > 0
	})
	waitFor(t, "the broker unfenced in its own image", func() bool { return brokerUnfencedInImage(b.Broker) })
	b.Close() // waits for a write in flight

	snaps, err := snapshot.List(sd)
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	newest := snaps[len(snaps)-1]
	img, h, err := metadatalog.ReadSnapshotImage(newest.Path)
	if err != nil || h.ClusterID != testClusterID || !hasBrokers(img, 5) {
		t.Fatalf("the snapshot at %d: cluster %q, err %v", newest.Offset, h.ClusterID, err)
	}
	if parts, _ := snapshot.PartFiles(sd); len(parts) != 0 {
		t.Fatalf("partial files left after Close: %v", parts)
	}

	before := len(f.fetchOffsets())
	again := startBroker(t, map[int32]string{1: f.addr}, policy)
	waitFor(t, "the restarted broker fetching", func() bool { return len(f.fetchOffsets()) > before })
	if got := f.fetchOffsets()[before]; got != int64(newest.Offset)+1 {
		t.Fatalf("the restarted broker fetched from %d, want %d after its snapshot", got, newest.Offset+1)
	}
	waitFor(t, "the restarted broker unfenced", func() bool { return brokerUnfencedInImage(again.Broker) })
}
