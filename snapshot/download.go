package snapshot

// Downloading a snapshot from another node, in chunks by position, as Kafka's FetchSnapshot (key 59)
// does. The server (a controller) answers each request with up to MaxBytes of the file from Position,
// plus the file's Size; the downloader appends them to <name>.fetch.part and asks for the next
// position until it has Size bytes. A .fetch.part left by a failed attempt is resumed from its length,
// so a dropped connection costs only the chunk in flight. The finished file is verified, with the name
// it is about to get, before it is fsynced and renamed into place.
//
// SnapshotID.EndOffset is the snapshot's last included offset, as in our file names and our Fetch
// answers (whose offsets are inclusive throughout), not Kafka's exclusive end offset.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// MetadataTopic and MetadataPartition name the log a snapshot belongs to on the wire.
	MetadataTopic     = "__cluster_metadata"
	MetadataPartition = 0
	// DefaultChunkBytes is what a downloader asks for per request.
	DefaultChunkBytes = 1 << 20
	// fetchSuffix marks a download in progress; PartFiles finds it too, so a node clears it at start.
	fetchSuffix = ".fetch" + partSuffix
)

// ErrOtherCluster is a downloaded snapshot whose header names another cluster: not damage to retry,
// but a server the caller must not follow.
var ErrOtherCluster = errors.New("the snapshot belongs to another cluster")

// FetchFunc sends one FetchSnapshot request to the node serving the snapshot and returns its answer.
type FetchFunc func(ctx context.Context, req *kmsg.FetchSnapshotRequest) (*kmsg.FetchSnapshotResponse, error)

// DownloadRequest says which snapshot to download and where to put it.
type DownloadRequest struct {
	Dir string // where the snapshot goes; created if missing
	// ClusterID goes with every request, so a server of another cluster refuses
	// (INCONSISTENT_CLUSTER_ID), and the downloaded header must carry it (ErrOtherCluster).
	ClusterID string
	ReplicaID int32 // the downloader's node id, sent as ReplicaID
	Offset    uint64
	Epoch     uint64
	// ChunkBytes is the MaxBytes of each request; 0 means DefaultChunkBytes.
	ChunkBytes int32
}

// Download fetches the snapshot req names into req.Dir and returns its path. It resumes a download
// that an earlier call left unfinished. A fault in the finished file (a *CorruptError, or
// ErrOtherCluster) removes the partial file, so the next attempt starts over. An error answer is returned as the kerr error:
// SNAPSHOT_NOT_FOUND when the server no longer holds the snapshot (the caller must ask for the newest
// one again), and transport errors as they are, with the partial file kept for the next attempt.
func Download(ctx context.Context, req DownloadRequest, fetch FetchFunc) (string, error) {
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	final := filepath.Join(req.Dir, FileName(req.Offset, req.Epoch))
	if _, err := os.Stat(final); err == nil {
		return final, nil // already here, from an earlier download or our own snapshot
	}
	tmp := final + fetchSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	defer f.Close()
	pos, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	chunk := req.ChunkBytes
	if chunk <= 0 {
		chunk = DefaultChunkBytes
	}
	size := int64(-1)
	for size < 0 || pos < size {
		part, err := fetchChunk(ctx, req, chunk, pos, fetch)
		if errors.Is(err, kerr.PositionOutOfRange) && pos > 0 {
			// What we kept does not belong to the file the server now holds under this name: start over.
			if err := f.Truncate(0); err != nil {
				return "", fmt.Errorf("download snapshot: %w", err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return "", fmt.Errorf("download snapshot: %w", err)
			}
			pos, size = 0, -1
			continue
		}
		if err != nil {
			return "", err
		}
		if part.Position != pos || part.Size < 0 || pos+int64(len(part.Bytes)) > part.Size || (len(part.Bytes) == 0 && pos < part.Size) {
			return "", fmt.Errorf("download snapshot %s: the server answered position %d, %d bytes of %d, for position %d", FileName(req.Offset, req.Epoch), part.Position, len(part.Bytes), part.Size, pos)
		}
		if size >= 0 && part.Size != size {
			return "", fmt.Errorf("download snapshot %s: the server's file changed size from %d to %d bytes", FileName(req.Offset, req.Epoch), size, part.Size)
		}
		size = part.Size
		if _, err := f.Write(part.Bytes); err != nil {
			return "", fmt.Errorf("download snapshot: %w", err)
		}
		pos += int64(len(part.Bytes))
	}
	if err := verifyDownload(f, final, size, req.ClusterID); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("download snapshot: fsync %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	if err := syncDir(req.Dir); err != nil {
		return "", fmt.Errorf("download snapshot: %w", err)
	}
	return final, nil
}

// fetchChunk asks for the bytes at pos and returns the partition's answer, or its error code as a
// kerr error.
func fetchChunk(ctx context.Context, req DownloadRequest, chunk int32, pos int64, fetch FetchFunc) (*kmsg.FetchSnapshotResponseTopicPartition, error) {
	r := kmsg.NewPtrFetchSnapshotRequest()
	r.ReplicaID, r.MaxBytes = req.ReplicaID, chunk
	if req.ClusterID != "" {
		cluster := req.ClusterID
		r.ClusterID = &cluster
	}
	t := kmsg.NewFetchSnapshotRequestTopic()
	t.Topic = MetadataTopic
	p := kmsg.NewFetchSnapshotRequestTopicPartition()
	p.Partition, p.CurrentLeaderEpoch, p.Position = MetadataPartition, -1, pos
	p.SnapshotID.EndOffset, p.SnapshotID.Epoch = int64(req.Offset), int32(req.Epoch)
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	resp, err := fetch(ctx, r)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("download snapshot %s: %w", FileName(req.Offset, req.Epoch), err)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			part := &resp.Topics[i].Partitions[j]
			if resp.Topics[i].Topic != MetadataTopic || part.Partition != MetadataPartition {
				continue
			}
			if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
				return nil, fmt.Errorf("download snapshot %s: %w", FileName(req.Offset, req.Epoch), err)
			}
			return part, nil
		}
	}
	return nil, fmt.Errorf("download snapshot %s: the answer does not carry %s-%d", FileName(req.Offset, req.Epoch), MetadataTopic, MetadataPartition)
}

