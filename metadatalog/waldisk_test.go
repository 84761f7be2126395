package metadatalog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// walPayload is an entry's data: unique per (index, term), so a test can find it in the file.
func walPayload(index, term uint64, size int) []byte {
	p := fmt.Appendf(nil, "<entry %06d term %03d>", index, term)
	for len(p) < size {
		p = append(p, byte('a'+len(p)%26))
	}
	return p
}

func walEntries(from, to, term uint64, size int) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &raftpb.Entry{Index: new(i), Term: new(term), Type: new(raftpb.EntryNormal), Data: walPayload(i, term, size)})
	}
	return out
}

func walHardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func mustOpenWAL(t *testing.T, dir string) (*WALDisk, *raft.MemoryStorage) {
	t.Helper()
	d, ms, err := OpenWAL(dir)
	if err != nil {
		t.Fatalf("OpenWAL(%s): %v", dir, err)
	}
	return d, ms
}

func mustSave(t *testing.T, d *WALDisk, hs *raftpb.HardState, ents []*raftpb.Entry) {
	t.Helper()
	if err := d.Save(hs, ents, true); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// wantLog checks that ms holds exactly the entries of terms, where terms[i] is the term of index i+1.
func wantLog(t *testing.T, ms *raft.MemoryStorage, size int, terms ...uint64) {
	t.Helper()
	last, err := ms.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if last != uint64(len(terms)) {
		t.Fatalf("LastIndex = %d, want %d", last, len(terms))
	}
	if len(terms) == 0 {
		return
	}
	first, _ := ms.FirstIndex()
	if first != 1 {
		t.Fatalf("FirstIndex = %d, want 1", first)
	}
	ents, err := ms.Entries(1, last+1, 1<<40)
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	if len(ents) != len(terms) {
		t.Fatalf("%d entries, want %d", len(ents), len(terms))
	}
	for i, e := range ents {
		idx := uint64(i + 1)
		if e.GetIndex() != idx || e.GetTerm() != terms[i] || !bytes.Equal(e.GetData(), walPayload(idx, terms[i], size)) {
			t.Fatalf("entry %d = index %d term %d data %.30q; want term %d", idx, e.GetIndex(), e.GetTerm(), e.GetData(), terms[i])
		}
	}
}

func wantHardState(t *testing.T, ms *raft.MemoryStorage, term, vote, commit uint64) {
	t.Helper()
	hs, _, err := ms.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if hs.GetTerm() != term || hs.GetVote() != vote || hs.GetCommit() != commit {
		t.Fatalf("hard state term %d vote %d commit %d; want %d %d %d", hs.GetTerm(), hs.GetVote(), hs.GetCommit(), term, vote, commit)
	}
}

// walSegment returns the only .wal file of dir.
func walSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil || len(segs) != 1 {
		t.Fatalf("want exactly one WAL segment in %s, got %v (%v)", dir, segs, err)
	}
	return segs[0]
}

// walFrame is one record as etcd lays it out: an 8-byte little-endian length word (the low 56 bits
// are the record's size; a set top bit means the low 3 bits of the top byte count padding), then the
// marshalled walpb.Record, then padding to 8 bytes.
type walFrame struct {
	start    int64 // offset of the length word
	size     int64 // bytes of the marshalled record
	pad      int64
	typ      int64
	entryIdx uint64 // for entry records
}

func (f walFrame) end() int64 { return f.start + 8 + f.size + f.pad }

// walFrames parses the records of a segment up to the first zero length word (preallocated space).
func walFrames(t *testing.T, path string) []walFrame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []walFrame
	var off int64
	for off+8 <= int64(len(data)) {
		lenField := binary.LittleEndian.Uint64(data[off:])
		if lenField == 0 {
			break
		}
		f := walFrame{start: off, size: int64(lenField &^ (0xff << 56))}
		if lenField>>63 == 1 {
			f.pad = int64((lenField >> 56) & 0x7)
		}
		if f.end() > int64(len(data)) {
			t.Fatalf("record at %d runs past the end of %s", off, path)
		}
		var rec walpb.Record
		if err := proto.Unmarshal(data[off+8:off+8+f.size], &rec); err != nil {
			t.Fatalf("record at %d: %v", off, err)
		}
		f.typ = rec.GetType()
		if f.typ == 2 { // entry
			var e raftpb.Entry
			if err := proto.Unmarshal(rec.GetData(), &e); err != nil {
				t.Fatalf("entry record at %d: %v", off, err)
			}
			f.entryIdx = e.GetIndex()
		}
		out = append(out, f)
		off = f.end()
	}
	return out
}

func walEntryFrame(t *testing.T, frames []walFrame, index uint64) walFrame {
	t.Helper()
	for _, f := range frames {
		if f.typ == 2 && f.entryIdx == index {
			return f
		}
	}
	t.Fatalf("no record for entry %d", index)
	return walFrame{}
}

