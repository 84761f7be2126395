package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func elRequest(version int16, electionType int8, topics map[string][]int32) *kmsg.ElectLeadersRequest {
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = version, electionType
	if topics == nil {
		return req // null: every partition
	}
	req.Topics = []kmsg.ElectLeadersRequestTopic{}
	names := make([]string, 0, len(topics))
	for name := range topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = name, topics[name]
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// elResults renders an answer as "topic-partition:CODE" (and ":message" when withMessage).
func elResults(resp *kmsg.ElectLeadersResponse, withMessage bool) []string {
	out := []string{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			s := fmt.Sprintf("%s-%d:NONE", rt.Topic, p.Partition)
			if p.ErrorCode != 0 {
				s = fmt.Sprintf("%s-%d:%s", rt.Topic, p.Partition, kerr.TypedErrorForCode(p.ErrorCode).Message)
			} else if p.ErrorMessage != nil {
				s += ":unexpected message"
			}
			if withMessage && p.ErrorMessage != nil {
				s += ":" + *p.ErrorMessage
			}
			out = append(out, s)
		}
	}
	return out
}

func TestElectLeaders(t *testing.T) {
	// Brokers 1, 2, 5 unfenced; 3 fenced; 4 in controlled shutdown.
	parts := []string{
		"1,2/1,2/2",    // 0: the preferred replica can lead: it does
		"1,2/1,2/1",    // 1: it leads already
		"3,2/3,2/2",    // 2: preferred fenced
		"4,2/4,2/2",    // 3: preferred shutting down
		"1,2/2/2",      // 4: preferred not in the ISR
		"3,2,5/3,5/-1", // 5: offline, preferred fenced, another ISR member can lead: Kafka elects it
		"3,4/3,4/-1",   // 6: offline, nobody can lead
	}
	states := map[int32]string{3: "fenced", 4: "shutting"}
	notAvailable := ccCode(kerr.PreferredLeaderNotAvailable)
	for _, tc := range []struct {
		name    string
		req     *kmsg.ElectLeadersRequest
		top     *kerr.Error
		results []string
		changes []string
	}{{
		name: "every case by name",
		req:  elRequest(2, 0, map[string][]int32{"t1": {0, 1, 2, 3, 4, 5, 6, 99}, "nope": {0}}),
		results: []string{
			"nope-0:" + ccCode(kerr.UnknownTopicOrPartition),
			"t1-0:NONE", "t1-1:" + ccCode(kerr.ElectionNotNeeded), "t1-2:" + notAvailable, "t1-3:" + notAvailable,
			"t1-4:" + notAvailable, "t1-5:NONE", "t1-6:" + notAvailable, "t1-99:" + ccCode(kerr.UnknownTopicOrPartition),
		},
		changes: []string{"0:leader=1", "5:leader=5"},
	}, {
		name:    "v0 has no election type: preferred",
		req:     elRequest(0, 0, map[string][]int32{"t1": {0}}),
		results: []string{"t1-0:NONE"},
		changes: []string{"0:leader=1"},
	}, {
		name:    "a partition named twice is elected once",
		req:     elRequest(1, 0, map[string][]int32{"t1": {0, 0}}),
		results: []string{"t1-0:NONE", "t1-0:" + ccCode(kerr.ElectionNotNeeded)},
		changes: []string{"0:leader=1"},
	}, {
		name:    "null: every partition, answering only those that needed an election",
		req:     elRequest(2, 0, nil),
		results: []string{"t1-0:NONE", "t1-2:" + notAvailable, "t1-3:" + notAvailable, "t1-4:" + notAvailable, "t1-5:NONE", "t1-6:" + notAvailable},
		changes: []string{"0:leader=1", "5:leader=5"},
	}, {
		name:    "unclean election is refused",
		req:     elRequest(2, 1, map[string][]int32{"t1": {6}}),
		top:     kerr.InvalidRequest,
		results: []string{"t1-6:" + ccCode(kerr.InvalidRequest)},
		changes: []string{},
	}, {
		name:    "an unknown election type is refused",
		req:     elRequest(1, 2, map[string][]int32{"t1": {0}}),
		top:     kerr.InvalidRequest,
		results: []string{"t1-0:" + ccCode(kerr.InvalidRequest)},
		changes: []string{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			img := rcImage(t, states, parts...)
			records, resp := replicationControl{}.electLeaders(img, tc.req)
			if resp.ErrorCode != codeOf(tc.top) {
				t.Fatalf("top-level %v, want %v", kerr.ErrorForCode(resp.ErrorCode), tc.top)
			}
			if got := elResults(resp, false); !slices.Equal(got, tc.results) {
				t.Fatalf("results\n%q\nwant\n%q", got, tc.results)
			}
			if got := rcChanges(records); !slices.Equal(got, tc.changes) {
				t.Fatalf("records %q, want %q", got, tc.changes)
			}
			img = ccApply(t, img, 2, records)
			for _, c := range tc.changes {
				var p, leader int32
				fmt.Sscanf(c, "%d:leader=%d", &p, &leader)
				part, _ := img.Partition(rcTopic(1), p)
				if part.Leader != leader || part.LeaderEpoch != 1 || part.Epoch != 1 {
					t.Errorf("partition %d after the election: leader %d, leader epoch %d, partition epoch %d", p, part.Leader, part.LeaderEpoch, part.Epoch)
				}
			}
		})
	}
}

