package controller

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/protobuf/proto"
)

func tcRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

func tcStr(s string) *string { return &s }

// tcCluster: brokers 1–3 unfenced, 4 fenced, 5 in controlled shutdown; topics "existing" (3 partitions,
// RF 3) and "a.b" (1 partition).
func tcCluster(t testing.TB) *metadatalog.Image {
	t.Helper()
	img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2}, tpBroker{id: 3}, tpBroker{id: 4, fenced: true}, tpBroker{id: 5, shutdown: true})
	return tcCreate(t, img, newTopicControl(0), newTopic{name: "existing", numPartitions: 3, replicationFactor: 3}, newTopic{name: "a.b", numPartitions: 1, replicationFactor: 1})
}

// tcCreate creates topics that must all succeed and returns the image after them.
func tcCreate(t testing.TB, img *metadatalog.Image, tc topicControl, topics ...newTopic) *metadatalog.Image {
	t.Helper()
	records, outs := tc.createTopics(img, topics, tcRand(1))
	for _, o := range outs {
		if o.code != nil {
			t.Fatalf("creating %s: %s: %s", o.name, o.code.Message, o.msg)
		}
	}
	return tcApply(t, img, records)
}

func tcApply(t testing.TB, img *metadatalog.Image, records []*metadatapb.Record) *metadatalog.Image {
	t.Helper()
	next, err := img.Apply(img.Offset+1, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatalf("the records do not apply: %v", err)
	}
	return next
}

func tcOutcome(o topicOutcome) string {
	if o.code == nil {
		return "NONE"
	}
	return o.code.Message + ": " + o.msg
}

