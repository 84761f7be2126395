package broker

// Fetch (key 1), sent to a controller port to follow the metadata log: v12, or the newest below it the
// controller offers (v13 names topics by id, and the metadata log has none). One topic,
// __cluster_metadata, partition 0, from the applied offset + 1, long-polled for FetchMaxWait. ReplicaID
// is this broker's id, and the ClusterID tag lets the controller refuse a broker of another cluster.
//
// The answer's HighWatermark is the controllers' last committed offset, inclusive; its RecordBatches
// are api/logfetch's encoding of committed entries, one batch per entry, whose value is a
// metadatapb.RecordBatch (empty for Raft's own entries, which only advance the offset). The broker is
// current when its applied offset reaches that high watermark, which it learns from every answer, so it
// never needs new records to know it is caught up.
//
// When the broker's offset is below the controller's log start (the log before it went into a
// snapshot), the answer carries no records and no error, only SnapshotID naming the controller's
// newest snapshot by its last included offset and epoch. The broker then downloads that snapshot with
// FetchSnapshot (fetch_snapshot.go) and follows the log from the snapshot's offset + 1.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

const (
	metadataTopic          = "__cluster_metadata"
	metadataPartition      = 0
	fetchPartitionMaxBytes = 8 << 20
)

func (b *Broker) fetchRequest(img *metadatalog.Image) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = b.cfg.NodeID
	req.MaxWaitMillis = int32(b.cfg.FetchMaxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = fetchPartitionMaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // no fetch session: every request is a full one
	clusterID := b.cfg.ClusterID
	req.ClusterID = &clusterID
	t := kmsg.NewFetchRequestTopic()
	t.Topic = metadataTopic
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = metadataPartition
	p.FetchOffset = int64(img.Offset) + 1
	if img.Offset > 0 {
		p.LastFetchedEpoch = int32(img.Epoch)
	}
	p.PartitionMaxBytes = fetchPartitionMaxBytes
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// fetchResult is what one Fetch answer means for the follower.
type fetchResult struct {
	// img is the image after applying every entry of the answer (the old one if it carried none).
	img *metadatalog.Image
	// hw is the answer's high watermark, -1 if it carried none.
	hw int64
	// err is a refusal worth retrying elsewhere or later (a kerr.Error, possibly wrapped).
	err error
	// leader is the controller a NOT_LEADER_OR_FOLLOWER answer names, -1 if none.
	leader int32
	// snapshot is the controller's newest snapshot when the answer points there instead of carrying
	// records: the log before this broker's next offset is gone.
	snapshot *SnapshotID
	// bytes is how much record batch data the applied entries held, for the snapshot policy.
	bytes int64
	// fatal is an answer the broker must not run past: undecodable data, an impossible record, a gap in
	// the offsets, a foreign cluster.
	fatal error
}

// applyFetch interprets one Fetch answer against the image it was asked for. It performs no I/O.
func applyFetch(img *metadatalog.Image, resp *kmsg.FetchResponse) fetchResult {
	res := fetchResult{img: img, hw: -1, leader: -1}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		res.err = err
		return res
	}
	var part *kmsg.FetchResponseTopicPartition
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != metadataTopic {
			continue
		}
		for j := range t.Partitions {
			if t.Partitions[j].Partition == metadataPartition {
				part = &t.Partitions[j]
			}
		}
	}
	if part == nil {
		res.err = fmt.Errorf("the answer does not carry %s-%d", metadataTopic, metadataPartition)
		return res
	}
	switch err := kerr.ErrorForCode(part.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.NotLeaderForPartition):
		res.err = err
		res.leader = part.CurrentLeader.LeaderID
		return res
	case errors.Is(err, kerr.InconsistentClusterID):
		res.fatal = fmt.Errorf("the controller belongs to another cluster than the one this broker is configured for: %w", err)
		return res
	default:
		res.err = err
		return res
	}
	// Raft terms and offsets start at 1, so a zero-valued tagged field from a careless encoder is not
	// mistaken for a snapshot pointer or a divergence.
	if part.SnapshotID.EndOffset > 0 && part.SnapshotID.Epoch > 0 {
		// Raft's way of saying "fetch the snapshot": the log before our offset is gone. EndOffset is the
		// snapshot's last included offset (inclusive, as all our offsets are).
		res.snapshot = &SnapshotID{Offset: uint64(part.SnapshotID.EndOffset), Epoch: uint64(part.SnapshotID.Epoch)}
		if part.HighWatermark > 0 {
			res.hw = part.HighWatermark
		}
		return res
	}
	if part.DivergingEpoch.EndOffset > 0 && part.DivergingEpoch.Epoch > 0 {
		// Only committed entries are served and applied, and committed history never diverges: the
		// image was built on entries the quorum says are not its history.
		res.fatal = fmt.Errorf("the controller says the log diverges from what this broker applied (epoch %d ends at offset %d; applied offset %d epoch %d)",
			part.DivergingEpoch.Epoch, part.DivergingEpoch.EndOffset, img.Offset, img.Epoch)
		return res
	}
	entries, err := logfetch.DecodeEntries(part.RecordBatches)
	if err != nil {
		res.fatal = fmt.Errorf("metadata log data from the controller cannot be decoded at applied offset %d: %w", img.Offset, err)
		return res
	}
	for _, e := range entries {
		offset := uint64(e.Offset)
		if offset <= img.Offset {
			continue // already applied
		}
		if offset != img.Offset+1 {
			res.fatal = fmt.Errorf("the metadata log skips from offset %d to %d: applying past a gap would build an image nobody else has", img.Offset, offset)
			return res
		}
		var batch *metadatapb.RecordBatch
		if len(e.Data) > 0 {
			batch = &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(e.Data, batch); err != nil {
				res.fatal = fmt.Errorf("the metadata log entry at offset %d does not decode as a record batch: %w", offset, err)
				return res
			}
		}
		next, err := img.Apply(offset, uint64(e.Epoch), batch)
		if err != nil {
			res.fatal = fmt.Errorf("applying the metadata log: %w", err)
			return res
		}
		img = next
		res.bytes += int64(len(e.Data))
	}
	res.img = img
	res.hw = part.HighWatermark
	return res
}

