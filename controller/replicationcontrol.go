package controller

import (
	"fmt"
	"slices"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicationControl is the partition half of Kafka's ReplicationControlManager (topicControl is the
// topic half): who leads each partition and who is in its ISR. It is the leadership hook of
// clusterControl — moving leaders and ISRs when a broker is fenced, shuts down, unregisters or is
// unfenced — and it decides AlterPartition and ElectLeaders. It is pure: (image, request) in, (records,
// answer) out. It finds a broker's partitions through the image's partition index, so its cost is what
// that broker holds, never the whole cluster.
//
// Elections are Kafka's PartitionChangeBuilder without eligible leader replicas (ELR) and without
// unclean election, which this controller does not do:
//
//   - an acceptable leader is a registered broker that is neither fenced nor in controlled shutdown
//     (Kafka's isActive); a broker being evicted never is, a broker being unfenced always is;
//   - "online" election, which every ISR or broker change runs: keep the leader if it is still in the
//     ISR and acceptable, else the first replica, in replica order, that is in the ISR and acceptable,
//     else none (-1: the partition is offline);
//   - "preferred" election (ElectLeaders): the first replica if it is in the ISR and acceptable, else
//     the leader if it still qualifies, else as online election;
//   - the ISR is never written empty: when the brokers leaving it are all that is left, the ISR stays as
//     it is and the leader becomes -1. Those members hold every committed record, so the partition
//     comes back, cleanly, when one of them is unfenced.
//
// A PartitionChangeRecord carries only what changes: the ISR if it changes, the leader if it changes.
// The image bumps the partition epoch on every change and the leader epoch on every leader change; an
// ISR shrink alone does not bump the leader epoch (Kafka since metadata.version 3.6-IV0, KAFKA-15021).
//
// Leadership moves can be many records — a broker that leads 100,000 partitions — so they are written
// as Kafka writes them: a non-atomic result, in order, in batches of at most maxRecordsPerBatch
// (Controller.writeInBatches). The order makes that safe. A fence or unregistration comes after the
// moves it needs, so once it commits, every move before it has committed: a fenced broker leads
// nothing. An unfence comes before the elections it allows, and a controlled shutdown's flag before
// the moves away from it, so no batch elects a broker that is not yet, or no longer, acceptable. A
// failover can cut such a write short after any batch; what it leaves is a state the cluster may be
// in, and the next active controller finishes the moves (Controller.resumeLeadership).
type replicationControl struct{}

var _ partitionLeadership = replicationControl{}

// maxRecordsPerBatch bounds one batch of a write that may span several (Kafka's
// QuorumController.MAX_RECORDS_PER_BATCH), so that moving 100,000 leaders never becomes one entry
// that every follower and broker must take in one piece.
const maxRecordsPerBatch = 10_000

// acceptableLeader reports whether a broker may lead: registered, unfenced, not in controlled shutdown.
func acceptableLeader(img *metadatalog.Image, broker int32) bool {
	b, ok := img.Broker(broker)
	return ok && !b.Fenced && !b.InControlledShutdown
}

// electOnline is online election over the ISR isr (the partition's next ISR).
func electOnline(p *metadatalog.Partition, isr []int32, ok func(int32) bool) int32 {
	if p.Leader >= 0 && slices.Contains(isr, p.Leader) && ok(p.Leader) {
		return p.Leader
	}
	for _, r := range p.Replicas {
		if slices.Contains(isr, r) && ok(r) {
			return r
		}
	}
	return -1
}

// electPreferred is preferred election over the partition's ISR.
func electPreferred(p *metadatalog.Partition, ok func(int32) bool) int32 {
	if len(p.Replicas) > 0 && slices.Contains(p.ISR, p.Replicas[0]) && ok(p.Replicas[0]) {
		return p.Replicas[0]
	}
	return electOnline(p, p.ISR, ok)
}

// recordSlab allocates change records in blocks: moving 100,000 leaders otherwise costs half a million
// small allocations.
type recordSlab struct {
	recs    []metadatapb.Record
	oneofs  []metadatapb.Record_PartitionChange
	changes []metadatapb.PartitionChangeRecord
	lists   []metadatapb.Int32List
	leaders []int32
}

const recordSlabSize = 256

// change returns a PartitionChangeRecord of the partition that sets isr (nil: unchanged) and leader
// (p.Leader: unchanged), or nil when neither changes anything.
func (s *recordSlab) change(topic []byte, partition int32, p *metadatalog.Partition, isr []int32, leader int32) *metadatapb.Record {
	if isr != nil && slices.Equal(isr, p.ISR) {
		isr = nil
	}
	if isr == nil && leader == p.Leader {
		return nil
	}
	if len(s.recs) == 0 {
		s.recs = make([]metadatapb.Record, recordSlabSize)
		s.oneofs = make([]metadatapb.Record_PartitionChange, recordSlabSize)
		s.changes = make([]metadatapb.PartitionChangeRecord, recordSlabSize)
		s.lists = make([]metadatapb.Int32List, recordSlabSize)
		s.leaders = make([]int32, recordSlabSize)
	}
	rec, oneof, c, list, l := &s.recs[0], &s.oneofs[0], &s.changes[0], &s.lists[0], &s.leaders[0]
	s.recs, s.oneofs, s.changes, s.lists, s.leaders = s.recs[1:], s.oneofs[1:], s.changes[1:], s.lists[1:], s.leaders[1:]
	c.TopicId, c.PartitionId = topic, partition
	if isr != nil {
		list.Values = isr
		c.Isr = list
	}
	if leader != p.Leader {
		*l = leader
		c.Leader = l
	}
	oneof.PartitionChange = c
	rec.Record = oneof
	return rec
}

// topicBytes hands out one []byte per topic id for the records of one decision to share.
type topicBytes struct {
	last [16]byte
	b    []byte
}

func (t *topicBytes) of(id [16]byte) []byte {
	if t.b == nil || id != t.last {
		t.last, t.b = id, slices.Clone(id[:])
	}
	return t.b
}

// leads implements partitionLeadership (Kafka's BrokersToIsrs.hasLeaderships), in O(log n).
func (replicationControl) leads(img *metadatalog.Image, broker int32) bool {
	return img.LeadsAny(broker)
}

// evict implements partitionLeadership: for every partition that has one of the brokers in its ISR, or
// as its leader, the brokers leave the ISR and, if one of them led, the partition gets a new leader by
// online election, none of the evicted brokers being acceptable. A partition that holds several of the
// brokers changes once. It serves fencing, session expiry, controlled shutdown and unregistration
// (Kafka's handleBrokerFenced, handleBrokerInControlledShutdown, handleBrokerUnregistered).
func (replicationControl) evict(img *metadatalog.Image, brokers []int32) []*metadatapb.Record {
	var (
		records []*metadatapb.Record
		slab    recordSlab
		topics  topicBytes
	)
	ok := func(b int32) bool { return !slices.Contains(brokers, b) && acceptableLeader(img, b) }
	for i, broker := range brokers {
		earlier := brokers[:i]
		move := func(topic [16]byte, id int32, p *metadatalog.Partition) bool {
			for _, e := range earlier {
				if p.Leader == e || slices.Contains(p.ISR, e) {
					return true // done with the broker that came first
				}
			}
			isr := make([]int32, 0, len(p.ISR))
			for _, r := range p.ISR {
				if !slices.Contains(brokers, r) {
					isr = append(isr, r)
				}
			}
			leader := electOnline(p, isr, ok)
			if len(isr) == 0 {
				isr = nil // never an empty ISR: it stays, and the partition goes offline
			}
			if rec := slab.change(topics.of(topic), id, p, isr, leader); rec != nil {
				records = append(records, rec)
			}
			return true
		}
		img.PartitionsInISR(broker, move)
		// A leader outside its own ISR should not exist; if one does, it must still lose leadership.
		img.PartitionsLedBy(broker, func(topic [16]byte, id int32, p *metadatalog.Partition) bool {
			if slices.Contains(p.ISR, broker) {
				return true // moved above
			}
			return move(topic, id, p)
		})
	}
	return records
}

// admit implements partitionLeadership: the partitions with no leader get one by online election, the
// newly unfenced broker counting as acceptable although the image still shows it fenced (its unfence
// is in the same write). As in Kafka's handleBrokerUnfenced, every leaderless partition is considered,
// so one that has any acceptable ISR member comes back; one whose ISR holds only brokers that are
// still away stays offline, since that would take an unclean election.
func (replicationControl) admit(img *metadatalog.Image, broker int32) []*metadatapb.Record {
	var (
		records []*metadatapb.Record
		slab    recordSlab
		topics  topicBytes
	)
	ok := func(b int32) bool { return b == broker || acceptableLeader(img, b) }
	img.PartitionsLedBy(-1, func(topic [16]byte, id int32, p *metadatalog.Partition) bool {
		if rec := slab.change(topics.of(topic), id, p, nil, electOnline(p, p.ISR, ok)); rec != nil {
			records = append(records, rec)
		}
		return true
	})
	return records
}

// unfinishedEvictions returns the moves away from brokers that lead although they are fenced or in
// controlled shutdown, and those brokers. Such a broker is left only by a write that failover cut
// short; Controller.resumeLeadership calls this on activation. Each check is O(log n).
func (rc replicationControl) unfinishedEvictions(img *metadatalog.Image) ([]*metadatapb.Record, []int32) {
	var brokers []int32
	for _, b := range img.Brokers() {
		if (b.Fenced || b.InControlledShutdown) && img.LeadsAny(b.ID) {
			brokers = append(brokers, b.ID)
		}
	}
	if len(brokers) == 0 {
		return nil, nil
	}
	return rc.evict(img, brokers), brokers
}

// electOffline elects, by online election, a leader for every offline partition that has an
// acceptable ISR member: what admit does for a newly unfenced broker, with none.
func (rc replicationControl) electOffline(img *metadatalog.Image) []*metadatapb.Record {
	return rc.admit(img, -1)
}

// partitionName is how answers and logs name a partition: topic-partition.
func partitionName(topic string, p int32) string { return fmt.Sprintf("%s-%d", topic, p) }

// isrMember is one member of an AlterPartition's proposed ISR; epoch -1 means "do not check".
type isrMember struct {
	id    int32
	epoch int64
}

// alterPartition decides an AlterPartition: a partition leader reports its ISR grew or shrank. It is
// Kafka's ReplicationControlManager.alterPartition and validateAlterPartitionData, in their order:
//
//	broker unknown, or registered under another epoch      STALE_BROKER_EPOCH, for the whole request
//	topic unknown                                          UNKNOWN_TOPIC_OR_PARTITION (v0–1, by name),
//	                                                       UNKNOWN_TOPIC_ID (v2+, by id)
//	partition unknown                                      UNKNOWN_TOPIC_OR_PARTITION
//	leader or partition epoch above this controller's     NOT_CONTROLLER: this controller is behind
//	leader epoch below the partition's                     FENCED_LEADER_EPOCH
//	the sender is not the partition's leader               NOT_LEADER_OR_FOLLOWER (Kafka answers
//	                                                       INVALID_REQUEST; this names what is wrong)
//	partition epoch below the partition's                  INVALID_UPDATE_VERSION
//	an ISR member that is not a replica, a repeated one,   INVALID_REQUEST
//	or an ISR without the leader
//	leader recovery state other than RECOVERED             INVALID_REQUEST: no partition here is ever
//	                                                       recovering, there being no unclean election
//	an ISR member unregistered, fenced, in controlled      INELIGIBLE_REPLICA (v2+),
//	shutdown, or (v3) of another broker epoch              OPERATION_NOT_ATTEMPTED (v0–1)
//
// An accepted change writes the new ISR (nothing if it is the same) and answers with the partition as
// it is once that commits: same leader and leader epoch, the partition epoch one higher. Entries are
// decided in order, so a partition named twice is checked the second time against the first's result.
func (replicationControl) alterPartition(img *metadatalog.Image, req *kmsg.AlterPartitionRequest) ([]*metadatapb.Record, *kmsg.AlterPartitionResponse) {
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	b, ok := img.Broker(req.BrokerID)
	if !ok || b.Epoch != req.BrokerEpoch {
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return nil, resp
	}
	var (
		records []*metadatapb.Record
		slab    recordSlab
		// decided holds the partitions this request changed, as they will be.
		decided = map[partitionRef]*metadatalog.Partition{}
	)
	for _, rt := range req.Topics {
		out := kmsg.NewAlterPartitionResponseTopic()
		out.Topic, out.TopidID = rt.Topic, rt.TopicID
		var topic *metadatalog.Topic
		unknown := kerr.UnknownTopicID
		if req.Version < 2 {
			topic, ok = img.TopicByName(rt.Topic)
			unknown = kerr.UnknownTopicOrPartition
		} else {
			topic, ok = img.TopicByID(rt.TopicID)
		}
		topicID := slices.Clone(rt.TopicID[:])
		if ok {
			topicID = slices.Clone(topic.ID[:])
		}
		for _, rp := range rt.Partitions {
			po := kmsg.NewAlterPartitionResponseTopicPartition()
			po.Partition = rp.Partition
			if !ok {
				po.ErrorCode = unknown.Code
				out.Partitions = append(out.Partitions, po)
				continue
			}
			ref := partitionRef{topic: topic.ID, partition: rp.Partition}
			p, found := decided[ref]
			if !found {
				p, found = img.Partition(topic.ID, rp.Partition)
			}
			members := make([]isrMember, 0, max(len(rp.NewISR), len(rp.NewEpochISR)))
			if req.Version < 3 {
				for _, id := range rp.NewISR {
					members = append(members, isrMember{id, -1})
				}
			} else {
				for _, m := range rp.NewEpochISR {
					members = append(members, isrMember{m.BrokerID, m.BrokerEpoch})
				}
			}
			var code *kerr.Error
			if !found {
				code = kerr.UnknownTopicOrPartition
			} else {
				code = validateAlterPartition(img, req, p, &rp, members)
			}
			if code != nil {
				po.ErrorCode = code.Code
				out.Partitions = append(out.Partitions, po)
				continue
			}
			isr := make([]int32, len(members))
			for i, m := range members {
				isr[i] = m.id
			}
			if rec := slab.change(topicID, rp.Partition, p, isr, p.Leader); rec != nil {
				records = append(records, rec)
				next := *p
				next.ISR, next.Epoch = isr, p.Epoch+1
				decided[ref], p = &next, &next
			}
			po.LeaderID, po.LeaderEpoch, po.ISR, po.PartitionEpoch = p.Leader, p.LeaderEpoch, slices.Clone(p.ISR), p.Epoch
			out.Partitions = append(out.Partitions, po)
		}
		resp.Topics = append(resp.Topics, out)
	}
	return records, resp
}

// validateAlterPartition is the per-partition part of alterPartition's table; nil if the change may go.
func validateAlterPartition(img *metadatalog.Image, req *kmsg.AlterPartitionRequest, p *metadatalog.Partition, rp *kmsg.AlterPartitionRequestTopicPartition, members []isrMember) *kerr.Error {
	switch {
	case rp.LeaderEpoch > p.LeaderEpoch || rp.PartitionEpoch > p.Epoch:
		return kerr.NotController
	case rp.LeaderEpoch < p.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	case req.BrokerID != p.Leader:
		return kerr.NotLeaderForPartition
	case rp.PartitionEpoch < p.Epoch:
		return kerr.InvalidUpdateVersion
	}
	hasLeader := false
	for i, m := range members {
		if !slices.Contains(p.Replicas, m.id) || slices.ContainsFunc(members[:i], func(o isrMember) bool { return o.id == m.id }) {
			return kerr.InvalidRequest
		}
		hasLeader = hasLeader || m.id == p.Leader
	}
	if !hasLeader || rp.LeaderRecoveryState != 0 {
		return kerr.InvalidRequest
	}
	for _, m := range members {
		b, ok := img.Broker(m.id)
		if !ok || b.Fenced || b.InControlledShutdown || (m.epoch != -1 && m.epoch != b.Epoch) {
			if req.Version < 2 {
				return kerr.OperationNotAttempted
			}
			return kerr.IneligibleReplica
		}
	}
	return nil
}

// electLeaders decides an ElectLeaders (Kafka's ReplicationControlManager.electLeaders). Only
// preferred election (type 0) is done; unclean election (type 1) is refused with INVALID_REQUEST and a
// message saying so, and any other type is refused as unknown. Per partition:
//
//	topic or partition unknown                      UNKNOWN_TOPIC_OR_PARTITION
//	the first replica leads already                 ELECTION_NOT_NEEDED
//	the first replica is in the ISR and acceptable  it becomes leader
//	otherwise                                       PREFERRED_LEADER_NOT_AVAILABLE, unless the
//	                                                partition had no acceptable leader and online
//	                                                election finds one, which Kafka's preferred
//	                                                election also does and answers with success
//
// A null topic list means every partition, answered only for the partitions that needed an election;
// its records can be many, and are written as a non-atomic result. An empty list writes nothing.
func (replicationControl) electLeaders(img *metadatalog.Image, req *kmsg.ElectLeadersRequest) ([]*metadatapb.Record, *kmsg.ElectLeadersResponse) {
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if req.ElectionType != 0 {
		msg := fmt.Sprintf("Unknown election type %d.", req.ElectionType)
		if req.ElectionType == 1 {
			msg = "Unclean leader election is not supported by this controller yet: it elects leaders only from the ISR. " +
				"An offline partition comes back when a broker in its ISR is unfenced; ElectionType 0 elects preferred leaders."
		}
		resp.ErrorCode = kerr.InvalidRequest.Code
		for _, rt := range req.Topics {
			out := kmsg.NewElectLeadersResponseTopic()
			out.Topic = rt.Topic
			for _, id := range rt.Partitions {
				po := kmsg.NewElectLeadersResponseTopicPartition()
				po.Partition, po.ErrorCode, po.ErrorMessage = id, kerr.InvalidRequest.Code, &msg
				out.Partitions = append(out.Partitions, po)
			}
			resp.Topics = append(resp.Topics, out)
		}
		return nil, resp
	}
	var (
		records []*metadatapb.Record
		slab    recordSlab
		decided = map[partitionRef]*metadatalog.Partition{}
	)
	ok := func(b int32) bool { return acceptableLeader(img, b) }
	elect := func(t *metadatalog.Topic, topicID []byte, id int32) (*kerr.Error, string) {
		ref := partitionRef{topic: t.ID, partition: id}
		p, found := decided[ref]
		if !found {
			if p, found = img.Partition(t.ID, id); !found {
				return kerr.UnknownTopicOrPartition, "No such partition as " + partitionName(t.Name, id)
			}
		}
		if len(p.Replicas) > 0 && p.Leader == p.Replicas[0] {
			return kerr.ElectionNotNeeded, fmt.Sprintf("Broker %d, the preferred replica of %s, leads it already.", p.Leader, partitionName(t.Name, id))
		}
		leader := electPreferred(p, ok)
		rec := slab.change(topicID, id, p, nil, leader)
		if rec == nil {
			return kerr.PreferredLeaderNotAvailable, preferredUnavailable(img, t.Name, id, p)
		}
		records = append(records, rec)
		next := *p
		next.Leader, next.LeaderEpoch, next.Epoch = leader, p.LeaderEpoch+1, p.Epoch+1
		decided[ref] = &next
		return nil, ""
	}
	result := func(id int32, code *kerr.Error, msg string) kmsg.ElectLeadersResponseTopicPartition {
		po := kmsg.NewElectLeadersResponseTopicPartition()
		po.Partition = id
		if code != nil {
			po.ErrorCode, po.ErrorMessage = code.Code, &msg
		}
		return po
	}
	if req.Topics == nil {
		for _, t := range img.Topics() {
			out := kmsg.NewElectLeadersResponseTopic()
			out.Topic = t.Name
			topicID := slices.Clone(t.ID[:])
			for id := range t.Partitions {
				if code, msg := elect(t, topicID, id); code != kerr.ElectionNotNeeded {
					out.Partitions = append(out.Partitions, result(id, code, msg))
				}
			}
			if len(out.Partitions) > 0 {
				resp.Topics = append(resp.Topics, out)
			}
		}
		return records, resp
	}
	for _, rt := range req.Topics {
		out := kmsg.NewElectLeadersResponseTopic()
		out.Topic = rt.Topic
		t, found := img.TopicByName(rt.Topic)
		var topicID []byte
		if found {
			topicID = slices.Clone(t.ID[:])
		}
		for _, id := range rt.Partitions {
			if !found {
				out.Partitions = append(out.Partitions, result(id, kerr.UnknownTopicOrPartition, "No such topic as "+rt.Topic))
				continue
			}
			code, msg := elect(t, topicID, id)
			out.Partitions = append(out.Partitions, result(id, code, msg))
		}
		resp.Topics = append(resp.Topics, out)
	}
	return records, resp
}

// preferredUnavailable says why a partition's preferred replica cannot lead it.
func preferredUnavailable(img *metadatalog.Image, topic string, id int32, p *metadatalog.Partition) string {
	if len(p.Replicas) == 0 {
		return fmt.Sprintf("%s has no replicas.", partitionName(topic, id))
	}
	pref := p.Replicas[0]
	why := "cannot lead"
	switch b, ok := img.Broker(pref); {
	case !slices.Contains(p.ISR, pref):
		why = fmt.Sprintf("is not in its ISR %v", p.ISR)
	case !ok:
		why = "is not registered"
	case b.Fenced:
		why = "is fenced"
	case b.InControlledShutdown:
		why = "is in controlled shutdown"
	}
	return fmt.Sprintf("The preferred leader was not available: broker %d, the preferred replica of %s, %s.", pref, partitionName(topic, id), why)
}

// partitionRef names a partition in a map.
type partitionRef struct {
	topic     [16]byte
	partition int32
}
