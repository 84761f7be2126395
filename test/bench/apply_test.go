//go:build linux

package bench

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"google.golang.org/protobuf/proto"
)

const (
	applyRepeats    = 3
	applyBatches    = 300
	applyBatchSize  = 1000
	applyConfigKeys = 50
)

// partitionBatches builds applyBatches batches of applyBatchSize records: each creates one topic
// (TopicRecord) and its applyBatchSize-1 partitions (PartitionRecords, three replicas).
func partitionBatches() []*metadatapb.RecordBatch {
	out := make([]*metadatapb.RecordBatch, 0, applyBatches)
	for t := range applyBatches {
		id := make([]byte, 16)
		binary.BigEndian.PutUint64(id[8:], uint64(t+1))
		recs := make([]*metadatapb.Record, 0, applyBatchSize)
		recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{
			Name: fmt.Sprintf("topic-%05d", t), TopicId: id}}})
		for p := range applyBatchSize - 1 {
			recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{
				PartitionId: int32(p), TopicId: id, Replicas: []int32{1, 2, 3}, Isr: []int32{1, 2, 3}, Leader: int32(p%3 + 1)}}})
		}
		out = append(out, &metadatapb.RecordBatch{Records: recs})
	}
	return out
}

// configBatches builds applyBatches batches of applyBatchSize ConfigRecords on topic resources,
// applyConfigKeys keys per topic.
func configBatches() []*metadatapb.RecordBatch {
	out := make([]*metadatapb.RecordBatch, 0, applyBatches)
	n := 0
	for range applyBatches {
		recs := make([]*metadatapb.Record, 0, applyBatchSize)
		for range applyBatchSize {
			v := fmt.Sprint(n)
			recs = append(recs, &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
				ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC,
				ResourceName: fmt.Sprintf("topic-%06d", n/applyConfigKeys),
				Name:         fmt.Sprintf("config.key.%02d", n%applyConfigKeys), Value: &v}}})
			n++
		}
		out = append(out, &metadatapb.RecordBatch{Records: recs})
	}
	return out
}

// applyResult is the state machine's rate over one workload.
type applyResult struct {
	records       int
	apply, replay time.Duration // Image.Apply alone; decode + Image.Apply, as a replica replays the log
}

func (r applyResult) applyRate() float64  { return float64(r.records) / r.apply.Seconds() }
func (r applyResult) replayRate() float64 { return float64(r.records) / r.replay.Seconds() }

// measureApply applies batches to an empty image in log order, first as decoded batches, then from
// their encoded form (proto.Unmarshal + Apply), which is what a controller does for each committed
// entry. Each is repeated applyRepeats times and the median kept, since a CPU-bound figure on a shared
// 2-core machine moves with whatever else runs.
func measureApply(batches []*metadatapb.RecordBatch) (applyResult, error) {
	var res applyResult
	for _, b := range batches {
		res.records += len(b.GetRecords())
	}
	encoded := make([][]byte, len(batches))
	for i, b := range batches {
		data, err := proto.Marshal(b)
		if err != nil {
			return res, err
		}
		encoded[i] = data
	}
	var applies, replays []time.Duration
	for range applyRepeats {
		runtime.GC()
		img := metadatalog.EmptyImage()
		start := time.Now()
		for i, b := range batches {
			next, err := img.Apply(uint64(i+1), 1, b)
			if err != nil {
				return res, err
			}
			img = next
		}
		applies = append(applies, time.Since(start))

		runtime.GC()
		img = metadatalog.EmptyImage()
		start = time.Now()
		for i, data := range encoded {
			var b metadatapb.RecordBatch
			if err := proto.Unmarshal(data, &b); err != nil {
				return res, err
			}
			next, err := img.Apply(uint64(i+1), 1, &b)
			if err != nil {
				return res, err
			}
			img = next
		}
		replays = append(replays, time.Since(start))
	}
	res.apply, res.replay = summarize(applies).p50, summarize(replays).p50
	return res, nil
}
