package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
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

	mu struct {
		sync.Mutex
		log      [][]byte      // entry i is at offset i+1; nil data is a Raft entry
		changed  chan struct{} // closed and replaced when the log grows
		epoch    int64         // the registered broker's epoch; 0 when none
		fenced   bool
		staleOne bool // answer the next heartbeat STALE_BROKER_EPOCH
		versions map[int16]int16
		counts   map[string]int
	}
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
			(&kmsg.FetchRequest{}).Key(): {Min: 4, Max: (&kmsg.FetchRequest{}).MaxVersion()},
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
