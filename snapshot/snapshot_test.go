package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

func testHeader() Header {
	return Header{
		Offset:          1234,
		Epoch:           3,
		Voters:          []uint64{1, 2, 3},
		Learners:        []uint64{4},
		MetadataVersion: 4,
		CreateTimeMs:    1_760_000_000_123,
		ClusterID:       "MkU3OEVBNTcwNTJENDM2Qg",
	}
}

func topicID(t int) []byte {
	id := make([]byte, 16)
	binary.BigEndian.PutUint64(id, 0x5eed_0000_0000_0000|uint64(t))
	binary.BigEndian.PutUint64(id[8:], uint64(t)*0x9e3779b97f4a7c15)
	return id
}

func partitionRecord(topic, p int32, brokers int32) *metadatapb.Record {
	replicas := []int32{p % brokers, (p + 1) % brokers, (p + 2) % brokers}
	return &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{
		PartitionId: p, TopicId: topicID(int(topic)), Replicas: replicas, Isr: replicas,
		Leader: replicas[0], LeaderEpoch: 2, PartitionEpoch: 5,
	}}}
}

// image is what metadatalog.Image.Records gives for a cluster of brokers, with topics of partitions
// and configs on both; built here from records because snapshot sits below metadatalog.
func image(brokers, topics, partitions int32) []*metadatapb.Record {
	rec := func(r any) *metadatapb.Record {
		switch r := r.(type) {
		case *metadatapb.FeatureLevelRecord:
			return &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: r}}
		case *metadatapb.RegisterBrokerRecord:
			return &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: r}}
		case *metadatapb.TopicRecord:
			return &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: r}}
		case *metadatapb.ConfigRecord:
			return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: r}}
		}
		panic(fmt.Sprintf("%T", r))
	}
	out := []*metadatapb.Record{rec(&metadatapb.FeatureLevelRecord{Name: "metadata.version", FeatureLevel: 4})}
	for b := range brokers {
		out = append(out, rec(&metadatapb.RegisterBrokerRecord{
			BrokerId: b, IncarnationId: topicID(1000 + int(b)), BrokerEpoch: 100 + int64(b),
			Endpoints: []*metadatapb.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092 + b}},
			Features:  []*metadatapb.FeatureRange{{Name: "metadata.version", MinSupportedVersion: 1, MaxSupportedVersion: 4}},
			Rack:      fmt.Sprintf("rack-%d", b%2), Fenced: b == brokers-1,
		}))
		val := "1048576"
		out = append(out, rec(&metadatapb.ConfigRecord{ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER,
			ResourceName: fmt.Sprint(b), Name: "log.segment.bytes", Value: &val}))
	}
	for t := range topics {
		name := fmt.Sprintf("orders-%03d", t)
		out = append(out, rec(&metadatapb.TopicRecord{Name: name, TopicId: topicID(int(t))}))
		val := "compact"
		out = append(out, rec(&metadatapb.ConfigRecord{ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC,
			ResourceName: name, Name: "cleanup.policy", Value: &val}))
		for p := range partitions {
			out = append(out, partitionRecord(t, p, brokers))
		}
	}
	return out
}

// encodeBytes is a snapshot file's bytes, as Write would write them with chunks of chunkBytes.
func encodeBytes(t testing.TB, h Header, records []*metadatapb.Record, chunkBytes int) []byte {
	t.Helper()
	h.RecordCount = uint64(len(records))
	var buf bytes.Buffer
	if err := encode(&buf, &h, records, chunkBytes); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// decodeBytes reads a snapshot from memory as Read reads a file called path.
func decodeBytes(path string, data []byte) (Header, []*metadatapb.Record, error) {
	r, err := newReader(path, bytes.NewReader(data), int64(len(data)), true)
	if err != nil {
		return Header{}, nil, err
	}
	var records []*metadatapb.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), records, nil
		}
		if err != nil {
			return Header{}, nil, err
		}
		records = append(records, rec)
	}
}

