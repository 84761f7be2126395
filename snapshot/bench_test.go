package snapshot

import (
	"os"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
)

// BenchmarkMillionPartitions writes and reads a snapshot of 10,000 topics of 100 partitions each, three
// replicas per partition, with fsync: go test -run '^$' -bench MillionPartitions -benchtime 1x ./snapshot
func BenchmarkMillionPartitions(b *testing.B) {
	const topics, partitions = 10_000, 100
	records := image(5, topics, partitions)
	const n = topics * partitions
	dir := b.TempDir()
	var path string

	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			var err error
			if path, err = Write(dir, testHeader(), records); err != nil {
				b.Fatal(err)
			}
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "bytes/partition")
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/n, "ns/partition")
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		var got []*metadatapb.Record
		start := time.Now()
		for b.Loop() {
			var err error
			if _, got, err = Read(path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N)/n, "ns/partition")
		if len(got) != len(records) {
			b.Fatalf("read %d records, wrote %d", len(got), len(records))
		}
	})
}
