package metadatalog

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/snapshot"
)

// imageAt is a small image at offset, as a log's state machine would hold it.
func imageAt(t *testing.T, offset uint64) *Image {
	t.Helper()
	img, err := EmptyImage().Apply(offset, 1, imgBatch(recFeature(MetadataVersionFeature, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestSnapshotterPolicy(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var written []uint64
	s := NewSnapshotter(SnapshotterConfig{
		Policy: SnapshotPolicy{MaxBytes: 100, MaxInterval: time.Hour}, Dir: dir, ClusterID: "c", Logger: slog.New(slog.DiscardHandler),
		Written: func(h snapshot.Header, _ string, _ bool) error {
			mu.Lock()
			written = append(written, h.Offset)
			mu.Unlock()
			return nil
		},
	}, EmptyImage(), time.Unix(0, 0))
	now := time.Unix(0, 0)
	if s.Applied(imageAt(t, 1), 99, now) {
		t.Fatal("a snapshot after 99 of 100 bytes")
	}
	if !s.Applied(imageAt(t, 2), 1, now) {
		t.Fatal("no snapshot once 100 bytes were applied")
	}
	s.Wait()
	// The byte count restarts, and nothing new means nothing to write even after the interval.
	if s.Applied(imageAt(t, 2), 0, now.Add(2*time.Hour)) {
		t.Fatal("a snapshot of an offset already snapshotted")
	}
	if s.Applied(imageAt(t, 3), 10, now.Add(30*time.Minute)) {
		t.Fatal("a snapshot after 10 bytes and half the interval")
	}
	if !s.Applied(imageAt(t, 4), 10, now.Add(61*time.Minute)) {
		t.Fatal("no snapshot once the interval passed with new records")
	}
	s.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(written) != 2 || written[0] != 2 || written[1] != 4 {
		t.Fatalf("snapshots written at %v, want [2 4]", written)
	}
	if snaps, _ := snapshot.List(dir); len(snaps) != 2 {
		t.Fatalf("%d snapshot files, want 2", len(snaps))
	}
}

// One write at a time: while a snapshot is being written, a due one waits for the next Applied.
func TestSnapshotterOneWriteAtATime(t *testing.T) {
	release := make(chan struct{})
	s := NewSnapshotter(SnapshotterConfig{Policy: SnapshotPolicy{MaxBytes: 1}, Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
		write: func(dir string, img *Image, cid string, voters []uint64, ms int64) (snapshot.Header, string, error) {
			<-release
			return WriteSnapshot(dir, img, cid, voters, ms)
		}}, EmptyImage(), time.Now())
	if !s.Applied(imageAt(t, 1), 5, time.Now()) {
		t.Fatal("no first snapshot")
	}
	if s.Applied(imageAt(t, 2), 5, time.Now()) || !s.Writing() {
		t.Fatal("a second snapshot started while the first was being written")
	}
	close(release)
	s.Wait()
	if !s.Applied(imageAt(t, 3), 5, time.Now()) {
		t.Fatal("no snapshot after the first finished")
	}
	s.Wait()
}

// A failed write (a full disk) leaves nothing, and the next try waits out the retry delay.
func TestSnapshotterRetriesAfterAFailure(t *testing.T) {
	dir := t.TempDir()
	fail := true
	s := NewSnapshotter(SnapshotterConfig{Policy: SnapshotPolicy{MaxBytes: 1}, Dir: dir, Logger: slog.New(slog.DiscardHandler),
		write: func(dir string, img *Image, cid string, voters []uint64, ms int64) (snapshot.Header, string, error) {
			if fail {
				return snapshot.Header{}, "", errors.New("no space left on device")
			}
			return WriteSnapshot(dir, img, cid, voters, ms)
		}}, EmptyImage(), time.Now())
	now := time.Unix(1000, 0)
	if !s.Applied(imageAt(t, 1), 5, now) {
		t.Fatal("no snapshot")
	}
	s.Wait()
	fail = false
	if s.Applied(imageAt(t, 2), 5, now.Add(time.Second)) {
		t.Fatal("retried before the retry delay")
	}
	if !s.Applied(imageAt(t, 3), 5, now.Add(snapshotRetryDelay+2*time.Second)) {
		t.Fatal("did not retry after the delay")
	}
	s.Wait()
	if snaps, _ := snapshot.List(dir); len(snaps) != 1 || snaps[0].Offset != 3 {
		t.Fatalf("snapshots after the retry: %v, want one at offset 3", snaps)
	}
}

func TestApplyRetention(t *testing.T) {
	dir := t.TempDir()
	var sizes []int64
	for _, off := range []uint64{10, 20, 30} {
		_, path, err := WriteSnapshot(dir, imageAt(t, off), "c", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		sizes = append(sizes, fi.Size())
	}
	log := slog.New(slog.DiscardHandler)
	now := time.Now()
	offsets := func() []uint64 {
		snaps, _ := snapshot.List(dir)
		var out []uint64
		for _, s := range snaps {
			out = append(out, s.Offset)
		}
		return out
	}
	// Within both limits: all kept.
	if err := ApplyRetention(dir, SnapshotPolicy{RetentionBytes: 1 << 20, RetentionTime: time.Hour}, 0, 30, now, log); err != nil || len(offsets()) != 3 {
		t.Fatalf("retention within limits: %v, kept %v", err, offsets())
	}
	// Over the byte limit by the log's size: the oldest goes.
	total := sizes[0] + sizes[1] + sizes[2]
	if err := ApplyRetention(dir, SnapshotPolicy{RetentionBytes: total}, 1, 30, now, log); err != nil || len(offsets()) != 2 || offsets()[0] != 20 {
		t.Fatalf("retention over bytes: %v, kept %v; want [20 30]", err, offsets())
	}
	// Too old: everything but the newest goes, however old the newest is.
	old := now.Add(-48 * time.Hour)
	for _, name := range []string{snapshot.FileName(20, 1), snapshot.FileName(30, 1)} {
		os.Chtimes(filepath.Join(dir, name), old, old)
	}
	// Nothing at or after keepFrom goes, even when the policy would have it go.
	if err := ApplyRetention(dir, SnapshotPolicy{RetentionTime: time.Hour}, 0, 20, now, log); err != nil || len(offsets()) != 2 {
		t.Fatalf("retention by age with keepFrom 20: %v, kept %v; want [20 30]", err, offsets())
	}
	if err := ApplyRetention(dir, SnapshotPolicy{RetentionTime: time.Hour}, 0, 30, now, log); err != nil || len(offsets()) != 1 || offsets()[0] != 30 {
		t.Fatalf("retention by age: %v, kept %v; want [30]", err, offsets())
	}
}

// A lower metadata.version makes a snapshot due at once, marked purge, and only it stays.
func TestSnapshotterPurgesAfterADowngrade(t *testing.T) {
	dir := t.TempDir()
	var purged []bool
	var mu sync.Mutex
	s := NewSnapshotter(SnapshotterConfig{Policy: SnapshotPolicy{MaxBytes: 1 << 30, RetentionBytes: 1 << 30}, Dir: dir, Logger: slog.New(slog.DiscardHandler),
		Written: func(_ snapshot.Header, _ string, purge bool) error {
			mu.Lock()
			purged = append(purged, purge)
			mu.Unlock()
			return nil
		}}, EmptyImage(), time.Now())
	at := func(offset uint64, level int32) *Image {
		img, err := EmptyImage().Apply(offset, 1, imgBatch(recFeature(MetadataVersionFeature, level)))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	for _, off := range []uint64{5, 6} {
		if _, _, err := WriteSnapshot(dir, at(off, 4), "c", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if s.Applied(at(7, 4), 10, now) {
		t.Fatal("a snapshot before anything was due")
	}
	if !s.Applied(at(8, 2), 10, now) {
		t.Fatal("no snapshot right after the level went down")
	}
	s.Wait()
	snaps, _ := snapshot.List(dir)
	mu.Lock()
	defer mu.Unlock()
	if len(purged) != 1 || !purged[0] || len(snaps) != 1 || snaps[0].Offset != 8 {
		t.Fatalf("after the downgrade: written with purge %v, snapshots %v; want one purge and only offset 8 left", purged, snaps)
	}
}

// When the log cannot record a snapshot, retention keeps the older ones: a restart still needs them.
func TestSnapshotterKeepsOlderSnapshotsWhenTheLogFails(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := WriteSnapshot(dir, imageAt(t, 1), "c", nil, 0); err != nil {
		t.Fatal(err)
	}
	s := NewSnapshotter(SnapshotterConfig{Policy: SnapshotPolicy{MaxBytes: 1, RetentionBytes: 1}, Dir: dir, Logger: slog.New(slog.DiscardHandler),
		Written: func(snapshot.Header, string, bool) error { return errors.New("metadata log is closed") }}, imageAt(t, 1), time.Now())
	if !s.Applied(imageAt(t, 2), 5, time.Now()) {
		t.Fatal("no snapshot")
	}
	s.Wait()
	if snaps, _ := snapshot.List(dir); len(snaps) != 2 {
		t.Fatalf("snapshots after a failed Written: %v, want both kept", snaps)
	}
}

// A restart after a downgrade that was not yet purged still purges: the snapshots already on disk say
// the level was higher, even when the image the node starts from is at the lower level.
func TestSnapshotterPurgesADowngradeFromBeforeARestart(t *testing.T) {
	dir := t.TempDir()
	at := func(offset uint64, level int32) *Image {
		img, err := EmptyImage().Apply(offset, 1, imgBatch(recFeature(MetadataVersionFeature, level)))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	if _, _, err := WriteSnapshot(dir, at(5, 4), "c", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := WriteSnapshot(dir, at(9, 2), "c", nil, 0); err != nil {
		t.Fatal(err)
	}
	s := NewSnapshotter(SnapshotterConfig{Policy: SnapshotPolicy{MaxBytes: 1 << 30, RetentionBytes: 1 << 30}, Dir: dir, Logger: slog.New(slog.DiscardHandler)}, at(9, 2), time.Now())
	if !s.Applied(at(10, 2), 1, time.Now()) {
		t.Fatal("no purge snapshot after a restart at the lower level with a higher-level snapshot on disk")
	}
	s.Wait()
	if snaps, _ := snapshot.List(dir); len(snaps) != 1 || snaps[0].Offset != 10 {
		t.Fatalf("snapshots after the purge: %v, want only offset 10", snaps)
	}
}
