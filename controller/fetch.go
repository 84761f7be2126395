package controller

// Fetch (key 1), versions 4–12: how brokers follow the metadata log (DESIGN.md, "Following the log").
// A broker long-polls for the partition __cluster_metadata/0 from FetchOffset = its applied offset + 1
// and gets committed entries, one Kafka v2 record batch each (api/logfetch). Every answer carries the
// high watermark, here the last committed offset (inclusive), so a broker learns that it is current even
// when nothing new commits: it never depends on periodic no-op writes.
//
// Versions: v4 added LastStableOffset and the isolation level, v5 LogStartOffset, v7 fetch sessions
// (this controller never creates one: it answers SessionID 0, so clients keep sending full fetches), v9
// the request's CurrentLeaderEpoch (ignored: committed entries are the same on every controller), v11
// the rack and PreferredReadReplica, v12 flexible encoding with tagged fields, among them CurrentLeader,
// which is therefore only on the wire from v12. v13 replaced topic names by ids and is not served.
//
// metadata.version gates who may serve: at level 1 brokers follow only the active controller, so a
// standby answers NOT_LEADER_OR_FOLLOWER naming the leader; from level 2 any controller serves what it
// has committed.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// maxFetchWait caps a fetch's MaxWaitMillis, so a parked long-poll never outlives a broker's own
	// request timeout by much.
	maxFetchWait = 5 * time.Second
	// defaultFetchBytes is the byte budget of a fetch that sets neither MaxBytes nor PartitionMaxBytes.
	defaultFetchBytes = 1 << 20
	// maxFetchBytes caps what one answer carries, whatever the broker asks for.
	maxFetchBytes = 64 << 20
	// followFromStandbyLevel is the metadata.version from which standby controllers serve the log.
	followFromStandbyLevel = 2
)

func (c *Controller) handleFetch(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	var offset int64 = -1
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if t.Topic == MetadataTopic && p.Partition == 0 {
				offset = p.FetchOffset
			}
		}
	}
	if offset >= 0 && req.MinBytes > 0 {
		c.waitForFetch(ctx, uint64(offset), fetchWait(req.MaxWaitMillis))
	}
	budget := fetchBudget(req.MaxBytes)
	for _, t := range req.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			var rp kmsg.FetchResponseTopicPartition
			if t.Topic == MetadataTopic && p.Partition == 0 {
				rp = c.fetchMetadataPartition(p.FetchOffset, min(budget, fetchBudget(p.PartitionMaxBytes)))
				budget -= len(rp.RecordBatches)
			} else {
				rp = kmsg.NewFetchResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode, rp.HighWatermark = kerr.UnknownTopicOrPartition.Code, -1
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// waitForFetch parks a fetch that has nothing to read yet, until an entry at offset commits or wait
// passes. A fetch this controller will refuse, or that asks for what is no longer held, is answered at
// once.
func (c *Controller) waitForFetch(ctx context.Context, offset uint64, wait time.Duration) {
	if refused, _, _ := c.fetchRefusal(); refused {
		return
	}
	if wait <= 0 || offset < c.mlog.FirstOffset() || c.mlog.CommittedOffset() >= offset {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c.mlog.WaitCommitted(ctx, offset)
}

// fetchMetadataPartition answers for __cluster_metadata/0: committed entries from offset on, within
// budget bytes (but at least one entry when any is committed there), with the high watermark.
func (c *Controller) fetchMetadataPartition(offset int64, budget int) kmsg.FetchResponseTopicPartition {
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.Partition = 0
	if refused, leader, epoch := c.fetchRefusal(); refused {
		// No high watermark: this controller's commit says nothing about what the leader has committed.
		rp.ErrorCode, rp.HighWatermark = kerr.NotLeaderForPartition.Code, -1
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = leader, epoch
		return rp
	}
	first := c.mlog.FirstOffset()
	rp.LogStartOffset = int64(first)
	if offset < int64(first) {
		return c.pointToSnapshot(rp)
	}
	entries, commit, err := c.mlog.ReadCommitted(uint64(offset), budget)
	rp.HighWatermark, rp.LastStableOffset = int64(commit), int64(commit)
	rp.LogStartOffset = int64(c.mlog.FirstOffset())
	if err != nil {
		// Only ErrCompacted: the log was trimmed between the check above and the read.
		return c.pointToSnapshot(rp)
	}
	rp.RecordBatches = encodeFetchEntries(entries, budget)
	return rp
}

// pointToSnapshot answers a fetch below the log start as Kafka's leader does: no records, no error, and
// the id of the newest snapshot (SnapshotID: its last included offset and epoch) to download with
// FetchSnapshot before fetching again after it. OFFSET_OUT_OF_RANGE if there is none, which the log's
// compaction after a durable snapshot rules out.
func (c *Controller) pointToSnapshot(rp kmsg.FetchResponseTopicPartition) kmsg.FetchResponseTopicPartition {
	commit := c.mlog.CommittedOffset()
	rp.HighWatermark, rp.LastStableOffset = int64(commit), int64(commit)
	snaps, err := snapshot.List(c.mlog.SnapshotDir())
	if err != nil || len(snaps) == 0 {
		rp.ErrorCode = kerr.OffsetOutOfRange.Code
		return rp
	}
	newest := snaps[len(snaps)-1]
	rp.SnapshotID.EndOffset, rp.SnapshotID.Epoch = int64(newest.Offset), int32(newest.Epoch)
	return rp
}

// encodeFetchEntries encodes the longest prefix of entries that fits budget bytes, and at least the
// first entry whatever its size, so a broker always makes progress.
func encodeFetchEntries(entries []metadatalog.Entry, budget int) []byte {
	size, n := 0, 0
	for _, e := range entries {
		s := logfetch.BatchSize(logfetch.Entry{Data: e.Data})
		if n > 0 && size+s > budget {
			break
		}
		size += s
		n++
	}
	if n == 0 {
		return nil
	}
	out := make([]logfetch.Entry, n)
	for i, e := range entries[:n] {
		out[i] = logfetch.Entry{Offset: e.Offset, Epoch: e.Epoch, Data: e.Data}
	}
	return logfetch.AppendEntries(make([]byte, 0, size), out)
}

// fetchRefusal says whether this controller must refuse to serve the log, and names the leader then.
func (c *Controller) fetchRefusal() (refused bool, leaderID, leaderEpoch int32) {
	return fetchGate(c.Active(), c.Image().MetadataVersion(), c.leader.Load(), c.epoch.Load())
}

// fetchGate is the metadata.version rule: below level 2 only the active controller serves the log. A
// refusal names the leader (-1 when none is known) so the broker can go there.
func fetchGate(active bool, metadataVersion int16, leader, epoch uint64) (refused bool, leaderID, leaderEpoch int32) {
	if active || metadataVersion >= followFromStandbyLevel {
		return false, -1, -1
	}
	leaderID, leaderEpoch = -1, -1
	if leader != 0 {
		leaderID, leaderEpoch = int32(leader), int32(epoch)
	}
	return true, leaderID, leaderEpoch
}

func fetchWait(maxWaitMillis int32) time.Duration {
	return min(time.Duration(max(maxWaitMillis, 0))*time.Millisecond, maxFetchWait)
}

// fetchBudget turns a request's byte limit into a budget: unset (0 or less) means the default, and no
// budget passes maxFetchBytes.
func fetchBudget(limit int32) int {
	if limit <= 0 {
		return defaultFetchBytes
	}
	return min(int(limit), maxFetchBytes)
}