func sameRecords(t *testing.T, got, want []*metadatapb.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("record %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name       string
		records    []*metadatapb.Record
		chunkBytes int
	}{
		{"empty image", nil, 0},
		{"realistic image", image(5, 40, 32), 0},
		{"realistic image in small chunks", image(5, 40, 32), 300},
		{"one record per chunk", image(3, 4, 3), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			h := testHeader()
			h.RecordCount = 99 // Write sets it from the records
			path, err := write(dir, h, tc.records, writeKnobs{chunkBytes: tc.chunkBytes})
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, "00000000000000001234-0000000003.checkpoint"); path != want {
				t.Fatalf("path %s, want %s", path, want)
			}
			gotH, got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			h.RecordCount = uint64(len(tc.records))
			if !reflect.DeepEqual(gotH, h) {
				t.Fatalf("header %+v, want %+v", gotH, h)
			}
			sameRecords(t, got, tc.records)
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("dir holds %d files, want the snapshot alone", len(entries))
			}
		})
	}
}

func TestReaderStreams(t *testing.T) {
	records := image(3, 10, 20)
	path, err := write(t.TempDir(), testHeader(), records, writeKnobs{chunkBytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if h := r.Header(); h.RecordCount != uint64(len(records)) || h.ClusterID != testHeader().ClusterID {
		t.Fatalf("header %+v", h)
	}
	var got []*metadatapb.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	sameRecords(t, got, records)
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after the end: %v, want io.EOF", err)
	}
}

func TestFileName(t *testing.T) {
	if got := FileName(1234, 3); got != "00000000000000001234-0000000003.checkpoint" {
		t.Fatal(got)
	}
	for _, tc := range []struct {
		name          string
		offset, epoch uint64
		ok            bool
	}{
		{"00000000000000001234-0000000003.checkpoint", 1234, 3, true},
		{FileName(^uint64(0), 1<<40), ^uint64(0), 1 << 40, true},
		{"00000000000000000000-0000000000.checkpoint", 0, 0, true},
		{"1234-3.checkpoint", 0, 0, false},
		{"00000000000000001234-0000000003.checkpoint.part", 0, 0, false},
		{"00000000000000001234-0000000003.snapshot", 0, 0, false},
		{"+0000000000000001234-0000000003.checkpoint", 0, 0, false},
		{"00000000000000001234_0000000003.checkpoint", 0, 0, false},
		{"00000000000000001234-00000000003.checkpoint", 0, 0, false},
		{"bootstrap.checkpoint", 0, 0, false},
	} {
		offset, epoch, ok := ParseFileName(tc.name)
		if ok != tc.ok || offset != tc.offset || epoch != tc.epoch {
			t.Errorf("ParseFileName(%q) = %d, %d, %v; want %d, %d, %v", tc.name, offset, epoch, ok, tc.offset, tc.epoch, tc.ok)
		}
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1048576: "1,048,576", -12345: "-12,345"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %s, want %s", n, got, want)
		}
	}
}

// mustCorrupt checks that err is a one-line *CorruptError naming path.
func mustCorrupt(t *testing.T, err error, path, what string) *CorruptError {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: got %v, want a *CorruptError", what, err)
	}
	if ce.Path != path || !strings.HasPrefix(err.Error(), "snapshot "+path+": ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("%s: %q is not one line naming %s", what, err, path)
	}
	return ce
}

// TestTruncation cuts the file at every byte: at each frame boundary and inside every frame.
func TestTruncation(t *testing.T) {
	h := testHeader()
	name := FileName(h.Offset, h.Epoch)
	for _, records := range [][]*metadatapb.Record{nil, image(3, 6, 8)} {
		data := encodeBytes(t, h, records, 200)
		for n := range len(data) {
			_, _, err := decodeBytes(name, data[:n])
			mustCorrupt(t, err, name, fmt.Sprintf("cut at %d of %d", n, len(data)))
		}
	}
}

