package metadatalog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kraftgo/kraft/snapshot"
)

// snapshotDirName is where a formatted directory keeps its snapshots, beside wal/.
const snapshotDirName = "snapshots"

// SnapshotDir is where the snapshots of a formatted directory live.
func SnapshotDir(dir string) string { return filepath.Join(dir, snapshotDirName) }

// ReadSnapshotImage reads and verifies the snapshot at path and builds the image it holds: the image at
// the header's offset and epoch. A fault in the file is a *snapshot.CorruptError naming it; records
// that do not build an image (a partition of a missing topic, say) are an *ApplyError. Either way
// nothing partial is returned.
func ReadSnapshotImage(path string) (*Image, snapshot.Header, error) {
	r, err := snapshot.Open(path)
	if err != nil {
		return nil, snapshot.Header{}, err
	}
	defer r.Close()
	h := r.Header()
	// One delta for the whole file: the records go straight into the image's trees as the reader
	// streams them, so the snapshot is never held in memory as records.
	d := newDelta(EmptyImage())
	for i := 0; ; i++ {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, snapshot.Header{}, err
		}
		if reason := d.apply(rec); reason != "" {
			return nil, snapshot.Header{}, fmt.Errorf("snapshot %s: %w", path, &ApplyError{Offset: h.Offset, Index: i, Reason: reason})
		}
	}
	return d.commit(h.Offset, h.Epoch), h, nil
}

// WriteSnapshot writes img durably into dir as a snapshot of cluster clusterID, whose Raft voters are
// voters, and returns its header and path. The directory is created if need be. On any error nothing
// is left behind (see snapshot.Write).
func WriteSnapshot(dir string, img *Image, clusterID string, voters []uint64, createTimeMs int64) (snapshot.Header, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return snapshot.Header{}, "", fmt.Errorf("write snapshot: %w", err)
	}
	h := snapshot.Header{
		Offset: img.Offset, Epoch: img.Epoch, Voters: voters,
		MetadataVersion: int32(img.MetadataVersion()), CreateTimeMs: createTimeMs, ClusterID: clusterID,
	}
	records := img.Records()
	path, err := snapshot.Write(dir, h, records)
	h.RecordCount = uint64(len(records))
	return h, path, err
}
