package metadatalog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/snapshot"
	"google.golang.org/protobuf/proto"
)

// soloLog is a one-voter log in a formatted directory, with the test playing its state machine: it
// applies what commits to an image, as a controller does.
type soloLog struct {
	t         *testing.T
	dir, cid  string
	voters    map[uint64]string
	catchUp   uint64
	n         *logNode
	img       *Image
	firstSeen uint64 // the first committed offset the current incarnation reported
}

func newSoloLog(t *testing.T, catchUp uint64) *soloLog {
	t.Helper()
	s := &soloLog{t: t, dir: filepath.Join(t.TempDir(), "node-1"), cid: RandomUUID(), catchUp: catchUp}
	if err := Format(s.dir, MetaProperties{ClusterID: s.cid, NodeID: 1}, BootstrapRecords(LatestMetadataVersion), false); err != nil {
		t.Fatal(err)
	}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *soloLog) open() error {
	ln := newPeerListener(s.t)
	s.voters = map[uint64]string{1: ln.addr()}
	l, err := OpenLog(LogConfig{NodeID: 1, ClusterID: s.cid, Voters: s.voters, Dir: s.dir, ElectionTimeout: 200 * time.Millisecond,
		CatchUpEntries: s.catchUp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		ln.close()
		return err
	}
	s.n = &logNode{id: 1, log: l, ln: ln}
	s.img, s.firstSeen = l.InitialImage(), 0
	ln.handTo(l.HandlePeer)
	l.Start()
	s.t.Cleanup(func() { s.n.stop(s.t) })
	return nil
}

// reopen closes the log and opens it again from its directory.
func (s *soloLog) reopen() error {
	s.n.stop(s.t)
	return s.open()
}

// write appends one batch creating a topic of the given partitions and applies everything committed
// up to it.
func (s *soloLog) write(name string, partitions int) uint64 {
	s.t.Helper()
	id := make([]byte, 16)
	copy(id, name)
	recs := []*metadatapb.Record{recTopic(name, id)}
	for p := range partitions {
		recs = append(recs, recPartition(id, int32(p), []int32{1}, 1))
	}
	data, err := proto.Marshal(&metadatapb.RecordBatch{Records: recs})
	if err != nil {
		s.t.Fatal(err)
	}
	var res *AppendResult
	logWait(s.t, "an append accepted", func() bool {
		res, err = appendTo(s.t, s.n, data)
		return err == nil
	})
	waitAppended(s.t, res)
	s.applyTo(res.Offset)
	return res.Offset
}

// applyTo applies committed entries until the image reaches offset.
func (s *soloLog) applyTo(offset uint64) {
	s.t.Helper()
	logWait(s.t, fmt.Sprintf("offset %d applied", offset), func() bool {
		for _, ev := range s.n.log.TakeEvents() {
			for _, e := range ev.Committed {
				if s.firstSeen == 0 {
					s.firstSeen = e.Offset
				}
				if e.Offset != s.img.Offset+1 {
					s.t.Fatalf("committed offset %d after applied offset %d", e.Offset, s.img.Offset)
				}
				var batch *metadatapb.RecordBatch
				if len(e.Data) > 0 {
					batch = &metadatapb.RecordBatch{}
					if err := proto.Unmarshal(e.Data, batch); err != nil {
						s.t.Fatal(err)
					}
				}
				next, err := s.img.Apply(e.Offset, e.Epoch, batch)
				if err != nil {
					s.t.Fatal(err)
				}
				s.img = next
			}
		}
		return s.img.Offset >= offset
	})
}

// snapshot writes the current image as a snapshot and tells the log, as the Snapshotter does.
func (s *soloLog) snapshot() snapshot.Header {
	s.t.Helper()
	h, _, err := WriteSnapshot(s.n.log.SnapshotDir(), s.img, s.cid, s.n.log.Voters(), time.Now().UnixMilli())
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.n.log.Compact(h.Offset, false); err != nil {
		s.t.Fatal(err)
	}
	logWait(s.t, "the log compacted", func() bool { return s.n.log.FirstOffset() > 1 || h.Offset <= s.catchUp })
	return h
}

func sameImage(t *testing.T, what string, got, want *Image) {
	t.Helper()
	if got.Offset != want.Offset || got.Epoch != want.Epoch {
		t.Fatalf("%s: image at offset %d epoch %d, want %d/%d", what, got.Offset, got.Epoch, want.Offset, want.Epoch)
	}
	g, w := got.Records(), want.Records()
	if len(g) != len(w) {
		t.Fatalf("%s: %d records, want %d", what, len(g), len(w))
	}
	for i := range g {
		if !proto.Equal(g[i], w[i]) {
			t.Fatalf("%s: record %d is %v, want %v", what, i, g[i], w[i])
		}
	}
}

// A restart opens at the snapshot, replays only the WAL after it, and ends at the image a full replay
// gives.
func TestLogRestartsFromSnapshotAndTail(t *testing.T) {
	s := newSoloLog(t, 2)
	for i := range 10 {
		s.write(fmt.Sprintf("a%d", i), 5)
	}
	h := s.snapshot()
	if first := s.n.log.FirstOffset(); first != h.Offset-2+1 {
		t.Fatalf("after a snapshot at %d with a catch-up tail of 2, the log starts at %d, want %d", h.Offset, first, h.Offset-1)
	}
	if _, _, err := s.n.log.ReadCommitted(1, 1<<20); !errors.Is(err, ErrCompacted) {
		t.Fatalf("reading offset 1 after compaction: %v, want ErrCompacted", err)
	}
	var last uint64
	for i := range 4 {
		last = s.write(fmt.Sprintf("b%d", i), 3)
	}
	want := s.img
	if err := s.reopen(); err != nil {
		t.Fatal(err)
	}
	if got := s.n.log.InitialImage(); got.Offset != h.Offset {
		t.Fatalf("reopened at offset %d, want the snapshot's %d", got.Offset, h.Offset)
	}
	s.applyTo(last)
	if s.firstSeen != h.Offset+1 {
		t.Fatalf("after the restart the first committed offset was %d, want %d (right after the snapshot)", s.firstSeen, h.Offset+1)
	}
	sameImage(t, "snapshot + tail", s.img, want)
	if got := s.n.log.FirstOffset(); got != h.Offset+1 {
		t.Fatalf("reopened log starts at %d, want %d", got, h.Offset+1)
	}
	// It goes on taking writes.
	s.write("after-restart", 1)
}

// Compaction releases whole WAL segments before the catch-up tail, and the log reopens from what is left.
func TestLogReleasesWALSegments(t *testing.T) {
	SetSegmentBytes(1 << 20)
	t.Cleanup(func() { SetSegmentBytes(64 << 20) })
	s := newSoloLog(t, 5)
	for i := range 60 {
		s.write(fmt.Sprintf("t%03d", i), 1000) // about 40 KB a batch, so segments are cut
	}
	segsBefore, err := walSegments(WALDir(s.dir))
	if err != nil || len(segsBefore) < 2 {
		t.Fatalf("want several WAL segments before the snapshot, got %d (%v)", len(segsBefore), err)
	}
	h := s.snapshot()
	logWait(t, "an old segment deleted", func() bool {
		segs, _ := walSegments(WALDir(s.dir))
		return len(segs) > 0 && segs[0].first > 1
	})
	want := s.img
	if err := s.reopen(); err != nil {
		t.Fatal(err)
	}
	sameImage(t, "reopened after release", s.n.log.InitialImage(), want)
	last := s.write("after", 1)
	// The dump tool still reads what is left, from the oldest snapshot marker on.
	c, err := ReadWAL(WALDir(s.dir))
	if err != nil || len(c.Entries) == 0 || c.Entries[0].Offset <= 1 || c.Entries[len(c.Entries)-1].Offset != last {
		t.Fatalf("ReadWAL after release: %v, %d entries; want entries after offset 1 up to %d", err, len(c.Entries), last)
	}
	if c.Entries[0].Offset > h.Offset+1 {
		t.Fatalf("ReadWAL starts at %d, after the snapshot at %d", c.Entries[0].Offset, h.Offset)
	}
}

// A damaged newest snapshot is refused, naming it, and the log opens at an older one that the WAL
// still covers; the image ends up the same.
func TestLogFallsBackToAnOlderSnapshot(t *testing.T) {
	s := newSoloLog(t, 1000) // a long tail: the WAL keeps everything after the older snapshot
	for i := range 5 {
		s.write(fmt.Sprintf("a%d", i), 4)
	}
	older := s.snapshot()
	for i := range 5 {
		s.write(fmt.Sprintf("b%d", i), 4)
	}
	newer := s.snapshot()
	last := s.write("c", 1)
	want := s.img
	s.n.stop(t)
	flipByte(t, filepath.Join(SnapshotDir(s.dir), snapshot.FileName(newer.Offset, newer.Epoch)), 40)
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	if got := s.n.log.InitialImage().Offset; got != older.Offset {
		t.Fatalf("opened at offset %d, want the older snapshot's %d", got, older.Offset)
	}
	s.applyTo(last)
	sameImage(t, "older snapshot + log", s.img, want)
}

// Without a usable snapshot, a log whose start is gone cannot start: it says why, naming the file.
func TestLogStopsWhenNoSnapshotCoversItsStart(t *testing.T) {
	SetSegmentBytes(1 << 20)
	t.Cleanup(func() { SetSegmentBytes(64 << 20) })
	s := newSoloLog(t, 1)
	for i := range 60 {
		s.write(fmt.Sprintf("t%03d", i), 1000)
	}
	h := s.snapshot()
	logWait(t, "an old segment deleted", func() bool {
		segs, _ := walSegments(WALDir(s.dir))
		return len(segs) > 0 && segs[0].first > 1
	})
	s.n.stop(t)
	path := filepath.Join(SnapshotDir(s.dir), snapshot.FileName(h.Offset, h.Epoch))
	flipByte(t, path, 100)
	err := s.open()
	if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), filepath.Base(path)) || !strings.Contains(err.Error(), "no usable snapshot") {
		t.Fatalf("open with the only snapshot damaged: %v; want ErrCorruptLog naming %s", err, filepath.Base(path))
	}
}