func rewriteFile(t *testing.T, path string, edit func(data []byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------

func TestOpenWALNewDir(t *testing.T) {
	dir := WALDir(filepath.Join(t.TempDir(), "meta"))
	d, ms := mustOpenWAL(t, dir)
	wantLog(t, ms, 0)
	wantHardState(t, ms, 0, 0, 0)
	walSegment(t, dir)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// An empty WAL reopens as empty.
	d, ms = mustOpenWAL(t, dir)
	defer d.Close()
	wantLog(t, ms, 0)
	wantHardState(t, ms, 0, 0, 0)
}

func TestWALSaveAndReopen(t *testing.T) {
	dir := WALDir(t.TempDir())
	d, _ := mustOpenWAL(t, dir)
	mustSave(t, d, walHardState(1, 2, 0), walEntries(1, 3, 1, 40))
	mustSave(t, d, walHardState(1, 2, 3), nil)
	mustSave(t, d, nil, walEntries(4, 5, 1, 40)) // entries without a hard state keep the last one
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d, ms := mustOpenWAL(t, dir)
	wantLog(t, ms, 40, 1, 1, 1, 1, 1)
	wantHardState(t, ms, 1, 2, 3)

	// The reopened WAL appends where the old one stopped.
	mustSave(t, d, walHardState(2, 3, 5), walEntries(6, 7, 2, 40))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, ms = mustOpenWAL(t, dir)
	defer d.Close()
	wantLog(t, ms, 40, 1, 1, 1, 1, 1, 2, 2)
	wantHardState(t, ms, 2, 3, 5)
}

func TestWALOverwrittenTail(t *testing.T) {
	for _, reopenBetween := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopen between saves=%v", reopenBetween), func(t *testing.T) {
			dir := WALDir(t.TempDir())
			d, _ := mustOpenWAL(t, dir)
			mustSave(t, d, walHardState(1, 1, 2), walEntries(1, 5, 1, 30))
			if reopenBetween {
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				d, _ = mustOpenWAL(t, dir)
			}
			// A new leader of term 2 replaces 4..5 and adds 6.
			mustSave(t, d, walHardState(2, 2, 3), walEntries(4, 6, 2, 30))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, ms := mustOpenWAL(t, dir)
			defer d.Close()
			wantLog(t, ms, 30, 1, 1, 1, 2, 2, 2)
			wantHardState(t, ms, 2, 2, 3)
		})
	}
}

// TestWALTornTail cuts the last record as a crash in the middle of a write would, and expects the log
// back up to the last complete entry, still writable. A segment can end inside a record: etcd only
// preallocates a segment when it is created, so appends after a repair (which truncates the file)
// or past the preallocated 64 MB extend the file, and a crash during such an append leaves exactly
// a file that stops partway through its last record.
func TestWALTornTail(t *testing.T) {
	const size = 1500 // spans several 512-byte sectors
	tests := []struct {
		name string
		tear func(data []byte, last walFrame) []byte
	}{
		{"truncated inside the record", func(data []byte, last walFrame) []byte { return data[:last.start+8+last.size/2] }},
		{"truncated inside the length word", func(data []byte, last walFrame) []byte { return data[:last.start+3] }},
		{"truncated right after the length word", func(data []byte, last walFrame) []byte { return data[:last.start+8] }},
		{"a sector of the record never written", func(data []byte, last walFrame) []byte {
			// Zero the first whole 512-byte sector after the record's first bytes, as a torn write leaves it.
			s := (last.start+8+511)/512*512 + 512
			if s+512 > last.end() {
				panic("record too small for the test")
			}
			clear(data[s : s+512])
			return data
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := WALDir(t.TempDir())
			d, _ := mustOpenWAL(t, dir)
			mustSave(t, d, walHardState(1, 1, 3), walEntries(1, 4, 1, size))
			mustSave(t, d, nil, walEntries(5, 5, 1, size)) // entry 5 is the segment's last record
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			seg := walSegment(t, dir)
			frames := walFrames(t, seg)
			last := frames[len(frames)-1]
			if last.typ != 2 || last.entryIdx != 5 {
				t.Fatalf("the last record is type %d entry %d, want entry 5", last.typ, last.entryIdx)
			}
			rewriteFile(t, seg, func(data []byte) []byte { return tc.tear(data, last) })

			d, ms := mustOpenWAL(t, dir)
			wantLog(t, ms, size, 1, 1, 1, 1)
			wantHardState(t, ms, 1, 1, 3)
			// The repaired log takes new entries at 5 and keeps them.
			mustSave(t, d, walHardState(2, 2, 4), walEntries(5, 6, 2, size))
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			d, ms = mustOpenWAL(t, dir)
			defer d.Close()
			wantLog(t, ms, size, 1, 1, 1, 1, 2, 2)
			wantHardState(t, ms, 2, 2, 4)
		})
	}
}

// middleDamageSize is the entry size of middleDamage's logs.
const middleDamageSize = 1500