func TestTruncatedMessage(t *testing.T) {
	h := testHeader()
	var records []*metadatapb.Record
	for p := range int32(2048) {
		records = append(records, partitionRecord(1, p, 3))
	}
	// Every record takes the same room, so 8 KiB chunks end at a round number of records; cut after
	// the chunk that holds the 1,024th.
	data := encodeBytes(t, h, records, 8<<10)
	r, err := newReader(FileName(h.Offset, h.Epoch), bytes.NewReader(data), int64(len(data)), true)
	if err != nil {
		t.Fatal(err)
	}
	for r.seen < 1024 {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = decodeBytes(r.path, data[:r.pos])
	want := fmt.Sprintf("snapshot %s: truncated after %s of 2,048 records; the file is damaged", r.path, count(r.seen))
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// TestBitFlips flips every bit of a file of several chunks, one at a time: each must be caught.
func TestBitFlips(t *testing.T) {
	h := testHeader()
	name := FileName(h.Offset, h.Epoch)
	data := encodeBytes(t, h, image(3, 4, 6), 300)
	for i := range len(data) * 8 {
		flipped := bytes.Clone(data)
		flipped[i/8] ^= 1 << (i % 8)
		_, _, err := decodeBytes(name, flipped)
		mustCorrupt(t, err, name, fmt.Sprintf("bit %d of byte %d flipped", i%8, i/8))
	}
}

// frame is one frame of a hand-built file.
type frame struct {
	kind    byte
	payload []byte
}

// craft builds a file from frames, with a correct footer, so only the fault under test is wrong.
func craft(prelude []byte, frames ...frame) []byte {
	out := bytes.Clone(prelude)
	for _, f := range frames {
		out = append(out, f.kind)
		out = binary.BigEndian.AppendUint32(out, uint32(len(f.payload)))
		out = append(out, f.payload...)
	}
	sum := crc32.Checksum(out, castagnoli)
	out = append(out, kindFooter, 0, 0, 0, footerLen)
	return binary.BigEndian.AppendUint32(out, sum)
}

func TestCorruptions(t *testing.T) {
	h := testHeader()
	name := FileName(h.Offset, h.Epoch)
	prelude := append([]byte(magic), 0, 0, 0, formatVersion)
	header := func(count uint64) frame {
		h := h
		h.RecordCount = count
		b, _ := proto.Marshal(h.toProto())
		return frame{kindHeader, b}
	}
	chunk := func(records ...*metadatapb.Record) frame {
		b, _ := proto.Marshal(&metadatapb.RecordBatch{Records: records})
		return frame{kindRecords, b}
	}
	one := partitionRecord(1, 0, 3)
	good := craft(prelude, header(2), chunk(one), chunk(one))
	if _, got, err := decodeBytes(name, good); err != nil || len(got) != 2 {
		t.Fatalf("the crafted file should read: %v", err)
	}
	patch := func(data []byte, at int, b ...byte) []byte {
		data = bytes.Clone(data)
		copy(data[at:], b)
		return data
	}
	headerLenAt := preludeLen + 1
	firstChunkLenAt := preludeLen + frameHeadLen + len(header(2).payload) + 1

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty file", nil, "too short to be a snapshot"},
		{"not a snapshot", patch(good, 0, 'X'), "not a snapshot file"},
		{"newer format", patch(good, len(magic), 0, 0, 0, 2), "format version 2, but this build reads only version 1"},
		{"records before the header", craft(prelude, chunk(one), header(1)), "not the header"},
		{"huge header length", patch(good, headerLenAt, 0xff, 0xff, 0xff, 0xf0), "the header frame claims 4,294,967,280 bytes"},
		{"header does not decode", craft(prelude, frame{kindHeader, []byte{0xff}}, chunk(one)), "the header does not decode"},
		{"header claims too many records", craft(prelude, header(1<<40), chunk(one)), "the header claims 1,099,511,627,776 records"},
		{"huge chunk length", patch(good, firstChunkLenAt, 0x7f, 0xff, 0xff, 0xff), "claims 2,147,483,647 bytes, more than the limit"},
		{"chunk longer than the file", patch(good, firstChunkLenAt, 0, 1, 0, 0), "claims 65,536 bytes and"},
		{"chunk does not decode", craft(prelude, header(1), frame{kindRecords, []byte{0x0a, 0x7f}}), "does not decode"},
		{"empty chunk", craft(prelude, header(0), frame{kindRecords, nil}), "is empty"},
		{"chunk that is a batch", craft(prelude, header(1), frame{kindRecords, mustMarshal(&metadatapb.RecordBatch{Records: []*metadatapb.Record{one}, AppendTimeMs: 5})}), "not a chunk of records"},
		{"record of an unknown type", craft(prelude, header(1), chunk(&metadatapb.Record{})), "record 0 has no type this build knows"},
		{"more records than the header", craft(prelude, header(1), chunk(one), chunk(one)), "more records than the 1 its header claims"},
		{"fewer records than the header", craft(prelude, header(3), chunk(one), chunk(one)), "the footer follows 2 records, but the header claims 3"},
		{"second header", craft(prelude, header(1), header(1), chunk(one)), "unknown frame kind 0x48"},
		{"unknown frame", craft(prelude, header(1), frame{'Z', []byte{1}}, chunk(one)), "unknown frame kind 0x5a"},
		{"footer too long", patch(good, len(good)-footerLen-4, 0, 0, 0, 5), "the footer at byte"},
		{"checksum", patch(good, len(good)-1, good[len(good)-1]^1), "checksum mismatch"},
		{"bytes after the footer", append(bytes.Clone(good), 0), "1 bytes follow the footer"},
		{"no footer", good[:len(good)-footerLen-frameHeadLen], "truncated after all 2 records, before the footer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeBytes(name, tc.data)
			ce := mustCorrupt(t, err, name, tc.name)
			if !strings.Contains(ce.Reason, tc.want) {
				t.Fatalf("reason %q does not say %q", ce.Reason, tc.want)
			}
		})
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestLengthsBoundAllocation: a length flipped to a huge value must be refused before it is allocated.
func TestLengthsBoundAllocation(t *testing.T) {
	h := testHeader()
	name := FileName(h.Offset, h.Epoch)
	data := encodeBytes(t, h, image(3, 4, 6), 300)
	headerLen := int(binary.BigEndian.Uint32(data[preludeLen+1:]))
	for _, at := range []int{preludeLen + 1, preludeLen + frameHeadLen + headerLen + 1} {
		bad := bytes.Clone(data)
		binary.BigEndian.PutUint32(bad[at:], 0xfffffff0)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := decodeBytes(name, bad)
		runtime.ReadMemStats(&after)
		mustCorrupt(t, err, name, "huge length")
		// The reader's buffers are 256 KiB; a flipped length must not add to them.
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("a huge length at byte %d allocated %d bytes", at, grew)
		}
	}
}

func TestNameMismatch(t *testing.T) {
	dir := t.TempDir()
	path, err := Write(dir, testHeader(), image(2, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{FileName(1235, 3), FileName(1234, 4), "snapshot.checkpoint"} {
		moved := filepath.Join(dir, other)
		if err := os.Rename(path, moved); err != nil {
			t.Fatal(err)
		}
		_, _, err := Read(moved)
		ce := mustCorrupt(t, err, moved, other)
		if !strings.Contains(ce.Reason, "name") {
			t.Fatalf("reason %q does not mention the name", ce.Reason)
		}
		path = moved
	}
}

func TestReadMissingFile(t *testing.T) {
	_, _, err := Read(filepath.Join(t.TempDir(), FileName(1, 1)))
	var ce *CorruptError
	if !errors.Is(err, os.ErrNotExist) || errors.As(err, &ce) {
		t.Fatalf("got %v, want a not-exist error that is no CorruptError", err)
	}
}

// failingWriter fails the way a full disk does once limit bytes are written.
type failingWriter struct {
	w     io.Writer
	limit int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.w.Write(p[:f.limit])
		f.limit = 0
		return n, errNoSpace
	}
	f.limit -= len(p)
	return f.w.Write(p)
}

var errNoSpace = errors.New("no space left on device")

func TestWriteFailureLeavesNothing(t *testing.T) {
	records := image(5, 40, 32)
	for _, limit := range []int{0, 10, 1000, 30000} {
		t.Run(fmt.Sprintf("disk full after %d bytes", limit), func(t *testing.T) {
			dir := t.TempDir()
			_, err := write(dir, testHeader(), records, writeKnobs{wrapFile: func(w io.Writer) io.Writer {
				return &failingWriter{w: w, limit: limit}
			}})
			if !errors.Is(err, errNoSpace) {
				t.Fatalf("got %v, want the disk's error", err)
			}
			mustBeEmpty(t, dir)
		})
	}
	t.Run("directory removed while writing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "snapshots")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := write(dir, testHeader(), records, writeKnobs{wrapFile: func(w io.Writer) io.Writer {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			return w
		}})
		if err == nil {
			t.Fatal("Write succeeded into a removed directory")
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the directory came back: %v", err)
		}
	})
	t.Run("directory missing", func(t *testing.T) {
		parent := t.TempDir()
		if _, err := Write(filepath.Join(parent, "gone"), testHeader(), records); err == nil {
			t.Fatal("Write succeeded into a missing directory")
		}
		mustBeEmpty(t, parent)
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		dir := t.TempDir()
		os.Chmod(dir, 0o555)
		defer os.Chmod(dir, 0o755)
		if _, err := Write(dir, testHeader(), records); err == nil {
			t.Fatal("Write succeeded into a read-only directory")
		}
		mustBeEmpty(t, dir)
	})
	t.Run("record with no type", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := Write(dir, testHeader(), append(image(1, 1, 1), &metadatapb.Record{})); err == nil {
			t.Fatal("Write took a record with no type")
		}
		mustBeEmpty(t, dir)
	})
}

func mustBeEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, testHeader(), image(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	// A .part left by a crash is overwritten, not appended to.
	os.WriteFile(filepath.Join(dir, FileName(1234, 3)+partSuffix), []byte("junk"), 0o644)
	path, err := Write(dir, testHeader(), image(2, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, image(2, 2, 2))
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	if infos, err := List(filepath.Join(dir, "none")); err != nil || infos != nil {
		t.Fatalf("missing dir: %v, %v", infos, err)
	}
	for _, oe := range [][2]uint64{{300, 2}, {100, 1}, {300, 1}, {20000, 7}} {
		h := testHeader()
		h.Offset, h.Epoch = oe[0], oe[1]
		if _, err := Write(dir, h, image(1, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	part := filepath.Join(dir, FileName(40000, 7)+partSuffix)
	for _, junk := range []string{part, filepath.Join(dir, "bootstrap.checkpoint"), filepath.Join(dir, "1-1.checkpoint")} {
		os.WriteFile(junk, []byte("x"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, FileName(50000, 7)), 0o755)

	infos, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range infos {
		got = append(got, fmt.Sprintf("%d/%d", in.Offset, in.Epoch))
		if in.Path != filepath.Join(dir, FileName(in.Offset, in.Epoch)) || in.Size == 0 || in.ModTime.IsZero() {
			t.Errorf("info %+v", in)
		}
	}
	if want := []string{"100/1", "300/1", "300/2", "20000/7"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List: %v, want %v", got, want)
	}
	parts, err := PartFiles(dir)
	if err != nil || !reflect.DeepEqual(parts, []string{part}) {
		t.Fatalf("PartFiles: %v, %v; want [%s]", parts, err, part)
	}
}

// FuzzRead: no input may panic, allocate without bound or read as anything but a CorruptError, and a
// file that reads must hold exactly the records its header counts.
func FuzzRead(f *testing.F) {
	h := testHeader()
	name := FileName(h.Offset, h.Epoch)
	f.Add([]byte{})
	f.Add(encodeBytes(f, h, nil, 0))
	small := encodeBytes(f, h, image(2, 2, 3), 100)
	f.Add(small)
	f.Add(small[:len(small)/2])
	f.Add(encodeBytes(f, h, image(3, 3, 4), 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, records, err := decodeBytes(name, data)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CorruptError", err)
			}
			return
		}
		if uint64(len(records)) != got.RecordCount {
			t.Fatalf("read %d records, the header counts %d", len(records), got.RecordCount)
		}
	})
}
