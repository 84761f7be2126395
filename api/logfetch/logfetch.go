// Package logfetch is the wire form of the metadata log that brokers follow: the RecordBatches bytes of a
// Fetch (key 1) answer on the controller port. Each log entry travels as one Kafka v2 record batch
// (magic 2, uncompressed) holding one record, so any Kafka tool that reads record batches can read it,
// and the batch's own fields carry the Raft offset and epoch.
//
// Layout of one batch, as Kafka defines it (all integers big-endian):
//
//	 0  BaseOffset            int64  the entry's offset
//	 8  Length                int32  bytes after this field (49 + the records' bytes)
//	12  PartitionLeaderEpoch  int32  the entry's epoch
//	16  Magic                 int8   2
//	17  CRC                   uint32 CRC-32C (Castagnoli) of bytes 21 to the end of the batch
//	21  Attributes            int16  0: no compression, create time, not transactional, not control
//	23  LastOffsetDelta       int32  0
//	27  FirstTimestamp        int64  -1: the log keeps no time per entry
//	35  MaxTimestamp          int64  -1
//	43  ProducerID            int64  -1
//	51  ProducerEpoch         int16  -1
//	53  BaseSequence          int32  -1
//	57  NumRecords            int32  1
//	61  Records: one record whose Value is the entry's data (varint-framed, offset delta 0, no key,
//	    no headers)
//
// The package imports nothing of ours: it is a contract between the controller that encodes and the
// broker that decodes.
package logfetch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Entry is one entry of the metadata log. Data is empty for Raft's own entries (such as the empty entry
// every new leader writes), which still travel so that a follower's offsets never skip.
type Entry struct {
	Offset, Epoch uint64
	Data          []byte
}

// ErrCorrupt marks bytes that are not valid record batches: a CRC mismatch, a bad length or magic, or
// a feature this log never uses (compression). A follower must not apply anything from such a fetch.
var ErrCorrupt = errors.New("corrupt metadata log batch")

