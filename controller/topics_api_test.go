package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taCluster starts a single-voter controller on a real log and registers brokers 1–3, one per rack,
// heartbeating each until it is unfenced.
func taCluster(t *testing.T) *Controller {
	t.Helper()
	c, clusterID := startTestController(t, func(cfg *Config) {
		cfg.SessionTimeout, cfg.MaxPartitionsPerRequest = time.Minute, 1000
	})
	for id := int32(1); id <= 3; id++ {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.Version, req.BrokerID, req.ClusterID = 4, id, clusterID
		req.IncarnationID[0], req.IncarnationID[15] = byte(id), byte(id)
		rack := "rack-" + string(rune('a'+id-1))
		req.Rack = &rack
		lst := kmsg.NewBrokerRegistrationRequestListener()
		lst.Name, lst.Host, lst.Port = "PLAINTEXT", "127.0.0.1", uint16(9091+id)
		req.Listeners = append(req.Listeners, lst)
		f := kmsg.NewBrokerRegistrationRequestFeature()
		f.Name, f.MinSupportedVersion, f.MaxSupportedVersion = metadatalog.MetadataVersionFeature, metadatalog.MinMetadataVersion.Level, metadatalog.LatestMetadataVersion.Level
		req.Features = append(req.Features, f)
		reg := taDo(t, c, req).(*kmsg.BrokerRegistrationResponse)
		if reg.ErrorCode != 0 {
			t.Fatalf("registering broker %d: error %d", id, reg.ErrorCode)
		}
		hb := kmsg.NewPtrBrokerHeartbeatRequest()
		hb.Version, hb.BrokerID, hb.BrokerEpoch, hb.CurrentMetadataOffset = 2, id, reg.BrokerEpoch, reg.BrokerEpoch
		if r := taDo(t, c, hb).(*kmsg.BrokerHeartbeatResponse); r.ErrorCode != 0 || r.IsFenced {
			t.Fatalf("heartbeat of broker %d = %+v", id, r)
		}
	}
	mtWait(t, "three unfenced brokers", func() bool {
		n := 0
		for _, b := range c.Image().Brokers() {
			if !b.Fenced {
				n++
			}
		}
		return n == 3
	})
	return c
}

// taDo sends a request through Handle and round-trips the answer through its wire form at the
// request's version, so a field the version cannot carry does not pass unnoticed.
func taDo(t *testing.T, c *Controller, req kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := c.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wire := resp.AppendTo(nil)
	back := req.ResponseKind()
	back.SetVersion(req.GetVersion())
	if err := back.ReadFrom(wire); err != nil {
		t.Fatalf("the %s answer does not decode at v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return back
}

func taCreateTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], &configs[i+1]
		t.Configs = append(t.Configs, c)
	}
	return t
}

