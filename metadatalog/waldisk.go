package metadatalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protowire"
)

// Disk is where a replica makes its Raft state durable before it acts on it: Raft requires the hard state and
// new entries to be on stable storage before any message that depends on them is sent.
type Disk interface {
	// Save records hs (when not empty) and ents. mustSync says whether Raft needs them on stable storage
	// before continuing; an implementation may sync more often, never less.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, mustSync bool) error
	// SaveSnapshot durably records that the log up to index (in epoch term) is held by a snapshot
	// file, which the caller has already made durable: a restart may then start from that snapshot.
	SaveSnapshot(index, term uint64, voters []uint64) error
	// Release says that entries before index are no longer needed: the disk may drop them.
	Release(index uint64) error
	Close() error
}

// WALDisk is the production Disk: etcd's write-ahead log, fsynced as Raft demands.
type WALDisk struct {
	w   *wal.WAL
	dir string
	// saved is the last hard state written, as the WAL compares it to decide on an fsync.
	saved *raftpb.HardState
}

// ErrCorruptLog marks a log that cannot be trusted; the node must stop rather than serve from it.
var ErrCorruptLog = errors.New("corrupt metadata log")

// SnapshotMark names the snapshot a WAL is opened at: the log up to Offset (in Epoch) is in the
// snapshot file, and the WAL is read from the entries after it.
type SnapshotMark struct {
	Offset, Epoch uint64
}

// OpenWAL opens (creating on first use) the WAL in dir and replays it into a fresh MemoryStorage, from
// the beginning of the log.
func OpenWAL(dir string) (*WALDisk, *raft.MemoryStorage, error) {
	return OpenWALAt(dir, SnapshotMark{}, nil)
}

// OpenWALAt opens the WAL in dir at the snapshot marker mark (the zero mark is the beginning of the log)
// and replays what follows it into a fresh MemoryStorage, which starts with a snapshot of the given
// voters at mark. A tail torn by a crash in the last segment is cut back to the last complete entry, as
// etcd does; damage anywhere else is ErrCorruptLog with the file named, because silently truncating
// the middle of a log would lose entries this node may already have acknowledged.
func OpenWALAt(dir string, mark SnapshotMark, voters []uint64) (*WALDisk, *raft.MemoryStorage, error) {
	lg := zap.NewNop()
	if err := recoverRewrite(dir); err != nil {
		return nil, nil, err
	}
	if !wal.Exist(dir) {
		if mark.Offset > 0 {
			return nil, nil, fmt.Errorf("%w: %s holds no WAL, but a snapshot at offset %d needs one", ErrCorruptLog, dir, mark.Offset)
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
		}
		w, err := wal.Create(lg, dir, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("create WAL in %s: %w", dir, err)
		}
		if err := w.Close(); err != nil {
			return nil, nil, fmt.Errorf("close new WAL in %s: %w", dir, err)
		}
	}
	start := &walpb.Snapshot{}
	if mark.Offset > 0 {
		start = &walpb.Snapshot{Index: new(mark.Offset), Term: new(mark.Epoch)}
	}
	repaired := false
	for {
		w, err := wal.Open(lg, dir, start)
		if errors.Is(err, fileutil.ErrLocked) {
			return nil, nil, fmt.Errorf("the WAL in %s is in use by another process: is another kraftd running on this metadata.log.dir?", dir)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: open WAL in %s: %v", ErrCorruptLog, dir, err)
		}
		_, hs, ents, err := w.ReadAll()
		if err != nil {
			w.Close()
			if !repaired && errors.Is(err, io.ErrUnexpectedEOF) {
				if rerr := repairTornTail(lg, dir); rerr != nil {
					return nil, nil, fmt.Errorf("%w: %s: %v; %v; the node cannot start from this log: restore the directory, or wipe and re-format it so the node rejoins from its peers", ErrCorruptLog, dir, err, rerr)
				}
				repaired = true
				continue
			}
			return nil, nil, fmt.Errorf("%w: %s: %v; the node cannot start from this log: restore the directory, or wipe and re-format it so the node rejoins from its peers", ErrCorruptLog, dir, err)
		}
		ms := raft.NewMemoryStorage()
		if mark.Offset > 0 {
			snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(mark.Offset), Term: new(mark.Epoch), ConfState: &raftpb.ConfState{Voters: voters}}}
			if err := ms.ApplySnapshot(snap); err != nil {
				w.Close()
				return nil, nil, err
			}
			// The snapshot is committed by definition, and its epoch was current when it was taken; a
			// crash between the marker and the next hard state can leave an older one on disk.
			if hs.GetCommit() < mark.Offset || hs.GetTerm() < mark.Epoch {
				term, vote := hs.GetTerm(), hs.GetVote()
				if term < mark.Epoch {
					term, vote = mark.Epoch, 0
				}
				hs = &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(max(hs.GetCommit(), mark.Offset))}
			}
		}
		if err := ms.SetHardState(hs); err != nil {
			w.Close()
			return nil, nil, err
		}
		if err := ms.Append(ents); err != nil {
			w.Close()
			return nil, nil, err
		}
		return &WALDisk{w: w, dir: dir, saved: hs}, ms, nil
	}
}