// verifyDownload reads the downloaded file through, checked as the file it is about to become.
func verifyDownload(f *os.File, final string, size int64, clusterID string) error {
	rf, err := os.Open(f.Name())
	if err != nil {
		return fmt.Errorf("download snapshot: %w", err)
	}
	defer rf.Close()
	r, err := newReader(final, rf, size, true)
	if err != nil {
		return err
	}
	if clusterID != "" && r.h.ClusterID != clusterID {
		return fmt.Errorf("download snapshot %s: %w %q, not to %s", filepath.Base(final), ErrOtherCluster, r.h.ClusterID, clusterID)
	}
	for {
		if _, err := r.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// ServeChunk answers one FetchSnapshot partition from the snapshot files in dir: up to maxBytes of the
// file the request names, from its position. SNAPSHOT_NOT_FOUND when dir does not hold that snapshot
// (retention removed it, or it never existed), POSITION_OUT_OF_RANGE when the position is past the
// file's end.
func ServeChunk(dir string, p *kmsg.FetchSnapshotRequestTopicPartition, maxBytes int) kmsg.FetchSnapshotResponseTopicPartition {
	rp := kmsg.NewFetchSnapshotResponseTopicPartition()
	rp.Partition = p.Partition
	rp.SnapshotID.EndOffset, rp.SnapshotID.Epoch = p.SnapshotID.EndOffset, p.SnapshotID.Epoch
	rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
	if p.SnapshotID.EndOffset < 0 || p.SnapshotID.Epoch < 0 {
		rp.ErrorCode = kerr.SnapshotNotFound.Code
		return rp
	}
	f, err := os.Open(filepath.Join(dir, FileName(uint64(p.SnapshotID.EndOffset), uint64(p.SnapshotID.Epoch))))
	if err != nil {
		rp.ErrorCode = kerr.SnapshotNotFound.Code
		return rp
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		rp.ErrorCode = kerr.SnapshotNotFound.Code
		return rp
	}
	rp.Size = fi.Size()
	if p.Position < 0 || p.Position > rp.Size {
		rp.ErrorCode = kerr.PositionOutOfRange.Code
		return rp
	}
	n := min(int64(max(maxBytes, 1)), rp.Size-p.Position)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, p.Position); err != nil && !errors.Is(err, io.EOF) {
		// Retention removed the file while we read it, or the disk failed: the fetcher asks again.
		rp.ErrorCode = kerr.SnapshotNotFound.Code
		return rp
	}
	rp.Position, rp.Bytes = p.Position, buf
	return rp
}
