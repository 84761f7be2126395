package e2e

import (
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// walEntry is one Raft entry read back from a stopped node's WAL.
type walEntry struct {
	index, term uint64
	data        []byte
	batch       *metadatapb.RecordBatch // nil for Raft's own empty entries
}

// walContents is what a stopped node's WAL replays to.
type walContents struct {
	first, last  uint64
	commit, term uint64
	entries      []walEntry
}

func (w walContents) at(index uint64) (walEntry, bool) {
	if index < w.first || index > w.last {
		return walEntry{}, false
	}
	e := w.entries[index-w.first]
	return e, e.index == index
}

// featureBatchesUpTo counts the batches holding a FeatureLevelRecord at offsets ≤ hw.
func (w walContents) featureBatchesUpTo(hw int64) int {
	n := 0
	for _, e := range w.entries {
		if int64(e.index) > hw || e.batch == nil {
			continue
		}
		for _, r := range e.batch.GetRecords() {
			if r.GetFeatureLevel() != nil {
				n++
				break
			}
		}
	}
	return n
}

// readWAL replays the WAL in dir the way a starting node does. The node that owns dir must be stopped:
// opening the WAL takes its file locks.
func readWAL(t *testing.T, dir string) walContents {
	t.Helper()
	disk, storage, err := metadatalog.OpenWAL(dir)
	if err != nil {
		t.Fatalf("open the WAL in %s: %v", dir, err)
	}
	defer disk.Close()
	hs, _, err := storage.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := storage.FirstIndex()
	last, _ := storage.LastIndex()
	w := walContents{first: first, last: last, commit: hs.GetCommit(), term: hs.GetTerm()}
	if last < first {
		return w
	}
	ents, err := storage.Entries(first, last+1, math.MaxUint64)
	if err != nil {
		t.Fatalf("entries %d..%d of %s: %v", first, last, dir, err)
	}
	for _, e := range ents {
		we := walEntry{index: e.GetIndex(), term: e.GetTerm(), data: e.GetData()}
		if len(we.data) > 0 {
			b := &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(we.data, b); err != nil {
				t.Errorf("%s: the entry at offset %d is not a RecordBatch: %v", dir, we.index, err)
			} else {
				we.batch = b
			}
		}
		w.entries = append(w.entries, we)
	}
	return w
}

// walFrame is one record of an etcd WAL segment as laid out on disk: an 8-byte little-endian length
// field (the low 56 bits are the record's size; a set top bit marks padding, whose size is in the
// low 3 bits of the top byte), then the walpb.Record, then padding to 8 bytes.
type walFrame struct {
	off        int64 // where the length field starts
	recBytes   int64
	padBytes   int64
	recType    int64
	dataOff    int64 // where the record's data field starts in the file
	dataLen    int64
	entryIndex uint64 // for entry records
}

// walSegments lists dir's segment files, oldest first.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no .wal segments in %s (%v)", dir, err)
	}
	sort.Strings(segs)
	return segs
}

// parseWALFrames walks a segment's records until the zeroed, preallocated space or the end of the file.
func parseWALFrames(t *testing.T, path string) []walFrame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var frames []walFrame
	for off := int64(0); off+8 <= int64(len(data)); {
		l := binary.LittleEndian.Uint64(data[off:])
		if l == 0 {
			break
		}
		f := walFrame{off: off, recBytes: int64(l & (1<<56 - 1))}
		if l&(1<<63) != 0 {
			f.padBytes = int64((l >> 56) & 0x7)
		}
		end := off + 8 + f.recBytes + f.padBytes
		if end > int64(len(data)) {
			break
		}
		rec := data[off+8 : off+8+f.recBytes]
		// walpb.Record: type = 1 (varint), crc = 2 (varint), data = 3 (bytes).
		for pos := 0; pos < len(rec); {
			num, typ, n := protowire.ConsumeTag(rec[pos:])
			if n < 0 {
				t.Fatalf("%s: record at %d does not parse", path, off)
			}
			pos += n
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, m := protowire.ConsumeVarint(rec[pos:])
				f.recType, pos = int64(v), pos+m
			case num == 3 && typ == protowire.BytesType:
				v, m := protowire.ConsumeBytes(rec[pos:])
				f.dataOff = off + 8 + int64(pos+m-len(v))
				f.dataLen = int64(len(v))
				pos += m
			default:
				m := protowire.ConsumeFieldValue(num, typ, rec[pos:])
				if m < 0 {
					t.Fatalf("%s: record at %d does not parse", path, off)
				}
				pos += m
			}
		}
		if f.recType == wal.EntryType {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(data[f.dataOff:f.dataOff+f.dataLen], e); err != nil {
				t.Fatalf("%s: entry record at %d: %v", path, off, err)
			}
			f.entryIndex = e.GetIndex()
		}
		frames = append(frames, f)
		off = end
	}
	return frames
}