func TestElectLeadersMessages(t *testing.T) {
	img := rcImage(t, map[int32]string{3: "fenced", 4: "shutting"}, "1,2/1,2/1", "3,2/3,2/2", "4,2/4,2/2", "1,2/2/2")
	_, resp := replicationControl{}.electLeaders(img, elRequest(2, 0, map[string][]int32{"t1": {0, 1, 2, 3, 9}, "nope": {1}}))
	got := strings.Join(elResults(resp, true), "\n")
	for _, want := range []string{
		"nope-1:" + ccCode(kerr.UnknownTopicOrPartition) + ":No such topic as nope",
		"t1-0:" + ccCode(kerr.ElectionNotNeeded) + ":Broker 1, the preferred replica of t1-0, leads it already.",
		"broker 3, the preferred replica of t1-1, is fenced.",
		"broker 4, the preferred replica of t1-2, is in controlled shutdown.",
		"broker 1, the preferred replica of t1-3, is not in its ISR [2].",
		"t1-9:" + ccCode(kerr.UnknownTopicOrPartition) + ":No such partition as t1-9",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
	_, resp = replicationControl{}.electLeaders(img, elRequest(2, 1, map[string][]int32{"t1": {0}}))
	if got := elResults(resp, true); len(got) != 1 || !strings.Contains(got[0], "Unclean leader election is not supported") {
		t.Errorf("unclean election answered %q", got)
	}
}

// TestElectLeadersOverTheWire: a preferred election on a running controller answers once the new
// leader has committed; an empty list asks for nothing; a null list elects everywhere it is needed,
// in bounded batches.
func TestElectLeadersOverTheWire(t *testing.T) {
	c, clusterID := mtController(t, time.Minute)
	if r := c.APIs()[(&kmsg.ElectLeadersRequest{}).Key()]; r.Min != 0 || r.Max != 2 {
		t.Fatalf("ElectLeaders served at %+v, want 0–2", r)
	}
	rcLiveBrokers(t, c, clusterID, 3)
	id := rcTopic(1)
	const partitions = 2*maxRecordsPerBatch + 500
	records := []*metadatapb.Record{{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: "t1", TopicId: id[:]}}}}
	for p := int32(0); p < partitions; p++ {
		records = append(records, rcPartition(1, p, "1,2,3/1,2,3/2"))
	}
	rcWrite(t, c, records)

	resp, err := c.Handle(context.Background(), elRequest(2, 0, map[string][]int32{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.(*kmsg.ElectLeadersResponse); got.ErrorCode != 0 || len(got.Topics) != 0 {
		t.Fatalf("an empty list answered %+v", got)
	}

	resp, _ = c.Handle(context.Background(), elRequest(2, 0, map[string][]int32{"t1": {0}}))
	if got := elResults(resp.(*kmsg.ElectLeadersResponse), true); !slices.Equal(got, []string{"t1-0:NONE"}) {
		t.Fatalf("answered %q", got)
	}
	// The answer leaves at commit; the image the controller publishes follows a moment later.
	mtWait(t, "the election in the published image", func() bool {
		p, _ := c.Image().Partition(id, 0)
		return p.Leader == 1 && p.LeaderEpoch == 1
	})

	before := c.Image().Offset
	resp, _ = c.Handle(context.Background(), elRequest(2, 0, nil))
	er := resp.(*kmsg.ElectLeadersResponse)
	if len(er.Topics) != 1 || len(er.Topics[0].Partitions) != partitions-1 {
		t.Fatalf("null list answered %d topics", len(er.Topics))
	}
	mtWait(t, "the elections in the published image", func() bool { return !c.Image().LeadsAny(2) })
	img := c.Image()
	if batches := img.Offset - before; batches < 3 {
		t.Fatalf("%d elections written in %d batches, want at least 3 of at most %d", partitions-1, batches, maxRecordsPerBatch)
	}
	if img.LeadsAny(2) {
		t.Fatal("broker 2 still leads a partition whose preferred replica is 1")
	}
}
