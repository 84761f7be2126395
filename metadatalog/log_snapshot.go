package metadatalog

// How a controller's log meets snapshots: at start it opens the newest usable snapshot and replays the
// WAL after it; a follower too far behind the leader receives the leader's snapshot, which it
// downloads in chunks over the controller port (FetchSnapshot) before Raft installs it; and after its
// own snapshot it drops the log before it (Compact, in log.go).

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.etcd.io/raft/v3/raftpb"
)

// fetchedSnapshot is a snapshot downloaded from the leader and loaded, ready for Raft to install.
type fetchedSnapshot struct {
	mark  SnapshotMark
	image *Image // nil when the download failed
}

// logStart is where a log opens: a snapshot and its image, or the beginning (a zero mark).
type logStart struct {
	mark  SnapshotMark
	image *Image
}

// openLatestSnapshot picks what a controller starts from: the newest snapshot that the WAL holds a
// marker for and that reads cleanly, else an older one, else the beginning of the log if the WAL still
// holds it. Leftover .part files are removed first. A snapshot of another cluster stops the node, and
// so does a log whose start no usable snapshot covers: serving a partial image is never an option.
func openLatestSnapshot(dir, clusterID string, log *slog.Logger) (logStart, error) {
	snapDir, walDir := SnapshotDir(dir), WALDir(dir)
	parts, err := snapshot.PartFiles(snapDir)
	if err != nil {
		return logStart{}, err
	}
	for _, p := range parts {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return logStart{}, fmt.Errorf("remove an unfinished snapshot: %w", err)
		}
		log.Info("removed an unfinished snapshot", "path", p)
	}
	snaps, err := snapshot.List(snapDir)
	if err != nil {
		return logStart{}, err
	}
	marks, err := SnapshotMarks(walDir)
	if err != nil {
		return logStart{}, err
	}
	var refused []string
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		mark := SnapshotMark{Offset: s.Offset, Epoch: s.Epoch}
		if !slices.Contains(marks, mark) {
			// Written (or downloaded) but the node stopped before its log recorded it, or the log
			// segments that recorded it are gone: the log cannot resume from it.
			refused = append(refused, fmt.Sprintf("%s: the log holds no marker for it", filepath.Base(s.Path)))
			continue
		}
		start := time.Now()
		img, h, err := ReadSnapshotImage(s.Path)
		if err != nil {
			log.Error("snapshot unusable; trying an older one", "path", s.Path, "err", err)
			refused = append(refused, err.Error())
			continue
		}
		if h.ClusterID != clusterID {
			return logStart{}, fmt.Errorf("snapshot %s belongs to cluster %q, but %s is formatted for cluster %s: it was copied from another cluster; remove it", s.Path, h.ClusterID, dir, clusterID)
		}
		log.Info("loaded snapshot", "path", s.Path, "offset", h.Offset, "epoch", h.Epoch, "records", h.RecordCount, "took", time.Since(start).Round(time.Millisecond))
		return logStart{mark: mark, image: img}, nil
	}
	first, err := walFirstOffset(walDir)
	if err != nil {
		return logStart{}, err
	}
	if first > 1 {
		why := "there is no snapshot"
		if len(refused) > 0 {
			why = strings.Join(refused, "; ")
		}
		return logStart{}, fmt.Errorf("%w: the log in %s starts at offset %d and no usable snapshot covers what comes before it (%s): the node cannot start; restore the directory, or wipe and re-format it so the node rejoins from its peers",
			ErrCorruptLog, walDir, first, why)
	}
	return logStart{image: EmptyImage()}, nil
}

// snapshotReady decides whether a snapshot offered by the leader may go to Raft: only once this node
// holds the file and has loaded its image, so installing it is never a giant message or a long pause
// of the log's goroutine. Until then it starts (or lets run) the download and drops the offer; the
// leader offers again at its next heartbeat.
func (l *Log) snapshotReady(m *raftpb.Message) bool {
	meta := m.GetSnapshot().GetMetadata()
	mark := SnapshotMark{Offset: meta.GetIndex(), Epoch: meta.GetTerm()}
	if mark.Offset <= l.commit {
		return true // Raft only acknowledges it
	}
	if l.fetched != nil && l.fetched.mark == mark {
		return true
	}
	if l.fetching == (SnapshotMark{}) {
		l.fetching = mark
		l.log.Info("the leader offers a snapshot; downloading it", "leader", m.GetFrom(), "offset", mark.Offset, "epoch", mark.Epoch, "commit", l.commit)
		go l.downloadSnapshot(m.GetFrom(), mark)
	}
	return false
}

// downloadSnapshot fetches the snapshot mark from voter from, loads it and hands it to the run
// goroutine. A failure is logged and the next offer tries again, resuming the partial file.
func (l *Log) downloadSnapshot(from uint64, mark SnapshotMark) {
	res := fetchedSnapshot{mark: mark}
	defer func() {
		select {
		case l.fetchedc <- res:
		case <-l.donec:
		}
	}()
	start := time.Now()
	path, err := l.fetchSnapshotFile(from, mark)
	if err != nil {
		l.log.Warn("cannot download the leader's snapshot; retrying at its next offer", "leader", from, "offset", mark.Offset, "err", err)
		return
	}
	img, h, err := ReadSnapshotImage(path)
	if err != nil {
		l.log.Error("the leader's snapshot does not load; removed it, retrying at the next offer", "path", path, "err", err)
		os.Remove(path)
		return
	}
	l.log.Info("downloaded the leader's snapshot", "path", path, "offset", h.Offset, "epoch", h.Epoch, "records", h.RecordCount, "took", time.Since(start).Round(time.Millisecond))
	res.image = img
}

func (l *Log) fetchSnapshotFile(from uint64, mark SnapshotMark) (string, error) {
	addr, ok := l.cfg.Voters[from]
	if !ok {
		return "", fmt.Errorf("voter %d has no address", from)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("kraft-controller-%d-snapshot", l.cfg.NodeID)))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	fetch := func(ctx context.Context, req *kmsg.FetchSnapshotRequest) (*kmsg.FetchSnapshotResponse, error) {
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.(*kmsg.FetchSnapshotResponse), nil
	}
	return snapshot.Download(l.fetchCtx, snapshot.DownloadRequest{
		Dir: l.SnapshotDir(), ClusterID: l.cfg.ClusterID, ReplicaID: int32(l.cfg.NodeID),
		Offset: mark.Offset, Epoch: mark.Epoch,
	}, fetch)
}

// restoredImage is the image of the snapshot Raft just installed.
func (l *Log) restoredImage(mark SnapshotMark) (*Image, error) {
	if l.fetched != nil && l.fetched.mark == mark {
		img := l.fetched.image
		l.fetched = nil
		return img, nil
	}
	// Raft installs only what snapshotReady let through, so this is a second line of defence.
	path := filepath.Join(l.SnapshotDir(), snapshot.FileName(mark.Offset, mark.Epoch))
	img, _, err := ReadSnapshotImage(path)
	if err != nil {
		return nil, fmt.Errorf("raft installed the snapshot at offset %d, but it does not load: %w", mark.Offset, err)
	}
	return img, nil
}