func TestCreateTopicsRefused(t *testing.T) {
	long := strings.Repeat("x", 250)
	valid := func(name string) newTopic { return newTopic{name: name, numPartitions: 1, replicationFactor: 1} }
	withConfig := func(name, value string) newTopic {
		nt := valid("t")
		nt.configs = []requestedConfig{{name: name, value: &value}}
		return nt
	}
	withAssignment := func(rf int16, n int32, as ...newAssignment) newTopic {
		return newTopic{name: "t", numPartitions: n, replicationFactor: rf, assignments: as}
	}
	as := func(p int32, replicas ...int32) newAssignment { return newAssignment{partition: p, replicas: replicas} }
	for _, tc := range []struct {
		name  string
		topic newTopic
		code  *kerr.Error
		msg   string
	}{
		// Names.
		{"empty name", valid(""), kerr.InvalidTopicException, "Topic name is invalid: the empty string is not allowed"},
		{"dot", valid("."), kerr.InvalidTopicException, "Topic name is invalid: '.' is not allowed"},
		{"dot dot", valid(".."), kerr.InvalidTopicException, "Topic name is invalid: '..' is not allowed"},
		{"too long", valid(long), kerr.InvalidTopicException, "Topic name is invalid: the length of '" + long + "' is longer than the max allowed length 249"},
		{"bad characters", valid("orders/eu"), kerr.InvalidTopicException, "Topic name is invalid: 'orders/eu' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"},
		{"non-ASCII", valid("café"), kerr.InvalidTopicException, "Topic name is invalid: 'café' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"},
		{"exists", valid("existing"), kerr.TopicAlreadyExists, "Topic 'existing' already exists."},
		{"collides", valid("a_b"), kerr.InvalidTopicException, "Topic 'a_b' collides with existing topic: a.b"},
		{"metadata topic", valid("__cluster_metadata"), kerr.InvalidRequest, "Creation of internal topic __cluster_metadata is prohibited."},

		// Replication factor and partitions.
		{"RF 0", newTopic{name: "t", numPartitions: 1, replicationFactor: 0}, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."},
		{"RF -2", newTopic{name: "t", numPartitions: 1, replicationFactor: -2}, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."},
		{"partitions 0", newTopic{name: "t", numPartitions: 0, replicationFactor: 1}, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."},
		{"partitions -3", newTopic{name: "t", numPartitions: -3, replicationFactor: -1}, kerr.InvalidPartitions, "Number of partitions was set to an invalid non-positive value."},
		{"RF above the brokers", newTopic{name: "t", numPartitions: 1, replicationFactor: 5}, kerr.InvalidReplicationFactor,
			"Unable to replicate the partition 5 time(s): The target replication factor of 5 cannot be reached because only 4 broker(s) are registered. Not counted, because they are in controlled shutdown: broker(s) 5."},
		{"too many partitions", newTopic{name: "t", numPartitions: 101, replicationFactor: 1}, kerr.PolicyViolation,
			"Topic 't' would add 101 partitions, more than the 100 one request may create (max.partitions.per.request); create them over several requests."},
		{"too many assigned partitions", withAssignment(-1, -1, func() []newAssignment {
			var out []newAssignment
			for p := range int32(101) {
				out = append(out, as(p, 1))
			}
			return out
		}()...), kerr.PolicyViolation, "Topic 't' would add 101 partitions, more than the 100 one request may create (max.partitions.per.request); create them over several requests."},

		// Manual assignments.
		{"assignment with RF", withAssignment(1, -1, as(0, 1)), kerr.InvalidRequest, "A manual partition assignment was specified, but replication factor was not set to -1."},
		{"assignment with partitions", withAssignment(-1, 1, as(0, 1)), kerr.InvalidRequest, "A manual partition assignment was specified, but numPartitions was not set to -1."},
		{"partition twice", withAssignment(-1, -1, as(0, 1), as(0, 2)), kerr.InvalidReplicaAssignment, "Found multiple manual partition assignments for partition 0"},
		{"partitions not consecutive", withAssignment(-1, -1, as(0, 1), as(2, 2)), kerr.InvalidReplicaAssignment,
			"partitions should be a consecutive 0-based integer sequence: 2 assignment(s) were given, so partition ids run from 0 to 1, not 2."},
		{"negative partition", withAssignment(-1, -1, as(-1, 1)), kerr.InvalidReplicaAssignment,
			"partitions should be a consecutive 0-based integer sequence: 1 assignment(s) were given, so partition ids run from 0 to 0, not -1."},
		{"empty replicas", withAssignment(-1, -1, as(0)), kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."},
		{"unknown broker", withAssignment(-1, -1, as(0, 1, 9)), kerr.InvalidReplicaAssignment, "The manual partition assignment includes broker 9, but no such broker is registered."},
		{"broker twice", withAssignment(-1, -1, as(0, 2, 1, 2)), kerr.InvalidReplicaAssignment, "The manual partition assignment includes the broker 2 more than once."},
		{"uneven RF", withAssignment(-1, -1, as(0, 1, 2), as(1, 3)), kerr.InvalidReplicaAssignment,
			"The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."},
		{"no active replica", withAssignment(-1, -1, as(0, 1), as(1, 4)), kerr.InvalidReplicaAssignment,
			"All brokers specified in the manual partition assignment for partition 1 are fenced or in controlled shutdown."},
		{"only a broker in controlled shutdown", withAssignment(-1, -1, as(0, 5)), kerr.InvalidReplicaAssignment,
			"All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown."},

		// Configs (the value checks themselves are tested in metadatalog).
		{"unknown config", withConfig("retention.hours", "1"), kerr.InvalidConfig, "Unknown topic config name: retention.hours"},
		{"null config", newTopic{name: "t", numPartitions: 1, replicationFactor: 1, configs: []requestedConfig{{name: "retention.ms"}, {name: "segment.ms"}}},
			kerr.InvalidConfig, "Null value not supported for topic configs: retention.ms,segment.ms"},
		{"config twice", newTopic{name: "t", numPartitions: 1, replicationFactor: 1, configs: []requestedConfig{{"retention.ms", tcStr("1")}, {"retention.ms", tcStr("2")}}},
			kerr.InvalidConfig, "Configuration retention.ms is given more than once."},
		{"retention.ms below -1", withConfig("retention.ms", "-2"), kerr.InvalidConfig, "Invalid value -2 for configuration retention.ms: Value must be at least -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tcCluster(t)
			records, outs := newTopicControl(100).createTopics(img, []newTopic{tc.topic}, tcRand(1))
			if len(outs) != 1 || outs[0].code != tc.code || outs[0].msg != tc.msg {
				t.Fatalf("outcome = %s\nwant %s: %s", tcOutcome(outs[0]), tc.code.Message, tc.msg)
			}
			if len(records) != 0 {
				t.Fatalf("a refused topic wrote %d records", len(records))
			}
			if o := outs[0]; o.numPartitions != -1 || o.replicationFactor != -1 || o.id != [16]byte{} {
				t.Fatalf("a refused topic answers partitions %d, RF %d, id %x", o.numPartitions, o.replicationFactor, o.id)
			}
		})
	}
}

func TestCreateTopicsRecords(t *testing.T) {
	img := tcCluster(t)
	topics := []newTopic{
		{name: "orders", numPartitions: 4, replicationFactor: 3, configs: []requestedConfig{
			{"retention.ms", tcStr("-1")}, {"cleanup.policy", tcStr("compact,delete")}, {"min.insync.replicas", tcStr("2")},
			{"segment.bytes", tcStr("14")}, {"max.message.bytes", tcStr("0")}, {"retention.bytes", tcStr("-1")}, {"compression.type", tcStr("zstd")},
		}},
		{name: "defaults", numPartitions: -1, replicationFactor: -1},
		// Broker 4 is fenced: the ISR leaves it out and the leader is the first active replica.
		{name: "manual", numPartitions: -1, replicationFactor: -1, assignments: []newAssignment{{1, []int32{3, 1}}, {0, []int32{4, 2}}}},
	}
	records, outs := newTopicControl(0).createTopics(img, topics, tcRand(3))
	for _, o := range outs {
		if o.code != nil {
			t.Fatalf("%s: %s", o.name, tcOutcome(o))
		}
		if o.id == [16]byte{} {
			t.Fatalf("%s has the zero id", o.name)
		}
	}
	if got := []int32{outs[0].numPartitions, int32(outs[0].replicationFactor), outs[1].numPartitions, int32(outs[1].replicationFactor), outs[2].numPartitions, int32(outs[2].replicationFactor)}; !slices.Equal(got, []int32{4, 3, 1, 1, 2, 2}) {
		t.Fatalf("partitions and RF answered = %v", got)
	}
	var kinds []string
	for _, r := range records {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_Topic:
			kinds = append(kinds, "topic:"+rec.Topic.GetName())
		case *metadatapb.Record_Config:
			kinds = append(kinds, "config:"+rec.Config.GetResourceName()+":"+rec.Config.GetName()+"="+rec.Config.GetValue())
		case *metadatapb.Record_Partition:
			p := rec.Partition
			kinds = append(kinds, fmt.Sprintf("partition:%d", p.GetPartitionId()))
			if p.GetLeaderEpoch() != 0 || p.GetPartitionEpoch() != 0 {
				t.Fatalf("partition %d starts at leader epoch %d, partition epoch %d", p.GetPartitionId(), p.GetLeaderEpoch(), p.GetPartitionEpoch())
			}
		}
	}
	want := []string{
		"topic:orders",
		"config:orders:cleanup.policy=compact,delete", "config:orders:compression.type=zstd", "config:orders:max.message.bytes=0",
		"config:orders:min.insync.replicas=2", "config:orders:retention.bytes=-1", "config:orders:retention.ms=-1", "config:orders:segment.bytes=14",
		"partition:0", "partition:1", "partition:2", "partition:3",
		"topic:defaults", "partition:0",
		"topic:manual", "partition:0", "partition:1",
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("records =\n%s\nwant\n%s", strings.Join(kinds, "\n"), strings.Join(want, "\n"))
	}

	img = tcApply(t, img, records)
	orders, ok := img.TopicByName("orders")
	if !ok || orders.Partitions != 4 || orders.ID != outs[0].id {
		t.Fatalf("orders in the image = %+v", orders)
	}
	for p := range int32(4) {
		part, _ := img.Partition(orders.ID, p)
		if len(part.Replicas) != 3 || !slices.Equal(part.Replicas, part.ISR) || part.Leader != part.Replicas[0] {
			t.Fatalf("orders-%d = %+v: RF 3 on unfenced brokers, ISR = replicas, leader = first replica", p, part)
		}
	}
	if v, _ := img.Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, "orders", "min.insync.replicas"); v != "2" {
		t.Fatalf("orders' min.insync.replicas in the image = %q", v)
	}
	manual, _ := img.TopicByName("manual")
	p0, _ := img.Partition(manual.ID, 0)
	p1, _ := img.Partition(manual.ID, 1)
	if !slices.Equal(p0.Replicas, []int32{4, 2}) || !slices.Equal(p0.ISR, []int32{2}) || p0.Leader != 2 ||
		!slices.Equal(p1.Replicas, []int32{3, 1}) || !slices.Equal(p1.ISR, []int32{3, 1}) || p1.Leader != 3 {
		t.Fatalf("manual partitions = %+v, %+v", p0, p1)
	}

	// The same source gives the same records, ids included.
	again, _ := newTopicControl(0).createTopics(tcCluster(t), topics, tcRand(3))
	if !slices.EqualFunc(records, again, func(a, b *metadatapb.Record) bool { return proto.Equal(a, b) }) {
		t.Fatal("createTopics is not deterministic for a fixed random source")
	}
}

func TestCreateTopicsPlacesOnFencedBrokersLast(t *testing.T) {
	// Three brokers, one fenced: RF 3 still works, the fenced broker is a replica outside the ISR and
	// never the leader.
	img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2, fenced: true}, tpBroker{id: 3})
	img = tcCreate(t, img, newTopicControl(0), newTopic{name: "t", numPartitions: 10, replicationFactor: 3})
	topic, _ := img.TopicByName("t")
	for p := range int32(10) {
		part, _ := img.Partition(topic.ID, p)
		if len(part.Replicas) != 3 || slices.Contains(part.ISR, 2) || len(part.ISR) != 2 || part.Leader == 2 || part.Leader != part.Replicas[0] {
			t.Fatalf("t-%d = %+v", p, part)
		}
	}
	// Everyone fenced: refused with Kafka's message.
	img = tpImage(t, tpBroker{id: 1, fenced: true})
	_, outs := newTopicControl(0).createTopics(img, []newTopic{{name: "t", numPartitions: 1, replicationFactor: 1}}, tcRand(1))
	if outs[0].code != kerr.InvalidReplicationFactor || outs[0].msg != "Unable to replicate the partition 1 time(s): All brokers are currently fenced." {
		t.Fatalf("all fenced: %s", tcOutcome(outs[0]))
	}
}

