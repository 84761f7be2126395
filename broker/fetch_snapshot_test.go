package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testChunkBytes is small enough that a test snapshot takes many FetchSnapshot requests.
const testChunkBytes = 128

// addBrokers appends registrations of brokers 1..n, one entry each, so that a snapshot of the fake's
// log is worth downloading in chunks.
func addBrokers(t *testing.T, f *fakeController, n int) {
	t.Helper()
	for id := int32(1); id <= int32(n); id++ {
		offset := f.lastOffset() + 1
		f.appendRaw(batchBytes(t, rec(&metadatapb.RegisterBrokerRecord{
			BrokerId: id, BrokerEpoch: offset, IncarnationId: make([]byte, 16), Rack: fmt.Sprintf("rack-%d", id%3),
			Endpoints: []*metadatapb.Endpoint{ep("PLAINTEXT", fmt.Sprintf("broker-%d.example.com", id), 9092)},
		})))
	}
}

// snapshotController serves a log of 16 entries (brokers 1..10 at offsets 7..16) whose first 16
// offsets went into a snapshot, so a new broker must catch up by snapshot.
func snapshotController(t *testing.T, setup func(*fakeController)) (*fakeController, SnapshotID) {
	t.Helper()
	f := newFakeController(t, 1, func(f *fakeController) {
		f.snapDir = t.TempDir()
		if setup != nil {
			setup(f)
		}
	})
	addBrokers(t, f, 10)
	o := f.lastOffset()
	f.writeSnapshot(t, f.snapDir, o, testClusterID)
	f.setLogStart(o+1, nil)
	return f, SnapshotID{Offset: uint64(o), Epoch: 1}
}

func withSnapshotChunks(cfg *Config) { cfg.Knobs.snapshotChunkBytes = testChunkBytes }

func hasBrokers(img *metadatalog.Image, n int32) bool {
	for id := int32(1); id <= n; id++ {
		if _, ok := img.Broker(id); !ok {
			return false
		}
	}
	return true
}

func contains(offsets []int64, o int64) bool {
	for _, x := range offsets {
		if x == o {
			return true
		}
	}
	return false
}

