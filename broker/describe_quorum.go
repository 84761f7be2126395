package broker

// DescribeQuorum (key 55), versions 0–2, on the broker port: forwarded to the controllers and the
// answer relayed, so that `kraftctl quorum describe --bootstrap-server` works like
// kafka-metadata-quorum.sh. Any controller will do: a standby forwards to the leader itself. The
// controllers are tried in turn; if none answers, the answer is NOT_LEADER_OR_FOLLOWER with a message.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const describeQuorumMaxVersion = 2

func (b *Broker) forwardDescribeQuorum(ctx context.Context, req *kmsg.DescribeQuorumRequest) kmsg.Response {
	var lastErr error
	id := b.active.Load()
	if !b.q.known(id) {
		id = b.q.at(0)
	}
	for range b.cfg.Controllers {
		fwd := &kmsg.DescribeQuorumRequest{Version: req.Version, Topics: req.Topics}
		rctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		resp, err := b.q.request(rctx, id, fwd)
		cancel()
		if err == nil {
			out := resp.(*kmsg.DescribeQuorumResponse)
			out.Version = req.Version
			return out
		}
		lastErr = err
		id = b.q.next(id)
	}
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	resp.ErrorCode = kerr.NotLeaderForPartition.Code
	msg := fmt.Sprintf("no controller answered: %v", lastErr)
	resp.ErrorMessage = &msg
	return resp
}
