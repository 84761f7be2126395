package logfetch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func sampleEntries() []Entry {
	return []Entry{
		{Offset: 1, Epoch: 1, Data: []byte("bootstrap records")},
		{Offset: 2, Epoch: 2},                                        // a new leader's empty entry
		{Offset: 3, Epoch: 2, Data: []byte{}},                        // empty, not nil
		{Offset: 4, Epoch: 2, Data: bytes.Repeat([]byte{0xab}, 300)}, // a multi-byte varint length
		{Offset: 1 << 40, Epoch: 1<<31 - 1, Data: []byte("far")},
	}
}

func sameEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decoded %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.Epoch != w.Epoch || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("entry %d = {%d %d %q}, want {%d %d %q}", i, g.Offset, g.Epoch, g.Data, w.Offset, w.Epoch, w.Data)
		}
		if len(g.Data) == 0 && g.Data != nil {
			t.Fatalf("entry %d: empty Data should be nil", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	want := sampleEntries()
	prefix := []byte("prefix")
	b := AppendEntries(append([]byte(nil), prefix...), want)
	if !bytes.HasPrefix(b, prefix) {
		t.Fatal("AppendEntries overwrote dst")
	}
	b = b[len(prefix):]
	total := 0
	for _, e := range want {
		total += BatchSize(e)
	}
	if total != len(b) {
		t.Fatalf("BatchSize sums to %d, AppendEntries wrote %d", total, len(b))
	}
	got, err := DecodeEntries(b)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, want)

	if got, err := DecodeEntries(nil); err != nil || len(got) != 0 {
		t.Fatalf("DecodeEntries(nil) = %v, %v", got, err)
	}
	if b := AppendEntries(nil, nil); len(b) != 0 {
		t.Fatalf("AppendEntries of nothing wrote %d bytes", len(b))
	}
}

// TestKafkaLayout checks the bytes against Kafka's record batch layout as franz-go reads it, so any
// Kafka reader understands what the controller sends.
func TestKafkaLayout(t *testing.T) {
	e := Entry{Offset: 7, Epoch: 3, Data: []byte("value")}
	b := AppendEntries(nil, []Entry{e})
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if rb.FirstOffset != 7 || rb.PartitionLeaderEpoch != 3 || rb.Magic != 2 || rb.Attributes != 0 ||
		rb.LastOffsetDelta != 0 || rb.NumRecords != 1 || rb.ProducerID != -1 || int(rb.Length) != len(b)-12 {
		t.Fatalf("batch header %+v", rb)
	}
	if want := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(rb.CRC) != want {
		t.Fatalf("CRC %08x, want CRC-32C of the bytes after it %08x", uint32(rb.CRC), want)
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(rb.Records); err != nil {
		t.Fatal(err)
	}
	if rec.OffsetDelta != 0 || rec.Key != nil || string(rec.Value) != "value" || len(rec.Headers) != 0 {
		t.Fatalf("record %+v", rec)
	}
	// The record's Length is everything after its own varint.
	if int(rec.Length) != len(rb.Records)-1 {
		t.Fatalf("record length %d, records bytes %d", rec.Length, len(rb.Records))
	}
}

func TestTruncatedTailIgnored(t *testing.T) {
	want := sampleEntries()
	b := AppendEntries(nil, want)
	lastStart := len(b) - BatchSize(want[len(want)-1])
	for cut := lastStart; cut < len(b); cut++ {
		got, err := DecodeEntries(b[:cut])
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		sameEntries(t, got, want[:len(want)-1])
	}
}

func TestCorruptionNamesTheOffset(t *testing.T) {
	entries := []Entry{{Offset: 10, Epoch: 1, Data: []byte("ok")}, {Offset: 11, Epoch: 1, Data: []byte("damaged")}}
	clean := AppendEntries(nil, entries)
	second := BatchSize(entries[0])
	// Flip each byte covered by the second batch's CRC, and the CRC itself.
	for i := second + 17; i < len(clean); i++ {
		b := bytes.Clone(clean)
		b[i] ^= 0x40
		got, err := DecodeEntries(b)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: got %v, %v; want ErrCorrupt", i, got, err)
		}
		if !strings.Contains(err.Error(), "offset 11") || !strings.Contains(err.Error(), "CRC") {
			t.Fatalf("byte %d flipped: error %q should name offset 11 and the CRC", i, err)
		}
	}
	// A damaged magic byte (before the CRC's range).
	b := bytes.Clone(clean)
	b[second+16] = 1
	if _, err := DecodeEntries(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 11") {
		t.Fatalf("bad magic: %v", err)
	}
	// A length too small for a header.
	b = bytes.Clone(clean)
	binary.BigEndian.PutUint32(b[second+8:], 10)
	if _, err := DecodeEntries(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 11") {
		t.Fatalf("short length: %v", err)
	}
}