// A snapshot of another cluster is refused with both ids; leftover .part files are removed at open.
func TestLogRefusesAForeignSnapshotAndClearsPartFiles(t *testing.T) {
	s := newSoloLog(t, 1)
	s.write("a", 2)
	h := s.snapshot()
	s.n.stop(t)
	part := filepath.Join(SnapshotDir(s.dir), snapshot.FileName(h.Offset+5, h.Epoch)+".part")
	if err := os.WriteFile(part, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("the leftover %s survived the open: %v", part, err)
	}
	s.n.stop(t)
	other := RandomUUID()
	img := s.n.log.InitialImage()
	if _, _, err := WriteSnapshot(SnapshotDir(s.dir), img, other, []uint64{1}, 0); err != nil {
		t.Fatal(err)
	}
	err := s.open()
	if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), s.cid) {
		t.Fatalf("open with a foreign snapshot: %v; want an error naming %s and %s", err, other, s.cid)
	}
}

func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[at] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A purge (after a metadata.version downgrade) keeps no tail and rewrites the WAL from the snapshot:
// nothing before it stays on disk, and the log reopens and goes on from there.
func TestLogPurgeRewritesTheWAL(t *testing.T) {
	s := newSoloLog(t, 1000)
	for i := range 8 {
		s.write(fmt.Sprintf("old%d", i), 3)
	}
	h, _, err := WriteSnapshot(s.n.log.SnapshotDir(), s.img, s.cid, s.n.log.Voters(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Entries after the snapshot must survive the rewrite.
	after := s.write("after", 2)
	if err := s.n.log.Compact(h.Offset, true); err != nil {
		t.Fatal(err)
	}
	if first := s.n.log.FirstOffset(); first != h.Offset+1 {
		t.Fatalf("after a purge the log starts at %d, want %d: no catch-up tail", first, h.Offset+1)
	}
	segs, err := walSegments(WALDir(s.dir))
	if err != nil || len(segs) != 1 || segs[0].first != h.Offset {
		t.Fatalf("WAL segments after the rewrite: %+v (%v); want one, starting at the snapshot's offset %d", segs, err, h.Offset)
	}
	c, err := ReadWAL(WALDir(s.dir))
	if err != nil || len(c.Entries) == 0 || c.Entries[0].Offset != h.Offset+1 {
		t.Fatalf("ReadWAL after the rewrite: %v, entries %v", err, c.Entries)
	}
	for _, e := range c.Entries {
		if e.Offset <= h.Offset {
			t.Fatalf("the rewritten WAL still holds offset %d, before the snapshot at %d", e.Offset, h.Offset)
		}
	}
	// It takes writes after the rewrite, and a restart finds everything.
	last := s.write("after-rewrite", 1)
	want := s.img
	if err := s.reopen(); err != nil {
		t.Fatal(err)
	}
	s.applyTo(last)
	sameImage(t, "after a purge and a restart", s.img, want)
	_ = after
}

// A rewrite that a crash interrupted is finished or undone at open.
func TestRecoverRewrite(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "wal")
	mk := func(p, marker string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "marker"), []byte(marker), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "marker"))
		return string(b)
	}
	// Crashed between the two renames: the new WAL takes the place.
	mk(dir+oldSuffix, "old")
	mk(dir+rewriteSuffix, "new")
	if err := recoverRewrite(dir); err != nil || read() != "new" {
		t.Fatalf("between the renames: %v, WAL is %q; want the new one", err, read())
	}
	// Crashed before the swap: the old WAL stays, the unfinished new one goes.
	mk(dir+rewriteSuffix, "half")
	if err := recoverRewrite(dir); err != nil || read() != "new" {
		t.Fatalf("before the swap: %v, WAL is %q", err, read())
	}
	if _, err := os.Stat(dir + rewriteSuffix); !os.IsNotExist(err) {
		t.Fatalf("the unfinished rewrite survived: %v", err)
	}
}
