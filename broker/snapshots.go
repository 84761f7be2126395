package broker

// The broker's own snapshots, in metadatalog.SnapshotDir(Config.Dir): the newest one that reads cleanly
// is where the broker starts, so a restart fetches only the log after it; the snapshotter writes new
// ones by the snapshot policy as the follower applies the log; a downloaded snapshot (fetch_snapshot.go)
// stays there as the newest.
//
// A broker holds no log and the controllers hold everything, so no snapshot is ever essential to it: a
// damaged one costs a longer catch-up, never a stop.

import (
	"errors"
	"os"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
)

// corruptSuffix is appended to a snapshot that does not read cleanly at start. Moved aside, it is no
// longer the newest snapshot that retention keeps, nor mistaken for a finished download of its name,
// and whoever investigates still has it.
const corruptSuffix = ".corrupt"

// loadSnapshot clears unfinished snapshot files from the snapshot directory and returns the image of
// the newest snapshot there that reads cleanly and belongs to this cluster, else the empty image.
func (b *Broker) loadSnapshot() *metadatalog.Image {
	dir := metadatalog.SnapshotDir(b.cfg.Dir)
	parts, err := snapshot.PartFiles(dir)
	if err != nil {
		b.log.Warn("cannot list unfinished snapshot files", "dir", dir, "err", err)
	}
	for _, p := range parts {
		// Left by a crash during a write or a download; nothing reads them, and a download starts over.
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("cannot remove an unfinished snapshot file", "path", p, "err", err)
		} else {
			b.log.Info("removed an unfinished snapshot file", "path", p)
		}
	}
	snaps, err := snapshot.List(dir)
	if err != nil {
		b.log.Warn("cannot list snapshots; starting from an empty image", "dir", dir, "err", err)
		return metadatalog.EmptyImage()
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		start := time.Now()
		img, h, err := metadatalog.ReadSnapshotImage(s.Path)
		var corrupt *snapshot.CorruptError
		var impossible *metadatalog.ApplyError
		switch {
		case errors.As(err, &corrupt) || errors.As(err, &impossible):
			aside := s.Path + corruptSuffix
			if rerr := os.Rename(s.Path, aside); rerr != nil {
				b.log.Warn("snapshot is unusable and cannot be moved aside; trying an older one", "path", s.Path, "reason", err, "rename_err", rerr)
				continue
			}
			b.log.Warn("snapshot is unusable; moved it aside and trying an older one", "path", s.Path, "moved_to", aside, "reason", err)
			continue
		case err != nil:
			b.log.Warn("cannot read snapshot; trying an older one", "path", s.Path, "err", err)
			continue
		case h.ClusterID != b.cfg.ClusterID:
			b.log.Warn("snapshot belongs to another cluster; trying an older one", "path", s.Path,
				"snapshot_cluster_id", h.ClusterID, "cluster_id", b.cfg.ClusterID)
			continue
		}
		b.log.Info("loaded snapshot", "path", s.Path, "offset", h.Offset, "epoch", h.Epoch, "records", h.RecordCount,
			"took", time.Since(start).Round(time.Millisecond))
		return img
	}
	if len(snaps) > 0 {
		b.log.Warn("no usable snapshot; starting from an empty image", "dir", dir, "snapshots", len(snaps))
	}
	return metadatalog.EmptyImage()
}

// newSnapshotter returns the snapshotter for the broker's snapshot directory; the broker starts from
// the image start (its newest snapshot's, or an empty one).
func (b *Broker) newSnapshotter(start *metadatalog.Image) *metadatalog.Snapshotter {
	return metadatalog.NewSnapshotter(metadatalog.SnapshotterConfig{
		Policy:    b.cfg.SnapshotPolicy,
		Dir:       metadatalog.SnapshotDir(b.cfg.Dir),
		ClusterID: b.cfg.ClusterID,
		Logger:    b.log,
	}, start, time.Now())
}
