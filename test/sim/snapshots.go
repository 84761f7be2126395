package sim

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Snapshots in the simulation. Each node snapshots its committed image now and then, as the controller's
// Snapshotter does, into a store of its own that outlives its crashes (the snapshot directory), and then
// has its Replica compact the log (Replica.Compact, as Log.Compact does). A follower the leader can no
// longer feed from the log downloads the leader's snapshot before Raft may install it, as the Log's
// snapshotReady does, and a restarted node opens at its newest snapshot that the WAL holds a marker for,
// as openLatestSnapshot and OpenWALAt do. What the sim supplies is only what the product's goroutines,
// files and sockets do; the decisions are the product's.

const (
	// downloadFailure is the chance that a snapshot download fails (a transport error, a timeout); the
	// leader's next offer starts it again.
	downloadFailure = 0.15
	// crashSnapshotting is the chance that a crash picks a node that is writing a snapshot, or has
	// written one whose marker its log has not recorded yet, rather than any node.
	crashSnapshotting = 0.25
)

// snapFile is one complete snapshot file: the records of an image at mark.Offset in mark.Epoch.
// Files are immutable, so nodes that copy one share it.
type snapFile struct {
	mark    metadatalog.SnapshotMark
	records []*metadatapb.Record
	// What the records hold, for invariant 19: their metadata.version, ACLs and client quotas.
	level        int16
	acls, quotas int
}

func newSnapFile(mark metadatalog.SnapshotMark, records []*metadatapb.Record) *snapFile {
	f := &snapFile{mark: mark, records: records}
	f.level, f.acls, f.quotas = fileLevels(records)
	return f
}

// snapPolicy is one node's snapshot configuration, drawn from the seed once and kept across its
// restarts: a snapshot every `every` applied entries (the product counts bytes and time; the sim
// counts entries so that many snapshots happen in a short run), `keep` entries of catch-up tail
// (metadata.log.snapshot.catchup.entries), and retention keeping the newest `retain` files.
type snapPolicy struct {
	every  int
	keep   uint64
	retain int
}

// snapWrite is a snapshot being written in the background: it becomes a file at step doneAt, unless the
// node crashes first, which leaves only a .part behind (removed at the next start).
type snapWrite struct {
	img    *metadatalog.Image
	doneAt int64
	purge  bool // the snapshot after a metadata.version downgrade
}

// compaction is a Log.Compact request on its way to the log's goroutine.
type compaction struct {
	offset uint64
	at     int64
	purge  bool
}

// download is a snapshot the leader offered, being fetched from it; it completes at step doneAt.
type download struct {
	mark   metadatalog.SnapshotMark
	from   uint64
	doneAt int64
}

// fetchedSnap is a downloaded snapshot, loaded, waiting for the leader's next offer to reach Raft.
type fetchedSnap struct {
	mark metadatalog.SnapshotMark
	img  *metadatalog.Image
}

// SnapshotStats say what the snapshots went through.
type SnapshotStats struct {
	Written, WritesLost            int // files written; writes a crash cut short (no file)
	Compactions, CompactionsLost   int // compactions that moved a log start; requests lost to a crash
	MarkerCrashes                  int // crashes in the middle of a snapshot marker's fsync
	Retired                        int // files removed by retention
	OffersHeld                     int // leader offers dropped while the file was not held yet
	Downloads, DownloadsFailed     int // downloads started; failed on the way
	DownloadsNotFound              int // the leader no longer held the file
	Installs, RestartsFromSnapshot int // Restored by Raft; restarts at a snapshot
	SegmentsReleased               int // WAL segments deleted by Release
	BrokerLoads, BrokerNotFound    int // brokers caught up by snapshot; asked for one that was gone
}

func (a *SnapshotStats) add(o SnapshotStats) {
	a.Written += o.Written
	a.WritesLost += o.WritesLost
	a.Compactions += o.Compactions
	a.CompactionsLost += o.CompactionsLost
	a.MarkerCrashes += o.MarkerCrashes
	a.Retired += o.Retired
	a.OffersHeld += o.OffersHeld
	a.Downloads += o.Downloads
	a.DownloadsFailed += o.DownloadsFailed
	a.DownloadsNotFound += o.DownloadsNotFound
	a.Installs += o.Installs
	a.RestartsFromSnapshot += o.RestartsFromSnapshot
	a.SegmentsReleased += o.SegmentsReleased
	a.BrokerLoads += o.BrokerLoads
	a.BrokerNotFound += o.BrokerNotFound
}

