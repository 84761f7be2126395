package metadatalog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// WALEntry is one entry as a WAL holds it, for tools that inspect a log without replaying it.
type WALEntry struct {
	Entry
	// ConfChange marks Raft's own configuration entries, whose Data is not a RecordBatch.
	ConfChange bool
}

// WALContents is what ReadWAL finds in a WAL.
type WALContents struct {
	// Entries are every entry the WAL holds, in offset order, including those past Commit: Raft may
	// still overwrite those.
	Entries []WALEntry
	// Epoch, Vote and Commit are the last hard state saved.
	Epoch, Vote, Commit uint64
}

// ReadWAL reads the WAL in dir without changing it and without taking its lock, so it works on the WAL
// of a running node. It never repairs anything: a record torn by a crash (or being written right now)
// at the very end is left out, as etcd's read mode does, and the entries before it are returned.
// Damage elsewhere is ErrCorruptLog naming dir.
//
// When the segments holding the log's start have been released after a snapshot, the entries start
// after the oldest snapshot marker the remaining segments hold.
func ReadWAL(dir string) (_ WALContents, err error) {
	if !wal.Exist(dir) {
		return WALContents{}, fmt.Errorf("%s holds no WAL segments (*.wal)", dir)
	}
	lg := zap.NewNop()
	start, err := walStart(lg, dir)
	if err != nil {
		return WALContents{}, err
	}
	// etcd panics on a record whose checksum is right but whose content does not decode; a dump must
	// report that, not crash.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: WAL in %s: %v", ErrCorruptLog, dir, p)
		}
	}()
	w, err := wal.OpenForRead(lg, dir, start)
	if err != nil {
		return WALContents{}, fmt.Errorf("%w: open WAL in %s: %v", ErrCorruptLog, dir, err)
	}
	// In read mode Close only releases what ReadAll has not already closed; its error says nothing
	// about the data (it has no directory handle to close).
	defer w.Close()
	_, hs, ents, err := w.ReadAll()
	if err != nil {
		return WALContents{}, fmt.Errorf("%w: WAL in %s: %v", ErrCorruptLog, dir, err)
	}
	// Read mode stops quietly at the first record it reads as truncated, wherever it is; only the
	// newest segment's last write may really be torn.
	if err := checkSegmentEnds(dir); err != nil {
		return WALContents{}, err
	}
	out := WALContents{Epoch: hs.GetTerm(), Vote: hs.GetVote(), Commit: hs.GetCommit(), Entries: make([]WALEntry, 0, len(ents))}
	for _, e := range ents {
		out.Entries = append(out.Entries, WALEntry{
			Entry:      Entry{Offset: e.GetIndex(), Epoch: e.GetTerm(), Data: e.GetData()},
			ConfChange: e.GetType() != raftpb.EntryNormal,
		})
	}
	return out, nil
}

// walStart picks the snapshot marker to read from: none when the first segment still starts at the
// beginning of the log, otherwise the oldest marker at or after the first segment's start.
func walStart(lg *zap.Logger, dir string) (*walpb.Snapshot, error) {
	segs, err := walSegments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%s holds no WAL segments (*.wal)", dir)
	}
	first := segs[0].first
	if first == 0 {
		return &walpb.Snapshot{}, nil
	}
	snaps, err := wal.ValidSnapshotEntries(lg, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: WAL in %s: %v", ErrCorruptLog, dir, err)
	}
	for _, s := range snaps {
		if s.GetIndex() >= first {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: the WAL in %s starts at offset %d but holds no committed snapshot marker at or after it", ErrCorruptLog, dir, first)
}

// checkSegmentEnds decodes each segment on its own and refuses one that stops at a record read as
// truncated, unless it is the newest segment and the record is a torn final write (see tornAt).
// Checksums chained across segments are left to ReadAll, which has already checked them.
func checkSegmentEnds(dir string) error {
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		return err
	}
	sort.Strings(segs)
	for i, seg := range segs {
		off, err := segmentEnd(seg)
		if err == nil {
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s: %v", ErrCorruptLog, seg, err)
		}
		if i == len(segs)-1 {
			data, rerr := os.ReadFile(seg)
			if rerr != nil {
				return fmt.Errorf("read %s: %w", seg, rerr)
			}
			if tornAt(data, off) {
				continue
			}
		}
		return fmt.Errorf("%w: %s is damaged at byte %d and valid data follows, so this is not a torn tail", ErrCorruptLog, seg, off)
	}
	return nil
}

// segmentEnd decodes the segment at path and returns where its last valid record ends, with the
// error that stopped decoding (nil at a clean end).
func segmentEnd(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	d := wal.NewDecoder(fileutil.NewFileReader(f))
	rec := &walpb.Record{}
	for {
		err := d.Decode(rec)
		if err == io.EOF {
			return d.LastOffset(), nil
		}
		if err != nil {
			return d.LastOffset(), err
		}
		if rec.GetType() == wal.CrcType { // the previous segment's checksum, which starts this one's chain
			d.UpdateCRC(rec.GetCrc())
		}
	}
}
