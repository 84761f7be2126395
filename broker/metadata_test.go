package broker

import (
	"slices"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	ordersID  = [16]byte{1, 2, 3}
	offsetsID = [16]byte{9}
)

func rec(r any) *metadatapb.Record {
	switch r := r.(type) {
	case *metadatapb.RegisterBrokerRecord:
		return &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: r}}
	case *metadatapb.TopicRecord:
		return &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: r}}
	case *metadatapb.PartitionRecord:
		return &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: r}}
	}
	panic("unknown record")
}

func ep(name, host string, port int32) *metadatapb.Endpoint {
	return &metadatapb.Endpoint{Name: name, Host: host, Port: port}
}

// testImage is a small cluster:
//   - broker 1: unfenced, PLAINTEXT h1:9092 and INTERNAL i1:19092, rack r1;
//   - broker 2: fenced, PLAINTEXT h2:9092;
//   - broker 3: unfenced, INTERNAL only (i3:19092);
//   - broker 4: never registered;
//   - topic "orders" with partitions led by 1 (replicas 1,2,4), by 2 (fenced), by 3 (no PLAINTEXT),
//     and leaderless; "__consumer_offsets" with one partition led by 1.
func testImage(t testing.TB) *metadatalog.Image {
	t.Helper()
	records := []*metadatapb.Record{
		mvRecord(4),
		rec(&metadatapb.RegisterBrokerRecord{BrokerId: 1, BrokerEpoch: 2, Rack: "r1",
			Endpoints: []*metadatapb.Endpoint{ep("PLAINTEXT", "h1", 9092), ep("INTERNAL", "i1", 19092)}}),
		rec(&metadatapb.RegisterBrokerRecord{BrokerId: 2, BrokerEpoch: 2, Fenced: true,
			Endpoints: []*metadatapb.Endpoint{ep("PLAINTEXT", "h2", 9092)}}),
		rec(&metadatapb.RegisterBrokerRecord{BrokerId: 3, BrokerEpoch: 2,
			Endpoints: []*metadatapb.Endpoint{ep("INTERNAL", "i3", 19092)}}),
		rec(&metadatapb.TopicRecord{Name: "orders", TopicId: ordersID[:]}),
		rec(&metadatapb.PartitionRecord{TopicId: ordersID[:], PartitionId: 0, Replicas: []int32{1, 2, 4}, Isr: []int32{1, 2}, Leader: 1, LeaderEpoch: 3}),
		rec(&metadatapb.PartitionRecord{TopicId: ordersID[:], PartitionId: 1, Replicas: []int32{2, 1}, Isr: []int32{2, 1}, Leader: 2, LeaderEpoch: 1}),
		rec(&metadatapb.PartitionRecord{TopicId: ordersID[:], PartitionId: 2, Replicas: []int32{3, 1}, Isr: []int32{3, 1}, Leader: 3}),
		rec(&metadatapb.PartitionRecord{TopicId: ordersID[:], PartitionId: 3, Replicas: []int32{4}, Isr: []int32{}, Leader: -1, LeaderEpoch: 5}),
		rec(&metadatapb.TopicRecord{Name: "__consumer_offsets", TopicId: offsetsID[:]}),
		rec(&metadatapb.PartitionRecord{TopicId: offsetsID[:], PartitionId: 0, Replicas: []int32{1}, Isr: []int32{1}, Leader: 1}),
	}
	img, err := metadatalog.EmptyImage().Apply(2, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testView(t testing.TB, listener string) view {
	return view{img: testImage(t), clusterID: "cid", controllerID: 3000, listener: listener}
}

func metadataReq(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func topicNames(resp *kmsg.MetadataResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		if t.Topic != nil {
			out = append(out, *t.Topic)
		}
	}
	return out
}

func TestMetadataBrokersAreUnfencedOnTheListener(t *testing.T) {
	for _, tc := range []struct {
		listener string
		want     []kmsg.MetadataResponseBroker
	}{
		{"PLAINTEXT", []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "h1", Port: 9092, Rack: kmsg.StringPtr("r1")}}},
		{"INTERNAL", []kmsg.MetadataResponseBroker{
			{NodeID: 1, Host: "i1", Port: 19092, Rack: kmsg.StringPtr("r1")},
			{NodeID: 3, Host: "i3", Port: 19092},
		}},
		{"NOPE", nil},
	} {
		resp := metadataResponse(testView(t, tc.listener), metadataReq(12))
		if len(resp.Brokers) != len(tc.want) {
			t.Fatalf("%s: brokers %+v, want %+v", tc.listener, resp.Brokers, tc.want)
		}
		for i, w := range tc.want {
			g := resp.Brokers[i]
			if g.NodeID != w.NodeID || g.Host != w.Host || g.Port != w.Port || (g.Rack == nil) != (w.Rack == nil) || (g.Rack != nil && *g.Rack != *w.Rack) {
				t.Fatalf("%s: broker %d = %+v, want %+v", tc.listener, i, g, w)
			}
		}
		if resp.ClusterID == nil || *resp.ClusterID != "cid" || resp.ControllerID != 3000 {
			t.Fatalf("%s: cluster %v controller %d", tc.listener, resp.ClusterID, resp.ControllerID)
		}
	}
}