// rebatch rewrites the header fields of the batch at b and fixes its CRC, to build valid-but-unusual batches.
func rebatch(b []byte, edit func(*kmsg.RecordBatch)) []byte {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		panic(err)
	}
	edit(&rb)
	rb.Length = int32(49 + len(rb.Records))
	out := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

func TestOtherValidBatches(t *testing.T) {
	// A Kafka-style batch with three records at offset deltas 0..2.
	recs := []kmsg.Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("b")}, {OffsetDelta: 2, Value: nil}}
	var body []byte
	for _, r := range recs {
		tmp := r.AppendTo(nil) // Length 0 encodes as one byte
		r.Length = int32(len(tmp) - 1)
		body = r.AppendTo(body)
	}
	b := rebatch(AppendEntries(nil, []Entry{{Offset: 20, Epoch: 4}}), func(rb *kmsg.RecordBatch) {
		rb.Records, rb.NumRecords, rb.LastOffsetDelta = body, 3, 2
	})
	got, err := DecodeEntries(b)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, []Entry{{20, 4, []byte("a")}, {21, 4, []byte("b")}, {22, 4, nil}})

	// A control batch's records are Raft's own: they keep their offsets but carry no data.
	b = rebatch(AppendEntries(nil, []Entry{{Offset: 30, Epoch: 5, Data: []byte("leader change")}}), func(rb *kmsg.RecordBatch) {
		rb.Attributes |= controlBit
	})
	got, err = DecodeEntries(b)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, got, []Entry{{30, 5, nil}})

	// Compression is refused, not misread.
	b = rebatch(AppendEntries(nil, []Entry{{Offset: 40, Epoch: 5, Data: []byte("x")}}), func(rb *kmsg.RecordBatch) {
		rb.Attributes |= 4
	})
	if _, err := DecodeEntries(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "compressed") {
		t.Fatalf("compressed batch: %v", err)
	}

	// Offsets that go backwards are refused.
	b = AppendEntries(nil, []Entry{{Offset: 50, Epoch: 1}, {Offset: 49, Epoch: 1}})
	if _, err := DecodeEntries(b); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "offset 49") {
		t.Fatalf("backwards offsets: %v", err)
	}
}

func TestAppendEntriesRefusesWhatKafkaCannotCarry(t *testing.T) {
	for _, e := range []Entry{{Offset: 1 << 63, Epoch: 1}, {Offset: 1, Epoch: 1 << 31}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("AppendEntries(%+v) did not panic", e)
				}
			}()
			AppendEntries(nil, []Entry{e})
		}()
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(AppendEntries(nil, sampleEntries()))
	f.Add(AppendEntries(nil, []Entry{{Offset: 1, Epoch: 1}}))
	f.Add([]byte{})
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Random bytes rarely pass the CRC; fixing it lets the fuzzer reach the record parsing as well.
		for _, in := range [][]byte{b, fixCRCs(b)} {
			entries, err := DecodeEntries(in)
			if err != nil {
				continue
			}
			// Whatever decodes re-encodes to something that decodes the same.
			again, err := DecodeEntries(AppendEntries(nil, entries))
			if err != nil {
				t.Fatalf("re-encoded entries do not decode: %v", err)
			}
			sameEntries(t, again, entries)
		}
	})
}

// fixCRCs returns a copy of b with the CRC of every complete batch recomputed.
func fixCRCs(b []byte) []byte {
	out := bytes.Clone(b)
	for rest := out; len(rest) >= 12; {
		length := int32(binary.BigEndian.Uint32(rest[8:]))
		if length < 49 || 12+int(length) > len(rest) {
			break
		}
		batch := rest[:12+int(length)]
		binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)))
		rest = rest[len(batch):]
	}
	return out
}
