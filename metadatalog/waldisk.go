package metadatalog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Disk is where a replica makes its Raft state durable before it acts on it: Raft requires the hard state and
// new entries to be on stable storage before any message that depends on them is sent.
type Disk interface {
	// Save records hs (when not empty) and ents. mustSync says whether Raft needs them on stable storage
	// before continuing; an implementation may sync more often, never less.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, mustSync bool) error
	Close() error
}

// WALDisk is the production Disk: etcd's write-ahead log, fsynced as Raft demands.
type WALDisk struct {
	w   *wal.WAL
	dir string
}

// ErrCorruptLog marks a log that cannot be trusted; the node must stop rather than serve from it.
var ErrCorruptLog = errors.New("corrupt metadata log")

// OpenWAL opens (creating on first use) the WAL in dir and replays it into a fresh MemoryStorage.
// A tail torn by a crash in the last segment is cut back to the last complete entry, as etcd does; damage
// anywhere else is ErrCorruptLog with the file named, because silently truncating the middle of a log would
// lose entries this node may already have acknowledged.
func OpenWAL(dir string) (*WALDisk, *raft.MemoryStorage, error) {
	lg := zap.NewNop()
	if !wal.Exist(dir) {
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
	repaired := false
	for {
		w, err := wal.Open(lg, dir, &walpb.Snapshot{})
		if err != nil {
			return nil, nil, fmt.Errorf("%w: open WAL in %s: %v", ErrCorruptLog, dir, err)
		}
		_, hs, ents, err := w.ReadAll()
		if err != nil {
			w.Close()
			if !repaired && errors.Is(err, io.ErrUnexpectedEOF) && tornInLastSegment(dir, err) {
				if wal.Repair(lg, dir) {
					repaired = true
					continue
				}
			}
			return nil, nil, fmt.Errorf("%w: %s: %v; the node cannot start from this log: restore the directory or wipe and re-format it so the node rejoins from its peers", ErrCorruptLog, dir, err)
		}
		ms := raft.NewMemoryStorage()
		if err := ms.SetHardState(hs); err != nil {
			w.Close()
			return nil, nil, err
		}
		if err := ms.Append(ents); err != nil {
			w.Close()
			return nil, nil, err
		}
		return &WALDisk{w: w, dir: dir}, ms, nil
	}
}

var walFileInError = regexp.MustCompile(`'([0-9a-f]{16}-[0-9a-f]{16}\.wal)'|"([0-9a-f]{16}-[0-9a-f]{16}\.wal)"`)

// tornInLastSegment reports whether an unexpected EOF lies in the newest segment, the only place a crash can
// leave a partial write. An error that names no file came from reading past a file's end, which also only
// happens at the tail.
func tornInLastSegment(dir string, err error) bool {
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(segs) == 0 {
		return false
	}
	sort.Strings(segs)
	last := filepath.Base(segs[len(segs)-1])
	m := walFileInError.FindStringSubmatch(err.Error())
	if m == nil {
		return true
	}
	return m[1] == last || m[2] == last
}

// Save implements Disk; the WAL itself decides when Raft needs an fsync, which is at least as often as mustSync.
func (d *WALDisk) Save(hs *raftpb.HardState, ents []*raftpb.Entry, _ bool) error {
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	return d.w.Save(hs, ents)
}

// Close releases the WAL's file locks.
func (d *WALDisk) Close() error { return d.w.Close() }