// copyDir copies a stopped node's metadata directory.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

var walFileName = regexp.MustCompile(`[0-9a-f]{16}-[0-9a-f]{16}\.wal`)

// TestWALTornTailAndCorruption runs a one-node quorum and stops it, then damages its WAL:
//
//   - (a) a torn tail, as a crash in the middle of a write leaves it: the last record cut in half; the
//     last entry record cut in half; a partial record after the last one, whose first sector made it to
//     disk and whose next did not. Each time the node repairs the tail, leads again, commits at least
//     every complete entry and accepts an append.
//   - (b) damage in the middle of a segment, with intact records after it: a flipped byte in an early
//     entry, and an early entry's body zeroed. The node must refuse to start and name the file.
func TestWALTornTailAndCorruption(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.formatAndStartAll()
	const appends = 4
	var hw int64
	for range appends {
		_, hw = c.appendOK(c.ids)
	}
	c.stop(1)
	if before := readWAL(t, c.walDir(1)); before.last < uint64(hw) {
		t.Fatalf("after a clean stop the WAL ends at %d, before the high watermark %d", before.last, hw)
	}
	// Untouched copies of the directory for (b).
	flipped := filepath.Join(c.dir, "node-1-flipped")
	zeroed := filepath.Join(c.dir, "node-1-zeroed")
	copyDir(t, c.logDir(1), flipped)
	copyDir(t, c.logDir(1), zeroed)

	// (a) Torn tails.
	tornTail(t, c, "the last record cut in half", func(path string, frames []walFrame) int {
		f := frames[len(frames)-1]
		truncate(t, path, f.off+8+f.recBytes/2)
		return len(frames) - 1
	})
	tornTail(t, c, "the last entry record cut in half", func(path string, frames []walFrame) int {
		for i := len(frames) - 1; i >= 0; i-- {
			if f := frames[i]; f.recType == wal.EntryType {
				truncate(t, path, f.off+8+f.recBytes/2)
				return i
			}
		}
		t.Fatalf("%s holds no entry record", path)
		return 0
	})
	tornTail(t, c, "a partial record after the last one", func(path string, frames []walFrame) int {
		last := frames[len(frames)-1]
		end := last.off + 8 + last.recBytes + last.padBytes
		// A 1 KiB record whose length field and first sector's worth of bytes were written, while the
		// sector after them still holds the preallocated zeros.
		const sector = 512
		head := binary.LittleEndian.AppendUint64(nil, 1024)
		for pos := end + 8; pos == end+8 || pos%sector != 0; pos++ {
			head = append(head, byte(0xa5^pos))
		}
		writeAt(t, path, end, head)
		return len(frames)
	})

	// (b) Damage in the middle of a segment.
	damagedStartRefused(t, c, flipped, "a flipped byte inside an early entry", func(path string, frames []walFrame) {
		f := earlyEntry(t, path, frames)
		at := f.dataOff + f.dataLen/2
		data := readAt(t, path, at, 1)
		writeAt(t, path, at, []byte{data[0] ^ 0x5a})
		t.Logf("flipped the byte at %d of %s (inside the entry record for offset %d)", at, filepath.Base(path), f.entryIndex)
	})
	damagedStartRefused(t, c, zeroed, "an early entry's body zeroed", func(path string, frames []walFrame) {
		f := earlyEntry(t, path, frames)
		writeAt(t, path, f.off+8, make([]byte, f.recBytes+f.padBytes))
		t.Logf("zeroed the %d bytes after the length field at %d of %s (the entry record for offset %d); %d records follow it",
			f.recBytes+f.padBytes, f.off, filepath.Base(path), f.entryIndex, len(frames)-1-indexOf(frames, f))
	})
}

