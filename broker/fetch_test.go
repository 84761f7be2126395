package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchAnswer is a controller's answer carrying entries and a high watermark.
func fetchAnswer(hw int64, code int16, entries ...logfetch.Entry) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	t := kmsg.NewFetchResponseTopic()
	t.Topic = metadataTopic
	p := kmsg.NewFetchResponseTopicPartition()
	p.ErrorCode, p.HighWatermark = code, hw
	p.RecordBatches = logfetch.AppendEntries(nil, entries)
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

func registerEntry(t *testing.T, offset uint64, id int32) logfetch.Entry {
	return logfetch.Entry{Offset: offset, Epoch: 2, Data: batchBytes(t, rec(&metadatapb.RegisterBrokerRecord{BrokerId: id, BrokerEpoch: int64(offset)}))}
}

func TestApplyFetch(t *testing.T) {
	img := metadatalog.EmptyImage()
	first, third := logfetch.Entry{Offset: 1, Epoch: 1, Data: batchBytes(t, mvRecord(4))}, registerEntry(t, 3, 5)
	res := applyFetch(img, fetchAnswer(3, 0,
		first,
		logfetch.Entry{Offset: 2, Epoch: 2}, // a new leader's empty entry: only the offset moves
		third,
	))
	if res.err != nil || res.fatal != nil {
		t.Fatal(res.err, res.fatal)
	}
	if want := int64(len(first.Data) + len(third.Data)); res.bytes != want {
		t.Fatalf("applied %d bytes of record batches, want %d", res.bytes, want)
	}
	if res.img.Offset != 3 || res.img.Epoch != 2 || res.hw != 3 || res.img.MetadataVersion() != 4 {
		t.Fatalf("image offset %d epoch %d mv %d, hw %d", res.img.Offset, res.img.Epoch, res.img.MetadataVersion(), res.hw)
	}
	if _, ok := res.img.Broker(5); !ok {
		t.Fatal("broker 5 not applied")
	}

	// Entries already applied are skipped; an answer with none still carries the high watermark,
	// which is how a broker learns it is current without new records.
	again := applyFetch(res.img, fetchAnswer(9, 0, registerEntry(t, 3, 5)))
	if again.fatal != nil || again.img != res.img || again.hw != 9 || again.bytes != 0 {
		t.Fatalf("replayed entry: fatal %v, image moved %v, hw %d", again.fatal, again.img != res.img, again.hw)
	}
}