func (s *sim) drawSnapPolicy() snapPolicy {
	// A catch-up tail of 0 is one the product's configuration refuses (it must be positive), but
	// Replica.Compact takes it, and it makes followers fall behind the log start most often.
	return snapPolicy{every: 5 + s.rng.IntN(36), keep: uint64(s.rng.IntN(11)), retain: 1 + s.rng.IntN(3)}
}

// file returns n's snapshot file at mark, nil if it holds none.
func (n *node) file(mark metadatalog.SnapshotMark) *snapFile {
	for _, f := range n.snaps {
		if f.mark == mark {
			return f
		}
	}
	return nil
}

// putFile adds f to n's store, ordered by offset then epoch as snapshot.List orders files; a file of
// the same name is replaced (its content is the same committed image).
func (n *node) putFile(f *snapFile) {
	i, found := slices.BinarySearchFunc(n.snaps, f.mark, func(g *snapFile, m metadatalog.SnapshotMark) int {
		if g.mark.Offset != m.Offset {
			return cmpU64(g.mark.Offset, m.Offset)
		}
		return cmpU64(g.mark.Epoch, m.Epoch)
	})
	if found {
		n.snaps[i] = f
		return
	}
	n.snaps = slices.Insert(n.snaps, i, f)
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadFile builds the image a snapshot file holds, as ReadSnapshotImage does: every record into one
// delta over an empty image, committed at the file's offset and epoch.
func loadFile(f *snapFile) (*metadatalog.Image, error) {
	return metadatalog.EmptyImage().Apply(f.mark.Offset, f.mark.Epoch, &metadatapb.RecordBatch{Records: f.records})
}

// loadSnapshot is a node loading one of its snapshot files (at a restart, or a download); a failure to
// build the image breaks invariant 15.
func (s *sim) loadSnapshot(n *node, f *snapFile, why string) *metadatalog.Image {
	if s.cfg.Sabotage == SabotageSnapshotLoadDropsRecord && len(f.records) > 0 {
		f = newSnapFile(f.mark, slices.Delete(slices.Clone(f.records), 0, 1))
	}
	img, err := loadFile(f)
	if err != nil {
		s.fail(15, "node %d: %s: the snapshot at offset %d epoch %d does not load: %v", n.id, why, f.mark.Offset, f.mark.Epoch, err)
	}
	s.checkLevels(img, fmt.Sprintf("node %d's image, %s from the snapshot at offset %d,", n.id, why, f.mark.Offset))
	return img
}

// maybeSnapshot is the Snapshotter's Applied: once enough has been applied since the last snapshot, and
// the writer is idle (no snapshot being written, and none whose compaction and retention are still to
// come: the writer runs Written and ApplyRetention before it is free again), n starts writing its
// committed image in the background.
//
// As in the Snapshotter, a metadata.version lower than that of the last image it saw makes a snapshot
// due at once, a purge: its compaction keeps no catch-up tail, and its retention keeps no older file.
// The level it compares with is the incarnation's own, 0 at a start (NewSnapshotter), and it sees only
// the image after each Process (one log event), not every entry.
func (s *sim) maybeSnapshot(n *node) {
	if lvl := n.image.MetadataVersion(); lvl < n.snapLevel {
		n.purge, n.snapLevel = true, lvl
	} else if lvl > n.snapLevel {
		n.snapLevel = lvl
	}
	if n.writing != nil || len(n.compactions) > 0 || n.image.Offset <= n.lastSnap || (!n.purge && n.sinceSnap < n.policy.every) {
		return
	}
	n.writing = &snapWrite{img: n.image, doneAt: s.now + 1 + s.rng.Int64N(25), purge: n.purge}
	n.sinceSnap, n.lastSnap, n.purge = 0, n.image.Offset, false
	s.record(uint64(s.now), n.id, 40, n.image.Offset, boolBit(n.writing.purge))
}

// finishSnapshot completes n's background write: the file is durable (the writer renames its .part into
// place), invariant 14 checks what it holds, and the log is asked to compact, which it does a little
// later on its own goroutine (Written → Log.Compact, which waits for it); retention runs only after
// that (runCompactions).
func (s *sim) finishSnapshot(n *node) {
	img, purge := n.writing.img, n.writing.purge
	n.writing = nil
	records := img.Records()
	if s.cfg.Sabotage == SabotageSnapshotDropsRecord && len(records) > 0 {
		i := s.rng.IntN(len(records))
		records = slices.Delete(records, i, i+1)
	}
	f := newSnapFile(metadatalog.SnapshotMark{Offset: img.Offset, Epoch: img.Epoch}, records)
	s.checkSnapshotFile(n, f)
	n.putFile(f)
	s.stats.Snapshots.Written++
	if purge {
		s.stats.Features.PurgeSnapshots++
	}
	n.compactions = append(n.compactions, compaction{offset: img.Offset, at: s.now + s.rng.Int64N(4), purge: purge})
	s.record(uint64(s.now), n.id, 41, img.Offset)
}

// retire is snapshot retention once the log has taken the compaction for the snapshot at keepFrom
// (ApplyRetention after Written → Log.Compact): the oldest files go while more than the policy keeps
// remain (after a purge, while any older one remains, as RetentionBytes = 1 does), but the newest
// always stays, and so does every file at or after keepFrom. The sim protects nothing else: whether a
// restart still finds a snapshot to open at is invariant 17's to check.
func (s *sim) retire(n *node, keepFrom uint64, purge bool) {
	for (purge || len(n.snaps) > n.policy.retain) && len(n.snaps) > 1 && n.snaps[0].mark.Offset < keepFrom {
		n.snaps = slices.Delete(n.snaps, 0, 1)
		s.stats.Snapshots.Retired++
		if purge {
			s.stats.Features.PurgeRetired++
		}
	}
}

// checkSnapshotFile checks invariant 14: a snapshot, as written, rebuilds exactly the committed
// history's image at its offset.
func (s *sim) checkSnapshotFile(n *node, f *snapFile) {
	off := f.mark.Offset
	if off == 0 || off > uint64(len(s.bw.histImages)) {
		s.fail(14, "node %d wrote a snapshot at offset %d, outside the committed history (1–%d)", n.id, off, len(s.bw.histImages))
	}
	want := s.bw.histImages[off-1]
	if want.Epoch != f.mark.Epoch {
		s.fail(14, "node %d wrote a snapshot at offset %d epoch %d, but the committed history has epoch %d there", n.id, off, f.mark.Epoch, want.Epoch)
	}
	if d := diffRecords(f.records, want.Records()); d != "" {
		s.fail(14, "node %d's snapshot at offset %d differs from the committed history's image there: %s", n.id, off, d)
	}
	img, err := loadFile(f)
	if err != nil {
		s.fail(14, "node %d's snapshot at offset %d does not rebuild an image: %v", n.id, off, err)
	}
	if d := diffRecords(img.Records(), f.records); d != "" {
		s.fail(14, "node %d's snapshot at offset %d rebuilds an image other than the one written: %s", n.id, off, d)
	}
}

// runCompactions is the log's goroutine taking the compaction requests that have arrived: Replica.Compact
// with the node's catch-up tail, after which the writer, which was waiting on it, applies retention. It
// reports false if the node crashed doing it (the writer then never applies retention).
func (s *sim) runCompactions(n *node) bool {
	for len(n.compactions) > 0 && n.compactions[0].at <= s.now {
		off, purge := n.compactions[0].offset, n.compactions[0].purge
		n.compactions = n.compactions[1:]
		first, _ := n.ms.FirstIndex()
		keep := n.policy.keep
		if purge {
			keep = 0 // Log.compact keeps no tail after a downgrade
		}
		err := n.r.Compact(off, keep, s.voters)
		if isCrash(err) {
			s.stats.CrashesInSync++
			s.stats.Snapshots.MarkerCrashes++
			s.crash(n)
			return false
		}
		if err != nil {
			s.fail(0, "node %d: compact after the snapshot at offset %d: %v", n.id, off, err)
		}
		if now, _ := n.ms.FirstIndex(); now > first {
			s.stats.Snapshots.Compactions++
			s.record(uint64(s.now), n.id, 42, off, now)
		}
		s.retire(n, off, purge)
		s.checkKeptSnapshots(n, off)
	}
	return true
}

// snapshotReady is the Log's snapshotReady: a snapshot the leader offers reaches Raft only once n holds
// the file and has loaded it. Until then the offer is dropped (the leader offers again at its next
// heartbeat) and, unless one is under way, a download from the sender starts.
func (s *sim) snapshotReady(n *node, m *raftpb.Message) bool {
	meta := m.GetSnapshot().GetMetadata()
	mark := metadatalog.SnapshotMark{Offset: meta.GetIndex(), Epoch: meta.GetTerm()}
	if mark.Offset <= n.applied() {
		return true // Raft only acknowledges it
	}
	if n.fetched != nil && n.fetched.mark == mark {
		return true
	}
	if n.fetching == nil {
		n.fetching = &download{mark: mark, from: m.GetFrom(), doneAt: s.now + 1 + s.rng.Int64N(40)}
		s.stats.Snapshots.Downloads++
		s.record(uint64(s.now), n.id, 43, mark.Offset, m.GetFrom())
	}
	s.stats.Snapshots.OffersHeld++
	return false
}

// finishDownload completes n's download: it copies the file from the sender's store, if the sender is
// up, reachable and still holds it, into n's own, and loads it for the next offer.
func (s *sim) finishDownload(n *node) {
	d := n.fetching
	n.fetching = nil
	src := s.nodes[d.from-1]
	if src.r == nil || s.net.cut(n.id, src.id) || (s.faulty && s.rng.Float64() < downloadFailure) {
		s.stats.Snapshots.DownloadsFailed++
		return
	}
	f := src.file(d.mark)
	if f == nil {
		s.stats.Snapshots.DownloadsNotFound++
		return
	}
	n.putFile(f)
	n.fetched = &fetchedSnap{mark: d.mark, img: s.loadSnapshot(n, f, "downloaded from the leader")}
	s.record(uint64(s.now), n.id, 44, d.mark.Offset)
}

// restored is what the Log and the controller do with Output.Restored: the image becomes the
// snapshot's, and the applied offset jumps to it (invariant 16: forward only).
func (s *sim) restored(n *node, mark metadatalog.SnapshotMark) {
	var img *metadatalog.Image
	if n.fetched != nil && n.fetched.mark == mark {
		img = n.fetched.img
		n.fetched = nil
	} else if f := n.file(mark); f != nil {
		img = s.loadSnapshot(n, f, "installing the leader's snapshot")
	} else {
		s.fail(0, "node %d: Raft installed the snapshot at offset %d epoch %d, which the node does not hold", n.id, mark.Offset, mark.Epoch)
	}
	if mark.Offset <= n.applied() {
		s.fail(16, "node %d installed the leader's snapshot at offset %d, but had applied up to %d already: the applied offset went back", n.id, mark.Offset, n.applied())
	}
	if img.Offset != mark.Offset || img.Epoch != mark.Epoch {
		s.fail(15, "node %d installed the snapshot at offset %d epoch %d, but its image is at offset %d epoch %d", n.id, mark.Offset, mark.Epoch, img.Offset, img.Epoch)
	}
	s.checkHistoryImage(img, mark.Offset, fmt.Sprintf("node %d's image, installed from the leader's snapshot,", n.id))
	n.image, n.baseImage, n.base, n.log = img, img, mark.Offset, nil
	if mark.Offset > n.lastSnap { // the Snapshotter's Loaded: the policy counts from the installed file
		n.sinceSnap, n.lastSnap = 0, mark.Offset
	}
	for off := range n.pending {
		if off <= mark.Offset {
			delete(n.pending, off) // the entry is inside the snapshot: this node never sees it commit
		}
	}
	s.resign(n)
	s.stats.Snapshots.Installs++
	s.record(uint64(s.now), n.id, 45, mark.Offset, mark.Epoch)
}

// openLog is what a restarting node does before its Replica starts (openLatestSnapshot, then
// OpenWALAt): it takes the newest snapshot file that the WAL holds a valid marker for and replays the
// WAL after it; without one, the WAL must still hold the log from its beginning. Anything else is a
// node that cannot start (invariant 17).
func (s *sim) openLog(n *node) (*logStart, error) {
	marks := n.disk.marks()
	for i := len(n.snaps) - 1; i >= 0; i-- {
		f := n.snaps[i]
		if !slices.Contains(marks, f.mark) {
			continue // written or downloaded, but the log never recorded it (or lost the record)
		}
		img := s.loadSnapshot(n, f, "restarting")
		ms, err := n.disk.open(f.mark, s.voters)
		if err != nil {
			return nil, fmt.Errorf("the WAL does not open at the snapshot at offset %d epoch %d: %v", f.mark.Offset, f.mark.Epoch, err)
		}
		return &logStart{mark: f.mark, img: img, ms: ms}, nil
	}
	if first := n.disk.firstOffset(); first > 1 {
		return nil, fmt.Errorf("the WAL starts at offset %d and no usable snapshot covers what comes before it (files %s; valid markers %v)", first, describeFiles(n.snaps), marks)
	}
	ms, err := n.disk.open(metadatalog.SnapshotMark{}, s.voters)
	if err != nil {
		return nil, fmt.Errorf("the WAL does not open at its beginning: %v", err)
	}
	return &logStart{img: metadatalog.EmptyImage(), ms: ms}, nil
}

func describeFiles(files []*snapFile) string {
	if len(files) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d/%d", f.mark.Offset, f.mark.Epoch)
	}
	return b.String()
}

