package controller

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicControl is the topic manager, the topic half of Kafka's ReplicationControlManager: it creates
// topics, deletes them and adds partitions. It is pure: (image, request, a random source) in, (records,
// per-topic answers) out, with Kafka's validation, error codes and, where Kafka has one, its message.
// The random source supplies topic ids and the placement seed, so a test that fixes it fixes the output.
//
// A request is one batch: every topic that passes goes into it, every topic that fails is answered
// with its error and writes nothing, whatever its position in the request.
type topicControl struct {
	// maxPartitionsPerRequest bounds the partitions one request may create, and so the size of one
	// batch (Kafka bounds a batch at 10,000 records and refuses the rest of the request).
	maxPartitionsPerRequest int
}

const (
	// DefaultMaxPartitionsPerRequest is Config.MaxPartitionsPerRequest when it is zero.
	DefaultMaxPartitionsPerRequest = 100_000
	// maxPartitionsPerRequestSetting is the configuration key that sets Config.MaxPartitionsPerRequest;
	// answers name it.
	maxPartitionsPerRequestSetting = "max.partitions.per.request"

	// Kafka's num.partitions and default.replication.factor: what -1 asks for.
	defaultNumPartitions     = 1
	defaultReplicationFactor = 1

	maxTopicNameLength   = 249
	clusterMetadataTopic = "__cluster_metadata"
	// collisionVariantsMax bounds the names tried when looking for a topic that differs from a new one
	// only in '.' versus '_'; a name with more such characters than this is checked by a full scan.
	collisionVariantsMax = 10
)

func newTopicControl(maxPartitionsPerRequest int) topicControl {
	if maxPartitionsPerRequest <= 0 {
		maxPartitionsPerRequest = DefaultMaxPartitionsPerRequest
	}
	return topicControl{maxPartitionsPerRequest: maxPartitionsPerRequest}
}

// topicOutcome is the answer for one topic of a request.
type topicOutcome struct {
	name string
	id   [16]byte
	code *kerr.Error
	msg  string
	// Set when a topic is (or, for validateOnly, would be) created.
	numPartitions     int32
	replicationFactor int16
	// configs is every known config of a new topic as CreateTopics v5+ answers it: its own settings
	// and, for the rest, the value it inherits, with the source of each.
	configs []metadatalog.ConfigSynonym
}

func (o *topicOutcome) fail(code *kerr.Error, format string, args ...any) {
	o.code, o.msg = code, fmt.Sprintf(format, args...)
}

// newTopic is one topic of a CreateTopics request.
type newTopic struct {
	name              string
	numPartitions     int32 // -1: the default, or an explicit assignment
	replicationFactor int16 // -1: the default, or an explicit assignment
	assignments       []newAssignment
	configs           []requestedConfig
}

type newAssignment struct {
	partition int32
	replicas  []int32
}

type requestedConfig struct {
	name  string
	value *string
}

