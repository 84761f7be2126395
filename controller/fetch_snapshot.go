package controller

// FetchSnapshot (key 59), versions 0–1: how a broker, or a controller too far behind the leader,
// downloads a snapshot once the log before its offset is gone. A Fetch below the log start answers with
// the newest snapshot's id (SnapshotID: its last included offset and epoch, see fetch.go); the fetcher
// then asks for that file by position, a chunk at a time, until it has the Size the answers carry.
// Any controller serves the snapshot files it holds: a snapshot is committed history, the same on
// every node that has it.

import (
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxSnapshotChunk caps the bytes of one FetchSnapshot answer, whatever the fetcher asks for.
const maxSnapshotChunk = 8 << 20

func (c *Controller) handleFetchSnapshot(req *kmsg.FetchSnapshotRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchSnapshotResponse)
	if req.ClusterID != nil && *req.ClusterID != c.cfg.ClusterID {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp
	}
	budget := min(fetchBudget(req.MaxBytes), maxSnapshotChunk)
	for _, t := range req.Topics {
		rt := kmsg.NewFetchSnapshotResponseTopic()
		rt.Topic = t.Topic
		for i := range t.Partitions {
			p := &t.Partitions[i]
			var rp kmsg.FetchSnapshotResponseTopicPartition
			if t.Topic == MetadataTopic && p.Partition == 0 {
				rp = snapshot.ServeChunk(c.mlog.SnapshotDir(), p, budget)
				budget = max(budget-len(rp.Bytes), 1)
				rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = c.currentLeader()
			} else {
				rp = kmsg.NewFetchSnapshotResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// currentLeader is the quorum's leader and epoch as this controller knows them, -1 when unknown.
func (c *Controller) currentLeader() (int32, int32) {
	leader := c.leader.Load()
	if leader == 0 {
		return -1, -1
	}
	return int32(leader), int32(c.epoch.Load())
}