// newestFile is the snapshot a controller names to a broker below its log start (controller's
// pointToSnapshot): the newest file it holds.
func (n *node) newestFile() *snapFile {
	if len(n.snaps) == 0 {
		return nil
	}
	return n.snaps[len(n.snaps)-1]
}

// checkHistoryImage checks invariant 15 on one image: it equals the committed history's image at off,
// record for record, and its derived partition index (who leads what, who is in which ISR) holds the
// same partitions, whatever the order.
func (s *sim) checkHistoryImage(img *metadatalog.Image, off uint64, who string) {
	want := metadatalog.EmptyImage()
	if off > 0 {
		if off > uint64(len(s.bw.histImages)) {
			s.fail(15, "%s is at offset %d, past the committed history (%d)", who, off, len(s.bw.histImages))
		}
		want = s.bw.histImages[off-1]
	}
	if img.Offset != off || img.Epoch != want.Epoch {
		s.fail(15, "%s is at offset %d epoch %d, the committed history at offset %d epoch %d", who, img.Offset, img.Epoch, off, want.Epoch)
	}
	if d := diffRecords(img.Records(), want.Records()); d != "" {
		s.fail(15, "%s at offset %d differs from the committed history's: %s", who, off, d)
	}
	if got, exp := partitionIndex(img), partitionIndex(want); got != exp {
		s.fail(15, "%s at offset %d has a partition index other than the committed history's:\n got %s\nwant %s", who, off, got, exp)
	}
}