// createTopics decides a CreateTopics request, topic by topic in request order.
func (tc topicControl) createTopics(img *metadatalog.Image, topics []newTopic, rng *rand.Rand) ([]*metadatapb.Record, []topicOutcome) {
	out := make([]topicOutcome, len(topics))
	times := make(map[string]int, len(topics))
	for _, t := range topics {
		times[t.name]++
	}
	pl := newPlacer(img, rng.Uint64())
	budget := tc.maxPartitionsPerRequest
	var records []*metadatapb.Record
	var createdIDs map[[16]byte]bool
	unified := map[string]string{} // '.'→'_' form of a name created by this request → that name
	for i, t := range topics {
		o := &out[i]
		o.name, o.numPartitions, o.replicationFactor = t.name, -1, -1
		switch {
		case times[t.name] > 1:
			// Kafka answers every copy, so that no copy is created by accident of order.
			o.fail(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		case t.name == clusterMetadataTopic:
			o.fail(kerr.InvalidRequest, "Creation of internal topic %s is prohibited.", clusterMetadataTopic)
			continue
		}
		if reason := invalidTopicName(t.name); reason != "" {
			o.fail(kerr.InvalidTopicException, "Topic name is invalid: %s", reason)
			continue
		}
		if _, exists := img.TopicByName(t.name); exists {
			o.fail(kerr.TopicAlreadyExists, "Topic '%s' already exists.", t.name)
			continue
		}
		if other, ok := collidingTopic(img, t.name); ok {
			o.fail(kerr.InvalidTopicException, "Topic '%s' collides with existing topic: %s", t.name, other)
			continue
		}
		if other, ok := unified[unifyCollisionChars(t.name)]; ok {
			// Kafka lets both through when they come in one request; their metrics would still clash.
			o.fail(kerr.InvalidTopicException, "Topic '%s' collides with topic %s, created earlier in this request.", t.name, other)
			continue
		}
		configs, code, msg := validateTopicConfigs(t.configs)
		if code != nil {
			o.code, o.msg = code, msg
			continue
		}

		var fill func(p int, replicas []int32)
		var n, rf int
		if len(t.assignments) > 0 {
			lists, code, msg := explicitAssignments(img, t, pl)
			if code != nil {
				o.code, o.msg = code, msg
				continue
			}
			n, rf = len(lists), len(lists[0])
			fill = func(p int, replicas []int32) { copy(replicas, lists[p]) }
		} else {
			switch {
			case t.replicationFactor < -1 || t.replicationFactor == 0:
				o.fail(kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value.")
				continue
			case t.numPartitions < -1 || t.numPartitions == 0:
				o.fail(kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
				continue
			}
			n, rf = int(t.numPartitions), int(t.replicationFactor)
			if n == -1 {
				n = defaultNumPartitions
			}
			if rf == -1 {
				rf = defaultReplicationFactor
			}
			if reason := pl.check(rf); reason != "" {
				o.fail(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): %s", rf, reason)
				continue
			}
			fill = func(_ int, replicas []int32) { pl.place(replicas) }
		}
		if n > budget {
			o.code, o.msg = kerr.PolicyViolation, tc.overBudget(fmt.Sprintf("Topic '%s'", t.name), n, budget)
			continue
		}
		budget -= n

		id := newTopicID(img, rng, createdIDs)
		if createdIDs == nil {
			createdIDs = map[[16]byte]bool{}
		}
		createdIDs[id] = true
		if hasCollisionChars(t.name) {
			unified[unifyCollisionChars(t.name)] = t.name
		}
		o.id, o.numPartitions, o.replicationFactor, o.configs = id, int32(n), int16(rf), newTopicConfigs(img, t.name, configs)
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: t.name, TopicId: id[:]}}})
		// Configs before partitions, as Kafka writes them, so a partition never exists without its
		// topic's settings.
		for _, c := range configs {
			records = append(records, configRecord(t.name, c))
		}
		records = appendPartitionRecords(records, id[:], 0, n, rf, fill, pl.isActive)
	}
	return records, out
}

// explicitAssignments validates a manual assignment as Kafka's ReplicationControlManager does and returns
// the replica lists by partition id.
func explicitAssignments(img *metadatalog.Image, t newTopic, pl *placer) ([][]int32, *kerr.Error, string) {
	if t.replicationFactor != -1 {
		return nil, kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1."
	}
	if t.numPartitions != -1 {
		return nil, kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1."
	}
	lists := make([][]int32, len(t.assignments))
	rf := -1
	for _, a := range t.assignments {
		if a.partition < 0 || int(a.partition) >= len(lists) {
			return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf(
				"partitions should be a consecutive 0-based integer sequence: %d assignment(s) were given, so partition ids run from 0 to %d, not %d.",
				len(lists), len(lists)-1, a.partition)
		}
		if lists[a.partition] != nil {
			return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("Found multiple manual partition assignments for partition %d", a.partition)
		}
		if code, msg := checkManualReplicas(img, a.replicas, rf); code != nil {
			return nil, code, msg
		}
		if !slices.ContainsFunc(a.replicas, pl.isActive) {
			return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf(
				"All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", a.partition)
		}
		rf = len(a.replicas)
		lists[a.partition] = a.replicas
	}
	return lists, nil, ""
}

// checkManualReplicas is Kafka's validateManualPartitionAssignment: a non-empty list of registered,
// distinct brokers, as long as the partitions before it (rf < 0: no constraint).
func checkManualReplicas(img *metadatalog.Image, replicas []int32, rf int) (*kerr.Error, string) {
	if len(replicas) == 0 {
		return kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."
	}
	sorted := slices.Sorted(slices.Values(replicas))
	for i, b := range sorted {
		if _, ok := img.Broker(b); !ok {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", b)
		}
		if i > 0 && sorted[i-1] == b {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", b)
		}
	}
	if rf >= 0 && len(replicas) != rf {
		return kerr.InvalidReplicaAssignment, fmt.Sprintf(
			"The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have %d replica(s).",
			len(replicas), rf)
	}
	return nil, ""
}