// tornTail tears the last segment of stopped node 1's WAL with tear, which returns how many of the
// segment's records it left whole, then restarts the node: it must repair the tail, lead, commit at
// least every complete entry and accept an append. It leaves the node stopped.
func tornTail(t *testing.T, c *cluster, what string, tear func(path string, frames []walFrame) (whole int)) {
	t.Helper()
	segs := walSegments(t, c.walDir(1))
	last := segs[len(segs)-1]
	frames := parseWALFrames(t, last)
	if len(frames) < 2 {
		t.Fatalf("%s holds %d records, want several", last, len(frames))
	}
	whole := tear(last, frames)
	complete := map[uint64]bool{}
	for _, seg := range segs[:len(segs)-1] {
		for _, f := range parseWALFrames(t, seg) {
			if f.recType == wal.EntryType {
				complete[f.entryIndex] = true
			}
		}
	}
	for _, f := range frames[:whole] {
		if f.recType == wal.EntryType {
			complete[f.entryIndex] = true
		}
	}
	t.Logf("tail torn by %s: %s held %d records, %d left whole; %d complete entries", what, filepath.Base(last), len(frames), whole, len(complete))
	c.start(1)
	q := c.waitLeader(c.ids, func(q quorumView) bool { return q.HW >= int64(len(complete)) })
	t.Logf("after %s: %v", what, q)
	_, hw := c.appendOK(c.ids)
	if hw <= int64(len(complete)) {
		t.Errorf("after %s: high watermark %d after an append, want > %d", what, hw, len(complete))
	}
	c.stop(1)
	repaired := readWAL(t, c.walDir(1))
	if repaired.last < uint64(hw) {
		t.Errorf("after %s: the WAL ends at %d, before the high watermark %d", what, repaired.last, hw)
	}
	if got := repaired.featureBatchesUpTo(hw); got < 2 {
		t.Errorf("after %s: the WAL holds %d FeatureLevelRecord batches, want ≥ 2 (the bootstrap and the append after the restart)", what, got)
	}
}

// damagedStartRefused damages the first WAL segment of the metadata directory dir (a copy of stopped
// node 1's) and starts node 1 on it: the node must exit non-zero and name the damaged file.
func damagedStartRefused(t *testing.T, c *cluster, dir, what string, damage func(path string, frames []walFrame)) {
	t.Helper()
	first := walSegments(t, metadatalog.WALDir(dir))[0]
	damage(first, parseWALFrames(t, first))
	p := c.start(1, "metadata.log.dir="+dir)
	// Wait for the node to exit; if it instead comes up and leads, it is serving from a damaged log.
	var served quorumView
	var code int
	deadline := time.Now().Add(exitTimeout)
	for {
		var exited bool
		if code, exited = p.WaitExit(pollInterval); exited {
			break
		}
		if q, err := describeQuorum(c.addrs[1]); err == nil && q.Leader == 1 {
			served = q
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	logText, _ := os.ReadFile(p.LogPath)
	attempt := string(logText)
	if i := strings.LastIndex(attempt, "=== e2e:"); i >= 0 {
		attempt = attempt[i:]
	}
	if p.Running() {
		p.Kill()
		after := readWAL(t, metadatalog.WALDir(dir))
		broken, _ := filepath.Glob(filepath.Join(metadatalog.WALDir(dir), "*.broken"))
		t.Errorf("%s: node 1 did not refuse a WAL damaged in the middle of %s; it kept running (quorum: %v) and its WAL now holds offsets %d..%d (repair backups: %v); its log:\n%s",
			what, filepath.Base(first), served, after.first, after.last, broken, strings.TrimSpace(attempt))
		return
	}
	t.Logf("%s: the start said:\n%s", what, strings.TrimSpace(attempt))
	if code == 0 {
		t.Errorf("%s: node 1 exited with code 0, want non-zero", what)
	}
	if !strings.Contains(attempt, filepath.Base(first)) || !walFileName.MatchString(attempt) {
		t.Errorf("%s: the failed start does not name the damaged file %s", what, filepath.Base(first))
	}
}

// earlyEntry is the first entry record with a few records after it.
func earlyEntry(t *testing.T, path string, frames []walFrame) walFrame {
	t.Helper()
	for i, f := range frames {
		if f.recType == wal.EntryType && f.dataLen >= 4 && i < len(frames)-3 {
			return f
		}
	}
	t.Fatalf("%s has no entry record followed by others", path)
	return walFrame{}
}

func indexOf(frames []walFrame, f walFrame) int {
	for i := range frames {
		if frames[i].off == f.off {
			return i
		}
	}
	return -1
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
