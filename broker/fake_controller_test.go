package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// fakeController is just enough of an active controller for a broker to register, heartbeat and
// follow a log: it keeps a log of entries, appends a RegisterBrokerRecord on registration (whose offset
// is the broker epoch), and an unfencing change once a heartbeat reports that offset applied. It is not
// the real controller (the broker must not depend on it), only the protocol both sides agreed on.
type fakeController struct {
	id   int32
	srv  *kafkaserver.Server
	addr string

	// Set before serving.
	standby         bool        // answer NOT_CONTROLLER / NOT_LEADER_OR_FOLLOWER naming leaderHint
	leaderHint      int32       // the leader a standby names
	registrationErr *kerr.Error // refuse registrations with this code
	finalizedMV     int16       // metadata.version advertised in ApiVersions (0: from the log)
	grantShutdownAt int         // answer ShouldShutDown at this many WantShutDown heartbeats (0 means 2)
	// snapDir holds the snapshots FetchSnapshot serves, and the newest of which a Fetch below the log
	// start names.
	snapDir string
	// onSnapshotChunk, if set, runs before each FetchSnapshot is answered, without the lock held; an
	// error closes the connection, as a network fault would.
	onSnapshotChunk func(f *fakeController, p *kmsg.FetchSnapshotRequestTopicPartition) error

	mu struct {
		sync.Mutex
		log      [][]byte      // entry i is at offset i+1; nil data is a Raft entry
		changed  chan struct{} // closed and replaced when the log grows
		epoch    int64         // the registered broker's epoch; 0 when none
		fenced   bool
		staleOne bool // answer the next heartbeat STALE_BROKER_EPOCH
		versions map[int16]int16
		counts   map[string]int

		// logStart, when above 1, is the first offset Fetch serves: below it the answer names a
		// snapshot (pointer if set, else the newest in snapDir) instead of carrying records.
		logStart int64
		pointer  *SnapshotID
		// fetchOffsets is every Fetch's FetchOffset, snapRequests every FetchSnapshot's partition, in
		// arrival order.
		fetchOffsets []int64
		snapRequests []snapRequest
	}
}

// snapRequest is one FetchSnapshot request as the fake saw it.
type snapRequest struct {
	id       SnapshotID
	position int64
	maxBytes int32
}

const fakeMV = 4

func mvRecord(level int16) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{
		Name: metadatalog.MetadataVersionFeature, FeatureLevel: int32(level)}}}
}

func batchBytes(t testing.TB, records ...*metadatapb.Record) []byte {
	t.Helper()
	b, err := proto.Marshal(&metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFakeController serves a controller whose log holds the bootstrap metadata.version at offset 1
// and five Raft entries after it, so the first registration lands at offset 7.
func newFakeController(t *testing.T, id int32, setup func(*fakeController)) *fakeController {
	t.Helper()
	f := &fakeController{id: id}
	f.mu.changed = make(chan struct{})
	f.mu.versions = map[int16]int16{}
	f.mu.counts = map[string]int{}
	f.mu.log = [][]byte{batchBytes(t, mvRecord(fakeMV)), nil, nil, nil, nil, nil}
	if setup != nil {
		setup(f)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.srv = kafkaserver.Serve(kafkaserver.Options{
		Listener: ln,
		Handler:  f,
		APIs: map[int16]kafkaserver.VersionRange{
			(&kmsg.BrokerRegistrationRequest{}).Key(): {Min: 0, Max: (&kmsg.BrokerRegistrationRequest{}).MaxVersion()},
			(&kmsg.BrokerHeartbeatRequest{}).Key():    {Min: 0, Max: (&kmsg.BrokerHeartbeatRequest{}).MaxVersion()},
			// Everything kmsg knows, so the test sees the broker cap Fetch at v12 itself.
			(&kmsg.FetchRequest{}).Key():         {Min: 4, Max: (&kmsg.FetchRequest{}).MaxVersion()},
			(&kmsg.FetchSnapshotRequest{}).Key(): {Min: 0, Max: (&kmsg.FetchSnapshotRequest{}).MaxVersion()},
		},
		DecorateApiVersions: func(resp *kmsg.ApiVersionsResponse) {
			if f.finalizedMV != 0 {
				ff := kmsg.NewApiVersionsResponseFinalizedFeature()
				ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = metadatalog.MetadataVersionFeature, f.finalizedMV, f.finalizedMV
				resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
				resp.FinalizedFeaturesEpoch = 1
			}
		},
		Logger: quietLogger(),
	})
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func quietLogger() *slog.Logger {
	if os.Getenv("BROKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// appendLocked adds one entry and wakes long-polling fetches; it returns the entry's offset.
func (f *fakeController) appendLocked(data []byte) int64 {
	f.mu.log = append(f.mu.log, data)
	close(f.mu.changed)
	f.mu.changed = make(chan struct{})
	return int64(len(f.mu.log))
}

func (f *fakeController) appendRaw(data []byte) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appendLocked(data)
}

func (f *fakeController) count(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.counts[what]
}

func (f *fakeController) version(key int16) int16 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.versions[key]
}

func (f *fakeController) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	f.mu.Lock()
	f.mu.versions[req.Key()] = req.GetVersion()
	f.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		return f.register(r), nil
	case *kmsg.BrokerHeartbeatRequest:
		return f.heartbeat(r), nil
	case *kmsg.FetchRequest:
		return f.fetch(ctx, r)
	case *kmsg.FetchSnapshotRequest:
		return f.fetchSnapshot(r)
	}
	return nil, fmt.Errorf("fake controller does not serve key %d", req.Key())
}

func (f *fakeController) register(req *kmsg.BrokerRegistrationRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.counts["registration"]++
	switch {
	case f.standby:
		resp.ErrorCode = kerr.NotController.Code
		return resp
	case f.registrationErr != nil:
		resp.ErrorCode = f.registrationErr.Code
		return resp
	}
	rec := &metadatapb.RegisterBrokerRecord{
		BrokerId: req.BrokerID, IncarnationId: req.IncarnationID[:], Fenced: true,
		BrokerEpoch: int64(len(f.mu.log) + 1), // the offset it is about to take
	}
	if req.Rack != nil {
		rec.Rack = *req.Rack
	}
	for _, l := range req.Listeners {
		rec.Endpoints = append(rec.Endpoints, &metadatapb.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: int32(l.SecurityProtocol)})
	}
	for _, ft := range req.Features {
		rec.Features = append(rec.Features, &metadatapb.FeatureRange{Name: ft.Name, MinSupportedVersion: int32(ft.MinSupportedVersion), MaxSupportedVersion: int32(ft.MaxSupportedVersion)})
	}
	data, _ := proto.Marshal(&metadatapb.RecordBatch{Records: []*metadatapb.Record{{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: rec}}}})
	f.mu.epoch = f.appendLocked(data)
	f.mu.fenced = true
	resp.BrokerEpoch = f.mu.epoch
	return resp
}

