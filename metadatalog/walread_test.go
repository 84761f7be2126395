package metadatalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func mustReadWAL(t *testing.T, dir string) WALContents {
	t.Helper()
	wc, err := ReadWAL(dir)
	if err != nil {
		t.Fatalf("ReadWAL(%s): %v", dir, err)
	}
	return wc
}

func wantWALEntries(t *testing.T, wc WALContents, size int, terms ...uint64) {
	t.Helper()
	if len(wc.Entries) != len(terms) {
		t.Fatalf("%d entries, want %d", len(wc.Entries), len(terms))
	}
	for i, e := range wc.Entries {
		idx := uint64(i + 1)
		if e.Offset != idx || e.Epoch != terms[i] || !bytes.Equal(e.Data, walPayload(idx, terms[i], size)) {
			t.Fatalf("entry %d = offset %d epoch %d data %.30q; want epoch %d", idx, e.Offset, e.Epoch, e.Data, terms[i])
		}
	}
}

// TestReadWALWhileOpen reads the WAL of a running node: the writer holds the lock and keeps writing.
func TestReadWALWhileOpen(t *testing.T) {
	dir := WALDir(t.TempDir())
	d, _ := mustOpenWAL(t, dir)
	defer d.Close()
	mustSave(t, d, walHardState(2, 1, 2), walEntries(1, 3, 2, 100))

	wc := mustReadWAL(t, dir)
	wantWALEntries(t, wc, 100, 2, 2, 2)
	if wc.Epoch != 2 || wc.Vote != 1 || wc.Commit != 2 {
		t.Fatalf("hard state epoch %d vote %d commit %d, want 2 1 2", wc.Epoch, wc.Vote, wc.Commit)
	}
	// The reader took no lock: the writer goes on, and a second read sees what it wrote.
	cc := &raftpb.Entry{Index: new(uint64(4)), Term: new(uint64(2)), Type: new(raftpb.EntryConfChange)}
	mustSave(t, d, walHardState(2, 1, 4), []*raftpb.Entry{cc})
	wc = mustReadWAL(t, dir)
	if len(wc.Entries) != 4 || !wc.Entries[3].ConfChange || wc.Entries[2].ConfChange || wc.Commit != 4 {
		t.Fatalf("after a conf change: %d entries, last ConfChange %v, commit %d", len(wc.Entries), wc.Entries[len(wc.Entries)-1].ConfChange, wc.Commit)
	}
}

func TestReadWALNoSegments(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadWAL(dir)
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("ReadWAL of an empty directory = %v, want an error naming it", err)
	}
}

// TestReadWALTornTail: a torn final write is left out and left alone; the dump never repairs.
func TestReadWALTornTail(t *testing.T) {
	const size = 1500
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
	rewriteFile(t, seg, func(data []byte) []byte { return data[:last.start+8+last.size/2] })
	before, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}

	wc := mustReadWAL(t, dir)
	wantWALEntries(t, wc, size, 1, 1, 1, 1)
	after, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("ReadWAL modified the segment")
	}
	if broken, _ := filepath.Glob(filepath.Join(dir, "*.broken")); len(broken) != 0 {
		t.Fatalf("ReadWAL left %v behind", broken)
	}
}

// TestReadWALCorruptionInTheMiddle: etcd's read mode stops quietly at a record it reads as
// truncated; ReadWAL must refuse instead of returning a log cut short.
func TestReadWALCorruptionInTheMiddle(t *testing.T) {
	for _, tc := range middleDamage {
		t.Run(tc.name, func(t *testing.T) {
			dir, seg, before := damagedWAL(t, tc.corrupt)
			wc, err := ReadWAL(dir)
			if err == nil {
				t.Fatalf("ReadWAL accepted a log damaged in the middle, returning %d of 5 entries", len(wc.Entries))
			}
			if !errors.Is(err, ErrCorruptLog) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("ReadWAL = %v, want ErrCorruptLog naming %s", err, dir)
			}
			if after, _ := os.ReadFile(seg); !bytes.Equal(before, after) {
				t.Fatal("ReadWAL modified the segment")
			}
		})
	}
}