func TestMetadataPartitions(t *testing.T) {
	resp := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(12, "orders"))
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || resp.Topics[0].TopicID != ordersID || resp.Topics[0].IsInternal {
		t.Fatalf("topics %+v", resp.Topics)
	}
	parts := resp.Topics[0].Partitions
	if len(parts) != 4 {
		t.Fatalf("%d partitions, want 4", len(parts))
	}
	for _, tc := range []struct {
		leader, leaderEpoch int32
		code                int16
		replicas, isr       []int32
		offline             []int32
	}{
		// Replicas and ISR are the image's; offline are those on fenced or unregistered brokers.
		{1, 3, 0, []int32{1, 2, 4}, []int32{1, 2}, []int32{2, 4}},
		// The leader is fenced: clients are told there is none.
		{-1, 1, kerr.LeaderNotAvailable.Code, []int32{2, 1}, []int32{2, 1}, []int32{2}},
		// The leader is live but not on this listener.
		{-1, 0, kerr.ListenerNotFound.Code, []int32{3, 1}, []int32{3, 1}, []int32{3}},
		{-1, 5, kerr.LeaderNotAvailable.Code, []int32{4}, []int32{}, []int32{4}},
	} {
		p := parts[0]
		parts = parts[1:]
		if p.Leader != tc.leader || p.LeaderEpoch != tc.leaderEpoch || p.ErrorCode != tc.code ||
			!slices.Equal(p.Replicas, tc.replicas) || !slices.Equal(p.ISR, tc.isr) || !slices.Equal(p.OfflineReplicas, tc.offline) {
			t.Errorf("partition %d = leader %d epoch %d code %d replicas %v isr %v offline %v; want %+v",
				p.Partition, p.Leader, p.LeaderEpoch, p.ErrorCode, p.Replicas, p.ISR, p.OfflineReplicas, tc)
		}
	}

	// Before v6 a listener mismatch is reported as LEADER_NOT_AVAILABLE.
	old := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(5, "orders"))
	if code := old.Topics[0].Partitions[2].ErrorCode; code != kerr.LeaderNotAvailable.Code {
		t.Fatalf("v5 listener mismatch: code %d", code)
	}
}

func TestMetadataV0ListsOnlyLiveReplicas(t *testing.T) {
	resp := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(0, "orders"))
	p := resp.Topics[0].Partitions[0]
	if !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) || p.ErrorCode != kerr.ReplicaNotAvailable.Code {
		t.Fatalf("v0 partition %+v", p)
	}
}

func TestMetadataTopicSelection(t *testing.T) {
	all := []string{"__consumer_offsets", "orders"}
	for _, tc := range []struct {
		name string
		req  *kmsg.MetadataRequest
		want []string
	}{
		{"v1+ null is every topic", metadataReq(12), all},
		{"v1+ empty is none", metadataReq(12, []string{}...), nil},
		{"v0 empty is every topic", metadataReq(0, []string{}...), all},
		{"named", metadataReq(9, "orders"), []string{"orders"}},
		{"duplicates once", metadataReq(9, "orders", "orders"), []string{"orders"}},
	} {
		if got := topicNames(metadataResponse(testView(t, "PLAINTEXT"), tc.req)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: topics %v, want %v", tc.name, got, tc.want)
		}
	}
	resp := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(12))
	if !resp.Topics[0].IsInternal || resp.Topics[1].IsInternal {
		t.Fatal("__consumer_offsets should be internal, orders not")
	}
}

func TestMetadataUnknownTopics(t *testing.T) {
	resp := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(12, "missing", "bad name!"))
	if len(resp.Topics) != 2 {
		t.Fatalf("topics %+v", resp.Topics)
	}
	// No auto-creation, whatever AllowAutoTopicCreation says.
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || *resp.Topics[0].Topic != "missing" || len(resp.Topics[0].Partitions) != 0 {
		t.Fatalf("missing topic %+v", resp.Topics[0])
	}
	if resp.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("invalid topic name answered %d", resp.Topics[1].ErrorCode)
	}

	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	for _, id := range [][16]byte{ordersID, {0xee}} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.TopicID = id
		req.Topics = append(req.Topics, rt)
	}
	resp = metadataResponse(testView(t, "PLAINTEXT"), req)
	if len(resp.Topics) != 2 || *resp.Topics[0].Topic != "orders" || resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code || resp.Topics[1].TopicID != [16]byte{0xee} {
		t.Fatalf("by id: %+v", resp.Topics)
	}
}

// TestMetadataEncodesAtEveryVersion round-trips an answer through the wire format at each served
// version, as a client would read it.
func TestMetadataEncodesAtEveryVersion(t *testing.T) {
	for v := int16(0); v <= metadataMaxVersion; v++ {
		resp := metadataResponse(testView(t, "PLAINTEXT"), metadataReq(v))
		resp.SetVersion(v)
		back := kmsg.NewPtrMetadataResponse()
		back.SetVersion(v)
		if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if len(back.Brokers) != 1 || len(back.Topics) != 2 || len(back.Topics[1].Partitions) != 4 {
			t.Fatalf("v%d decoded %d brokers %d topics", v, len(back.Brokers), len(back.Topics))
		}
	}
}
