package logfetch

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestKafkaClientReadsBatches hands the encoding to franz-go's consumer-side parser, which validates
// lengths and CRCs as a Kafka client does: what the controller sends is ordinary Kafka record batches.
func TestKafkaClientReadsBatches(t *testing.T) {
	want := sampleEntries()[:4]
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.HighWatermark = int64(want[len(want)-1].Offset)
	rp.RecordBatches = AppendEntries(nil, want)
	fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: 1, Topic: "__cluster_metadata"}, &rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("franz-go refused the batches: %v", fp.Err)
	}
	if len(fp.Records) != len(want) || next != int64(want[len(want)-1].Offset)+1 {
		t.Fatalf("franz-go read %d records, next offset %d", len(fp.Records), next)
	}
	for i, r := range fp.Records {
		w := want[i]
		if r.Offset != int64(w.Offset) || r.LeaderEpoch != int32(w.Epoch) || !bytes.Equal(r.Value, w.Data) {
			t.Fatalf("record %d = offset %d epoch %d value %q; want %+v", i, r.Offset, r.LeaderEpoch, r.Value, w)
		}
	}
}