func TestCreateTopicsRequestLevelRules(t *testing.T) {
	img := tcCluster(t)
	one := func(name string, n int32) newTopic {
		return newTopic{name: name, numPartitions: n, replicationFactor: 1}
	}
	for _, tc := range []struct {
		name   string
		topics []newTopic
		want   []string
	}{
		{"every copy of a duplicate is refused, the rest go on", []newTopic{one("x", 1), one("y", 1), one("x", 1)}, []string{
			"INVALID_REQUEST: Duplicate topic name.", "NONE", "INVALID_REQUEST: Duplicate topic name."}},
		{"names that collide within one request", []newTopic{one("p.q", 1), one("p_q", 1)}, []string{
			"NONE", "INVALID_TOPIC_EXCEPTION: Topic 'p_q' collides with topic p.q, created earlier in this request."}},
		{"a failure does not stop later topics", []newTopic{one("existing", 1), one("fresh", 1)}, []string{
			"TOPIC_ALREADY_EXISTS: Topic 'existing' already exists.", "NONE"}},
		{"the partition budget is shared by the request", []newTopic{one("b1", 60), one("b2", 60), one("b3", 40)}, []string{
			"NONE",
			"POLICY_VIOLATION: Topic 'b2' would add 60 partitions, but earlier topics of this request already add 60 of the 100 one request may create (max.partitions.per.request); send it in another request.",
			"NONE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records, outs := newTopicControl(100).createTopics(img, tc.topics, tcRand(1))
			var got []string
			for _, o := range outs {
				got = append(got, tcOutcome(o))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("outcomes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			next := tcApply(t, img, records)
			for i, o := range outs {
				if _, ok := next.TopicByName(tc.topics[i].name); (o.code == nil) != ok && tc.topics[i].name != "existing" {
					t.Fatalf("topic %s: outcome %s, in the image: %v", o.name, tcOutcome(o), ok)
				}
			}
		})
	}
}

func TestCollidingTopic(t *testing.T) {
	img := tpImage(t, tpBrokers(1)...)
	many := strings.Repeat("a.", 12) + "z" // more collision characters than variants are tried for
	img = tcCreate(t, img, newTopicControl(0),
		newTopic{name: "a.b_c", numPartitions: 1, replicationFactor: 1},
		newTopic{name: many, numPartitions: 1, replicationFactor: 1})
	for _, tc := range []struct {
		name, want string
	}{
		{"a_b_c", "a.b_c"}, {"a.b.c", "a.b_c"}, {"a_b.c", "a.b_c"}, {"a.b_c", ""}, {"abc", ""}, {"a-b-c", ""},
		{strings.ReplaceAll(many, ".", "_"), many}, {many, ""},
	} {
		got, ok := collidingTopic(img, tc.name)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("collidingTopic(%q) = %q, %v; want %q", tc.name, got, ok, tc.want)
		}
	}
}

func TestNewTopicIDAvoidsReservedAndTakenIDs(t *testing.T) {
	img := tcCluster(t)
	taken := map[[16]byte]bool{}
	rng := tcRand(5)
	for range 10000 {
		id := newTopicID(img, rng, taken)
		if id == ([16]byte{}) || id == ([16]byte{15: 1}) || strings.HasPrefix(topicIDString(id), "-") || taken[id] {
			t.Fatalf("drew id %s", topicIDString(id))
		}
		if _, exists := img.TopicByID(id); exists {
			t.Fatalf("drew the id of an existing topic")
		}
		taken[id] = true
	}
}

func TestDeleteTopics(t *testing.T) {
	img := tcCluster(t)
	img = tcCreate(t, img, newTopicControl(0), newTopic{name: "logs", numPartitions: 2, replicationFactor: 2,
		configs: []requestedConfig{{"retention.ms", tcStr("1000")}}})
	existing, _ := img.TopicByName("existing")
	logs, _ := img.TopicByName("logs")
	ab, _ := img.TopicByName("a.b")
	unknownID := [16]byte{1, 2, 3}
	for _, tc := range []struct {
		name    string
		refs    []topicRef
		want    []string
		deleted []string
	}{
		{"by name and by id", []topicRef{{name: tcStr("logs")}, {id: existing.ID}}, []string{"NONE", "NONE"}, []string{"logs", "existing"}},
		{"unknown name", []topicRef{{name: tcStr("nope")}, {name: tcStr("logs")}}, []string{"UNKNOWN_TOPIC_OR_PARTITION: Topic 'nope' does not exist.", "NONE"}, []string{"logs"}},
		{"unknown id", []topicRef{{id: unknownID}}, []string{"UNKNOWN_TOPIC_ID: No topic has id " + topicIDString(unknownID) + "."}, nil},
		{"a name twice", []topicRef{{name: tcStr("logs")}, {name: tcStr("a.b")}, {name: tcStr("logs")}},
			[]string{"INVALID_REQUEST: Duplicate topic name.", "NONE", "INVALID_REQUEST: Duplicate topic name."}, []string{"a.b"}},
		{"an unknown name twice", []topicRef{{name: tcStr("nope")}, {name: tcStr("nope")}},
			[]string{"INVALID_REQUEST: Duplicate topic name.", "INVALID_REQUEST: Duplicate topic name."}, nil},
		{"an id twice", []topicRef{{id: logs.ID}, {id: logs.ID}, {id: ab.ID}},
			[]string{"INVALID_REQUEST: Duplicate topic id.", "INVALID_REQUEST: Duplicate topic id.", "NONE"}, []string{"a.b"}},
		{"a topic by name and by id", []topicRef{{name: tcStr("logs")}, {id: logs.ID}}, []string{
			"INVALID_REQUEST: Topic 'logs' (id " + topicIDString(logs.ID) + ") is named in this request both by name and by id.",
			"INVALID_REQUEST: Topic 'logs' (id " + topicIDString(logs.ID) + ") is named in this request both by name and by id."}, nil},
		{"name and id in one entry", []topicRef{{name: tcStr("logs"), id: logs.ID}}, []string{"INVALID_REQUEST: You may not specify both topic name and topic id."}, nil},
		{"neither", []topicRef{{}}, []string{"INVALID_REQUEST: Neither topic name nor id were specified."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records, outs := newTopicControl(0).deleteTopics(img, tc.refs)
			var got []string
			for _, o := range outs {
				got = append(got, tcOutcome(o))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("outcomes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(records) != len(tc.deleted) {
				t.Fatalf("%d records for %d deletions", len(records), len(tc.deleted))
			}
			next := tcApply(t, img, records)
			for _, name := range tc.deleted {
				before, _ := img.TopicByName(name)
				if _, ok := next.TopicByName(name); ok {
					t.Fatalf("%s survived its deletion", name)
				}
				if _, ok := next.Partition(before.ID, 0); ok {
					t.Fatalf("%s's partitions survived its deletion", name)
				}
				i := slices.IndexFunc(outs, func(o topicOutcome) bool { return o.name == name })
				if i < 0 || outs[i].id != before.ID {
					t.Fatalf("the answer for %s does not carry its name and id: %+v", name, outs)
				}
			}
			if slices.Contains(tc.deleted, "logs") {
				if _, ok := next.Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, "logs", "retention.ms"); ok {
					t.Fatal("logs' configs survived its deletion")
				}
			}
			if next.PartitionCount() != img.PartitionCount()-func() int {
				n := 0
				for _, name := range tc.deleted {
					tp, _ := img.TopicByName(name)
					n += int(tp.Partitions)
				}
				return n
			}() {
				t.Fatalf("partition count %d after deleting %v from %d", next.PartitionCount(), tc.deleted, img.PartitionCount())
			}
		})
	}
}

func TestCreatePartitions(t *testing.T) {
	img := tcCluster(t) // "existing": 3 partitions of RF 3; "a.b": 1 partition of RF 1
	for _, tc := range []struct {
		name string
		incs []partitionIncrease
		want []string
		// added: topic → partitions it should have afterwards
		added map[string]int32
	}{
		{"placed", []partitionIncrease{{name: "existing", count: 5}}, []string{"NONE"}, map[string]int32{"existing": 5}},
		{"assigned", []partitionIncrease{{name: "a.b", count: 3, assignments: [][]int32{{2}, {4}}}}, []string{
			"INVALID_REPLICA_ASSIGNMENT: All brokers specified in the manual partition assignment for partition 2 are fenced or in controlled shutdown."}, nil},
		{"assigned, every partition with an active broker", []partitionIncrease{{name: "a.b", count: 3, assignments: [][]int32{{2}, {3}}}}, []string{"NONE"}, map[string]int32{"a.b": 3}},
		{"unknown topic", []partitionIncrease{{name: "nope", count: 2}}, []string{"UNKNOWN_TOPIC_OR_PARTITION: Topic 'nope' does not exist."}, nil},
		{"same count", []partitionIncrease{{name: "existing", count: 3}}, []string{"INVALID_PARTITIONS: Topic already has 3 partition(s)."}, nil},
		{"decrease", []partitionIncrease{{name: "existing", count: 2}}, []string{"INVALID_PARTITIONS: The topic existing currently has 3 partition(s); 2 would not be an increase."}, nil},
		{"assignments of the wrong length", []partitionIncrease{{name: "existing", count: 5, assignments: [][]int32{{1, 2, 3}}}}, []string{
			"INVALID_REPLICA_ASSIGNMENT: Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."}, nil},
		{"assignment with the wrong RF", []partitionIncrease{{name: "existing", count: 4, assignments: [][]int32{{1, 2}}}}, []string{
			"INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes a partition with 2 replica(s), but this is not consistent with previous partitions, which have 3 replica(s)."}, nil},
		{"assignment with an unknown broker", []partitionIncrease{{name: "existing", count: 4, assignments: [][]int32{{1, 2, 7}}}}, []string{
			"INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes broker 7, but no such broker is registered."}, nil},
		{"assignment with a broker twice", []partitionIncrease{{name: "existing", count: 4, assignments: [][]int32{{1, 2, 1}}}}, []string{
			"INVALID_REPLICA_ASSIGNMENT: The manual partition assignment includes the broker 1 more than once."}, nil},
		{"duplicate topic", []partitionIncrease{{name: "existing", count: 4}, {name: "a.b", count: 2}, {name: "existing", count: 5}}, []string{
			"INVALID_REQUEST: Duplicate topic name.", "NONE", "INVALID_REQUEST: Duplicate topic name."}, map[string]int32{"a.b": 2}},
		{"over the budget", []partitionIncrease{{name: "existing", count: 104}}, []string{
			"POLICY_VIOLATION: Growing topic 'existing' from 3 to 104 partitions would add 101 partitions, more than the 100 one request may create (max.partitions.per.request); create them over several requests."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records, outs := newTopicControl(100).createPartitions(img, tc.incs, tcRand(2))
			var got []string
			for _, o := range outs {
				got = append(got, tcOutcome(o))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("outcomes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, r := range records {
				if r.GetPartition() == nil {
					t.Fatalf("CreatePartitions wrote a %T", r.GetRecord())
				}
			}
			next := tcApply(t, img, records)
			for _, inc := range tc.incs {
				before, _ := img.TopicByName(inc.name)
				if before == nil {
					continue
				}
				after, _ := next.TopicByName(inc.name)
				want, grows := tc.added[inc.name]
				if !grows {
					want = before.Partitions
				}
				if after.Partitions != want {
					t.Fatalf("%s has %d partitions, want %d", inc.name, after.Partitions, want)
				}
				rf := 3
				if inc.name == "a.b" {
					rf = 1
				}
				for p := before.Partitions; p < after.Partitions; p++ {
					part, _ := next.Partition(after.ID, p)
					if len(part.Replicas) != rf || part.Leader != part.Replicas[0] || part.LeaderEpoch != 0 || part.Epoch != 0 || !slices.Equal(part.ISR, part.Replicas) {
						t.Fatalf("new partition %s-%d = %+v", inc.name, p, part)
					}
					if inc.assignments != nil && !slices.Equal(part.Replicas, inc.assignments[p-before.Partitions]) {
						t.Fatalf("new partition %s-%d = %v, assigned %v", inc.name, p, part.Replicas, inc.assignments[p-before.Partitions])
					}
				}
			}
		})
	}
}

// BenchmarkCreateOneMillionPartitions creates 10,000 topics of 100 partitions, RF 3, on 30 brokers in
// 3 racks: each topic is one request through topicControl, whose records are applied to the image as
// the controller does. It reports the cost per partition of the whole, and of its two halves (deciding
// and applying), and the heap the final image holds per partition.
func BenchmarkCreateOneMillionPartitions(b *testing.B) {
	const topics, partitions = 10_000, 100
	base := tpImage(b, tpBrokers(30, "a", "b", "c")...)
	tc := newTopicControl(0)
	rng := tcRand(1)
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%05d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var img *metadatalog.Image
	var decide, apply time.Duration
	b.ReportAllocs()
	for b.Loop() {
		img = base
		for i := range topics {
			t0 := time.Now()
			records, outs := tc.createTopics(img, []newTopic{{name: names[i], numPartitions: partitions, replicationFactor: 3}}, rng)
			t1 := time.Now()
			if outs[0].code != nil {
				b.Fatalf("%s: %s", names[i], tcOutcome(outs[0]))
			}
			next, err := img.Apply(img.Offset+1, 1, &metadatapb.RecordBatch{Records: records})
			if err != nil {
				b.Fatal(err)
			}
			decide, apply = decide+t1.Sub(t0), apply+time.Since(t1)
			img = next
		}
	}
	if img.PartitionCount() != topics*partitions {
		b.Fatalf("%d partitions in the image", img.PartitionCount())
	}
	total := float64(b.N) * topics * partitions
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/partition")
	b.ReportMetric(float64(decide.Nanoseconds())/total, "decide-ns/partition")
	b.ReportMetric(float64(apply.Nanoseconds())/total, "apply-ns/partition")
	// Only the last image is alive now: what it holds is the controller's memory per partition.
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(topics*partitions), "heap-B/partition")
	runtime.KeepAlive(img)
}

// TestCreatedTopicConfigs: CreateTopics v5+ answers every known config of a new topic with its source:
// the topic's own setting, a cluster-wide broker default it inherits, or the built-in default.
func TestCreatedTopicConfigs(t *testing.T) {
	img := tcApply(t, tcCluster(t), []*metadatapb.Record{{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
		ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER, ResourceName: metadatalog.ClusterDefaultBroker,
		Name: "log.retention.bytes", Value: tcStr("1000"),
	}}}})
	nt := newTopic{name: "t", numPartitions: 1, replicationFactor: 1, configs: []requestedConfig{{name: "retention.ms", value: tcStr("5")}}}
	_, outs := newTopicControl(0).createTopics(img, []newTopic{nt}, tcRand(1))
	got := map[string]metadatalog.ConfigSynonym{}
	for _, c := range outs[0].configs {
		got[c.Name] = c
	}
	if len(got) != len(metadatalog.TopicConfigs()) {
		t.Fatalf("%d configs answered, want every known one (%d)", len(got), len(metadatalog.TopicConfigs()))
	}
	for name, want := range map[string]metadatalog.ConfigSynonym{
		"retention.ms":    {Name: "retention.ms", Value: "5", Source: metadatalog.ConfigSourceTopic},
		"retention.bytes": {Name: "retention.bytes", Value: "1000", Source: metadatalog.ConfigSourceClusterDefault},
		"cleanup.policy":  {Name: "cleanup.policy", Value: "delete", Source: metadatalog.ConfigSourceDefault},
	} {
		if got[name] != want {
			t.Errorf("%s answered as %+v, want %+v", name, got[name], want)
		}
	}
}
