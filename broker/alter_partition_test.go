package broker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// expansionImage: brokers 1 and 2 may lead (epochs 10 and 20), 3 is fenced, 4 is in controlled shutdown,
// 5 is not registered. Topic "t" (id 7): partitions led by 1 with replicas 1..5 and ISR {1}; replicas
// 1,2 with full ISR; led by 2 with ISR {2}; and replicas 1,2 with ISR {1}, at partition epoch 4.
func expansionImage(t *testing.T, self int32, selfFenced bool) *metadatalog.Image {
	t.Helper()
	id := []byte{7, 15: 0}
	reg := func(id int32, epoch int64, fenced, shutdown bool) *metadatapb.Record {
		return rec(&metadatapb.RegisterBrokerRecord{BrokerId: id, BrokerEpoch: epoch, Fenced: fenced, InControlledShutdown: shutdown})
	}
	part := func(p int32, leader int32, replicas, isr []int32, epoch int32) *metadatapb.Record {
		return rec(&metadatapb.PartitionRecord{TopicId: id, PartitionId: p, Replicas: replicas, Isr: isr, Leader: leader, LeaderEpoch: 2, PartitionEpoch: epoch})
	}
	records := []*metadatapb.Record{
		reg(1, 10, self == 1 && selfFenced, false), reg(2, 20, false, false), reg(3, 30, true, false), reg(4, 40, false, true),
		rec(&metadatapb.TopicRecord{Name: "t", TopicId: id}),
		part(0, 1, []int32{1, 2, 3, 4, 5}, []int32{1}, 0),
		part(1, 1, []int32{1, 2}, []int32{1, 2}, 0),
		part(2, 2, []int32{2, 1}, []int32{2}, 0),
		part(3, 1, []int32{2, 1}, []int32{1}, 4),
	}
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func expansionsString(topics []kmsg.AlterPartitionRequestTopic) string {
	var parts []string
	for _, t := range topics {
		for _, p := range t.Partitions {
			var members []string
			for _, m := range p.NewEpochISR {
				members = append(members, fmt.Sprintf("%d@%d", m.BrokerID, m.BrokerEpoch))
			}
			parts = append(parts, fmt.Sprintf("%x/%d le=%d pe=%d isr=%v [%s]", t.TopicID[0], p.Partition, p.LeaderEpoch, p.PartitionEpoch, p.NewISR, strings.Join(members, " ")))
		}
	}
	return strings.Join(parts, "; ")
}

// TestISRExpansions: a leader grows an ISR by exactly the replicas that may lead (not fenced, shutting
// down or unregistered), with their broker epochs, for the partitions it leads and only those.
func TestISRExpansions(t *testing.T) {
	img := expansionImage(t, 1, false)
	for _, tc := range []struct {
		name    string
		self    int32
		refused map[partitionRef]bool
		limit   int
		want    string
	}{
		{"leader 1", 1, nil, 100, "7/0 le=2 pe=0 isr=[1 2] [1@10 2@20]; 7/3 le=2 pe=4 isr=[1 2] [1@10 2@20]"},
		{"limit", 1, nil, 1, "7/0 le=2 pe=0 isr=[1 2] [1@10 2@20]"},
		{"refused at this epoch", 1, map[partitionRef]bool{{[16]byte{7}, 3, 4}: true}, 100, "7/0 le=2 pe=0 isr=[1 2] [1@10 2@20]"},
		{"refused at an older epoch", 1, map[partitionRef]bool{{[16]byte{7}, 3, 3}: true}, 100, "7/0 le=2 pe=0 isr=[1 2] [1@10 2@20]; 7/3 le=2 pe=4 isr=[1 2] [1@10 2@20]"},
		{"leader 2", 2, nil, 100, "7/2 le=2 pe=0 isr=[2 1] [2@20 1@10]"},
		{"leads nothing", 4, nil, 100, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topics, n := isrExpansions(img, tc.self, tc.refused, tc.limit)
			if got := expansionsString(topics); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if want := strings.Count(tc.want, "isr="); n != want {
				t.Errorf("counted %d partitions, want %d", n, want)
			}
		})
	}
	// A leader that may not lead itself asks for nothing: its leaderships are about to move.
	if topics, n := isrExpansions(expansionImage(t, 1, true), 1, nil, 100); n != 0 {
		t.Errorf("a fenced leader asked to grow %s", expansionsString(topics))
	}
}