// SnapshotMarks lists the snapshot markers the WAL in dir holds, oldest first, without opening it for
// writing: the snapshots a restart can start from.
func SnapshotMarks(dir string) ([]SnapshotMark, error) {
	if !wal.Exist(dir) {
		return nil, nil
	}
	snaps, err := wal.ValidSnapshotEntries(zap.NewNop(), dir)
	if err != nil {
		return nil, fmt.Errorf("%w: WAL in %s: %v", ErrCorruptLog, dir, err)
	}
	out := make([]SnapshotMark, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, SnapshotMark{Offset: s.GetIndex(), Epoch: s.GetTerm()})
	}
	return out, nil
}

// walFirstOffset is the first offset the oldest WAL segment in dir may hold: 0 while the log still
// starts at the beginning.
func walFirstOffset(dir string) (uint64, error) {
	segs, err := walSegments(dir)
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	return segs[0].first, nil
}

type segmentFile struct {
	path  string
	first uint64 // the first offset the segment may hold
}

// walSegments lists dir's segments in order, with the first offset each may hold (from its name).
func walSegments(dir string) ([]segmentFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make([]segmentFile, 0, len(paths))
	for _, p := range paths {
		var seq, first uint64
		if _, err := fmt.Sscanf(filepath.Base(p), "%016x-%016x.wal", &seq, &first); err != nil {
			return nil, fmt.Errorf("%w: %s is not named like a WAL segment", ErrCorruptLog, p)
		}
		out = append(out, segmentFile{path: p, first: first})
	}
	return out, nil
}