func taMsg(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestTopicsAPI drives CreateTopics, CreatePartitions and DeleteTopics through a real controller and
// checks what commits.
func TestTopicsAPI(t *testing.T) {
	c := taCluster(t)
	apis := c.APIs()
	for key, want := range map[int16]int16{19: 7, 20: 6, 37: 3} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != want {
			t.Fatalf("APIs()[%d] = %+v, want 0–%d", key, r, want)
		}
	}

	// CreateTopics v7: one good topic, a duplicate pair, a bad name and a bad config.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.Topics = []kmsg.CreateTopicsRequestTopic{
		taCreateTopic("orders", 6, 3, "retention.ms", "3600000", "cleanup.policy", "compact"),
		taCreateTopic("twice", 1, 1), taCreateTopic("twice", 1, 1),
		taCreateTopic("no spaces", 1, 1),
		taCreateTopic("cfg", 1, 1, "segment.bytes", "1"),
		taCreateTopic("huge", 1001, 1),
	}
	resp := taDo(t, c, req).(*kmsg.CreateTopicsResponse)
	want := []int16{0, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidTopicException.Code, kerr.InvalidConfig.Code, kerr.PolicyViolation.Code}
	for i, rt := range resp.Topics {
		if rt.Topic != req.Topics[i].Topic || rt.ErrorCode != want[i] {
			t.Fatalf("topic %d: %s error %d (%s), want %s error %d", i, rt.Topic, rt.ErrorCode, taMsg(rt.ErrorMessage), req.Topics[i].Topic, want[i])
		}
		if rt.ErrorCode != 0 && (rt.ErrorMessage == nil || *rt.ErrorMessage == "") {
			t.Fatalf("topic %s fails without a message", rt.Topic)
		}
	}
	orders := resp.Topics[0]
	if orders.TopicID == [16]byte{} || orders.NumPartitions != 6 || orders.ReplicationFactor != 3 {
		t.Fatalf("orders answered id %x, %d partitions, RF %d", orders.TopicID, orders.NumPartitions, orders.ReplicationFactor)
	}
	configs := map[string]kmsg.CreateTopicsResponseTopicConfig{}
	for _, cfg := range orders.Configs {
		configs[cfg.Name] = cfg
	}
	if cfg := configs["retention.ms"]; taMsg(cfg.Value) != "3600000" || cfg.Source != int8(metadatalog.ConfigSourceTopic) {
		t.Fatalf("orders' retention.ms answered %+v", cfg)
	}
	if cfg := configs["segment.bytes"]; taMsg(cfg.Value) != "1073741824" || cfg.Source != int8(metadatalog.ConfigSourceDefault) {
		t.Fatalf("orders' segment.bytes answered %+v", cfg)
	}
	if *resp.Topics[5].ErrorMessage != "Topic 'huge' would add 1001 partitions, more than the 1000 one request may create (max.partitions.per.request); create them over several requests." {
		t.Fatalf("huge: %s", *resp.Topics[5].ErrorMessage)
	}

	// The answer leaves once the batch commits; the committed image follows at once.
	var ordersTopic *metadatalog.Topic
	mtWait(t, "orders in the committed image", func() bool {
		ordersTopic, _ = c.Image().TopicByName("orders")
		return ordersTopic != nil
	})
	if ordersTopic.ID != orders.TopicID || ordersTopic.Partitions != 6 {
		t.Fatalf("orders in the image = %+v, answered id %x", ordersTopic, orders.TopicID)
	}
	leaders := map[int32]int{}
	for p := range int32(6) {
		part, _ := c.Image().Partition(ordersTopic.ID, p)
		if len(part.Replicas) != 3 || !slices.Equal(part.ISR, part.Replicas) || part.Leader != part.Replicas[0] {
			t.Fatalf("orders-%d = %+v", p, part)
		}
		leaders[part.Leader]++
	}
	if leaders[1] != 2 || leaders[2] != 2 || leaders[3] != 2 {
		t.Fatalf("leaders of orders' 6 partitions = %v, want 2 each", leaders)
	}
	if v, _ := c.Image().Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, "orders", "cleanup.policy"); v != "compact" {
		t.Fatalf("orders' cleanup.policy in the image = %q", v)
	}
	for _, name := range []string{"twice", "no spaces", "cfg", "huge"} {
		if _, ok := c.Image().TopicByName(name); ok {
			t.Fatalf("refused topic %q is in the image", name)
		}
	}

	// Again: TOPIC_ALREADY_EXISTS. validateOnly answers like a create and writes nothing.
	req = kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.ValidateOnly = 7, true
	req.Topics = []kmsg.CreateTopicsRequestTopic{taCreateTopic("orders", 1, 1), taCreateTopic("dry", -1, -1)}
	before := c.Image().Offset
	resp = taDo(t, c, req).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code || taMsg(resp.Topics[0].ErrorMessage) != "Topic 'orders' already exists." {
		t.Fatalf("orders again: error %d %s", resp.Topics[0].ErrorCode, taMsg(resp.Topics[0].ErrorMessage))
	}
	if dry := resp.Topics[1]; dry.ErrorCode != 0 || dry.NumPartitions != 1 || dry.ReplicationFactor != 1 {
		t.Fatalf("validateOnly dry = %+v", dry)
	}
	if _, ok := c.Image().TopicByName("dry"); ok || c.Image().Offset != before {
		t.Fatal("validateOnly wrote")
	}

	// v4 has no configs, partitions or RF in its answer, and v0 no message; both still create.
	for _, v := range []int16{0, 4} {
		req = kmsg.NewPtrCreateTopicsRequest()
		req.Version = v
		name := "old-v" + string(rune('0'+v))
		req.Topics = []kmsg.CreateTopicsRequestTopic{taCreateTopic(name, 2, 2)}
		if r := taDo(t, c, req).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 || r.Topics[0].NumPartitions != -1 {
			t.Fatalf("CreateTopics v%d = %+v", v, r.Topics[0])
		}
		mtWait(t, name+" in the image", func() bool { tp, ok := c.Image().TopicByName(name); return ok && tp.Partitions == 2 })
	}

	// CreatePartitions: grow orders to 8, refuse a shrink, dry-run a growth.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	grow := func(name string, count int32) kmsg.CreatePartitionsRequestTopic {
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = name, count
		return t
	}
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{grow("orders", 8), grow("old-v0", 1), grow("ghost", 3)}
	cpr := taDo(t, c, cp).(*kmsg.CreatePartitionsResponse)
	if got := []int16{cpr.Topics[0].ErrorCode, cpr.Topics[1].ErrorCode, cpr.Topics[2].ErrorCode}; !slices.Equal(got, []int16{0, kerr.InvalidPartitions.Code, kerr.UnknownTopicOrPartition.Code}) {
		t.Fatalf("CreatePartitions errors = %v", got)
	}
	if taMsg(cpr.Topics[1].ErrorMessage) != "The topic old-v0 currently has 2 partition(s); 1 would not be an increase." {
		t.Fatalf("shrink: %s", taMsg(cpr.Topics[1].ErrorMessage))
	}
	mtWait(t, "orders at 8 partitions", func() bool { tp, _ := c.Image().TopicByName("orders"); return tp.Partitions == 8 })
	for p := int32(6); p < 8; p++ {
		if part, ok := c.Image().Partition(ordersTopic.ID, p); !ok || len(part.Replicas) != 3 || part.Leader != part.Replicas[0] {
			t.Fatalf("orders-%d = %+v", p, part)
		}
	}
	cp.ValidateOnly = true
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{grow("orders", 20)}
	if r := taDo(t, c, cp).(*kmsg.CreatePartitionsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("validateOnly growth: error %d %s", r.Topics[0].ErrorCode, taMsg(r.Topics[0].ErrorMessage))
	}
	if tp, _ := c.Image().TopicByName("orders"); tp.Partitions != 8 {
		t.Fatalf("validateOnly CreatePartitions wrote: orders has %d partitions", tp.Partitions)
	}

	// DeleteTopics v6 by id and by name, and v5 by name.
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version = 6
	byID := kmsg.NewDeleteTopicsRequestTopic()
	byID.TopicID = ordersTopic.ID
	byName := kmsg.NewDeleteTopicsRequestTopic()
	byName.Topic = kmsg.StringPtr("old-v0")
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{9}
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{byID, byName, unknown}
	dtr := taDo(t, c, dt).(*kmsg.DeleteTopicsResponse)
	if got := []int16{dtr.Topics[0].ErrorCode, dtr.Topics[1].ErrorCode, dtr.Topics[2].ErrorCode}; !slices.Equal(got, []int16{0, 0, kerr.UnknownTopicID.Code}) {
		t.Fatalf("DeleteTopics v6 errors = %v", got)
	}
	if taMsg(dtr.Topics[0].Topic) != "orders" || dtr.Topics[0].TopicID != ordersTopic.ID || dtr.Topics[1].TopicID == [16]byte{} {
		t.Fatalf("DeleteTopics v6 answers = %+v", dtr.Topics)
	}
	dt = kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TopicNames = 5, []string{"old-v4", "old-v4", "nothing"}
	dtr = taDo(t, c, dt).(*kmsg.DeleteTopicsResponse)
	if got := []int16{dtr.Topics[0].ErrorCode, dtr.Topics[1].ErrorCode, dtr.Topics[2].ErrorCode}; !slices.Equal(got, []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.UnknownTopicOrPartition.Code}) {
		t.Fatalf("DeleteTopics v5 errors = %v", got)
	}
	mtWait(t, "the deletions in the image", func() bool {
		_, a := c.Image().TopicByName("orders")
		_, b := c.Image().TopicByName("old-v0")
		return !a && !b
	})
	if _, ok := c.Image().Partition(ordersTopic.ID, 0); ok {
		t.Fatal("orders' partitions survived its deletion")
	}
	if _, ok := c.Image().Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, "orders", "cleanup.policy"); ok {
		t.Fatal("orders' configs survived its deletion")
	}
	if tp, ok := c.Image().TopicByName("old-v4"); !ok || c.Image().PartitionCount() != int(tp.Partitions) {
		t.Fatalf("only old-v4 should be left: %d partitions in the image", c.Image().PartitionCount())
	}
}

