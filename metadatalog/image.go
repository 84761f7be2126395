package metadatalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
	"github.com/kraftgo/kraft/api/metadatapb"
)

// MetadataVersionFeature is the feature whose level gates what the log may contain.
const MetadataVersionFeature = "metadata.version"

// Broker is one registered broker as the image holds it.
type Broker struct {
	ID                   int32
	Epoch                int64
	IncarnationID        []byte
	Endpoints            []*metadatapb.Endpoint
	Features             []*metadatapb.FeatureRange
	Rack                 string
	Fenced               bool
	InControlledShutdown bool
}

// Topic is one topic and, unexported, its partitions.
type Topic struct {
	ID         [16]byte
	Name       string
	Partitions int32

	parts partitionTrie // by partition id (partition_trie.go)
	// seq numbers topics in the order the image took their TopicRecords; the partition index is
	// ordered by it (partition_index.go).
	seq uint64
	// owner is the Apply that made this copy; only it may change the copy in place.
	owner *txnOwner
}

// Partition is one partition's assignment and leadership. It is kept small because a cluster holds a
// million of them: plain int32 slices, no protobuf bookkeeping.
type Partition struct {
	Replicas, ISR, Removing, Adding []int32
	Leader, LeaderEpoch, Epoch      int32
}

// Image is the metadata state after one offset. It never changes: Apply returns a new image that shares
// everything it did not touch, so readers need no locks and a speculative image reverts by dropping it.
type Image struct {
	// Offset and Epoch of the last entry applied.
	Offset uint64
	Epoch  uint64

	features     map[string]int16 // tiny; copied on write
	brokers      *iradix.Tree[*Broker]
	topicsByID   *iradix.Tree[*Topic]
	topicsByName *iradix.Tree[[16]byte]
	partitions   int                  // how many, over all topics (each Topic holds its own)
	topicSeq     uint64               // the last Topic.seq handed out
	configs      *iradix.Tree[string] // key: resource type ‖ resource name ‖ 0 ‖ config name
	index        partitionIndex       // who is in which ISR and who leads what (partition_index.go)
	acls         *iradix.Tree[*ACL]   // by id (acls.go)
	aclCount     int
	quotas       *iradix.Tree[float64] // by entity ‖ quota key (quotas.go)
	quotaCount   int
}

// EmptyImage is the state before the first offset.
func EmptyImage() *Image {
	return &Image{
		features:     map[string]int16{},
		brokers:      iradix.New[*Broker](),
		topicsByID:   iradix.New[*Topic](),
		topicsByName: iradix.New[[16]byte](),
		configs:      iradix.New[string](),
		acls:         iradix.New[*ACL](),
		quotas:       iradix.New[float64](),
	}
}

