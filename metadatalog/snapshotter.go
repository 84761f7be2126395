package metadatalog

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kraftgo/kraft/snapshot"
)

// SnapshotPolicy says when a node snapshots its image and which snapshots it keeps.
type SnapshotPolicy struct {
	// MaxBytes is metadata.log.max.record.bytes.between.snapshots: a snapshot is due once this many
	// bytes of log data have been applied since the last one.
	MaxBytes int64
	// MaxInterval is metadata.log.max.snapshot.interval.ms: a snapshot is due once this long has
	// passed since the last one and anything new has been applied. Zero turns the rule off.
	MaxInterval time.Duration
	// RetentionBytes (metadata.max.retention.bytes) and RetentionTime (metadata.max.retention.ms)
	// bound the snapshots kept: the oldest go first, and the newest is always kept.
	RetentionBytes int64
	RetentionTime  time.Duration
}

// DefaultSnapshotPolicy is Kafka's defaults: 20 MiB or 1 hour between snapshots, 100 MiB or 7 days kept.
var DefaultSnapshotPolicy = SnapshotPolicy{MaxBytes: 20 << 20, MaxInterval: time.Hour, RetentionBytes: 100 << 20, RetentionTime: 7 * 24 * time.Hour}

// snapshotRetryDelay is how long a node waits after a failed snapshot (a full disk, say) before trying
// again; it goes on serving from its log meanwhile.
const snapshotRetryDelay = 10 * time.Second

// SnapshotterConfig configures a Snapshotter.
type SnapshotterConfig struct {
	Policy    SnapshotPolicy
	Dir       string // where the snapshots go (SnapshotDir)
	ClusterID string
	Voters    []uint64
	// LogBytes, when set, reports what the node's log holds on disk, counted with the snapshots
	// against RetentionBytes.
	LogBytes func() int64
	// Written is called, on the writer's goroutine, once a snapshot is durable and before retention
	// runs: a controller compacts its log there. purge marks the snapshot that follows a
	// metadata.version downgrade: nothing older may stay, in the log or among the snapshots. An error
	// (the log could not record the snapshot) keeps every older snapshot.
	Written func(h snapshot.Header, path string, purge bool) error
	Logger  *slog.Logger

	// write replaces WriteSnapshot in tests, for instance to fail as a full disk does.
	write func(dir string, img *Image, clusterID string, voters []uint64, createTimeMs int64) (snapshot.Header, string, error)
}

// Snapshotter applies the snapshot policy for one node: its owner reports every applied batch, and it
// writes the image in the background when a snapshot is due. The image is immutable, so the owner goes
// on applying (and a controller goes on writing) while the file is written.
//
// Applied must be called from one goroutine; the write runs on its own.
type Snapshotter struct {
	cfg SnapshotterConfig
	log *slog.Logger

	// Owned by the goroutine that calls Applied.
	sinceBytes int64
	last       time.Time
	lastOffset uint64
	retryAt    time.Time
	// level is the metadata.version of the last image seen; purge is set when it went down, until a
	// snapshot at the lower level is written.
	level int16
	purge bool

	busy        atomic.Bool
	failed      atomic.Bool
	failedPurge atomic.Bool
	wg          sync.WaitGroup
}

// NewSnapshotter returns a snapshotter whose owner starts from the image start (the snapshot it loaded,
// or an empty image), now. Its metadata.version starting point is the highest of start's and of every
// snapshot already in the directory: a downgrade that committed before a restart, but that was not
// yet purged, is then still seen as one when the owner replays it (or already holds its result).
func NewSnapshotter(cfg SnapshotterConfig, start *Image, now time.Time) *Snapshotter {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.write == nil {
		cfg.write = WriteSnapshot
	}
	level := start.MetadataVersion()
	if snaps, err := snapshot.List(cfg.Dir); err == nil {
		for _, info := range snaps {
			if r, err := snapshot.Open(info.Path); err == nil {
				level = max(level, int16(r.Header().MetadataVersion))
				r.Close()
			}
		}
	}
	return &Snapshotter{cfg: cfg, log: cfg.Logger, last: now, lastOffset: start.Offset, level: level}
}

// Applied reports that bytes of log data were applied, giving img, and starts a snapshot of img in the
// background if one is due and none is being written. It reports whether it started one.
//
// A lower metadata.version than the last image's makes a snapshot due at once, which then removes
// every older snapshot (and, for a controller, the log before it): after a downgrade, nothing on disk
// may hold records the lower level cannot represent.
func (s *Snapshotter) Applied(img *Image, bytes int64, now time.Time) bool {
	s.sinceBytes += bytes
	if s.failed.Swap(false) {
		s.retryAt = now.Add(snapshotRetryDelay)
		if s.failedPurge.Swap(false) {
			s.purge = true
		}
	}
	if lvl := img.MetadataVersion(); lvl < s.level {
		s.purge = true
		s.level = lvl
	} else if lvl > s.level {
		s.level = lvl
	}
	if !s.due(img, now) || !s.busy.CompareAndSwap(false, true) {
		return false
	}
	reason := "bytes"
	switch {
	case s.purge:
		reason = "metadata.version downgrade"
	case s.sinceBytes < s.cfg.Policy.MaxBytes:
		reason = "interval"
	}
	s.log.Info("writing a snapshot", "offset", img.Offset, "epoch", img.Epoch, "reason", reason, "bytes_since_last", s.sinceBytes)
	purge := s.purge
	s.sinceBytes, s.last, s.lastOffset, s.purge = 0, now, img.Offset, false
	s.wg.Add(1)
	go s.write(img, now, purge)
	return true
}