// partitionIndex renders what img's partition index answers, for every broker id its partitions name:
// the partitions each leads and the partitions in whose ISR each is, sorted.
func partitionIndex(img *metadatalog.Image) string {
	ids := []int32{-1}
	for _, t := range img.Topics() {
		for p := range t.Partitions {
			if part, ok := img.Partition(t.ID, p); ok {
				ids = append(ids, part.Leader)
				ids = append(ids, part.Replicas...)
				ids = append(ids, part.ISR...)
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var b strings.Builder
	for _, id := range ids {
		var led, isr []string
		img.PartitionsLedBy(id, func(topic [16]byte, p int32, _ *metadatalog.Partition) bool {
			led = append(led, fmt.Sprintf("%x-%d", topic[:], p))
			return true
		})
		img.PartitionsInISR(id, func(topic [16]byte, p int32, _ *metadatalog.Partition) bool {
			isr = append(isr, fmt.Sprintf("%x-%d", topic[:], p))
			return true
		})
		if len(led)+len(isr) == 0 {
			continue
		}
		slices.Sort(led)
		slices.Sort(isr)
		fmt.Fprintf(&b, "[%d leads %v, in ISR of %v] ", id, led, isr)
	}
	return b.String()
}

// logStart is where a restarted node's log opens: a snapshot (the zero mark for none), its image, and
// the storage replayed after it.
type logStart struct {
	mark metadatalog.SnapshotMark
	img  *metadatalog.Image
	ms   *raft.MemoryStorage
}

// snapshotterStartLevel is the metadata.version a new incarnation's Snapshotter compares the first
// image it sees with, as metadatalog.NewSnapshotter sets it: the highest of the image the node opens
// with and of the snapshots in its directory (each file's header holds its metadata.version), so that
// a node restarting after a downgrade it had not yet purged for purges when it sees the lower level.
func (s *sim) snapshotterStartLevel(n *node, img *metadatalog.Image) int16 {
	lvl := img.MetadataVersion()
	for _, f := range n.snaps {
		lvl = max(lvl, f.level)
	}
	return lvl
}

func isCrash(err error) bool { return errors.Is(err, errCrashDuringSync) }
