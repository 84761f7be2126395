package broker

// FetchSnapshot (key 59), sent to a controller port to catch up by snapshot: v0 or v1, whichever the
// controller offers (v1 only adds tagged fields this broker leaves empty). A broker asks for it when a
// Fetch answer names a snapshot instead of carrying records (fetch.go): its next offset is below the
// controller's log start. It asks the controller that named the snapshot, the only one known to hold a
// file of that name, and snapshot.Download asks for the file chunk by chunk, by position, resuming a
// download an earlier attempt left unfinished.
//
// The answers that matter: SNAPSHOT_NOT_FOUND means retention removed the snapshot since the Fetch
// answer named it, so the broker fetches again to learn the newer one; a transport error keeps the
// partial file, and the next attempt, after a backoff and a fresh Fetch, resumes from it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SnapshotID names a snapshot by its last included offset and that offset's epoch.
type SnapshotID struct {
	Offset, Epoch uint64
}

// downloadSuffix is what snapshot.Download appends to a snapshot's name while the download is
// unfinished.
const downloadSuffix = ".fetch.part"

// catchUpOutcome is what the follower does after one attempt to catch up by snapshot.
type catchUpOutcome int8

const (
	// catchUpDone: the snapshot's image is applied; follow the log from its offset + 1.
	catchUpDone catchUpOutcome = iota
	// catchUpRetry: fetch again from the same controller after a pause.
	catchUpRetry
	// catchUpElsewhere: fetch again from the next controller after a pause.
	catchUpElsewhere
	// catchUpFatal: the broker has failed (b.fail) and must stop following.
	catchUpFatal
)

// snapshotCatchUp is the follower's state between attempts to catch up by snapshot. Only the follower
// goroutine touches it.
type snapshotCatchUp struct {
	// tmpDir holds downloads when the broker has no Dir. It outlives a failed attempt, so the next one
	// resumes the partial file, and is removed once a snapshot is loaded or the follower stops.
	tmpDir string
	// Failures in a row, to log the first and then one in 20 rather than every retry.
	failures, notFound, odd int
}

func (c *snapshotCatchUp) close() {
	if c.tmpDir != "" {
		os.RemoveAll(c.tmpDir)
		c.tmpDir = ""
	}
}

// downloadDir is where a download goes: the snapshot directory, or a temporary one without Dir.
func (b *Broker) downloadDir(c *snapshotCatchUp) (string, error) {
	if b.cfg.Dir != "" {
		return metadatalog.SnapshotDir(b.cfg.Dir), nil
	}
	if c.tmpDir == "" {
		dir, err := os.MkdirTemp("", fmt.Sprintf("kraft-broker-%d-snapshot-", b.cfg.NodeID))
		if err != nil {
			return "", fmt.Errorf("a temporary directory for the snapshot download: %w", err)
		}
		c.tmpDir = dir
	}
	return c.tmpDir, nil
}