// Loaded tells the snapshotter that the owner's image was replaced by a snapshot at offset (downloaded
// or installed from a leader), which is on disk already: the policy counts from there. Call it from
// the goroutine that calls Applied.
func (s *Snapshotter) Loaded(offset uint64, now time.Time) {
	if offset > s.lastOffset {
		s.sinceBytes, s.last, s.lastOffset = 0, now, offset
	}
}

// due applies the policy: something new since the last snapshot, no retry pending, and enough bytes or
// time since the last one.
func (s *Snapshotter) due(img *Image, now time.Time) bool {
	if img.Offset <= s.lastOffset || now.Before(s.retryAt) {
		return false
	}
	if s.purge {
		return true
	}
	p := s.cfg.Policy
	return (p.MaxBytes > 0 && s.sinceBytes >= p.MaxBytes) || (p.MaxInterval > 0 && now.Sub(s.last) >= p.MaxInterval)
}

func (s *Snapshotter) write(img *Image, now time.Time, purge bool) {
	defer s.wg.Done()
	defer s.busy.Store(false)
	start := time.Now()
	h, path, err := s.cfg.write(s.cfg.Dir, img, s.cfg.ClusterID, s.cfg.Voters, now.UnixMilli())
	if err != nil {
		// snapshot.Write has removed its .part; the log still holds everything, so the node goes on.
		s.log.Error("snapshot failed; serving from the log and retrying later", "offset", img.Offset, "retry_in", snapshotRetryDelay, "err", err)
		s.failedPurge.Store(purge)
		s.failed.Store(true)
		return
	}
	s.log.Info("snapshot written", "path", path, "offset", h.Offset, "epoch", h.Epoch, "records", h.RecordCount, "took", time.Since(start).Round(time.Millisecond))
	if s.cfg.Written != nil {
		if err := s.cfg.Written(h, path, purge); err != nil {
			// Until the log records it, a restart cannot start from the new snapshot: keep the old ones.
			s.log.Warn("the log did not record the snapshot; keeping the older snapshots", "offset", h.Offset, "err", err)
			return
		}
	}
	policy := s.cfg.Policy
	if purge {
		// Only the new snapshot may stay: the older ones hold what the lower level cannot represent.
		policy.RetentionBytes = 1
	}
	if err := ApplyRetention(s.cfg.Dir, policy, s.logBytes(), h.Offset, time.Now(), s.log); err != nil {
		s.log.Warn("snapshot retention failed", "err", err)
	}
}

func (s *Snapshotter) logBytes() int64 {
	if s.cfg.LogBytes == nil {
		return 0
	}
	return s.cfg.LogBytes()
}

// Wait blocks until no snapshot is being written.
func (s *Snapshotter) Wait() { s.wg.Wait() }

// Writing reports whether a snapshot is being written.
func (s *Snapshotter) Writing() bool { return s.busy.Load() }

// ApplyRetention deletes the oldest snapshots in dir while the snapshots and logBytes together exceed
// policy.RetentionBytes, or while the oldest is older than policy.RetentionTime. The newest snapshot is
// always kept, and so is every snapshot at or after offset keepFrom: the caller's latest, which its
// log may be about to depend on (and a newer one downloaded meanwhile).
func ApplyRetention(dir string, policy SnapshotPolicy, logBytes int64, keepFrom uint64, now time.Time, log *slog.Logger) error {
	snaps, err := snapshot.List(dir)
	if err != nil {
		return err
	}
	total := logBytes
	for _, s := range snaps {
		total += s.Size
	}
	for len(snaps) > 1 && snaps[0].Offset < keepFrom {
		oldest := snaps[0]
		tooBig := policy.RetentionBytes > 0 && total > policy.RetentionBytes
		tooOld := policy.RetentionTime > 0 && now.Sub(oldest.ModTime) > policy.RetentionTime
		if !tooBig && !tooOld {
			break
		}
		if err := os.Remove(oldest.Path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove snapshot %s: %w", oldest.Path, err)
		}
		log.Info("snapshot removed by retention", "path", oldest.Path, "too_big", tooBig, "too_old", tooOld)
		total -= oldest.Size
		snaps = snaps[1:]
	}
	return nil
}