func (tc topicControl) overBudget(what string, n, budget int) string {
	if n > tc.maxPartitionsPerRequest {
		return fmt.Sprintf("%s would add %d partitions, more than the %d one request may create (%s); create them over several requests.",
			what, n, tc.maxPartitionsPerRequest, maxPartitionsPerRequestSetting)
	}
	return fmt.Sprintf("%s would add %d partitions, but earlier topics of this request already add %d of the %d one request may create (%s); send it in another request.",
		what, n, tc.maxPartitionsPerRequest-budget, tc.maxPartitionsPerRequest, maxPartitionsPerRequestSetting)
}

// appendPartitionRecords appends PartitionRecords for partitions first … first+n-1 of a topic. fill
// writes a partition's replicas, leader first. The ISR is the replicas that are active (unfenced, not
// in controlled shutdown), as Kafka builds it, and the leader is the ISR's first: for a placed
// partition that is the first replica. The callers make sure every ISR is non-empty.
//
// A topic's records and replica lists are allocated in one piece each, since a million partitions
// otherwise cost several million small allocations.
func appendPartitionRecords(records []*metadatapb.Record, topicID []byte, first int32, n, rf int, fill func(p int, replicas []int32), active func(int32) bool) []*metadatapb.Record {
	recs := make([]metadatapb.Record, n)
	oneofs := make([]metadatapb.Record_Partition, n)
	parts := make([]metadatapb.PartitionRecord, n)
	lists := make([]int32, 2*n*rf)
	records = slices.Grow(records, n)
	for p := range n {
		replicas := lists[2*p*rf : 2*p*rf+rf : 2*p*rf+rf]
		fill(p, replicas)
		isr := lists[2*p*rf+rf : 2*p*rf+rf]
		for _, b := range replicas {
			if active(b) {
				isr = append(isr, b)
			}
		}
		isr = isr[:len(isr):len(isr)]
		pr := &parts[p]
		pr.PartitionId, pr.TopicId, pr.Replicas, pr.Isr, pr.Leader = first+int32(p), topicID, replicas, isr, isr[0]
		oneofs[p].Partition = pr
		recs[p].Record = &oneofs[p]
		records = append(records, &recs[p])
	}
	return records
}

// newTopicID draws a random topic id that no topic has, nor any created earlier in this request. Like
// Kafka it avoids the zero id, the id Kafka reserves for the metadata topic (0…01), and ids whose text
// form would start with '-', which a command line takes for a flag.
func newTopicID(img *metadatalog.Image, rng *rand.Rand, taken map[[16]byte]bool) [16]byte {
	for {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		if id == ([16]byte{}) || id == ([16]byte{15: 1}) || id[0]>>2 == 62 || taken[id] {
			continue
		}
		if _, exists := img.TopicByID(id); exists {
			continue
		}
		return id
	}
}