func TestBrokerCatchesUpBySnapshot(t *testing.T) {
	// Without Dir the download goes to a temporary directory, removed once the snapshot is loaded.
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	f, snap := snapshotController(t, nil)
	t.Setenv("TMPDIR", tmp)
	b := startBroker(t, map[int32]string{1: f.addr}, withSnapshotChunks)

	// The registration lands at the snapshot's offset + 1 and the unfencing after it: the broker
	// follows the tail past the snapshot.
	waitFor(t, "the broker unfenced in its own image", func() bool { return brokerUnfencedInImage(b.Broker) })
	img := b.Image()
	if !hasBrokers(img, 10) || img.MetadataVersion() != fakeMV {
		t.Fatalf("the image at offset %d lacks the snapshot's content (mv %d)", img.Offset, img.MetadataVersion())
	}
	reqs := f.snapRequests()
	size := fileSize(t, filepath.Join(f.snapDir, snapshot.FileName(snap.Offset, snap.Epoch)))
	if want := int(size+testChunkBytes-1) / testChunkBytes; len(reqs) != want {
		t.Fatalf("%d FetchSnapshot requests for a %d-byte snapshot in %d-byte chunks, want %d", len(reqs), size, testChunkBytes, want)
	}
	for i, r := range reqs {
		if r.id != snap || r.maxBytes != testChunkBytes || r.position != int64(i)*testChunkBytes {
			t.Fatalf("request %d: %+v, want snapshot %v at position %d with max %d", i, r, snap, i*testChunkBytes, testChunkBytes)
		}
	}
	if offsets := f.fetchOffsets(); offsets[0] != 1 || !contains(offsets, int64(snap.Offset)+1) {
		t.Fatalf("fetch offsets %v: want 1 first, then %d after the snapshot", offsets, snap.Offset+1)
	}
	waitFor(t, "the temporary download directory removed", func() bool {
		entries, err := os.ReadDir(tmp)
		return err == nil && len(entries) == 0
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestSnapshotDownloadResumesAfterTransportError(t *testing.T) {
	var cut atomic.Int64 // the position of the request whose connection was cut, 0 before
	f, snap := snapshotController(t, func(f *fakeController) {
		f.onSnapshotChunk = func(_ *fakeController, p *kmsg.FetchSnapshotRequestTopicPartition) error {
			if p.Position >= 2*testChunkBytes && cut.CompareAndSwap(0, p.Position) {
				return errors.New("connection cut by the test")
			}
			return nil
		}
	})
	dir := t.TempDir()
	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { withSnapshotChunks(cfg); cfg.Dir = dir })
	waitFor(t, "the broker past the snapshot", func() bool { return b.Image().Offset >= snap.Offset })

	reqs := f.snapRequests()
	at := cut.Load()
	if at == 0 {
		t.Fatal("no request was cut")
	}
	for i, r := range reqs {
		if r.position == at {
			// The cut request, then the same position again: the download resumed from its partial file
			// instead of starting over.
			if i+1 >= len(reqs) || reqs[i+1].position != at {
				t.Fatalf("after the cut at position %d the requests went on %+v", at, reqs[i+1:])
			}
			break
		}
	}
	for _, r := range reqs[1:] {
		if r.position == 0 {
			t.Fatalf("the download started over: %+v", reqs)
		}
	}
	// The download is the broker's newest snapshot, and nothing partial is left.
	sd := metadatalog.SnapshotDir(dir)
	if _, err := os.Stat(filepath.Join(sd, snapshot.FileName(snap.Offset, snap.Epoch))); err != nil {
		t.Fatal(err)
	}
	if parts, _ := snapshot.PartFiles(sd); len(parts) != 0 {
		t.Fatalf("partial files left: %v", parts)
	}
}

func TestSnapshotNotFoundFetchesTheNewerOne(t *testing.T) {
	// The controller names snapshot A at offset 10; while the broker asks for it, retention replaces it
	// with B at offset 16 and the log start moves past 16.
	staging := t.TempDir()
	older := SnapshotID{Offset: 10, Epoch: 1}
	var once sync.Once
	f := newFakeController(t, 1, func(f *fakeController) {
		f.snapDir = t.TempDir()
		f.onSnapshotChunk = func(f *fakeController, p *kmsg.FetchSnapshotRequestTopicPartition) error {
			if uint64(p.SnapshotID.EndOffset) != older.Offset {
				return nil
			}
			once.Do(func() {
				os.Remove(filepath.Join(f.snapDir, snapshot.FileName(older.Offset, older.Epoch)))
				newer := snapshot.FileName(16, 1)
				os.Rename(filepath.Join(staging, newer), filepath.Join(f.snapDir, newer))
				f.setLogStart(17, nil)
			})
			return nil
		}
	})
	addBrokers(t, f, 10)
	f.writeSnapshot(t, f.snapDir, 10, testClusterID)
	f.writeSnapshot(t, staging, 16, testClusterID)
	f.setLogStart(11, nil)

	dir := t.TempDir()
	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { withSnapshotChunks(cfg); cfg.Dir = dir })
	waitFor(t, "the broker unfenced in its own image", func() bool { return brokerUnfencedInImage(b.Broker) })
	if !hasBrokers(b.Image(), 10) {
		t.Fatal("the image lacks the newer snapshot's brokers")
	}
	reqs := f.snapRequests()
	if reqs[0].id != older || reqs[len(reqs)-1].id != (SnapshotID{Offset: 16, Epoch: 1}) {
		t.Fatalf("requests %+v: want the older snapshot first, then the newer one", reqs)
	}
	for _, r := range reqs[1:] {
		if r.id == older {
			t.Fatalf("asked for the removed snapshot again: %+v", reqs)
		}
	}
	sd := metadatalog.SnapshotDir(dir)
	snaps, err := snapshot.List(sd)
	if err != nil || len(snaps) != 1 || snaps[0].Offset != 16 {
		t.Fatalf("snapshots in Dir %v (%v): want only the one at 16", snaps, err)
	}
	if parts, _ := snapshot.PartFiles(sd); len(parts) != 0 {
		t.Fatalf("partial files left: %v", parts)
	}
}

func TestSnapshotOfAnotherClusterIsFatal(t *testing.T) {
	const other = "other-cluster-id-0002"
	f := newFakeController(t, 1, func(f *fakeController) { f.snapDir = t.TempDir() })
	addBrokers(t, f, 3)
	f.writeSnapshot(t, f.snapDir, f.lastOffset(), other)
	f.setLogStart(f.lastOffset()+1, nil)
	dir := t.TempDir()
	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { cfg.Dir = dir })
	select {
	case err := <-b.Fatal():
		if !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), testClusterID) {
			t.Fatalf("fatal %q should name both cluster ids", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no fatal error")
	}
	if off := b.Image().Offset; off != 0 {
		t.Fatalf("the image moved to offset %d from another cluster's snapshot", off)
	}
	if snaps, _ := snapshot.List(metadatalog.SnapshotDir(dir)); len(snaps) != 0 {
		t.Fatalf("the foreign snapshot stayed in Dir: %v", snaps)
	}
}