func (f *fakeController) heartbeat(req *kmsg.BrokerHeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.counts["heartbeat"]++
	switch {
	case f.standby:
		resp.ErrorCode = kerr.NotController.Code
		return resp
	case f.mu.epoch == 0:
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return resp
	case req.BrokerEpoch != f.mu.epoch || f.mu.staleOne:
		f.mu.staleOne = false
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	if f.mu.fenced && req.CurrentMetadataOffset >= f.mu.epoch {
		data, _ := proto.Marshal(&metadatapb.RecordBatch{Records: []*metadatapb.Record{{Record: &metadatapb.Record_BrokerRegistrationChange{
			BrokerRegistrationChange: &metadatapb.BrokerRegistrationChangeRecord{
				BrokerId: req.BrokerID, BrokerEpoch: f.mu.epoch, Fenced: metadatapb.BoolChange_BOOL_CHANGE_FALSE}}}}})
		f.appendLocked(data)
		f.mu.fenced = false
	}
	resp.IsFenced = f.mu.fenced
	resp.IsCaughtUp = req.CurrentMetadataOffset >= int64(len(f.mu.log))
	if req.WantShutdown {
		f.mu.counts["wantShutdown"]++
		grantAt := f.grantShutdownAt
		if grantAt == 0 {
			grantAt = 2
		}
		resp.ShouldShutdown = f.mu.counts["wantShutdown"] >= grantAt
	}
	return resp
}

// fetch long-polls like a Raft leader: it answers at once when there are entries past FetchOffset,
// else when one arrives or MaxWaitMillis passes.
func (f *fakeController) fetch(ctx context.Context, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	t := kmsg.NewFetchResponseTopic()
	t.Topic = metadataTopic
	p := kmsg.NewFetchResponseTopicPartition()
	p.Partition = metadataPartition
	if len(req.Topics) != 1 || req.Topics[0].Topic != metadataTopic || len(req.Topics[0].Partitions) != 1 {
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp, nil
	}
	from := req.Topics[0].Partitions[0].FetchOffset
	f.mu.Lock()
	f.mu.fetchOffsets = append(f.mu.fetchOffsets, from)
	f.mu.Unlock()
	wait := time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	defer wait.Stop()
	for {
		f.mu.Lock()
		f.mu.counts["fetch"]++
		if f.standby {
			f.mu.Unlock()
			p.ErrorCode = kerr.NotLeaderForPartition.Code
			p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = f.leaderHint, 1
			break
		}
		last := int64(len(f.mu.log))
		if from < f.mu.logStart {
			ptr := f.mu.pointer
			f.mu.Unlock()
			if ptr == nil {
				ptr = f.newestSnapshot()
			}
			// As a Raft leader answers below its log start: no error, no records, the snapshot to fetch.
			p.HighWatermark, p.LogStartOffset = last, f.logStartOffset()
			if ptr != nil {
				p.SnapshotID.EndOffset, p.SnapshotID.Epoch = int64(ptr.Offset), int32(ptr.Epoch)
			} else {
				p.ErrorCode = kerr.OffsetOutOfRange.Code
			}
			break
		}
		if from < 1 || from > last+1 {
			f.mu.Unlock()
			p.ErrorCode = kerr.OffsetOutOfRange.Code
			break
		}
		var entries []logfetch.Entry
		for o := from; o <= last; o++ {
			entries = append(entries, logfetch.Entry{Offset: uint64(o), Epoch: 1, Data: f.mu.log[o-1]})
		}
		changed := f.mu.changed
		f.mu.Unlock()
		p.HighWatermark = last
		if len(entries) > 0 {
			p.RecordBatches = logfetch.AppendEntries(nil, entries)
			break
		}
		select {
		case <-changed:
			continue
		case <-wait.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		break
	}
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp, nil
}

// fetchSnapshot serves FetchSnapshot from snapDir, as a controller does with snapshot.ServeChunk.
func (f *fakeController) fetchSnapshot(req *kmsg.FetchSnapshotRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchSnapshotResponse)
	if len(req.Topics) != 1 || req.Topics[0].Topic != metadataTopic || len(req.Topics[0].Partitions) != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	p := &req.Topics[0].Partitions[0]
	f.mu.Lock()
	f.mu.counts["fetchSnapshot"]++
	f.mu.snapRequests = append(f.mu.snapRequests, snapRequest{
		id:       SnapshotID{Offset: uint64(p.SnapshotID.EndOffset), Epoch: uint64(p.SnapshotID.Epoch)},
		position: p.Position, maxBytes: req.MaxBytes,
	})
	f.mu.Unlock()
	if f.onSnapshotChunk != nil {
		if err := f.onSnapshotChunk(f, p); err != nil {
			return nil, err
		}
	}
	rt := kmsg.NewFetchSnapshotResponseTopic()
	rt.Topic = metadataTopic
	rt.Partitions = append(rt.Partitions, snapshot.ServeChunk(f.snapDir, p, int(req.MaxBytes)))
	resp.Topics = append(resp.Topics, rt)
	return resp, nil
}

// newestSnapshot is the newest snapshot in snapDir, nil if none.
func (f *fakeController) newestSnapshot() *SnapshotID {
	snaps, err := snapshot.List(f.snapDir)
	if err != nil || len(snaps) == 0 {
		return nil
	}
	s := snaps[len(snaps)-1]
	return &SnapshotID{Offset: s.Offset, Epoch: s.Epoch}
}

func (f *fakeController) logStartOffset() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.logStart
}