// TestTopicsWriteFailureMessages: what every topic answers when the write cannot happen here.
func TestTopicsWriteFailureMessages(t *testing.T) {
	c := &Controller{cfg: Config{NodeID: 1}}
	for _, tc := range []struct {
		leader uint64
		o      writeOutcome
		code   *kerr.Error
		msg    string
	}{
		{2, writeOutcome{notController: true}, kerr.NotController,
			"This controller is not the active controller; node 2 is. Send the request to a broker, which forwards it, or to the active controller."},
		{0, writeOutcome{notController: true}, kerr.NotController,
			"This controller is not the active controller, and no controller is active right now (an election is under way); retry shortly."},
		{1, writeOutcome{notController: true}, kerr.NotController,
			"This controller has just been elected and is still catching up with the metadata log; retry shortly."},
		{1, writeOutcome{err: context.DeadlineExceeded}, kerr.RequestTimedOut,
			"The request did not complete, and its outcome is unknown; check the topics before retrying: context deadline exceeded"},
		{1, writeOutcome{}, nil, ""},
	} {
		c.leader.Store(tc.leader)
		if code, msg := c.topicWriteFailure(tc.o); code != tc.code || msg != tc.msg {
			t.Errorf("leader %d, %+v: %v %q", tc.leader, tc.o, code, msg)
		}
	}
}
