package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apImage: brokers 1–3 unfenced, 4 fenced, 5 in controlled shutdown, 6 never registered; topic t1 with
// partition 0 led by 1 at leader epoch 3, partition epoch 5, over replicas 1–6 with ISR {1, 2}.
func apImage(t *testing.T) *metadatalog.Image {
	return rcImage(t, map[int32]string{4: "fenced", 5: "shutting"}, "1,2,3,4,5,6/1,2/1/3/5")
}

// apPart is one partition entry of an AlterPartition request, before the version decides its form.
type apPart struct {
	partition                 int32
	leaderEpoch, partitionEpo int32
	isr                       []int32
	epochs                    []int64 // v3: the members' broker epochs; nil: their registered epochs
	recovery                  int8
}

func apRequest(version int16, broker int32, brokerEpoch int64, topicName string, topicID [16]byte, parts ...apPart) *kmsg.AlterPartitionRequest {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version, req.BrokerID, req.BrokerEpoch = version, broker, brokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic, rt.TopicID = topicName, topicID
	for _, p := range parts {
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, rp.LeaderRecoveryState = p.partition, p.leaderEpoch, p.partitionEpo, p.recovery
		if version < 3 {
			rp.NewISR = p.isr
		} else {
			for i, id := range p.isr {
				m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
				m.BrokerID, m.BrokerEpoch = id, 100+int64(id)
				if p.epochs != nil {
					m.BrokerEpoch = p.epochs[i]
				}
				rp.NewEpochISR = append(rp.NewEpochISR, m)
			}
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestAlterPartition(t *testing.T) {
	t1 := rcTopic(1)
	ok := func(isr ...int32) apPart { return apPart{leaderEpoch: 3, partitionEpo: 5, isr: isr} }
	for _, tc := range []struct {
		name        string
		version     int16
		broker      int32
		brokerEpoch int64
		topicName   string
		topicID     [16]byte
		parts       []apPart
		topCode     *kerr.Error
		codes       []*kerr.Error
		changes     []string
		answer      string // the first partition's answer when accepted: leader/isr/le/pe
	}{
		{name: "shrink", version: 3, parts: []apPart{ok(1)}, changes: []string{"0:isr=[1]"}, answer: "1 [1] 3 6"},
		{name: "expand, in the order asked", version: 3, parts: []apPart{ok(3, 1, 2)}, changes: []string{"0:isr=[3 1 2]"}, answer: "1 [3 1 2] 3 6"},
		{name: "unchanged: nothing written", version: 3, parts: []apPart{ok(1, 2)}, changes: []string{}, answer: "1 [1 2] 3 5"},
		{name: "v0 names the topic", version: 0, topicName: "t1", topicID: [16]byte{}, parts: []apPart{ok(1)}, changes: []string{"0:isr=[1]"}, answer: "1 [1] 3 6"},
		{name: "v3 broker epoch -1 is not checked", version: 3, parts: []apPart{{leaderEpoch: 3, partitionEpo: 5, isr: []int32{1, 3}, epochs: []int64{-1, -1}}}, changes: []string{"0:isr=[1 3]"}, answer: "1 [1 3] 3 6"},

		{name: "stale broker epoch", version: 3, brokerEpoch: 7, parts: []apPart{ok(1)}, topCode: kerr.StaleBrokerEpoch},
		{name: "unknown broker", version: 3, broker: 9, parts: []apPart{ok(1)}, topCode: kerr.StaleBrokerEpoch},
		{name: "unknown topic id", version: 2, topicID: rcTopic(9), parts: []apPart{ok(1)}, codes: []*kerr.Error{kerr.UnknownTopicID}},
		{name: "unknown topic name", version: 1, topicName: "nope", parts: []apPart{ok(1)}, codes: []*kerr.Error{kerr.UnknownTopicOrPartition}},
		{name: "unknown partition", version: 3, parts: []apPart{{partition: 7, leaderEpoch: 3, partitionEpo: 5, isr: []int32{1}}}, codes: []*kerr.Error{kerr.UnknownTopicOrPartition}},
		{name: "leader epoch from the future", version: 3, parts: []apPart{{leaderEpoch: 4, partitionEpo: 5, isr: []int32{1}}}, codes: []*kerr.Error{kerr.NotController}},
		{name: "partition epoch from the future", version: 3, parts: []apPart{{leaderEpoch: 3, partitionEpo: 6, isr: []int32{1}}}, codes: []*kerr.Error{kerr.NotController}},
		{name: "old leader epoch", version: 3, parts: []apPart{{leaderEpoch: 2, partitionEpo: 5, isr: []int32{1}}}, codes: []*kerr.Error{kerr.FencedLeaderEpoch}},
		{name: "not the leader", version: 3, broker: 2, parts: []apPart{ok(2)}, codes: []*kerr.Error{kerr.NotLeaderForPartition}},
		{name: "old partition epoch", version: 3, parts: []apPart{{leaderEpoch: 3, partitionEpo: 4, isr: []int32{1}}}, codes: []*kerr.Error{kerr.InvalidUpdateVersion}},
		{name: "a member that is not a replica", version: 3, parts: []apPart{ok(1, 7)}, codes: []*kerr.Error{kerr.InvalidRequest}},
		{name: "a member twice", version: 3, parts: []apPart{ok(1, 2, 2)}, codes: []*kerr.Error{kerr.InvalidRequest}},
		{name: "without the leader", version: 3, parts: []apPart{ok(2, 3)}, codes: []*kerr.Error{kerr.InvalidRequest}},
		{name: "empty", version: 3, parts: []apPart{ok()}, codes: []*kerr.Error{kerr.InvalidRequest}},
		{name: "recovering", version: 3, parts: []apPart{{leaderEpoch: 3, partitionEpo: 5, isr: []int32{1}, recovery: 1}}, codes: []*kerr.Error{kerr.InvalidRequest}},
		{name: "a fenced member", version: 3, parts: []apPart{ok(1, 4)}, codes: []*kerr.Error{kerr.IneligibleReplica}},
		{name: "a member in controlled shutdown", version: 2, parts: []apPart{ok(1, 5)}, codes: []*kerr.Error{kerr.IneligibleReplica}},
		{name: "an unregistered member", version: 3, parts: []apPart{ok(1, 6)}, codes: []*kerr.Error{kerr.IneligibleReplica}},
		{name: "a member of another broker epoch", version: 3, parts: []apPart{{leaderEpoch: 3, partitionEpo: 5, isr: []int32{1, 3}, epochs: []int64{101, 99}}}, codes: []*kerr.Error{kerr.IneligibleReplica}},
		{name: "an ineligible member before v2", version: 1, topicName: "t1", parts: []apPart{ok(1, 4)}, codes: []*kerr.Error{kerr.OperationNotAttempted}},
		{name: "the same partition twice: the second sees the first", version: 3, parts: []apPart{ok(1), ok(1, 2)}, codes: []*kerr.Error{nil, kerr.InvalidUpdateVersion}, changes: []string{"0:isr=[1]"}, answer: "1 [1] 3 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := apImage(t)
			broker, epoch := tc.broker, tc.brokerEpoch
			if broker == 0 {
				broker = 1
			}
			if epoch == 0 {
				epoch = 100 + int64(broker)
			}
			topicID := tc.topicID
			if tc.topicName == "" && topicID == ([16]byte{}) {
				topicID = t1
			}
			req := apRequest(tc.version, broker, epoch, tc.topicName, topicID, tc.parts...)
			records, resp := replicationControl{}.alterPartition(img, req)
			if want := codeOf(tc.topCode); resp.ErrorCode != want {
				t.Fatalf("top-level error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), tc.topCode)
			}
			if tc.topCode != nil {
				if len(records) != 0 || len(resp.Topics) != 0 {
					t.Fatalf("a refused request wrote %d records and answered %d topics", len(records), len(resp.Topics))
				}
				return
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(tc.parts) {
				t.Fatalf("answered %+v", resp.Topics)
			}
			if got := resp.Topics[0].TopidID; tc.version >= 2 && got != topicID {
				t.Fatalf("answered topic id %x", got)
			}
			for i, po := range resp.Topics[0].Partitions {
				var want *kerr.Error
				if tc.codes != nil {
					want = tc.codes[i]
				}
				if po.ErrorCode != codeOf(want) {
					t.Fatalf("partition entry %d: %v, want %v", i, kerr.ErrorForCode(po.ErrorCode), want)
				}
			}
			if tc.changes == nil {
				tc.changes = []string{}
			}
			if got := rcChanges(records); !slices.Equal(got, tc.changes) {
				t.Fatalf("records %q, want %q", got, tc.changes)
			}
			if tc.answer != "" {
				po := resp.Topics[0].Partitions[0]
				got := fmtAnswer(po.LeaderID, po.ISR, po.LeaderEpoch, po.PartitionEpoch)
				if got != tc.answer {
					t.Fatalf("answered %s, want %s", got, tc.answer)
				}
				// The answer is the partition as it is once the records apply.
				img = ccApply(t, img, 2, records)
				p, _ := img.Partition(t1, 0)
				if got := fmtAnswer(p.Leader, p.ISR, p.LeaderEpoch, p.Epoch); got != tc.answer {
					t.Fatalf("the partition is %s once applied, answered %s", got, tc.answer)
				}
			}
		})
	}
}

func codeOf(e *kerr.Error) int16 {
	if e == nil {
		return 0
	}
	return e.Code
}

func fmtAnswer(leader int32, isr []int32, le, pe int32) string {
	return fmt.Sprintf("%d %v %d %d", leader, isr, le, pe)
}

// rcWrite writes records through the controller's loop, as a non-atomic result, and waits until the
// image the controller publishes holds them.
func rcWrite(t *testing.T, c *Controller, records []*metadatapb.Record) {
	t.Helper()
	done := make(chan bool, 1)
	var last uint64
	if !c.submit(context.Background(), func() {
		if err := c.writeInBatches(records, func(ok bool) { done <- ok }); err != nil {
			t.Errorf("write: %v", err)
			done <- false
		}
		last = c.state.nextOffset - 1
	}) {
		t.Fatal("the controller stopped")
	}
	if !<-done {
		t.Fatal("the write did not commit")
	}
	mtWait(t, "the write in the published image", func() bool { return c.Image().Offset >= last })
}

// rcLiveBrokers registers brokers 1..n on a real controller and unfences them; it returns their epochs.
func rcLiveBrokers(t *testing.T, c *Controller, clusterID string, n int32) map[int32]int64 {
	t.Helper()
	epochs := map[int32]int64{}
	for id := int32(1); id <= n; id++ {
		r := mtRegister(t, c, clusterID, id, byte(id))
		if r.ErrorCode != 0 {
			t.Fatalf("registering %d: %v", id, kerr.ErrorForCode(r.ErrorCode))
		}
		epochs[id] = r.BrokerEpoch
		if hb := mtHeartbeat(t, c, id, r.BrokerEpoch, 1<<40, false, false); hb.ErrorCode != 0 || hb.IsFenced {
			t.Fatalf("unfencing %d: %+v", id, hb)
		}
	}
	return epochs
}

// TestAlterPartitionOverTheWire sends AlterPartition to a running controller: the answer comes once
// the change commits and shows it, and the image the controller publishes holds it.
func TestAlterPartitionOverTheWire(t *testing.T) {
	c, clusterID := mtController(t, time.Minute)
	if r := c.APIs()[(&kmsg.AlterPartitionRequest{}).Key()]; r.Min != 0 || r.Max != 3 {
		t.Fatalf("AlterPartition served at %+v, want 0–3", r)
	}
	epochs := rcLiveBrokers(t, c, clusterID, 3)
	id := rcTopic(1)
	rcWrite(t, c, []*metadatapb.Record{
		{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: "t1", TopicId: id[:]}}},
		rcPartition(1, 0, "1,2,3/1,2,3/1"),
	})
	for _, version := range []int16{0, 1, 2, 3} {
		p, _ := c.Image().Partition(id, 0)
		isr := []int32{1, 2, 3}
		if len(p.ISR) == 3 {
			isr = []int32{1, 3}
		}
		var memberEpochs []int64
		for _, b := range isr {
			memberEpochs = append(memberEpochs, epochs[b])
		}
		req := apRequest(version, 1, epochs[1], "t1", id, apPart{leaderEpoch: p.LeaderEpoch, partitionEpo: p.Epoch, isr: isr, epochs: memberEpochs})
		resp, err := c.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ar := resp.(*kmsg.AlterPartitionResponse)
		if ar.ErrorCode != 0 || ar.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("v%d: refused: %+v", version, ar)
		}
		po := ar.Topics[0].Partitions[0]
		if !slices.Equal(po.ISR, isr) || po.PartitionEpoch != p.Epoch+1 || po.LeaderEpoch != p.LeaderEpoch || po.LeaderID != 1 {
			t.Fatalf("v%d: answered %+v", version, po)
		}
		// The answer leaves at commit; the image the controller publishes follows a moment later.
		mtWait(t, "the change in the published image", func() bool {
			now, _ := c.Image().Partition(id, 0)
			return slices.Equal(now.ISR, isr) && now.Epoch == po.PartitionEpoch
		})
	}
	// A broker that registered again since: its old epoch is refused outright.
	req := apRequest(3, 1, epochs[1]-1, "", id, apPart{isr: []int32{1}})
	resp, _ := c.Handle(context.Background(), req)
	if ec := resp.(*kmsg.AlterPartitionResponse).ErrorCode; ec != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("stale epoch answered %v", kerr.ErrorForCode(ec))
	}
}