// WALBytes is what the WAL in dir takes on disk.
func WALBytes(dir string) int64 {
	segs, _ := walSegments(dir)
	var n int64
	for _, s := range segs {
		if fi, err := os.Stat(s.path); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// repairTornTail cuts a record torn by a crash off the end of the newest segment, the only place a
// crash can leave one. etcd's Repair truncates at the first undecodable record of that segment,
// wherever it is, so the cut is checked afterwards: a torn write is the last thing written, so the
// record's extent must fit in the file and nothing but zeros (preallocated space) may follow it.
// Anything else is corruption, and the segment is put back as it was.
func repairTornTail(lg *zap.Logger, dir string) error {
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) == 0 {
		return errors.New("no WAL segment to repair")
	}
	sort.Strings(segs)
	last := segs[len(segs)-1]
	if !wal.Repair(lg, dir) {
		return fmt.Errorf("%s cannot be repaired", filepath.Base(last))
	}
	broken := last + ".broken"
	orig, err := os.ReadFile(broken)
	if err != nil {
		return fmt.Errorf("read %s: %w", broken, err)
	}
	st, err := os.Stat(last)
	if err != nil {
		return err
	}
	cut := st.Size()
	if tornAt(orig, cut) {
		return nil
	}
	if err := os.Rename(broken, last); err != nil {
		return fmt.Errorf("restore %s after a refused repair: %w", last, err)
	}
	return fmt.Errorf("%s is damaged at byte %d and valid data follows, so this is not a torn tail", filepath.Base(last), cut)
}

// walSegmentBytes is the size etcd's WAL preallocates and cuts segments at.
const walSegmentBytes = 64 << 20

// tornAt reports whether the record starting at off in a segment's bytes is a torn final write.
func tornAt(seg []byte, off int64) bool {
	if off+8 > int64(len(seg)) {
		return true // not even the length field made it to disk
	}
	lenField := binary.LittleEndian.Uint64(seg[off:])
	recBytes := int64(lenField &^ (uint64(0xff) << 56))
	var pad int64
	if lenField&(1<<63) != 0 {
		pad = int64((lenField >> 56) & 0x7)
	}
	end := off + 8 + recBytes + pad
	if end > int64(len(seg)) {
		// The file ends inside the record: torn, unless the length itself is damage. A bit flipped in
		// a length field almost always claims more than a whole segment, which no record of ours holds.
		return recBytes >= 0 && recBytes <= walSegmentBytes
	}
	if !allZero(seg[end:]) {
		return false
	}
	// A flipped bit in the length word can also claim a longer record that still ends inside the
	// preallocated zeros, swallowing the records after it. The record's own encoding says how long it
	// really is; a torn write leaves only zeros past that point, never more records.
	if n, ok := selfDescribedLength(seg[off+8 : off+8+recBytes]); ok && n < recBytes {
		return allZero(seg[off+8+n : end])
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// selfDescribedLength parses a WAL record's protobuf fields (type, crc, data) and returns how many
// bytes they occupy; ok is false when the bytes do not parse as far as the data field, as in a record
// whose header never reached the disk.
func selfDescribedLength(b []byte) (int64, bool) {
	n := 0
	for n < len(b) {
		num, typ, l := protowire.ConsumeTag(b[n:])
		if l < 0 || num < 1 || num > 3 {
			return 0, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n+l:])
		if m < 0 {
			return 0, false
		}
		n += l + m
		if num == 3 {
			return int64(n), true
		}
	}
	return 0, false
}

// Save implements Disk. The WAL fsyncs on its own when Raft's rule says so (new entries, a new term or
// vote); a caller may need more, as after installing a snapshot, and then gets an extra fsync.
func (d *WALDisk) Save(hs *raftpb.HardState, ents []*raftpb.Entry, mustSync bool) error {
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	walSyncs := raft.MustSync(hs, d.saved, len(ents))
	if err := d.w.Save(hs, ents); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(hs) {
		d.saved = hs
	}
	if mustSync && !walSyncs {
		return d.w.Sync()
	}
	return nil
}

// SaveSnapshot implements Disk with a WAL snapshot marker, which OpenWALAt can start from.
func (d *WALDisk) SaveSnapshot(index, term uint64, voters []uint64) error {
	return d.w.SaveSnapshot(&walpb.Snapshot{Index: new(index), Term: new(term), ConfState: &raftpb.ConfState{Voters: voters}})
}

// Release implements Disk: it unlocks and deletes the segments that hold only entries before index.
// The newest segment is never deleted, and neither is one that a later segment does not follow.
func (d *WALDisk) Release(index uint64) error {
	if err := d.w.ReleaseLockTo(index); err != nil {
		return err
	}
	segs, err := walSegments(d.dir)
	if err != nil {
		return err
	}
	removed := false
	for i := 0; i+1 < len(segs) && segs[i+1].first <= index; i++ {
		if err := os.Remove(segs[i].path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("release WAL segment: %w", err)
		}
		removed = true
	}
	if removed {
		return syncDirPath(d.dir)
	}
	return nil
}

func syncDirPath(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Close releases the WAL's file locks.
func (d *WALDisk) Close() error { return d.w.Close() }

// SetSegmentBytes sets the size at which WAL segments are cut (metadata.log.segment.bytes). The log
// is released in whole segments, so a smaller size trims it sooner. It is process-wide, as etcd's WAL
// keeps it, so call it once at start, before any log opens.
func SetSegmentBytes(n int64) {
	if n > 0 {
		wal.SegmentSizeBytes = n
	}
}

// Rewrite replaces the whole WAL with one that holds only the snapshot marker mark, the hard state hs
// and the entries after the mark: what a node keeps after a metadata.version downgrade, so that no
// record the lower level cannot represent stays anywhere in its log. The new WAL is built beside the
// old one and swapped in by renames; recoverRewrite finishes or undoes a swap a crash interrupted.
func (d *WALDisk) Rewrite(mark SnapshotMark, voters []uint64, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	lg := zap.NewNop()
	fresh, old := d.dir+rewriteSuffix, d.dir+oldSuffix
	if err := os.RemoveAll(fresh); err != nil {
		return err
	}
	w, err := wal.Create(lg, fresh, nil)
	if err != nil {
		return fmt.Errorf("rewrite the WAL: %w", err)
	}
	start := &walpb.Snapshot{Index: new(mark.Offset), Term: new(mark.Epoch), ConfState: &raftpb.ConfState{Voters: voters}}
	err = w.SaveSnapshot(start)
	if err == nil {
		err = w.Save(hs, ents)
	}
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(fresh)
		return fmt.Errorf("rewrite the WAL: %w", err)
	}
	// The one segment is named for the marker's offset, as if the log before it had been released, so
	// that opening at the marker (and reading it with ReadWAL) finds it.
	if err := os.Rename(filepath.Join(fresh, fmt.Sprintf("%016x-%016x.wal", 0, 0)), filepath.Join(fresh, fmt.Sprintf("%016x-%016x.wal", 0, mark.Offset))); err != nil {
		os.RemoveAll(fresh)
		return fmt.Errorf("rewrite the WAL: %w", err)
	}
	if err := d.w.Close(); err != nil {
		return fmt.Errorf("rewrite the WAL: close the old one: %w", err)
	}
	if err := os.Rename(d.dir, old); err != nil {
		return fmt.Errorf("rewrite the WAL: %w", err)
	}
	if err := os.Rename(fresh, d.dir); err != nil {
		return fmt.Errorf("rewrite the WAL: %w", err)
	}
	if err := syncDirPath(filepath.Dir(d.dir)); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	w, err = wal.Open(lg, d.dir, &walpb.Snapshot{Index: new(mark.Offset), Term: new(mark.Epoch)})
	if err != nil {
		return fmt.Errorf("%w: reopen the rewritten WAL in %s: %v", ErrCorruptLog, d.dir, err)
	}
	if _, _, _, err := w.ReadAll(); err != nil {
		w.Close()
		return fmt.Errorf("%w: read the rewritten WAL in %s: %v", ErrCorruptLog, d.dir, err)
	}
	d.w, d.saved = w, hs
	return nil
}

const (
	rewriteSuffix = ".rewrite"
	oldSuffix     = ".old"
)

// recoverRewrite finishes or undoes a Rewrite that a crash interrupted. The new WAL is complete once
// its directory has its final name (etcd's Create renames it into place), so: with no WAL, the new one
// (else the old one) takes its place; with a WAL, leftovers go.
func recoverRewrite(dir string) error {
	fresh, old := dir+rewriteSuffix, dir+oldSuffix
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		for _, candidate := range []string{fresh, old} {
			if _, err := os.Stat(candidate); err == nil {
				if err := os.Rename(candidate, dir); err != nil {
					return fmt.Errorf("finish an interrupted WAL rewrite: %w", err)
				}
				break
			}
		}
	}
	for _, leftover := range []string{fresh, old, fresh + ".tmp"} {
		if err := os.RemoveAll(leftover); err != nil {
			return fmt.Errorf("clean up after a WAL rewrite: %w", err)
		}
	}
	return nil
}