func TestApplyFetchFatal(t *testing.T) {
	img, err := metadatalog.EmptyImage().Apply(1, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := fetchAnswer(2, 0, registerEntry(t, 2, 5))
	corrupt.Topics[0].Partitions[0].RecordBatches[30] ^= 0xff // inside the CRC's span
	divergent := fetchAnswer(2, 0)
	divergent.Topics[0].Partitions[0].DivergingEpoch.Epoch = 1
	divergent.Topics[0].Partitions[0].DivergingEpoch.EndOffset = 1

	for name, tc := range map[string]struct {
		resp *kmsg.FetchResponse
		want string
	}{
		"gap":          {fetchAnswer(3, 0, registerEntry(t, 3, 5)), "skips from offset 1 to 3"},
		"impossible":   {fetchAnswer(2, 0, logfetch.Entry{Offset: 2, Epoch: 1, Data: batchBytes(t, &metadatapb.Record{Record: &metadatapb.Record_UnregisterBroker{UnregisterBroker: &metadatapb.UnregisterBrokerRecord{BrokerId: 9}}})}), "impossible record"},
		"not protobuf": {fetchAnswer(2, 0, logfetch.Entry{Offset: 2, Epoch: 1, Data: []byte{0xff, 0xff, 0xff}}), "does not decode"},
		"corrupt":      {corrupt, "cannot be decoded"},
		"divergent":    {divergent, "diverges"},
		"cluster":      {fetchAnswer(-1, kerr.InconsistentClusterID.Code), "another cluster"},
	} {
		res := applyFetch(img, tc.resp)
		if res.fatal == nil || !strings.Contains(res.fatal.Error(), tc.want) {
			t.Errorf("%s: fatal %v, want one saying %q", name, res.fatal, tc.want)
		}
		if res.img != img {
			t.Errorf("%s: the image moved despite a fatal answer", name)
		}
	}
}

func TestApplyFetchRefusals(t *testing.T) {
	img := metadatalog.EmptyImage()

	notLeader := fetchAnswer(-1, kerr.NotLeaderForPartition.Code)
	notLeader.Topics[0].Partitions[0].CurrentLeader.LeaderID = 2
	res := applyFetch(img, notLeader)
	if !errors.Is(res.err, kerr.NotLeaderForPartition) || res.leader != 2 || res.fatal != nil {
		t.Fatalf("not leader: err %v leader %d fatal %v", res.err, res.leader, res.fatal)
	}

	res = applyFetch(img, fetchAnswer(-1, kerr.OffsetOutOfRange.Code))
	if !errors.Is(res.err, kerr.OffsetOutOfRange) || res.fatal != nil {
		t.Fatalf("out of range: err %v fatal %v", res.err, res.fatal)
	}

	// A snapshot pointer is neither a refusal nor progress: the follower downloads what it names.
	snap := fetchAnswer(12, 0)
	snap.Topics[0].Partitions[0].SnapshotID.EndOffset, snap.Topics[0].Partitions[0].SnapshotID.Epoch = 10, 2
	if res := applyFetch(img, snap); res.err != nil || res.fatal != nil || res.snapshot == nil ||
		*res.snapshot != (SnapshotID{Offset: 10, Epoch: 2}) || res.img != img || res.hw != 12 {
		t.Fatalf("snapshot pointer: err %v fatal %v snapshot %v hw %d image moved %v", res.err, res.fatal, res.snapshot, res.hw, res.img != img)
	}

	top := fetchAnswer(-1, 0)
	top.ErrorCode = kerr.UnknownServerError.Code
	if res := applyFetch(img, top); res.err == nil || res.fatal != nil {
		t.Fatalf("top-level error: err %v fatal %v", res.err, res.fatal)
	}

	missing := kmsg.NewPtrFetchResponse()
	if res := applyFetch(img, missing); res.err == nil || res.fatal != nil {
		t.Fatalf("answer without the partition: err %v fatal %v", res.err, res.fatal)
	}

	// Zero-valued tagged structs (from an encoder that skipped Default) mean nothing.
	zero := fetchAnswer(0, 0)
	zero.Topics[0].Partitions[0].DivergingEpoch = kmsg.FetchResponseTopicPartitionDivergingEpoch{}
	zero.Topics[0].Partitions[0].SnapshotID = kmsg.FetchResponseTopicPartitionSnapshotID{}
	if res := applyFetch(img, zero); res.err != nil || res.fatal != nil || res.snapshot != nil {
		t.Fatalf("zero tagged fields: err %v fatal %v", res.err, res.fatal)
	}
}

func TestFetchRequest(t *testing.T) {
	b := New(Config{NodeID: 7, ClusterID: "cid", Logger: quietLogger()})
	req := b.fetchRequest(metadatalog.EmptyImage())
	p := req.Topics[0].Partitions[0]
	if req.ReplicaID != 7 || req.MaxWaitMillis != 500 || req.Topics[0].Topic != metadataTopic || p.Partition != 0 ||
		p.FetchOffset != 1 || p.LastFetchedEpoch != -1 || p.PartitionMaxBytes != fetchPartitionMaxBytes || *req.ClusterID != "cid" {
		t.Fatalf("first fetch %+v partition %+v", req, p)
	}
	img, _ := metadatalog.EmptyImage().Apply(41, 3, nil)
	p = b.fetchRequest(img).Topics[0].Partitions[0]
	if p.FetchOffset != 42 || p.LastFetchedEpoch != 3 {
		t.Fatalf("fetch after offset 41: %+v", p)
	}
}

func TestFetchTarget(t *testing.T) {
	q := newQuorum(map[int32]string{1: "a", 2: "b", 3: "c"}, "test")
	start := func() int32 { return 2 }
	ft := fetchTarget{q: q, cur: -1, lastActive: -1}
	if got := ft.choose(-1, start); got != 2 {
		t.Fatalf("no active known: %d, want the search start 2", got)
	}
	ft.failed()
	if got := ft.choose(-1, start); got != 3 {
		t.Fatalf("after a failure: %d, want the next voter 3", got)
	}
	ft.failed()
	if got := ft.choose(-1, start); got != 1 {
		t.Fatalf("round robin wraps: %d, want 1", got)
	}
	ft.redirect(3)
	if got := ft.choose(-1, start); got != 3 {
		t.Fatalf("after NOT_LEADER naming 3: %d", got)
	}
	ft.redirect(-1)
	if got := ft.choose(-1, start); got != 1 {
		t.Fatalf("after NOT_LEADER naming nobody: %d, want the next voter 1", got)
	}
	// A newly learned active controller wins; failing it falls back to the others until the active
	// changes again.
	if got := ft.choose(2, start); got != 2 {
		t.Fatalf("active 2 learned: %d", got)
	}
	ft.failed()
	if got := ft.choose(2, start); got != 3 {
		t.Fatalf("active 2 unreachable: %d, want the fallback 3", got)
	}
	if got := ft.choose(1, start); got != 1 {
		t.Fatalf("new active 1: %d", got)
	}
	if got := ft.choose(99, start); got != 1 {
		t.Fatalf("an active id that is not a voter: %d, want to stay on 1", got)
	}
}

func TestQuorumRoundRobin(t *testing.T) {
	q := newQuorum(map[int32]string{3: "c", 1: "a", 7: "g"}, "test")
	for _, tc := range [][2]int32{{1, 3}, {3, 7}, {7, 1}, {-1, 1}, {5, 7}, {100, 1}} {
		if got := q.next(tc[0]); got != tc[1] {
			t.Errorf("next(%d) = %d, want %d", tc[0], got, tc[1])
		}
	}
}
