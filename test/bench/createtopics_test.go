//go:build linux

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics, the write DESIGN.md states two targets in: one topic of one partition for the single
// admin write, and topics of many partitions for the batched records/s.

const (
	// placementFirstID and placementBrokers: the brokers CreateTopics places replicas on.
	placementFirstID = 900
	placementBrokers = 3
	// replicationFactor of every topic the benchmark creates.
	replicationFactor = 3
	// batchPartitions is the partition count of each topic of the batched load: 1 TopicRecord and
	// this many PartitionRecords in one batch.
	batchPartitions = 1000
)

var createLevels = []int{1, 8}

// createTopicOp creates one topic of partitions partitions, named after the client and the sequence
// number under prefix so that no two requests collide.
func createTopicOp(prefix string, partitions int32) writeOp {
	return func(ctx context.Context, cl *kgo.Client, i, seq int) error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic = fmt.Sprintf("%s-c%03d-%07d", prefix, i, seq)
		t.NumPartitions, t.ReplicationFactor = partitions, replicationFactor
		req.Topics = append(req.Topics, t)
		r, err := cl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return err
		}
		resp := r.(*kmsg.CreateTopicsResponse)
		if len(resp.Topics) != 1 {
			return fmt.Errorf("CreateTopics answered for %d topics, asked for 1", len(resp.Topics))
		}
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
			return withMessage(fmt.Errorf("creating %s: %w", t.Topic, err), resp.Topics[0].ErrorMessage)
		}
		return nil
	}
}

// placement is a set of brokers registered only so that CreateTopics can place replicas: they are
// unfenced, and kept so by a heartbeat each second, but follow no log, so the machine's CPU goes to the
// quorum. They stay registered until the cluster stops.
type placement struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	err error // the first failed keep-alive heartbeat
}

func startPlacement(c *cluster, addr string) (*placement, error) {
	ids := make([]int32, placementBrokers)
	for i := range ids {
		ids[i] = placementFirstID + int32(i)
	}
	cl, err := quorumClient(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	epochs := map[int32]int64{}
	for _, id := range ids {
		if epochs[id], err = registerBroker(ctx, cl, c.clusterID, id); err != nil {
			cl.Close()
			return nil, err
		}
	}
	q, err := c.describeQuorum(ctx, addr)
	if err != nil {
		cl.Close()
		return nil, err
	}
	beat := func(ctx context.Context) error {
		for _, id := range ids {
			if err := heartbeat(ctx, cl, id, epochs[id], q.hwm); err != nil {
				return err
			}
		}
		return nil
	}
	if err := beat(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("unfencing the placement brokers: %w", err)
	}
	loopCtx, stop := context.WithCancel(context.Background())
	p := &placement{cancel: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer cl.Close()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(loopCtx, 5*time.Second)
			err := beat(ctx)
			cancel()
			if err != nil && loopCtx.Err() == nil {
				p.mu.Lock()
				if p.err == nil {
					p.err = err
				}
				p.mu.Unlock()
			}
		}
	}()
	return p, nil
}

// failed is the first keep-alive heartbeat that failed, if any.
func (p *placement) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *placement) stop() {
	p.cancel()
	<-p.done
}
