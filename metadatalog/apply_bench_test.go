package metadatalog

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

// applyBenchLog is what creating topics of perTopic partitions (replication factor 3 over 30 brokers,
// random topic ids, as CreateTopics writes them) puts in the log, in batches of perBatch topics.
func applyBenchLog(tb testing.TB, partitions, perTopic, perBatch int, brokers int32) [][]byte {
	rng := rand.New(rand.NewPCG(5, 5))
	var out []*metadatapb.RecordBatch
	batch := &metadatapb.RecordBatch{}
	for topic := range partitions / perTopic {
		id := make([]byte, 16)
		binary.BigEndian.PutUint64(id, rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		batch.Records = append(batch.Records, recTopic(fmt.Sprintf("topic-%07d", topic), id))
		for p := range perTopic {
			r := rng.Int32N(brokers)
			batch.Records = append(batch.Records, recPartition(id, int32(p), []int32{r, (r + 1) % brokers, (r + 2) % brokers}, r))
		}
		if (topic+1)%perBatch == 0 {
			out = append(out, batch)
			batch = &metadatapb.RecordBatch{}
		}
	}
	if len(batch.Records) > 0 {
		out = append(out, batch)
	}
	wire := make([][]byte, len(out))
	for i, b := range out {
		data, err := proto.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		wire[i] = data
	}
	return wire
}

// decodeBatches decodes a log as a follower or a broker receives it.
func decodeBatches(tb testing.TB, wire [][]byte) []*metadatapb.RecordBatch {
	out := make([]*metadatapb.RecordBatch, len(wire))
	for i, data := range wire {
		out[i] = &metadatapb.RecordBatch{}
		if err := proto.Unmarshal(data, out[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// BenchmarkApplyCreateTopics applies 200,000 partitions, created as topics of 100 (replication factor
// 3) in batches of 1 or 100 topics on 3 or 30 brokers, to an empty image. Controllers and brokers keep
// the same image (brokers use the partition index too, to find the partitions they lead). The batches
// are decoded first, untimed, as a replica has them. It reports Apply's time per partition, the CPU
// the process used meanwhile (the collector's included) per partition, and the heap the final image
// holds per partition once the decoded batches are gone (the image keeps the records' replica and ISR
// lists): DESIGN.md budgets 1 KiB of controller memory per partition.
func BenchmarkApplyCreateTopics(b *testing.B) {
	const partitions, perTopic = 200_000, 100
	for _, shape := range []struct {
		perBatch int
		brokers  int32
	}{{1, 3}, {100, 3}, {1, 30}, {100, 30}} {
		b.Run(fmt.Sprintf("topics-per-batch=%d/brokers=%d", shape.perBatch, shape.brokers), func(b *testing.B) {
			wire := applyBenchLog(b, partitions, perTopic, shape.perBatch, shape.brokers)
			var elapsed, cpu time.Duration
			var heap float64
			for b.Loop() {
				b.StopTimer()
				before := pixHeap()
				batches := decodeBatches(b, wire)
				b.StartTimer()
				t0, cpu0 := time.Now(), processCPU()
				img := EmptyImage()
				for i, batch := range batches {
					next, err := img.Apply(uint64(i+1), 1, batch)
					if err != nil {
						b.Fatal(err)
					}
					img = next
				}
				elapsed, cpu = elapsed+time.Since(t0), cpu+processCPU()-cpu0
				b.StopTimer()
				if img.PartitionCount() != partitions {
					b.Fatalf("%d partitions", img.PartitionCount())
				}
				batches = nil
				heap = float64(int64(pixHeap())-int64(before)) / partitions
				runtime.KeepAlive(img)
				b.StartTimer()
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/partitions, "apply-ns/partition")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/partitions, "cpu-ns/partition")
			b.ReportMetric(heap, "heap-B/partition")
		})
	}
}

// processCPU is the CPU time the process has used, every thread and the collector's included: a busy
// machine inflates it less than the time on the clock.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
