package broker

// Metadata (key 3), versions 0–13, answered from this broker's image:
//   - v0: an empty topic list means every topic; replicas and ISR list only live brokers, and a
//     partition missing some answers REPLICA_NOT_AVAILABLE (v1+ list every replica).
//   - v1: null topics means every topic and empty means none; ControllerID, IsInternal, Rack.
//   - v2: ClusterID. v3: ThrottleMillis. v4: AllowAutoTopicCreation, which we never do: a topic that
//     does not exist answers UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an illegal name).
//   - v5: OfflineReplicas: replicas on brokers that are fenced, unregistered, or without this listener.
//   - v6: a leader that is live but lacks this listener answers LISTENER_NOT_FOUND, not
//     LEADER_NOT_AVAILABLE.
//   - v7: LeaderEpoch. v8: authorized operations (no ACLs yet: left "not provided"). v9: flexible.
//   - v10: topic ids; a topic asked for by id alone answers UNKNOWN_TOPIC_ID when absent.
//   - v13: a top-level ErrorCode (KIP-1102), always 0 here.
//
// Brokers lists only unfenced brokers, with their endpoint on the listener the client came in on, and
// ControllerID is the active controller as this broker last saw it (-1 when unknown).

import (
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const metadataMaxVersion = 13

func metadataResponse(v view, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, ep := range liveEndpoints(v.img, v.listener) {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = ep.id, ep.host, ep.port, ep.rack
		resp.Brokers = append(resp.Brokers, b)
	}
	clusterID := v.clusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = v.controllerID

	// kmsg decodes a v0 request's list as non-nil even when empty; v0 had no null, and empty meant all.
	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, t := range v.img.Topics() {
			resp.Topics = append(resp.Topics, topicMetadata(v, t, req.Version))
		}
		return resp
	}
	seen := map[string]bool{}
	seenIDs := map[[16]byte]bool{}
	for _, rt := range req.Topics {
		switch {
		case rt.Topic != nil:
			name := *rt.Topic
			if seen[name] {
				continue
			}
			seen[name] = true
			if t, ok := v.img.TopicByName(name); ok {
				resp.Topics = append(resp.Topics, topicMetadata(v, t, req.Version))
				continue
			}
			code := kerr.UnknownTopicOrPartition.Code
			if !validTopicName(name) {
				code = kerr.InvalidTopicException.Code
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.ErrorCode, mt.IsInternal = &name, code, isInternalTopic(name)
			resp.Topics = append(resp.Topics, mt)
		case rt.TopicID != [16]byte{}:
			if seenIDs[rt.TopicID] {
				continue
			}
			seenIDs[rt.TopicID] = true
			if t, ok := v.img.TopicByID(rt.TopicID); ok {
				if !seen[t.Name] {
					seen[t.Name] = true
					resp.Topics = append(resp.Topics, topicMetadata(v, t, req.Version))
				}
				continue
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, mt)
		}
		// Neither a name nor an id asks for nothing.
	}
	return resp
}

func topicMetadata(v view, t *metadatalog.Topic, version int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID, mt.IsInternal = &name, t.ID, isInternalTopic(name)
	// Partition ids are dense, 0..n-1: partitions are only ever added at the end.
	for id := int32(0); id < t.Partitions; id++ {
		if p, ok := v.img.Partition(t.ID, id); ok {
			mt.Partitions = append(mt.Partitions, partitionMetadata(v, id, p, version))
		}
	}
	return mt
}

func partitionMetadata(v view, id int32, p *metadatalog.Partition, version int16) kmsg.MetadataResponseTopicPartition {
	mp := kmsg.NewMetadataResponseTopicPartition()
	mp.Partition, mp.LeaderEpoch = id, p.LeaderEpoch
	mp.Replicas, mp.ISR = p.Replicas, p.ISR

	live := func(id int32) bool {
		b, _ := v.img.Broker(id)
		_, ok := brokerEndpoint(b, v.listener)
		return ok
	}
	for _, r := range p.Replicas {
		if !live(r) {
			mp.OfflineReplicas = append(mp.OfflineReplicas, r)
		}
	}

	// A leader clients cannot reach is no leader to them: Brokers lists only unfenced brokers on this
	// listener, so a leader outside that list would send clients looking for a node they were not told
	// about.
	leader, registered := v.img.Broker(p.Leader)
	switch _, onListener := brokerEndpoint(leader, v.listener); {
	case p.Leader < 0 || !registered || leader.Fenced:
		mp.Leader, mp.ErrorCode = -1, kerr.LeaderNotAvailable.Code
	case !onListener && version >= 6:
		mp.Leader, mp.ErrorCode = -1, kerr.ListenerNotFound.Code
	case !onListener:
		mp.Leader, mp.ErrorCode = -1, kerr.LeaderNotAvailable.Code
	default:
		mp.Leader = p.Leader
	}

	if version == 0 {
		// v0 clients were told only about live replicas, and an error if any was missing.
		mp.Replicas, mp.ISR = filter(p.Replicas, live), filter(p.ISR, live)
		if mp.ErrorCode == 0 && (len(mp.Replicas) < len(p.Replicas) || len(mp.ISR) < len(p.ISR)) {
			mp.ErrorCode = kerr.ReplicaNotAvailable.Code
		}
	}
	return mp
}

func filter(ids []int32, keep func(int32) bool) []int32 {
	out := make([]int32, 0, len(ids))
	for _, id := range ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// isInternalTopic names the topics Kafka marks internal.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// validTopicName is Kafka's rule: 1–249 of [a-zA-Z0-9._-], and not "." or "..".
func validTopicName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
