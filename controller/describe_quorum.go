package controller

// DescribeQuorum (key 55), versions 0–2. v1 added each replica's last fetch and last caught-up
// timestamps; v2 added error messages, replica directory ids and the voters' listeners (Nodes).
//
// Only the leader knows the followers' progress, so a standby forwards the request to the leader and
// relays its answer: any controller gives the same answer, as operators expect of
// kafka-metadata-quorum.sh --bootstrap-controller.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataTopic is the name Kafka gives the metadata log in DescribeQuorum.
const MetadataTopic = "__cluster_metadata"

func (c *Controller) handleDescribeQuorum(ctx context.Context, req *kmsg.DescribeQuorumRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	st, err := c.mlog.Status(ctx)
	if err != nil {
		return describeQuorumError(resp, kerr.NotLeaderForPartition, "this controller's metadata log is not running"), nil
	}
	if st.Leader != st.NodeID {
		if st.Leader == 0 || isForwarded(kafkaserver.ClientID(ctx)) {
			return describeQuorumError(resp, kerr.NotLeaderForPartition, "the metadata quorum has no leader right now: retry shortly"), nil
		}
		addr, ok := c.cfg.Voters[int32(st.Leader)]
		if !ok {
			return describeQuorumError(resp, kerr.NotLeaderForPartition, fmt.Sprintf("leader %d is not a configured voter", st.Leader)), nil
		}
		fwd := &kmsg.DescribeQuorumRequest{Version: req.Version, Topics: req.Topics}
		r, err := c.fwd.forward(ctx, addr, fwd)
		if err != nil {
			return describeQuorumError(resp, kerr.NotLeaderForPartition, fmt.Sprintf("could not reach leader %d at %s: %v", st.Leader, addr, err)), nil
		}
		out := r.(*kmsg.DescribeQuorumResponse)
		out.Version = req.Version
		return out, nil
	}
	return c.describeQuorumResponse(resp, st, c.observers(ctx)), nil
}

// observer is a broker as DescribeQuorum shows it: the offset it last reported applying, and when.
type observer struct {
	id            int32
	offset        int64
	lastHeartbeat time.Time
}

// observers lists the brokers with a live session on this active controller. Brokers report their
// applied offset in every heartbeat, whichever controller they fetch from, so the leader knows them
// all. A combined node's broker is not listed: its node is a voter already.
func (c *Controller) observers(ctx context.Context) []observer {
	done := make(chan []observer, 1)
	if !c.submit(ctx, func() {
		var out []observer
		for id, s := range c.sessions.byID {
			if _, voter := c.cfg.Voters[id]; voter || s.metadataOffset < 0 {
				continue
			}
			out = append(out, observer{id: id, offset: s.metadataOffset, lastHeartbeat: s.deadline.Add(-c.sessions.timeout)})
		}
		done <- out
	}) {
		return nil
	}
	select {
	case out := <-done:
		slices.SortFunc(out, func(a, b observer) int { return int(a.id) - int(b.id) })
		return out
	case <-ctx.Done():
		return nil
	}
}

func describeQuorumError(resp *kmsg.DescribeQuorumResponse, code *kerr.Error, msg string) *kmsg.DescribeQuorumResponse {
	resp.ErrorCode = code.Code
	resp.ErrorMessage = &msg
	return resp
}

// describeQuorumResponse renders the leader's view. Offsets are log offsets (Raft indexes): the high
// watermark is the last committed offset and a log end offset the last offset a voter holds, so a
// follower's lag is the leader's log end offset minus its own.
func (c *Controller) describeQuorumResponse(resp *kmsg.DescribeQuorumResponse, st metadatalog.QuorumStatus, observers []observer) *kmsg.DescribeQuorumResponse {
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.LeaderID = int32(st.Leader)
	p.LeaderEpoch = int32(st.Epoch)
	p.HighWatermark = int64(st.HighWatermark)
	for _, v := range st.Voters {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID = int32(v.ID)
		rs.LogEndOffset = int64(v.LogEndOffset)
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = -1, -1
		if !v.LastFetch.IsZero() {
			rs.LastFetchTimestamp = v.LastFetch.UnixMilli()
		}
		if !v.LastCaughtUp.IsZero() {
			rs.LastCaughtUpTimestamp = v.LastCaughtUp.UnixMilli()
		}
		p.CurrentVoters = append(p.CurrentVoters, rs)
		if addr, ok := c.cfg.Voters[int32(v.ID)]; ok {
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = int32(v.ID)
			if host, port, err := net.SplitHostPort(addr); err == nil {
				pn, _ := strconv.ParseUint(port, 10, 16)
				l := kmsg.NewDescribeQuorumResponseNodeListener()
				l.Name, l.Host, l.Port = "CONTROLLER", host, uint16(pn)
				n.Listeners = append(n.Listeners, l)
			}
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	for _, o := range observers {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		rs.ReplicaID, rs.LogEndOffset = o.id, o.offset
		rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = o.lastHeartbeat.UnixMilli(), -1
		if uint64(o.offset) >= st.HighWatermark {
			rs.LastCaughtUpTimestamp = rs.LastFetchTimestamp
		}
		p.Observers = append(p.Observers, rs)
	}
	t := kmsg.NewDescribeQuorumResponseTopic()
	t.Topic = MetadataTopic
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}