func brokerKey(id int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

func configKey(t metadatapb.ConfigResourceType, resource, name string) []byte {
	k := make([]byte, 0, 2+len(resource)+len(name))
	k = append(k, byte(t))
	k = append(k, resource...)
	k = append(k, 0)
	return append(k, name...)
}

// FeatureLevel returns a finalized feature's level (0 when not finalized).
func (img *Image) FeatureLevel(name string) int16 { return img.features[name] }

// MetadataVersion is the finalized metadata.version level, 0 before bootstrap.
func (img *Image) MetadataVersion() int16 { return img.features[MetadataVersionFeature] }

// Features returns a copy of the finalized features.
func (img *Image) Features() map[string]int16 { return maps.Clone(img.features) }

// Broker returns a registered broker.
func (img *Image) Broker(id int32) (*Broker, bool) { return img.brokers.Get(brokerKey(id)) }

// SameBrokers reports whether no broker record was applied between other and img, so that their
// registered brokers are the same; a caller that reacts to broker changes can skip the rest. It may
// answer false for brokers that are in fact equal.
func (img *Image) SameBrokers(other *Image) bool { return img.brokers == other.brokers }

// Brokers returns every registered broker, by id.
func (img *Image) Brokers() []*Broker {
	out := make([]*Broker, 0, img.brokers.Len())
	img.brokers.Root().Walk(func(_ []byte, b *Broker) bool { out = append(out, b); return false })
	return out
}

// TopicByName finds a topic by name.
func (img *Image) TopicByName(name string) (*Topic, bool) {
	id, ok := img.topicsByName.Get([]byte(name))
	if !ok {
		return nil, false
	}
	return img.topicsByID.Get(id[:])
}

// TopicByID finds a topic by id.
func (img *Image) TopicByID(id [16]byte) (*Topic, bool) { return img.topicsByID.Get(id[:]) }

// Topics returns every topic, ordered by name.
func (img *Image) Topics() []*Topic {
	out := make([]*Topic, 0, img.topicsByName.Len())
	img.topicsByName.Root().Walk(func(_ []byte, id [16]byte) bool {
		t, _ := img.topicsByID.Get(id[:])
		out = append(out, t)
		return false
	})
	return out
}

// Partition returns one partition of a topic.
func (img *Image) Partition(topic [16]byte, p int32) (*Partition, bool) {
	t, ok := img.topicsByID.Get(topic[:])
	if !ok {
		return nil, false
	}
	part := t.parts.get(p)
	return part, part != nil
}

// PartitionCount is the number of partitions in the cluster.
func (img *Image) PartitionCount() int { return img.partitions }

// Config returns one config value of a resource.
func (img *Image) Config(t metadatapb.ConfigResourceType, resource, name string) (string, bool) {
	return img.configs.Get(configKey(t, resource, name))
}

// ConfigEntry is one config set on a resource.
type ConfigEntry struct{ Name, Value string }

// Configs returns the configs set on one resource, ordered by name. Cluster-wide broker defaults are
// the BROKER resource named "".
// ConfigResources lists, in key order, the resources of type t that hold at least one config.
func (img *Image) ConfigResources(t metadatapb.ConfigResourceType) []string {
	var out []string
	img.configs.Root().WalkPrefix([]byte{byte(t)}, func(k []byte, _ string) bool {
		name := string(k[1 : 1+bytes.IndexByte(k[1:], 0)])
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
		return false
	})
	return out
}

func (img *Image) Configs(t metadatapb.ConfigResourceType, resource string) []ConfigEntry {
	prefix := configKey(t, resource, "")
	var out []ConfigEntry
	img.configs.Root().WalkPrefix(prefix, func(k []byte, v string) bool {
		out = append(out, ConfigEntry{Name: string(k[len(prefix):]), Value: v})
		return false
	})
	return out
}

// ApplyError is an impossible record: one the log's own history says cannot happen. A node that meets
// one must stop rather than serve an image it cannot vouch for.
type ApplyError struct {
	Offset uint64
	Index  int
	Reason string
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("impossible record %d of the batch at offset %d: %s", e.Index, e.Offset, e.Reason)
}

// Apply returns the image after batch, written at offset in epoch. It costs O(records × log n).
func (img *Image) Apply(offset, epoch uint64, batch *metadatapb.RecordBatch) (*Image, error) {
	d := newDelta(img)
	if batch != nil {
		for i, r := range batch.GetRecords() {
			if reason := d.apply(r); reason != "" {
				return nil, &ApplyError{Offset: offset, Index: i, Reason: reason}
			}
		}
	}
	return d.commit(offset, epoch), nil
}

// delta accumulates one batch's changes in transactions over the base image's trees. Topics it copies
// (and their partition tries) carry its owner and are changed in place for the rest of the batch.
type delta struct {
	base         *Image
	owner        *txnOwner
	features     map[string]int16
	brokers      *iradix.Txn[*Broker]
	topicsByID   *iradix.Txn[*Topic]
	topicsByName *iradix.Txn[[16]byte]
	partitions   int
	topicSeq     uint64
	configs      *iradix.Txn[string]
	index        *partitionIndexTxn
	acls         *iradix.Txn[*ACL]
	aclCount     int
	quotas       *iradix.Txn[float64]
	quotaCount   int
	// last is the topic the previous partition record went to: a batch writes one topic's partitions
	// together, so this saves a lookup per record.
	last *Topic
}

func newDelta(base *Image) *delta {
	return &delta{base: base, owner: &txnOwner{}, features: base.features, partitions: base.partitions, topicSeq: base.topicSeq,
		aclCount: base.aclCount, quotaCount: base.quotaCount}
}

// Transactions are opened lazily: most batches touch one or two trees, and an unused Txn still costs.
func (d *delta) brokerTxn() *iradix.Txn[*Broker] {
	if d.brokers == nil {
		d.brokers = d.base.brokers.Txn()
	}
	return d.brokers
}

func (d *delta) topicTxns() (*iradix.Txn[*Topic], *iradix.Txn[[16]byte]) {
	if d.topicsByID == nil {
		d.topicsByID, d.topicsByName = d.base.topicsByID.Txn(), d.base.topicsByName.Txn()
	}
	return d.topicsByID, d.topicsByName
}

func (d *delta) configTxn() *iradix.Txn[string] {
	if d.configs == nil {
		d.configs = d.base.configs.Txn()
	}
	return d.configs
}

// writableTopic returns the topic as this batch has it so far, as a copy that the batch owns and may
// change in place.
func (d *delta) writableTopic(id [16]byte) (*Topic, bool) {
	if d.last != nil && d.last.ID == id {
		return d.last, true
	}
	byID, _ := d.topicTxns()
	t, ok := byID.Get(id[:])
	if !ok {
		return nil, false
	}
	if t.owner != d.owner {
		c := *t
		c.owner = d.owner
		t = &c
		byID.Insert(id[:], t)
	}
	d.last = t
	return t, true
}

func (d *delta) commit(offset, epoch uint64) *Image {
	img := *d.base
	img.Offset, img.Epoch, img.features, img.partitions, img.topicSeq = offset, epoch, d.features, d.partitions, d.topicSeq
	img.aclCount, img.quotaCount = d.aclCount, d.quotaCount
	if d.acls != nil {
		img.acls = d.acls.CommitOnly()
	}
	if d.quotas != nil {
		img.quotas = d.quotas.CommitOnly()
	}
	if d.brokers != nil {
		img.brokers = d.brokers.CommitOnly()
	}
	if d.topicsByID != nil {
		img.topicsByID, img.topicsByName = d.topicsByID.CommitOnly(), d.topicsByName.CommitOnly()
	}
	if d.configs != nil {
		img.configs = d.configs.CommitOnly()
	}
	if d.index != nil {
		img.index = d.index.commit()
	}
	return &img
}

func topicID(b []byte) ([16]byte, bool) {
	var id [16]byte
	if len(b) != 16 {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

func applyBool(cur bool, c metadatapb.BoolChange) bool {
	switch c {
	case metadatapb.BoolChange_BOOL_CHANGE_TRUE:
		return true
	case metadatapb.BoolChange_BOOL_CHANGE_FALSE:
		return false
	}
	return cur
}

// apply folds one record into the delta and returns why it is impossible, or "".
func (d *delta) apply(r *metadatapb.Record) string {
	if need := RecordMinLevel(r); need > 1 && d.features[MetadataVersionFeature] < need {
		v, _ := MetadataVersionByLevel(need)
		return fmt.Sprintf("a %s at metadata.version %d; it needs %d (%s)", RecordTypeName(r), d.features[MetadataVersionFeature], need, v.Name)
	}
	switch rec := r.GetRecord().(type) {
	case *metadatapb.Record_FeatureLevel:
		f := rec.FeatureLevel
		next := maps.Clone(d.features)
		if f.GetFeatureLevel() == 0 {
			delete(next, f.GetName())
		} else {
			next[f.GetName()] = int16(f.GetFeatureLevel())
		}
		d.features = next
		if f.GetName() == MetadataVersionFeature {
			// A lower level must not be left holding what it cannot represent: an unsafe downgrade
			// removes it, in the same batch, before it sets the level.
			if lvl := next[MetadataVersionFeature]; lvl < ACLsLevel && d.aclCount > 0 {
				return fmt.Sprintf("metadata.version set to %d while %d ACLs remain", lvl, d.aclCount)
			} else if lvl < QuotasLevel && d.quotaCount > 0 {
				return fmt.Sprintf("metadata.version set to %d while %d client quotas remain", lvl, d.quotaCount)
			}
		}
	case *metadatapb.Record_RegisterBroker:
		b := rec.RegisterBroker
		d.brokerTxn().Insert(brokerKey(b.GetBrokerId()), &Broker{
			ID: b.GetBrokerId(), Epoch: b.GetBrokerEpoch(), IncarnationID: b.GetIncarnationId(),
			Endpoints: b.GetEndpoints(), Features: b.GetFeatures(), Rack: b.GetRack(),
			Fenced: b.GetFenced(), InControlledShutdown: b.GetInControlledShutdown(),
		})
	case *metadatapb.Record_BrokerRegistrationChange:
		c := rec.BrokerRegistrationChange
		txn := d.brokerTxn()
		cur, ok := txn.Get(brokerKey(c.GetBrokerId()))
		if !ok {
			return fmt.Sprintf("registration change for unregistered broker %d", c.GetBrokerId())
		}
		if cur.Epoch != c.GetBrokerEpoch() {
			return fmt.Sprintf("registration change for broker %d epoch %d, but it is registered at epoch %d", c.GetBrokerId(), c.GetBrokerEpoch(), cur.Epoch)
		}
		next := *cur
		next.Fenced = applyBool(cur.Fenced, c.GetFenced())
		next.InControlledShutdown = applyBool(cur.InControlledShutdown, c.GetInControlledShutdown())
		txn.Insert(brokerKey(c.GetBrokerId()), &next)
	case *metadatapb.Record_UnregisterBroker:
		u := rec.UnregisterBroker
		txn := d.brokerTxn()
		cur, ok := txn.Get(brokerKey(u.GetBrokerId()))
		if !ok || cur.Epoch != u.GetBrokerEpoch() {
			return fmt.Sprintf("unregister of broker %d epoch %d, which is not registered at that epoch", u.GetBrokerId(), u.GetBrokerEpoch())
		}
		txn.Delete(brokerKey(u.GetBrokerId()))
	case *metadatapb.Record_Topic:
		t := rec.Topic
		id, ok := topicID(t.GetTopicId())
		if !ok {
			return fmt.Sprintf("topic %q has a %d-byte id, want 16", t.GetName(), len(t.GetTopicId()))
		}
		byID, byName := d.topicTxns()
		if _, dup := byName.Get([]byte(t.GetName())); dup {
			return fmt.Sprintf("topic %q created twice", t.GetName())
		}
		if other, dup := byID.Get(id[:]); dup {
			return fmt.Sprintf("topic %q reuses the id of topic %q", t.GetName(), other.Name)
		}
		d.topicSeq++
		topic := &Topic{ID: id, Name: t.GetName(), owner: d.owner, seq: d.topicSeq}
		byID.Insert(id[:], topic)
		byName.Insert([]byte(t.GetName()), id)
		d.last = topic
	case *metadatapb.Record_Partition:
		p := rec.Partition
		id, ok := topicID(p.GetTopicId())
		var topic *Topic
		if ok {
			topic, ok = d.writableTopic(id)
		}
		if !ok {
			return fmt.Sprintf("partition %d of unknown topic %x", p.GetPartitionId(), p.GetTopicId())
		}
		pid := p.GetPartitionId()
		if pid < 0 {
			return fmt.Sprintf("partition %d of topic %q: partition ids are never negative", pid, topic.Name)
		}
		part := &Partition{
			Replicas: p.GetReplicas(), ISR: p.GetIsr(), Removing: p.GetRemovingReplicas(), Adding: p.GetAddingReplicas(),
			Leader: p.GetLeader(), LeaderEpoch: p.GetLeaderEpoch(), Epoch: p.GetPartitionEpoch(),
		}
		old := topic.parts.get(pid)
		topic.parts = topic.parts.set(pid, part, d.owner)
		if old == nil {
			topic.Partitions++
			d.partitions++
		}
		d.reindex(topic, pid, old, part)
	case *metadatapb.Record_PartitionChange:
		c := rec.PartitionChange
		id, ok := topicID(c.GetTopicId())
		var topic *Topic
		var cur *Partition
		if ok {
			topic, ok = d.writableTopic(id)
		}
		if ok {
			cur = topic.parts.get(c.GetPartitionId())
		}
		if cur == nil {
			return fmt.Sprintf("change to unknown partition %d of topic %x", c.GetPartitionId(), c.GetTopicId())
		}
		next := *cur
		next.Epoch++
		if c.Leader != nil && c.GetLeader() != cur.Leader {
			next.Leader = c.GetLeader()
			next.LeaderEpoch++
		}
		if c.Isr != nil {
			next.ISR = c.GetIsr().GetValues()
		}
		if c.Replicas != nil {
			next.Replicas = c.GetReplicas().GetValues()
		}
		if c.RemovingReplicas != nil {
			next.Removing = c.GetRemovingReplicas().GetValues()
		}
		if c.AddingReplicas != nil {
			next.Adding = c.GetAddingReplicas().GetValues()
		}
		topic.parts = topic.parts.set(c.GetPartitionId(), &next, d.owner)
		d.reindex(topic, c.GetPartitionId(), cur, &next)
	case *metadatapb.Record_RemoveTopic:
		id, ok := topicID(rec.RemoveTopic.GetTopicId())
		byID, byName := d.topicTxns()
		var topic *Topic
		if ok {
			topic, ok = byID.Get(id[:])
		}
		if !ok {
			return fmt.Sprintf("removal of unknown topic %x", rec.RemoveTopic.GetTopicId())
		}
		byID.Delete(id[:])
		byName.Delete([]byte(topic.Name))
		if d.last != nil && d.last.ID == id {
			d.last = nil
		}
		d.unindexTopic(topic)
		d.partitions -= int(topic.Partitions)
		d.configTxn().DeletePrefix(configKey(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, topic.Name, ""))
	case *metadatapb.Record_Config:
		c := rec.Config
		key := configKey(c.GetResourceType(), c.GetResourceName(), c.GetName())
		if c.Value == nil {
			d.configTxn().Delete(key)
		} else {
			d.configTxn().Insert(key, c.GetValue())
		}
	case *metadatapb.Record_AccessControlEntry:
		return d.addACL(rec.AccessControlEntry)
	case *metadatapb.Record_RemoveAccessControlEntry:
		return d.removeACL(rec.RemoveAccessControlEntry)
	case *metadatapb.Record_ClientQuota:
		return d.applyQuota(rec.ClientQuota)
	case *metadatapb.Record_NoOp:
	default:
		return fmt.Sprintf("unknown record type %T", r.GetRecord())
	}
	return ""
}

// Records renders the image as the records that rebuild it, in a fixed order: features, brokers,
// topics each followed by its partitions, configs, ACLs, then client quotas. Two images are equal exactly when their
// records are.
func (img *Image) Records() []*metadatapb.Record {
	var out []*metadatapb.Record
	for _, name := range slices.Sorted(maps.Keys(img.features)) {
		out = append(out, &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{Name: name, FeatureLevel: int32(img.features[name])}}})
	}
	for _, b := range img.Brokers() {
		out = append(out, &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: &metadatapb.RegisterBrokerRecord{
			BrokerId: b.ID, BrokerEpoch: b.Epoch, IncarnationId: b.IncarnationID, Endpoints: b.Endpoints,
			Features: b.Features, Rack: b.Rack, Fenced: b.Fenced, InControlledShutdown: b.InControlledShutdown,
		}}})
	}
	img.topicsByID.Root().Walk(func(_ []byte, t *Topic) bool {
		out = append(out, &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: t.Name, TopicId: t.ID[:]}}})
		t.parts.each(func(id int32, p *Partition) bool {
			out = append(out, &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{
				TopicId: t.ID[:], PartitionId: id,
				Replicas: p.Replicas, Isr: p.ISR, RemovingReplicas: p.Removing, AddingReplicas: p.Adding,
				Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.Epoch,
			}}})
			return true
		})
		return false
	})
	img.configs.Root().Walk(func(k []byte, v string) bool {
		sep := slices.Index(k[1:], 0) + 1
		val := v
		out = append(out, &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
			ResourceType: metadatapb.ConfigResourceType(k[0]), ResourceName: string(k[1:sep]), Name: string(k[sep+1:]), Value: &val,
		}}})
		return false
	})
	img.acls.Root().Walk(func(_ []byte, a *ACL) bool {
		out = append(out, a.record())
		return false
	})
	for _, q := range img.ClientQuotas() {
		for _, key := range slices.Sorted(maps.Keys(q.Values)) {
			out = append(out, QuotaRecord(q.Entity, key, q.Values[key], false))
		}
	}
	return out
}