// topicIDString renders a topic id as Kafka does (URL-safe base64, no padding).
func topicIDString(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// invalidTopicName returns why Kafka's Topic.validate refuses a name, or "".
func invalidTopicName(name string) string {
	switch {
	case name == "":
		return "the empty string is not allowed"
	case name == ".":
		return "'.' is not allowed"
	case name == "..":
		return "'..' is not allowed"
	case utf8.RuneCountInString(name) > maxTopicNameLength:
		return fmt.Sprintf("the length of '%s' is longer than the max allowed length %d", name, maxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("'%s' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return ""
}

// Kafka's metric names turn '.' into '_', so two topics that differ only there would share metrics;
// Kafka refuses the second one.
func hasCollisionChars(name string) bool { return strings.ContainsAny(name, "._") }

func unifyCollisionChars(name string) string { return strings.ReplaceAll(name, ".", "_") }

// collidingTopic finds an existing topic, other than name itself, that collides with name. The image
// has no index by collision form, so it tries the variants of name directly (2^k lookups for k dots
// and underscores) and falls back to a scan of every topic only for names with very many of them.
func collidingTopic(img *metadatalog.Image, name string) (string, bool) {
	var at []int
	for i := 0; i < len(name); i++ {
		if name[i] == '.' || name[i] == '_' {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return "", false
	}
	if len(at) > collisionVariantsMax {
		want := unifyCollisionChars(name)
		for _, t := range img.Topics() {
			if t.Name != name && unifyCollisionChars(t.Name) == want {
				return t.Name, true
			}
		}
		return "", false
	}
	b := []byte(name)
	for mask := 0; mask < 1<<len(at); mask++ {
		for j, i := range at {
			b[i] = '_'
			if mask&(1<<j) != 0 {
				b[i] = '.'
			}
		}
		if v := string(b); v != name {
			if _, ok := img.TopicByName(v); ok {
				return v, true
			}
		}
	}
	return "", false
}

// topicRef is one topic of a DeleteTopics request: a name (v0+) or an id (v6+).
type topicRef struct {
	name *string
	id   [16]byte
}

// deleteTopics decides a DeleteTopics request. Answers are in request order and carry the name and id
// of each topic found. As in Kafka's ControllerApis, a topic named twice — by the same name, the same
// id, or by its name and its id — is refused in every mention, so no deletion depends on order.
func (tc topicControl) deleteTopics(img *metadatalog.Image, refs []topicRef) ([]*metadatapb.Record, []topicOutcome) {
	out := make([]topicOutcome, len(refs))
	names := map[string]int{}
	ids := map[[16]byte]int{}
	for _, r := range refs {
		switch {
		case r.name != nil && r.id == [16]byte{}:
			names[*r.name]++
		case r.name == nil && r.id != [16]byte{}:
			ids[r.id]++
		}
	}
	found := make([]*metadatalog.Topic, len(refs))
	mentions := map[[16]byte]int{} // topic id → mentions that resolved to it
	for i, r := range refs {
		o := &out[i]
		o.id = r.id
		if r.name != nil {
			o.name = *r.name
		}
		switch {
		case r.name == nil && r.id == [16]byte{}:
			o.fail(kerr.InvalidRequest, "Neither topic name nor id were specified.")
		case r.name != nil && r.id != [16]byte{}:
			o.fail(kerr.InvalidRequest, "You may not specify both topic name and topic id.")
		case r.name != nil && names[*r.name] > 1:
			o.fail(kerr.InvalidRequest, "Duplicate topic name.")
		case r.name == nil && ids[r.id] > 1:
			o.fail(kerr.InvalidRequest, "Duplicate topic id.")
		case r.name != nil:
			t, ok := img.TopicByName(*r.name)
			if !ok {
				o.fail(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", *r.name)
				continue
			}
			found[i] = t
			mentions[t.ID]++
		default:
			t, ok := img.TopicByID(r.id)
			if !ok {
				o.fail(kerr.UnknownTopicID, "No topic has id %s.", topicIDString(r.id))
				continue
			}
			found[i] = t
			mentions[t.ID]++
		}
	}
	var records []*metadatapb.Record
	for i, t := range found {
		if t == nil {
			continue
		}
		o := &out[i]
		if mentions[t.ID] > 1 {
			o.fail(kerr.InvalidRequest, "Topic '%s' (id %s) is named in this request both by name and by id.", t.Name, topicIDString(t.ID))
			continue
		}
		o.name, o.id = t.Name, t.ID
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_RemoveTopic{RemoveTopic: &metadatapb.RemoveTopicRecord{TopicId: slices.Clone(t.ID[:])}}})
	}
	return records, out
}

// partitionIncrease is one topic of a CreatePartitions request.
type partitionIncrease struct {
	name  string
	count int32
	// assignments, when not nil, gives the replicas of each new partition in order.
	assignments [][]int32
}

// createPartitions decides a CreatePartitions request, topic by topic in request order. New partitions
// get PartitionRecords; nothing else changes.
func (tc topicControl) createPartitions(img *metadatalog.Image, incs []partitionIncrease, rng *rand.Rand) ([]*metadatapb.Record, []topicOutcome) {
	out := make([]topicOutcome, len(incs))
	times := make(map[string]int, len(incs))
	for _, inc := range incs {
		times[inc.name]++
	}
	pl := newPlacer(img, rng.Uint64())
	budget := tc.maxPartitionsPerRequest
	var records []*metadatapb.Record
	for i, inc := range incs {
		o := &out[i]
		o.name = inc.name
		if times[inc.name] > 1 {
			o.fail(kerr.InvalidRequest, "Duplicate topic name.")
			continue
		}
		t, ok := img.TopicByName(inc.name)
		if !ok {
			o.fail(kerr.UnknownTopicOrPartition, "Topic '%s' does not exist.", inc.name)
			continue
		}
		cur := t.Partitions
		switch {
		case inc.count == cur:
			o.fail(kerr.InvalidPartitions, "Topic already has %d partition(s).", cur)
			continue
		case inc.count < cur:
			o.fail(kerr.InvalidPartitions, "The topic %s currently has %d partition(s); %d would not be an increase.", inc.name, cur, inc.count)
			continue
		}
		add := int(inc.count - cur)
		if inc.assignments != nil && len(inc.assignments) != add {
			o.fail(kerr.InvalidReplicaAssignment, "Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", add, len(inc.assignments))
			continue
		}
		p0, ok := img.Partition(t.ID, 0)
		if !ok {
			o.fail(kerr.UnknownServerError, "Invalid state: topic %s appears to have no partition 0.", inc.name)
			continue
		}
		rf := len(p0.Replicas)
		var fill func(p int, replicas []int32)
		if inc.assignments != nil {
			failed := false
			for j, replicas := range inc.assignments {
				if code, msg := checkManualReplicas(img, replicas, rf); code != nil {
					o.code, o.msg, failed = code, msg, true
					break
				}
				if !slices.ContainsFunc(replicas, pl.isActive) {
					o.fail(kerr.InvalidReplicaAssignment, "All brokers specified in the manual partition assignment for partition %d are fenced or in controlled shutdown.", int(cur)+j)
					failed = true
					break
				}
			}
			if failed {
				continue
			}
			fill = func(p int, replicas []int32) { copy(replicas, inc.assignments[p]) }
		} else {
			if reason := pl.check(rf); reason != "" {
				o.fail(kerr.InvalidReplicationFactor, "Unable to replicate the partition %d time(s): %s", rf, reason)
				continue
			}
			fill = func(_ int, replicas []int32) { pl.place(replicas) }
		}
		if add > budget {
			o.code, o.msg = kerr.PolicyViolation, tc.overBudget(fmt.Sprintf("Growing topic '%s' from %d to %d partitions", inc.name, cur, inc.count), add, budget)
			continue
		}
		budget -= add
		records = appendPartitionRecords(records, slices.Clone(t.ID[:]), cur, add, rf, fill, pl.isActive)
	}
	return records, out
}

// Topic configs.

// topicConfig is one config a topic is created with.
type topicConfig struct{ name, value string }

func configRecord(topic string, c topicConfig) *metadatapb.Record {
	v := c.value
	return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
		ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, ResourceName: topic, Name: c.name, Value: &v}}}
}

// newTopicConfigs lists every known config of a topic created with the configs set, in name order:
// those set as its own, the rest as it inherits them (a cluster-wide broker default, else the built-in
// default).
func newTopicConfigs(img *metadatalog.Image, topic string, set []topicConfig) []metadatalog.ConfigSynonym {
	defs := metadatalog.TopicConfigs()
	out := make([]metadatalog.ConfigSynonym, 0, len(defs))
	for _, d := range defs {
		i := slices.IndexFunc(set, func(c topicConfig) bool { return c.name == d.Name })
		if i >= 0 {
			out = append(out, metadatalog.ConfigSynonym{Name: d.Name, Value: set[i].value, Source: metadatalog.ConfigSourceTopic})
			continue
		}
		v, _ := img.TopicConfigValue(topic, -1, d.Name)
		out = append(out, metadatalog.ConfigSynonym{Name: d.Name, Value: v.Value, Source: v.Source})
	}
	return out
}

// validateTopicConfigs checks the configs of a new topic and returns them sorted by name. Errors are
// INVALID_CONFIG with Kafka's messages.
func validateTopicConfigs(req []requestedConfig) ([]topicConfig, *kerr.Error, string) {
	if len(req) == 0 {
		return nil, nil, ""
	}
	var nulls []string
	for _, c := range req {
		if c.value == nil {
			nulls = append(nulls, c.name)
		}
	}
	if len(nulls) > 0 {
		return nil, kerr.InvalidConfig, "Null value not supported for topic configs: " + strings.Join(nulls, ",")
	}
	out := make([]topicConfig, 0, len(req))
	for _, c := range req {
		def, known := metadatalog.TopicConfig(c.name)
		if !known {
			return nil, kerr.InvalidConfig, "Unknown topic config name: " + c.name
		}
		if msg := def.Invalid(*c.value); msg != "" {
			return nil, kerr.InvalidConfig, msg
		}
		if slices.ContainsFunc(out, func(o topicConfig) bool { return o.name == c.name }) {
			return nil, kerr.InvalidConfig, fmt.Sprintf("Configuration %s is given more than once.", c.name)
		}
		out = append(out, topicConfig{c.name, *c.value})
	}
	slices.SortFunc(out, func(a, b topicConfig) int { return strings.Compare(a.name, b.name) })
	return out, nil, ""
}