// middleDamage lists ways to damage entry 2 of a log of 5 entries, with complete records after it:
// no torn write, so a reader must refuse the log rather than cut it short.
var middleDamage = []struct {
	name    string
	corrupt func(t *testing.T, data []byte, f walFrame)
	// namesFile: the error names the .wal file.
	namesFile bool
}{
	{"a flipped byte in the entry's data", func(t *testing.T, data []byte, f walFrame) {
		i := bytes.Index(data, walPayload(2, 1, middleDamageSize))
		if i < 0 || int64(i) < f.start || int64(i) > f.end() {
			t.Fatal("entry 2's payload not found inside its record")
		}
		data[i+100] ^= 0x01
	}, true},
	{"a flipped byte in the entry's last data byte", func(t *testing.T, data []byte, f walFrame) {
		i := bytes.Index(data, walPayload(2, 1, middleDamageSize))
		data[i+middleDamageSize-1] ^= 0x40
	}, true},
	// etcd reads a too-large length as an unexpected EOF, and its Repair would truncate the
	// segment at entry 2, silently dropping entries 2..5.
	{"a flipped high bit in the record's length word", func(t *testing.T, data []byte, f walFrame) {
		data[f.start+4] ^= 0x01
	}, false},
	// +64 KiB on entry 2's length makes the record end inside the segment's preallocated zeros, which
	// would pass for a torn final write and cut entries 2..5 if a length were trusted as it reads.
	{"a flipped middle bit in the record's length word", func(t *testing.T, data []byte, f walFrame) {
		data[f.start+2] ^= 0x01
	}, false},
	// etcd takes a zeroed sector inside an early record for a torn write, and its Repair would cut
	// the log there, silently dropping the complete entries after it.
	{"a zeroed sector inside the entry", func(t *testing.T, data []byte, f walFrame) {
		s := (f.start+8+511)/512*512 + 512
		if s+512 > f.end() {
			t.Fatal("record too small for the test")
		}
		clear(data[s : s+512])
	}, false},
}

// damagedWAL writes a log of 5 entries of middleDamageSize bytes, closes it, damages entry 2 with
// corrupt and returns the WAL directory, its segment and the segment's bytes after the damage.
func damagedWAL(t *testing.T, corrupt func(t *testing.T, data []byte, f walFrame)) (dir, seg string, damaged []byte) {
	t.Helper()
	dir = WALDir(t.TempDir())
	d, _ := mustOpenWAL(t, dir)
	for i := uint64(1); i <= 5; i++ {
		mustSave(t, d, walHardState(1, 1, i-1), walEntries(i, i, 1, middleDamageSize))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	seg = walSegment(t, dir)
	f := walEntryFrame(t, walFrames(t, seg), 2)
	rewriteFile(t, seg, func(data []byte) []byte { corrupt(t, data, f); return data })
	damaged, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, seg, damaged
}

// TestWALCorruptionInTheMiddle damages an early record, with complete records after it. That is no
// torn write: OpenWAL must refuse with ErrCorruptLog naming the segment, and must not cut the log.
func TestWALCorruptionInTheMiddle(t *testing.T) {
	for _, tc := range middleDamage {
		t.Run(tc.name, func(t *testing.T) {
			dir, seg, before := damagedWAL(t, tc.corrupt)

			d, ms, err := OpenWAL(dir)
			if err == nil {
				last, _ := ms.LastIndex()
				d.Close()
				t.Fatalf("OpenWAL accepted a log damaged in the middle; it now ends at entry %d of 5", last)
			}
			if !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("OpenWAL = %v, want ErrCorruptLog", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not name %s", err, dir)
			}
			if tc.namesFile && !strings.Contains(err.Error(), filepath.Base(seg)) {
				t.Fatalf("error %q does not name the segment %s", err, filepath.Base(seg))
			}
			after, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("the refused open modified the segment")
			}
			// It stays refused: nothing was "repaired" behind our back.
			if _, _, err := OpenWAL(dir); !errors.Is(err, ErrCorruptLog) {
				t.Fatalf("second OpenWAL = %v, want ErrCorruptLog", err)
			}
		})
	}
}

// TestOpenWALInUseIsNotCorrupt: a WAL held open by another WALDisk is locked, not corrupt; reporting
// it as ErrCorruptLog would tell the operator the data is damaged when only a second process runs.
func TestOpenWALInUseIsNotCorrupt(t *testing.T) {
	dir := WALDir(t.TempDir())
	d, _ := mustOpenWAL(t, dir)
	mustSave(t, d, walHardState(1, 1, 0), walEntries(1, 1, 1, 10))
	d2, _, err := OpenWAL(dir)
	if err == nil {
		d2.Close()
		d.Close()
		t.Fatal("two WALDisks opened the same WAL")
	}
	if errors.Is(err, ErrCorruptLog) {
		t.Fatalf("a WAL locked by another opener is reported as corrupt: %v", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name %s", err, dir)
	}
	// Once the first opener closes, the WAL opens normally with what it wrote.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, ms := mustOpenWAL(t, dir)
	defer d.Close()
	wantLog(t, ms, 10, 1)
}
