package broker

// AlterPartition (key 56), sent by this broker as a partition leader to grow an ISR back. In Kafka a
// follower rejoins a partition's ISR once it has caught up with the leader's log, and the leader asks
// the controller with AlterPartition. These brokers hold no partition data, so a replica has caught up
// as soon as the controller lets it lead: registered, unfenced and not shutting down. Without this an
// ISR would only ever shrink (the controller removes a fenced broker from every ISR), every restart
// would leave partitions under-replicated for good, and preferred-leader election could never give a
// returning broker its leaderships back.
//
// The leader sends v3 where the controller serves it (each ISR member with its broker epoch, so a
// member that restarted in the meantime is refused as INELIGIBLE_REPLICA) and v2 otherwise; both name
// topics by id. It looks for partitions to grow when the set of brokers that may lead changes (a
// broker came back, or this one did; an image that applied no broker record is not even looked at) and
// once per session timeout besides; one request carries at most maxAlterPartitions partitions, and the
// next image it applies shows what was granted.

import (
	"fmt"
	"maps"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxAlterPartitions bounds one AlterPartition request, as the controller bounds a batch.
const maxAlterPartitions = 10_000

// partitionRef names one partition at one partition epoch: a refusal is remembered only until the
// partition changes.
type partitionRef struct {
	topic     [16]byte
	partition int32
	epoch     int32
}

// mayLead reports whether a broker may lead and so may be in an ISR a leader grows: registered,
// unfenced, not in controlled shutdown (the controller's own rule for leaders).
func mayLead(b *metadatalog.Broker) bool {
	return b != nil && !b.Fenced && !b.InControlledShutdown
}

// leadingBrokers maps every broker that may lead to its epoch.
func leadingBrokers(img *metadatalog.Image) map[int32]int64 {
	out := map[int32]int64{}
	for _, b := range img.Brokers() {
		if mayLead(b) {
			out[b.ID] = b.Epoch
		}
	}
	return out
}

// isrExpansions builds the AlterPartition topics for the partitions self leads whose ISR lacks a
// replica that may lead, each with its ISR grown by those replicas (in replica order, after the
// current members), skipping the refused ones; at most limit partitions. It is pure.
func isrExpansions(img *metadatalog.Image, self int32, refused map[partitionRef]bool, limit int) (topics []kmsg.AlterPartitionRequestTopic, n int) {
	live := func(id int32) (int64, bool) {
		b, ok := img.Broker(id)
		if !ok || !mayLead(b) {
			return 0, false
		}
		return b.Epoch, true
	}
	if _, ok := live(self); !ok {
		return nil, 0
	}
	img.PartitionsLedBy(self, func(topic [16]byte, id int32, p *metadatalog.Partition) bool {
		if refused[partitionRef{topic, id, p.Epoch}] {
			return true
		}
		isr := p.ISR
		grown := false
		for _, r := range p.Replicas {
			if _, ok := live(r); ok && !containsID(isr, r) {
				if !grown {
					isr = append([]int32(nil), p.ISR...)
					grown = true
				}
				isr = append(isr, r)
			}
		}
		if !grown {
			return true
		}
		ap := kmsg.NewAlterPartitionRequestTopicPartition()
		ap.Partition, ap.LeaderEpoch, ap.PartitionEpoch, ap.NewISR = id, p.LeaderEpoch, p.Epoch, isr
		for _, m := range isr {
			e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			e.BrokerID = m
			if epoch, ok := live(m); ok {
				e.BrokerEpoch = epoch
			}
			ap.NewEpochISR = append(ap.NewEpochISR, e)
		}
		if k := len(topics); k == 0 || topics[k-1].TopicID != topic {
			t := kmsg.NewAlterPartitionRequestTopic()
			t.TopicID = topic
			topics = append(topics, t)
		}
		topics[len(topics)-1].Partitions = append(topics[len(topics)-1].Partitions, ap)
		n++
		return n < limit
	})
	return topics, n
}

func alterPartitionRequest(self int32, epoch int64, topics []kmsg.AlterPartitionRequestTopic) *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch, req.Topics = self, epoch, topics
	return req
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// runISRExpansion grows the ISRs of the partitions this broker leads whenever brokers that may lead
// come back. It runs until the broker closes.
func (b *Broker) runISRExpansion() {
	sweep := time.NewTicker(b.cfg.SessionTimeout)
	defer sweep.Stop()
	var (
		seen     map[int32]int64 // leadingBrokers when the last look found nothing to grow
		lastLive map[int32]int64
		lastImg  *metadatalog.Image // the image of the last look
		refused  = map[partitionRef]bool{}
	)
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.imageChanged:
		case <-sweep.C:
			seen = nil
		}
		img := b.image.Load()
		if seen != nil && lastImg != nil && img.SameBrokers(lastImg) {
			continue // the last look found nothing to grow, and who may lead has not changed since
		}
		lastImg = img
		live := leadingBrokers(img)
		if !maps.Equal(live, lastLive) {
			clear(refused) // a returning broker may turn a refusal into a grant
			lastLive = live
		}
		if maps.Equal(live, seen) || b.shutdownCtx.Err() != nil {
			continue
		}
		topics, n := isrExpansions(img, b.cfg.NodeID, refused, maxAlterPartitions)
		if n == 0 {
			seen = live
			continue
		}
		req := alterPartitionRequest(b.cfg.NodeID, b.epoch.Load(), topics)
		resp, _, err := b.callActive(b.ctx, "AlterPartition", func() kmsg.Request { return req })
		if err != nil {
			return // closed
		}
		b.noteAlterPartition(resp.(*kmsg.AlterPartitionResponse), topics, refused)
	}
}

// noteAlterPartition logs an AlterPartition answer and remembers the partitions it refused, so they are
// not asked for again until they change or the brokers that may lead do.
func (b *Broker) noteAlterPartition(resp *kmsg.AlterPartitionResponse, sent []kmsg.AlterPartitionRequestTopic, refused map[partitionRef]bool) {
	if resp.ErrorCode != 0 {
		// STALE_BROKER_EPOCH and the like: this broker's registration changed; the next image says how.
		b.log.Info("AlterPartition refused", "error", kerr.ErrorForCode(resp.ErrorCode))
		for _, t := range sent {
			for _, p := range t.Partitions {
				refused[partitionRef{t.TopicID, p.Partition, p.PartitionEpoch}] = true
			}
		}
		return
	}
	sentEpochs := map[partitionRef]int32{} // keyed with epoch 0: the epoch each partition was asked at
	for _, t := range sent {
		for _, p := range t.Partitions {
			sentEpochs[partitionRef{t.TopicID, p.Partition, 0}] = p.PartitionEpoch
		}
	}
	granted, failed := 0, 0
	for _, t := range resp.Topics { // kmsg spells the answer's topic id field TopidID
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				granted++
				continue
			}
			failed++
			if epoch, ok := sentEpochs[partitionRef{t.TopidID, p.Partition, 0}]; ok {
				refused[partitionRef{t.TopidID, p.Partition, epoch}] = true
			}
			b.log.Debug("ISR expansion refused", "topic", fmt.Sprintf("%x", t.TopidID), "partition", p.Partition, "error", kerr.ErrorForCode(p.ErrorCode))
		}
	}
	b.log.Info("grew ISRs with returning replicas", "partitions", granted, "refused", failed)
}