// catchUpFromSnapshot downloads the snapshot controller id named in answer to a fetch asked with img,
// and swaps its image in.
func (b *Broker) catchUpFromSnapshot(c *snapshotCatchUp, id int32, img *metadatalog.Image, snap SnapshotID) catchUpOutcome {
	if snap.Offset <= img.Offset {
		// The controller says the log before our next offset is gone, yet its newest snapshot is not
		// past what we applied: loading it would take the image backwards. Ask again, elsewhere.
		c.odd++
		lvl := slog.LevelDebug
		if c.odd == 1 || c.odd%20 == 0 {
			lvl = slog.LevelWarn
		}
		b.log.Log(b.ctx, lvl, "the controller points to a snapshot this broker has already passed; asking again",
			"controller", id, "snapshot_offset", snap.Offset, "snapshot_epoch", snap.Epoch, "offset", img.Offset, "attempts", c.odd)
		return catchUpElsewhere
	}
	c.odd = 0
	dir, err := b.downloadDir(c)
	if err != nil {
		return b.catchUpFailed(c, id, snap, err)
	}
	b.dropStaleDownloads(dir, snap)
	b.log.Debug("catching up from snapshot", "controller", id, "snapshot_offset", snap.Offset, "snapshot_epoch", snap.Epoch, "offset", img.Offset)
	start := time.Now()
	path, err := snapshot.Download(b.ctx, snapshot.DownloadRequest{
		Dir:        dir,
		ClusterID:  b.cfg.ClusterID,
		ReplicaID:  b.cfg.NodeID,
		Offset:     snap.Offset,
		Epoch:      snap.Epoch,
		ChunkBytes: b.cfg.Knobs.snapshotChunkBytes,
	}, b.fetchSnapshotFunc(id))
	if b.ctx.Err() != nil {
		return catchUpRetry // stopping; the follower's loop ends
	}
	if errors.Is(err, kerr.SnapshotNotFound) {
		// Retention removed it after the Fetch answer named it; the controller holds a newer one, which
		// the next Fetch answer names. What we had of this one is of no use any more.
		os.Remove(filepath.Join(dir, snapshot.FileName(snap.Offset, snap.Epoch)) + downloadSuffix)
		c.notFound++
		lvl := slog.LevelDebug
		if c.notFound == 1 || c.notFound%20 == 0 {
			lvl = slog.LevelInfo
		}
		b.log.Log(b.ctx, lvl, "the controller no longer holds the snapshot it named; asking for its newest",
			"controller", id, "snapshot_offset", snap.Offset, "snapshot_epoch", snap.Epoch, "attempts", c.notFound)
		return catchUpRetry
	}
	c.notFound = 0
	if errors.Is(err, snapshot.ErrOtherCluster) {
		b.fail(fmt.Errorf("catching up from controller %d: %w", id, err))
		return catchUpFatal
	}
	if err != nil {
		return b.catchUpFailed(c, id, snap, err)
	}

	next, h, err := metadatalog.ReadSnapshotImage(path)
	if ae := (*metadatalog.ApplyError)(nil); errors.As(err, &ae) {
		// Records that build no image: the controllers' state is impossible, as an impossible record in
		// the log is. Keep the file for whoever investigates.
		b.fail(fmt.Errorf("catching up from snapshot %s of controller %d: %w", path, id, err))
		return catchUpFatal
	}
	if err != nil {
		// The download was verified before it was renamed into place, so this is the disk's doing (or
		// an older file of the same name): drop it and download again.
		os.Remove(path)
		return b.catchUpFailed(c, id, snap, err)
	}
	if h.ClusterID != b.cfg.ClusterID {
		os.Remove(path) // never load it at the next start, nor take it for a finished download
		b.fail(fmt.Errorf("the snapshot at offset %d that controller %d serves belongs to cluster %s, not to this broker's cluster %s",
			h.Offset, id, h.ClusterID, b.cfg.ClusterID))
		return catchUpFatal
	}
	// The follower is the only writer of the image, so it is still img, below the snapshot.
	b.image.Store(next)
	poke(b.applied)
	poke(b.imageChanged)
	c.failures = 0
	b.log.Info("caught up from snapshot", "offset", h.Offset, "epoch", h.Epoch, "path", path, "records", h.RecordCount,
		"took", time.Since(start).Round(time.Millisecond), "controller", id, "previous_offset", img.Offset)
	if b.cfg.Dir == "" {
		c.close()
		return catchUpDone
	}
	// The download is now the newest snapshot in Dir: the policy counts from it, rather than writing
	// the same image again.
	if b.snapshotter != nil {
		b.snapshotter.Loaded(next.Offset, time.Now())
	}
	if err := metadatalog.ApplyRetention(dir, b.cfg.SnapshotPolicy, 0, next.Offset, time.Now(), b.log); err != nil {
		b.log.Warn("snapshot retention failed", "err", err)
	}
	return catchUpDone
}

// catchUpFailed logs an attempt that failed for a reason worth retrying: a transport error (the
// partial file stays for the next attempt), a corrupt download (already removed), a refusal, a local
// disk error. A refusal (an error code) sends the follower to the next controller; anything else back
// to the same one, whose next Fetch answer most likely names the same snapshot.
func (b *Broker) catchUpFailed(c *snapshotCatchUp, id int32, snap SnapshotID, err error) catchUpOutcome {
	c.failures++
	lvl := slog.LevelDebug
	if c.failures == 1 || c.failures%20 == 0 {
		lvl = slog.LevelWarn
	}
	b.log.Log(b.ctx, lvl, "cannot catch up from snapshot; trying again", "controller", id,
		"snapshot_offset", snap.Offset, "snapshot_epoch", snap.Epoch, "attempts", c.failures, "err", err)
	if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
		return catchUpElsewhere
	}
	return catchUpRetry
}

// dropStaleDownloads removes the unfinished downloads in dir of snapshots other than snap: the
// controllers no longer offer them to us, and only snap's could be resumed. A snapshot being written
// (a .part that is not a download) is left alone.
func (b *Broker) dropStaleDownloads(dir string, snap SnapshotID) {
	parts, err := snapshot.PartFiles(dir)
	if err != nil {
		b.log.Debug("cannot list unfinished snapshot downloads", "dir", dir, "err", err)
		return
	}
	keep := snapshot.FileName(snap.Offset, snap.Epoch) + downloadSuffix
	for _, p := range parts {
		if name := filepath.Base(p); strings.HasSuffix(name, downloadSuffix) && name != keep {
			if err := os.Remove(p); err == nil {
				b.log.Debug("removed an unfinished download of an older snapshot", "path", p)
			}
		}
	}
}

// fetchSnapshotFunc sends each chunk request of a download to controller id, bounded by the request
// timeout.
func (b *Broker) fetchSnapshotFunc(id int32) snapshot.FetchFunc {
	return func(ctx context.Context, req *kmsg.FetchSnapshotRequest) (*kmsg.FetchSnapshotResponse, error) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		defer cancel()
		resp, err := b.q.request(ctx, id, req)
		if err != nil {
			return nil, err
		}
		r, ok := resp.(*kmsg.FetchSnapshotResponse)
		if !ok {
			return nil, fmt.Errorf("controller %d answered FetchSnapshot with %T", id, resp)
		}
		return r, nil
	}
}