// fetchTarget chooses which controller to follow the log from: the active one when known, the leader a
// refusal names, else the next voter round robin.
type fetchTarget struct {
	q          *quorum
	cur        int32 // -1 before the first choice
	lastActive int32
}

// choose returns the controller for the next fetch. A newly learned active controller always wins:
// it is the one that holds everything committed.
func (t *fetchTarget) choose(active int32, start func() int32) int32 {
	if active >= 0 && active != t.lastActive && t.q.known(active) {
		t.cur = active
	}
	t.lastActive = active
	if !t.q.known(t.cur) {
		t.cur = start()
	}
	return t.cur
}

// failed moves on from a controller that could not be reached or refused.
func (t *fetchTarget) failed() { t.cur = t.q.next(t.cur) }

// redirect follows a NOT_LEADER_OR_FOLLOWER answer to the leader it names.
func (t *fetchTarget) redirect(leader int32) {
	if t.q.known(leader) && leader != t.cur {
		t.cur = leader
		return
	}
	t.failed()
}

// runFollower follows the log until the broker stops, applying what it fetches to b.image.
func (b *Broker) runFollower() {
	target := fetchTarget{q: b.q, cur: -1, lastActive: -1}
	bo := b.newBackoff()
	var catchUp snapshotCatchUp
	defer catchUp.close()
	outOfRange, refusals, failures := 0, 0, 0
	caughtUp := false
	for b.ctx.Err() == nil {
		id := target.choose(b.active.Load(), b.searchStart)
		img := b.image.Load()
		ctx, cancel := context.WithTimeout(b.ctx, b.cfg.FetchMaxWait+b.cfg.RequestTimeout)
		resp, err := b.q.request(ctx, id, b.fetchRequest(img))
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			lvl := slog.LevelDebug
			if failures == 1 || failures%20 == 0 {
				lvl = slog.LevelWarn
			}
			b.log.Log(b.ctx, lvl, "cannot fetch the metadata log; trying the next controller", "controller", id, "attempts", failures, "err", err)
			target.failed()
			b.followerPause(&bo)
			continue
		}
		failures = 0
		res := applyFetch(img, resp.(*kmsg.FetchResponse))
		if res.img != img {
			b.image.Store(res.img)
			poke(b.applied)
			poke(b.imageChanged)
		}
		if res.fatal != nil {
			b.fail(fmt.Errorf("following the metadata log of cluster %s from controller %d: %w", b.cfg.ClusterID, id, res.fatal))
			return
		}
		if res.hw >= 0 {
			b.hw.Store(res.hw)
			if !caughtUp && int64(res.img.Offset) >= res.hw {
				// Once per process: later lags are normal between two answers and not news.
				caughtUp = true
				b.log.Info("caught up with the metadata log", "offset", res.img.Offset, "epoch", res.img.Epoch, "high_watermark", res.hw, "controller", id)
			}
		}
		switch {
		case res.snapshot != nil:
			switch b.catchUpFromSnapshot(&catchUp, id, img, *res.snapshot) {
			case catchUpDone:
				bo.reset()
				outOfRange, refusals = 0, 0
			case catchUpRetry:
				b.followerPause(&bo)
			case catchUpElsewhere:
				target.failed()
				b.followerPause(&bo)
			case catchUpFatal:
				return
			}
		case res.err == nil:
			bo.reset()
			outOfRange, refusals = 0, 0
			catchUp.odd = 0
			if b.snapshotter != nil {
				b.snapshotter.Applied(res.img, res.bytes, time.Now())
			}
		case errors.Is(res.err, kerr.OffsetOutOfRange):
			// A controller whose log start moves past our offset between its check and its read says so
			// without naming a snapshot; the next fetch gets the pointer.
			outOfRange++
			if outOfRange == 1 || outOfRange%30 == 0 {
				b.log.Warn("the controller no longer holds this broker's next offset and named no snapshot; asking again",
					"controller", id, "fetch_offset", img.Offset+1, "attempts", outOfRange, "err", res.err)
			}
			b.followerPause(&bo)
		case errors.Is(res.err, kerr.NotLeaderForPartition):
			b.log.Debug("controller does not serve the log; following the leader it names", "controller", id, "leader", res.leader)
			target.redirect(res.leader)
			b.followerPause(&bo)
		default:
			refusals++
			lvl := slog.LevelDebug
			if refusals == 1 || refusals%20 == 0 {
				lvl = slog.LevelWarn
			}
			b.log.Log(b.ctx, lvl, "metadata log fetch refused; trying the next controller", "controller", id, "attempts", refusals, "err", res.err)
			target.failed()
			b.followerPause(&bo)
		}
	}
}

// followerPause waits out the follower's backoff, but stops early, with the backoff reset, when the
// session learns a new active controller: that is where the log is, and a broker that waited out a
// long backoff after a failover would report a stale offset for no reason.
func (b *Broker) followerPause(bo *backoff) {
	t := time.NewTimer(bo.next())
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.activeChanged:
		bo.reset()
	case <-b.ctx.Done():
	}
}