const (
	// batchHeaderSize is everything before the records: BaseOffset through NumRecords.
	batchHeaderSize = 61
	// lengthFieldEnd is where the bytes counted by Length begin.
	lengthFieldEnd = 12
	// crcStart is where the bytes covered by the CRC begin (Attributes onward); the CRC itself sits in
	// the four bytes before.
	crcStart = 21
	// minBatchLength is the smallest valid Length: the header after the Length field, with no records.
	minBatchLength = batchHeaderSize - lengthFieldEnd
	// compressionMask and controlBit are the Attributes bits this package looks at.
	compressionMask = 0x07
	controlBit      = 0x20
	// maxData keeps a record, and the batch around it, within Kafka's int32 lengths.
	maxData = math.MaxInt32 - 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchSize is the number of bytes AppendEntries writes for e, so a server can fill a byte budget
// without encoding twice.
func BatchSize(e Entry) int {
	rec := recordBodySize(len(e.Data))
	return batchHeaderSize + kbin.VarintLen(int32(rec)) + rec
}

// recordBodySize is the size of a record after its Length varint: attributes (1), timestamp delta 0
// (1), offset delta 0 (1), null key (1), the value's length and bytes, zero headers (1).
func recordBodySize(n int) int {
	return 5 + kbin.VarintLen(int32(n)) + n
}

// AppendEntries encodes entries as Kafka v2 record batches, one batch per entry, and appends them to dst.
// It panics on an entry Kafka's format cannot carry (an offset above MaxInt64, an epoch above MaxInt32,
// or data of 2 GiB or more): the metadata log never produces one, so meeting one is a bug.
func AppendEntries(dst []byte, entries []Entry) []byte {
	for _, e := range entries {
		if e.Offset > math.MaxInt64 || e.Epoch > math.MaxInt32 || len(e.Data) > maxData {
			panic(fmt.Sprintf("logfetch: entry at offset %d (epoch %d, %d bytes) does not fit a Kafka record batch", e.Offset, e.Epoch, len(e.Data)))
		}
		value := e.Data
		if value == nil {
			value = []byte{} // an empty value, not a null one (which Kafka reads as a tombstone)
		}
		rec := kmsg.Record{Length: int32(recordBodySize(len(value))), Value: value}
		recSize := kbin.VarintLen(rec.Length) + int(rec.Length)
		batch := kmsg.RecordBatch{
			FirstOffset:          int64(e.Offset),
			Length:               int32(minBatchLength + recSize),
			PartitionLeaderEpoch: int32(e.Epoch),
			Magic:                2,
			FirstTimestamp:       -1,
			MaxTimestamp:         -1,
			ProducerID:           -1,
			ProducerEpoch:        -1,
			FirstSequence:        -1,
			NumRecords:           1,
		}
		start := len(dst)
		dst = batch.AppendTo(dst) // Records is empty: this writes the header only
		dst = rec.AppendTo(dst)
		binary.BigEndian.PutUint32(dst[start+crcStart-4:], crc32.Checksum(dst[start+crcStart:], castagnoli))
	}
	return dst
}

// DecodeEntries parses record batches: what AppendEntries wrote, and any valid uncompressed v2 batches,
// where each record becomes one Entry at BaseOffset + its offset delta, with the batch's epoch. Records
// of control batches (Raft's own entries in Kafka's log) come back with empty Data, so offsets never skip.
//
// A truncated batch at the end is ignored: Kafka may cut the last batch of a fetch at the byte limit, and
// the follower fetches it again from its offset. A CRC mismatch or a malformed batch is an error wrapping
// ErrCorrupt and naming the batch's offset; nothing decoded before it is returned then.
//
// Data slices alias b: copy them if b is reused.
func DecodeEntries(b []byte) ([]Entry, error) {
	var entries []Entry
	next := int64(-1) // the lowest offset the next record may have, once one has been read
	for len(b) >= lengthFieldEnd {
		base := int64(binary.BigEndian.Uint64(b))
		length := int32(binary.BigEndian.Uint32(b[8:]))
		if length < minBatchLength {
			return nil, fmt.Errorf("%w: the batch at offset %d declares %d bytes, fewer than a batch header", ErrCorrupt, base, length)
		}
		size := lengthFieldEnd + int(length)
		if size > len(b) {
			break // a partial batch at the end of the fetch
		}
		raw := b[:size]
		b = b[size:]
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(raw); err != nil {
			return nil, fmt.Errorf("%w: the batch at offset %d does not parse: %v", ErrCorrupt, base, err)
		}
		if batch.Magic != 2 {
			return nil, fmt.Errorf("%w: the batch at offset %d has magic %d; only v2 record batches (magic 2) are read", ErrCorrupt, base, batch.Magic)
		}
		if want, got := uint32(batch.CRC), crc32.Checksum(raw[crcStart:], castagnoli); want != got {
			return nil, fmt.Errorf("%w: the batch at offset %d fails its CRC-32C (stored %08x, computed %08x)", ErrCorrupt, base, want, got)
		}
		if base < next || base < 0 {
			return nil, fmt.Errorf("%w: the batch at offset %d does not follow the previous one (next offset %d)", ErrCorrupt, base, next)
		}
		if batch.PartitionLeaderEpoch < 0 {
			return nil, fmt.Errorf("%w: the batch at offset %d has no leader epoch (%d)", ErrCorrupt, base, batch.PartitionLeaderEpoch)
		}
		if c := batch.Attributes & compressionMask; c != 0 {
			return nil, fmt.Errorf("%w: the batch at offset %d is compressed (codec %d); the metadata log never compresses", ErrCorrupt, base, c)
		}
		if batch.NumRecords < 0 || int(batch.NumRecords) > len(batch.Records) {
			return nil, fmt.Errorf("%w: the batch at offset %d claims %d records in %d bytes", ErrCorrupt, base, batch.NumRecords, len(batch.Records))
		}
		control := batch.Attributes&controlBit != 0
		recs := batch.Records
		for i := int32(0); i < batch.NumRecords; i++ {
			l, n := kbin.Varint(recs)
			if n <= 0 || l < 0 || int(l) > len(recs)-n {
				return nil, fmt.Errorf("%w: record %d of the batch at offset %d has a bad length", ErrCorrupt, i, base)
			}
			var rec kmsg.Record
			if err := rec.ReadFrom(recs[:n+int(l)]); err != nil {
				return nil, fmt.Errorf("%w: record %d of the batch at offset %d does not parse: %v", ErrCorrupt, i, base, err)
			}
			recs = recs[n+int(l):]
			if rec.OffsetDelta < 0 || rec.OffsetDelta > batch.LastOffsetDelta {
				return nil, fmt.Errorf("%w: record %d of the batch at offset %d has offset delta %d outside 0..%d", ErrCorrupt, i, base, rec.OffsetDelta, batch.LastOffsetDelta)
			}
			off := base + int64(rec.OffsetDelta)
			if off < next {
				return nil, fmt.Errorf("%w: record %d of the batch at offset %d goes back to offset %d", ErrCorrupt, i, base, off)
			}
			next = off + 1
			e := Entry{Offset: uint64(off), Epoch: uint64(batch.PartitionLeaderEpoch)}
			if !control && len(rec.Value) > 0 {
				e.Data = rec.Value
			}
			entries = append(entries, e)
		}
		if len(recs) != 0 {
			return nil, fmt.Errorf("%w: the batch at offset %d has %d bytes after its %d records", ErrCorrupt, base, len(recs), batch.NumRecords)
		}
		if last := base + int64(batch.LastOffsetDelta); last >= next {
			next = last + 1
		}
	}
	return entries, nil
}