func TestSnapshotPointerBelowAppliedIsNotFollowed(t *testing.T) {
	f := newFakeController(t, 1, func(f *fakeController) { f.snapDir = t.TempDir() })
	addBrokers(t, f, 10)
	dir := t.TempDir()
	f.writeSnapshot(t, metadatalog.SnapshotDir(dir), 16, testClusterID)
	f.writeSnapshot(t, f.snapDir, 10, testClusterID)
	// A confused controller: the log before 100 is gone, yet its snapshot is at 10.
	f.setLogStart(100, &SnapshotID{Offset: 10, Epoch: 1})
	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) { cfg.Dir = dir })
	waitFor(t, "several fetches answered with the stale pointer", func() bool {
		n := 0
		for _, o := range f.fetchOffsets() {
			if o == 17 {
				n++
			}
		}
		return n >= 3
	})
	if off := b.Image().Offset; off != 16 {
		t.Fatalf("the image went to offset %d, want it kept at 16", off)
	}
	if reqs := f.snapRequests(); len(reqs) != 0 {
		t.Fatalf("the broker downloaded a snapshot behind its image: %+v", reqs)
	}
	f.setLogStart(0, nil)
	waitFor(t, "the broker unfenced once the controller serves the log", func() bool { return brokerUnfencedInImage(b.Broker) })
}

// logRecorder keeps the message and offset of every log record, to see what a broker did.
type logRecorder struct {
	mu      sync.Mutex
	records []loggedRecord
}

type loggedRecord struct {
	msg    string
	offset int64
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := loggedRecord{msg: rec.Message, offset: -1}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "offset" {
			if v := a.Value.Resolve(); v.Kind() == slog.KindUint64 {
				lr.offset = int64(v.Uint64())
			} else if v.Kind() == slog.KindInt64 {
				lr.offset = v.Int64()
			}
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, lr)
	return nil
}

func (r *logRecorder) find(msg string) []loggedRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []loggedRecord
	for _, lr := range r.records {
		if lr.msg == msg {
			out = append(out, lr)
		}
	}
	return out
}

func TestDownloadedSnapshotIsNotWrittenAgain(t *testing.T) {
	f, snap := snapshotController(t, nil)
	dir := t.TempDir()
	logs := &logRecorder{}
	b := startBroker(t, map[int32]string{1: f.addr}, func(cfg *Config) {
		cfg.Dir = dir
		cfg.SnapshotPolicy = metadatalog.SnapshotPolicy{MaxBytes: 1} // a snapshot after every applied entry
		cfg.Logger = slog.New(logs)
	})
	sd := metadatalog.SnapshotDir(dir)
	waitFor(t, "a snapshot past the downloaded one", func() bool {
		snaps, _ := snapshot.List(sd)
		return len(snaps) > 0 && snaps[len(snaps)-1].Offset > snap.Offset
	})
	b.Close() // waits for the write in flight
	if got := logs.find("caught up from snapshot"); len(got) != 1 || got[0].offset != int64(snap.Offset) {
		t.Fatalf("caught up from snapshot logged %+v, want once at %d", got, snap.Offset)
	}
	for _, w := range logs.find("writing a snapshot") {
		if w.offset <= int64(snap.Offset) {
			t.Fatalf("the broker wrote a snapshot at offset %d, not past the downloaded %d", w.offset, snap.Offset)
		}
	}
	if _, err := os.Stat(filepath.Join(sd, snapshot.FileName(snap.Offset, snap.Epoch))); err != nil {
		t.Fatalf("the downloaded snapshot is gone: %v", err)
	}
}