// setLogStart makes Fetch below offset name a snapshot; pointer overrides which (nil: the newest in
// snapDir).
func (f *fakeController) setLogStart(offset int64, pointer *SnapshotID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.logStart, f.mu.pointer = offset, pointer
}

func (f *fakeController) fetchOffsets() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mu.fetchOffsets)
}

func (f *fakeController) snapRequests() []snapRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mu.snapRequests)
}

// lastOffset is the offset of the log's last entry.
func (f *fakeController) lastOffset() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.mu.log))
}

// imageAt replays the fake's log up to offset into an image, as a controller's would be there.
func (f *fakeController) imageAt(t *testing.T, offset int64) *metadatalog.Image {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if offset > int64(len(f.mu.log)) {
		t.Fatalf("the fake's log ends at %d, before %d", len(f.mu.log), offset)
	}
	img := metadatalog.EmptyImage()
	for o := int64(1); o <= offset; o++ {
		var batch *metadatapb.RecordBatch
		if data := f.mu.log[o-1]; data != nil {
			batch = &metadatapb.RecordBatch{}
			if err := proto.Unmarshal(data, batch); err != nil {
				t.Fatal(err)
			}
		}
		next, err := img.Apply(uint64(o), 1, batch)
		if err != nil {
			t.Fatal(err)
		}
		img = next
	}
	return img
}

// writeSnapshot writes the image at offset of the fake's log into dir as a snapshot of clusterID and
// returns its path.
func (f *fakeController) writeSnapshot(t *testing.T, dir string, offset int64, clusterID string) string {
	t.Helper()
	_, path, err := metadatalog.WriteSnapshot(dir, f.imageAt(t, offset), clusterID, []uint64{1}, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return path
}
