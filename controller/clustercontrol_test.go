package controller

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
)

const ccCluster = "cluster-A"

func ccInc(b byte) [16]byte {
	var id [16]byte
	id[0], id[15] = b, b
	return id
}

func ccEndpoint(port int32) []*metadatapb.Endpoint {
	return []*metadatapb.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: port}}
}

func ccMV(lo, hi int32) []*metadatapb.FeatureRange {
	return []*metadatapb.FeatureRange{{Name: metadatalog.MetadataVersionFeature, MinSupportedVersion: lo, MaxSupportedVersion: hi}}
}

// ccRegistered is the record of broker id registered at epoch by incarnation inc, as register writes it.
func ccRegistered(id int32, epoch int64, inc byte, fenced, inControlledShutdown bool) *metadatapb.Record {
	i := ccInc(inc)
	return registerRecord(&metadatapb.RegisterBrokerRecord{
		BrokerId: id, BrokerEpoch: epoch, IncarnationId: i[:], Endpoints: ccEndpoint(9092), Features: ccMV(1, 4),
		Fenced: fenced, InControlledShutdown: inControlledShutdown,
	})
}

func ccRequest(id int32, inc byte) brokerRegistration {
	return brokerRegistration{id: id, clusterID: ccCluster, incarnation: ccInc(inc), endpoints: ccEndpoint(9092), features: ccMV(1, 4)}
}

// ccLeadership is a fake replication manager: it says who leads, and marks where it would move
// leadership with a config record naming the call.
type ccLeadership struct{ leaders map[int32]bool }

func (l ccLeadership) leads(_ *metadatalog.Image, b int32) bool { return l.leaders[b] }
func (l ccLeadership) evict(_ *metadatalog.Image, bs []int32) []*metadatapb.Record {
	return []*metadatapb.Record{ccMarker(fmt.Sprintf("evict%v", bs))}
}
func (l ccLeadership) admit(_ *metadatalog.Image, b int32) []*metadatapb.Record {
	return []*metadatapb.Record{ccMarker(fmt.Sprintf("admit[%d]", b))}
}

func ccMarker(s string) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
		ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER, ResourceName: s, Name: "leadership"}}}
}

func ccBool(c metadatapb.BoolChange) string {
	switch c {
	case metadatapb.BoolChange_BOOL_CHANGE_TRUE:
		return "TRUE"
	case metadatapb.BoolChange_BOOL_CHANGE_FALSE:
		return "FALSE"
	}
	return "-"
}

// ccDescribe renders records compactly for comparison.
func ccDescribe(records []*metadatapb.Record) []string {
	out := []string{}
	for _, r := range records {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_RegisterBroker:
			b := rec.RegisterBroker
			out = append(out, fmt.Sprintf("register(%d,epoch=%d,inc=%d,fenced=%v,ics=%v)", b.GetBrokerId(), b.GetBrokerEpoch(), b.GetIncarnationId()[0], b.GetFenced(), b.GetInControlledShutdown()))
		case *metadatapb.Record_BrokerRegistrationChange:
			c := rec.BrokerRegistrationChange
			out = append(out, fmt.Sprintf("change(%d,epoch=%d,fenced=%s,ics=%s)", c.GetBrokerId(), c.GetBrokerEpoch(), ccBool(c.GetFenced()), ccBool(c.GetInControlledShutdown())))
		case *metadatapb.Record_UnregisterBroker:
			out = append(out, fmt.Sprintf("unregister(%d,epoch=%d)", rec.UnregisterBroker.GetBrokerId(), rec.UnregisterBroker.GetBrokerEpoch()))
		case *metadatapb.Record_Config:
			out = append(out, rec.Config.GetResourceName())
		default:
			out = append(out, fmt.Sprintf("%T", rec))
		}
	}
	return out
}

func ccApply(t *testing.T, img *metadatalog.Image, offset uint64, records []*metadatapb.Record) *metadatalog.Image {
	t.Helper()
	next, err := img.Apply(offset, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatalf("the records at offset %d do not apply: %v", offset, err)
	}
	return next
}

func ccCode(e *kerr.Error) string {
	if e == nil {
		return "NONE"
	}
	return e.Message
}

func TestRegisterBroker(t *testing.T) {
	const next = 20
	tests := []struct {
		name     string
		level    int16
		existing []*metadatapb.Record
		req      func() brokerRegistration
		liveFor  time.Duration

		code     *kerr.Error
		msg      string // a substring of the message
		epoch    int64
		records  []string
		features []*metadatapb.FeatureRange // of the written registration, when one is written
	}{
		{
			name: "a new broker registers fenced, its epoch the offset of its record", level: 4,
			req:   func() brokerRegistration { return ccRequest(1, 1) },
			epoch: next, records: []string{"register(1,epoch=20,inc=1,fenced=true,ics=false)"},
		},
		{
			name: "a broker id that is also a voter id registers (combined mode)", level: 4,
			req:   func() brokerRegistration { return ccRequest(3000, 1) },
			epoch: next, records: []string{"register(3000,epoch=20,inc=1,fenced=true,ics=false)"},
		},
		{
			name: "the same incarnation again keeps its epoch and writes nothing", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, false, false)},
			req:      func() brokerRegistration { return ccRequest(1, 1) },
			liveFor:  3 * time.Second,
			epoch:    7, records: []string{},
		},
		{
			name: "the same incarnation with a new listener amends the record at the same epoch and state", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, false, false)},
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.endpoints = ccEndpoint(9093)
				return r
			},
			liveFor: 3 * time.Second,
			epoch:   7, records: []string{"register(1,epoch=7,inc=1,fenced=false,ics=false)"},
		},
		{
			name: "a new incarnation while the old one's session is alive is a duplicate", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, false, false)},
			req:      func() brokerRegistration { return ccRequest(1, 2) },
			liveFor:  3 * time.Second,
			code:     kerr.DuplicateBrokerRegistration, msg: "Another broker is registered with that broker id. Broker 1 is registered at epoch 7",
		},
		{
			name: "a new incarnation replaces a fenced registration even while its session lives (a restart after a controlled shutdown)", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, true, false)},
			req:      func() brokerRegistration { return ccRequest(1, 2) },
			liveFor:  3 * time.Second,
			epoch:    next, records: []string{"register(1,epoch=20,inc=2,fenced=true,ics=false)"},
		},
		{
			name: "a new incarnation after the old session expired gets a new epoch", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, true, false)},
			req:      func() brokerRegistration { return ccRequest(1, 2) },
			epoch:    next, records: []string{"register(1,epoch=20,inc=2,fenced=true,ics=false)"},
		},
		{
			name: "a new incarnation replacing an unfenced one whose fence is not written yet moves its leadership first", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, false, true)},
			req:      func() brokerRegistration { return ccRequest(1, 2) },
			epoch:    next, records: []string{"evict[1]", "register(1,epoch=20,inc=2,fenced=true,ics=false)"},
		},
		{
			name: "another cluster's broker", level: 4,
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.clusterID = "cluster-B"
				return r
			},
			code: kerr.InconsistentClusterID, msg: "Expected cluster ID cluster-A, but got cluster ID cluster-B",
		},
		{
			name: "a range that excludes the finalized metadata.version", level: 4,
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.features = ccMV(1, 3)
				return r
			},
			code: kerr.UnsupportedVersion,
			msg:  "Unable to register because the broker does not support finalized version 4 of metadata.version. The broker wants a version between 1 and 3, inclusive.",
		},
		{
			name: "no metadata.version range is [1,1], which level 2 excludes", level: 2,
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.features = nil
				return r
			},
			code: kerr.UnsupportedVersion,
			msg:  "Unable to register because the broker does not support finalized version 2 of metadata.version. The broker wants a version between 1 and 1, inclusive.",
		},
		{
			name: "no metadata.version range at level 1 registers, and the record says [1,1]", level: 1,
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.features = nil
				return r
			},
			epoch: next, records: []string{"register(1,epoch=20,inc=1,fenced=true,ics=false)"},
			features: ccMV(1, 1),
		},
		{
			name: "a ZooKeeper broker", level: 4,
			req: func() brokerRegistration {
				r := ccRequest(1, 1)
				r.migratingZK = true
				return r
			},
			code: kerr.BrokerIDNotRegistered, msg: "Controller does not support registering ZK brokers.",
		},
		{
			name: "the cluster id is checked before the session", level: 4,
			existing: []*metadatapb.Record{ccRegistered(1, 7, 1, false, false)},
			req: func() brokerRegistration {
				r := ccRequest(1, 2)
				r.clusterID = "cluster-B"
				return r
			},
			liveFor: time.Second,
			code:    kerr.InconsistentClusterID, msg: "cluster-B",
		},
	}
	cc := clusterControl{clusterID: ccCluster, leadership: ccLeadership{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := fcImage(t, tt.level, tt.existing...)
			out := cc.register(img, tt.req(), next, tt.liveFor)
			if out.code != tt.code || !strings.Contains(out.msg, tt.msg) {
				t.Fatalf("register = %s %q, want %s containing %q", ccCode(out.code), out.msg, ccCode(tt.code), tt.msg)
			}
			if tt.code != nil {
				if len(out.records) != 0 {
					t.Fatalf("a refusal wrote %v", ccDescribe(out.records))
				}
				return
			}
			if out.epoch != tt.epoch {
				t.Errorf("epoch = %d, want %d", out.epoch, tt.epoch)
			}
			if got := ccDescribe(out.records); !slices.Equal(got, tt.records) {
				t.Errorf("records = %v, want %v", got, tt.records)
			}
			after := ccApply(t, img, next, out.records)
			b, ok := after.Broker(tt.req().id)
			if !ok || b.Epoch != tt.epoch {
				t.Fatalf("after the records the broker is %+v, want epoch %d", b, tt.epoch)
			}
			if tt.features != nil && !slices.EqualFunc(b.Features, tt.features, func(x, y *metadatapb.FeatureRange) bool {
				return x.GetName() == y.GetName() && x.GetMinSupportedVersion() == y.GetMinSupportedVersion() && x.GetMaxSupportedVersion() == y.GetMaxSupportedVersion()
			}) {
				t.Errorf("features = %v, want %v", b.Features, tt.features)
			}
		})
	}
}

// TestBrokerStateMachine is every transition a heartbeat can make, from each state the image can hold.
func TestBrokerStateMachine(t *testing.T) {
	const epoch, next = 10, 20
	type state struct{ fenced, ics bool }
	var (
		fenced     = state{fenced: true}
		unfenced   = state{}
		shutting   = state{ics: true}
		fencedDown = state{fenced: true, ics: true} // after a controlled shutdown completed
	)
	tests := []struct {
		name      string
		from      state
		leads     bool
		offset    int64
		wantFence bool
		wantDown  bool
		startedAt int64 // of a controlled shutdown; -1 none
		lowest    int64 // lowest active offset

		to           brokerState
		records      []string
		caughtUp     bool
		shutdownAt   int64
		notConsulted bool // lowestActiveOffset must not be computed
	}{
		{name: "fenced, behind its registration: stays fenced", from: fenced, offset: epoch - 1,
			to: brokerFenced, records: []string{}},
		{name: "fenced, caught up: unfenced, then leaderless partitions find it", from: fenced, offset: epoch,
			to: brokerUnfenced, caughtUp: true, records: []string{"change(1,epoch=10,fenced=FALSE,ics=-)", "admit[1]"}},
		{name: "fenced, caught up but wants to stay fenced", from: fenced, offset: epoch + 5, wantFence: true,
			to: brokerFenced, caughtUp: true, records: []string{}},
		{name: "fenced, wants to shut down: at once, nothing to move", from: fenced, offset: epoch + 5, wantDown: true,
			to: brokerShutdownNow, caughtUp: true, records: []string{}},
		{name: "fenced, not caught up, wants to shut down", from: fenced, offset: 0, wantDown: true,
			to: brokerShutdownNow, records: []string{}},
		{name: "fenced after a controlled shutdown, caught up: unfenced and out of controlled shutdown", from: fencedDown, offset: epoch,
			to: brokerUnfenced, caughtUp: true, records: []string{"change(1,epoch=10,fenced=FALSE,ics=FALSE)", "admit[1]"}},
		{name: "unfenced, steady: nothing written", from: unfenced, offset: epoch + 100,
			to: brokerUnfenced, caughtUp: true, records: []string{}},
		{name: "unfenced, wants fencing: leadership moves, then the fence", from: unfenced, offset: epoch + 1, wantFence: true,
			to: brokerFenced, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
		{name: "unfenced, wants fencing and shutdown: fenced and told to go", from: unfenced, offset: epoch + 1, wantFence: true, wantDown: true,
			to: brokerShutdownNow, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
		{name: "unfenced, wants shutdown, leads nothing: fenced and told to go", from: unfenced, offset: epoch + 1, wantDown: true,
			to: brokerShutdownNow, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
		{name: "unfenced, wants shutdown, leads partitions: controlled shutdown begins here", from: unfenced, leads: true, offset: epoch + 1, wantDown: true,
			to: brokerControlledShutdown, caughtUp: true, shutdownAt: next, records: []string{"change(1,epoch=10,fenced=-,ics=TRUE)", "evict[1]"}},
		{name: "controlled shutdown, still leads: waits", from: shutting, leads: true, offset: epoch + 1, wantDown: true, startedAt: 18, lowest: math.MaxInt64,
			to: brokerControlledShutdown, caughtUp: true, shutdownAt: 18, records: []string{}, notConsulted: true},
		{name: "controlled shutdown, leads nothing, an active broker is behind: waits", from: shutting, offset: epoch + 1, wantDown: true, startedAt: 18, lowest: 17,
			to: brokerControlledShutdown, caughtUp: true, shutdownAt: 18, records: []string{}},
		{name: "controlled shutdown, leads nothing, active brokers have seen it: fenced and told to go", from: shutting, offset: epoch + 1, wantDown: true, startedAt: 18, lowest: 18,
			to: brokerShutdownNow, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
		{name: "controlled shutdown with no active broker left: told to go", from: shutting, offset: epoch + 1, wantDown: true, startedAt: 18, lowest: math.MaxInt64,
			to: brokerShutdownNow, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
		{name: "controlled shutdown begun under the previous controller counts from the end of the log", from: shutting, offset: epoch + 1, wantDown: true, startedAt: -1, lowest: next - 2,
			to: brokerControlledShutdown, caughtUp: true, shutdownAt: next - 1, records: []string{}},
		{name: "controlled shutdown begun under the previous controller, everyone caught up", from: shutting, offset: epoch + 1, wantDown: true, startedAt: -1, lowest: next - 1,
			to: brokerShutdownNow, caughtUp: true, records: []string{"evict[1]", "change(1,epoch=10,fenced=TRUE,ics=-)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := fcImage(t, 4, ccRegistered(1, epoch, 1, tt.from.fenced, tt.from.ics))
			cc := clusterControl{clusterID: ccCluster, leadership: ccLeadership{leaders: map[int32]bool{1: tt.leads}}}
			consulted := false
			progress := shutdownProgress{startedAt: tt.startedAt, lowestActiveOffset: func() int64 { consulted = true; return tt.lowest }}
			if tt.from != shutting {
				progress.startedAt = -1
			}
			out := cc.heartbeat(img, brokerHeartbeat{id: 1, epoch: epoch, metadataOffset: tt.offset, wantFence: tt.wantFence, wantShutDown: tt.wantDown}, next, progress)
			if out.code != nil {
				t.Fatalf("heartbeat refused: %s %s", out.code.Message, out.msg)
			}
			if out.to != tt.to {
				t.Errorf("state %v → %v, want → %v", out.from, out.to, tt.to)
			}
			if got := ccDescribe(out.records); !slices.Equal(got, tt.records) {
				t.Errorf("records = %v, want %v", got, tt.records)
			}
			if out.caughtUp != tt.caughtUp {
				t.Errorf("IsCaughtUp = %v, want %v", out.caughtUp, tt.caughtUp)
			}
			wantFenced := tt.to == brokerFenced || tt.to == brokerShutdownNow
			if out.to.fenced() != wantFenced {
				t.Errorf("IsFenced = %v, want %v", out.to.fenced(), wantFenced)
			}
			if tt.to == brokerControlledShutdown && out.shutdownOffset != tt.shutdownAt {
				t.Errorf("controlled shutdown offset = %d, want %d", out.shutdownOffset, tt.shutdownAt)
			}
			if tt.notConsulted && consulted {
				t.Error("computed the lowest active offset although the broker still leads")
			}
			// The records are valid on the image, and the image then shows the state the answer claims
			// (SHUTDOWN_NOW is fenced in the image).
			after := ccApply(t, img, next, out.records)
			b, _ := after.Broker(1)
			imageState := stateOf(b)
			wantImage := tt.to
			if wantImage == brokerShutdownNow {
				wantImage = brokerFenced
			}
			if imageState != wantImage {
				t.Errorf("the image shows %v after the records, want %v", imageState, wantImage)
			}
		})
	}
}

func TestHeartbeatRefused(t *testing.T) {
	img := fcImage(t, 4, ccRegistered(1, 10, 1, false, false))
	cc := clusterControl{clusterID: ccCluster}
	never := shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { t.Fatal("consulted"); return 0 }}
	tests := []struct {
		name string
		hb   brokerHeartbeat
		msg  string
	}{
		{"an unknown broker", brokerHeartbeat{id: 2, epoch: 10, metadataOffset: 50}, "No broker registration found for broker id 2"},
		{"a stale epoch (a zombie of an earlier incarnation)", brokerHeartbeat{id: 1, epoch: 9, metadataOffset: 50}, "Expected broker epoch 10, but got broker epoch 9"},
		{"a future epoch", brokerHeartbeat{id: 1, epoch: 11, metadataOffset: 50, wantShutDown: true}, "Expected broker epoch 10, but got broker epoch 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := cc.heartbeat(img, tt.hb, 20, never)
			// Kafka answers STALE_BROKER_EPOCH to both; BROKER_ID_NOT_REGISTERED belongs to UnregisterBroker.
			if out.code != kerr.StaleBrokerEpoch || !strings.Contains(out.msg, tt.msg) || len(out.records) != 0 {
				t.Fatalf("heartbeat = %s %q %v, want STALE_BROKER_EPOCH containing %q and no records", ccCode(out.code), out.msg, ccDescribe(out.records), tt.msg)
			}
		})
	}
}

func TestUnregisterBroker(t *testing.T) {
	cc := clusterControl{clusterID: ccCluster, leadership: ccLeadership{}}
	img := fcImage(t, 4, ccRegistered(1, 10, 1, false, false))
	records, code, msg := cc.unregister(img, 1)
	if code != nil {
		t.Fatalf("unregister refused: %s", msg)
	}
	if got, want := ccDescribe(records), []string{"evict[1]", "unregister(1,epoch=10)"}; !slices.Equal(got, want) {
		t.Fatalf("records = %v, want %v", got, want)
	}
	after := ccApply(t, img, 20, records)
	if _, ok := after.Broker(1); ok {
		t.Fatal("broker 1 still registered")
	}
	records, code, msg = cc.unregister(after, 1)
	if code != kerr.BrokerIDNotRegistered || msg != "Broker ID 1 is not currently registered" || len(records) != 0 {
		t.Fatalf("unregister of an unknown broker = %s %q %v", ccCode(code), msg, ccDescribe(records))
	}
}

func TestFenceExpired(t *testing.T) {
	cc := clusterControl{clusterID: ccCluster, leadership: ccLeadership{}}
	img := fcImage(t, 4,
		ccRegistered(1, 10, 1, false, false), // unfenced: fenced
		ccRegistered(2, 11, 1, true, false),  // already fenced: nothing
		ccRegistered(3, 12, 1, false, true),  // in controlled shutdown, still unfenced: fenced
		ccRegistered(4, 13, 1, false, false), // re-registered since its session began: nothing
	)
	expired := []expiredSession{{1, 10}, {2, 11}, {3, 12}, {4, 5}, {5, 14}}
	records, fenced := cc.fenceExpired(img, expired)
	want := []string{"evict[1 3]", "change(1,epoch=10,fenced=TRUE,ics=-)", "change(3,epoch=12,fenced=TRUE,ics=-)"}
	if got := ccDescribe(records); !slices.Equal(got, want) || !slices.Equal(fenced, []int32{1, 3}) {
		t.Fatalf("fenceExpired = %v %v, want %v [1 3]", got, fenced, want)
	}
	// Once the fence is in the (speculative) image, the same expiry fences nothing: exactly once.
	after := ccApply(t, img, 20, records)
	if records, fenced := cc.fenceExpired(after, expired); len(records) != 0 || len(fenced) != 0 {
		t.Fatalf("a second pass fenced again: %v", ccDescribe(records))
	}
}

// TestBrokerLifecycle walks one broker through its life, applying what each step writes at the offset
// the log would give it, as the active controller's speculative image does.
func TestBrokerLifecycle(t *testing.T) {
	cc := clusterControl{clusterID: ccCluster}
	img := fcImage(t, 4)
	offset := uint64(2)
	step := func(records []*metadatapb.Record) {
		t.Helper()
		if len(records) > 0 {
			img = ccApply(t, img, offset, records)
			offset++
		}
	}
	none := shutdownProgress{startedAt: -1, lowestActiveOffset: func() int64 { return math.MaxInt64 }}
	hb := func(epoch, applied int64, wantFence, wantDown bool) heartbeatOutcome {
		t.Helper()
		out := cc.heartbeat(img, brokerHeartbeat{id: 1, epoch: epoch, metadataOffset: applied, wantFence: wantFence, wantShutDown: wantDown}, offset, none)
		if out.code != nil {
			t.Fatalf("heartbeat refused: %s", out.msg)
		}
		step(out.records)
		return out
	}

	reg := cc.register(img, ccRequest(1, 1), offset, 0)
	step(reg.records)
	epoch := reg.epoch
	if epoch != 2 {
		t.Fatalf("epoch = %d, want the registration's offset 2", epoch)
	}
	if out := hb(epoch, 1, false, false); out.to != brokerFenced || out.caughtUp || len(out.records) != 0 {
		t.Fatalf("behind its registration: %v caughtUp=%v %v", out.to, out.caughtUp, ccDescribe(out.records))
	}
	if out := hb(epoch, int64(img.Offset), false, false); out.to != brokerUnfenced || !out.caughtUp {
		t.Fatalf("caught up: %v caughtUp=%v", out.to, out.caughtUp)
	}
	for range 3 {
		if out := hb(epoch, int64(img.Offset), false, false); out.to != brokerUnfenced || len(out.records) != 0 {
			t.Fatalf("steady heartbeat wrote %v", ccDescribe(out.records))
		}
	}
	// A retried registration of the same process keeps its epoch and its unfenced state.
	if again := cc.register(img, ccRequest(1, 1), offset, time.Second); again.epoch != epoch || len(again.records) != 0 {
		t.Fatalf("re-registration = epoch %d %v", again.epoch, ccDescribe(again.records))
	}
	if out := hb(epoch, int64(img.Offset), false, true); out.to != brokerShutdownNow || !out.to.fenced() {
		t.Fatalf("shutdown: %v", out.to)
	}
	if b, _ := img.Broker(1); !b.Fenced {
		t.Fatal("a broker told to shut down is not fenced in the image")
	}
	// The restarted process is a new incarnation: its old session is gone, so it registers anew.
	reg2 := cc.register(img, ccRequest(1, 2), offset, 0)
	step(reg2.records)
	if reg2.epoch <= epoch {
		t.Fatalf("new incarnation's epoch %d does not exceed %d", reg2.epoch, epoch)
	}
	if out := cc.heartbeat(img, brokerHeartbeat{id: 1, epoch: epoch, metadataOffset: 100}, offset, none); out.code != kerr.StaleBrokerEpoch {
		t.Fatalf("the old incarnation's heartbeat = %s, want STALE_BROKER_EPOCH", ccCode(out.code))
	}
	records, code, _ := cc.unregister(img, 1)
	if code != nil {
		t.Fatal(code)
	}
	step(records)
	if out := cc.heartbeat(img, brokerHeartbeat{id: 1, epoch: reg2.epoch, metadataOffset: 100}, offset, none); out.code != kerr.StaleBrokerEpoch {
		t.Fatalf("heartbeat after unregistration = %s, want STALE_BROKER_EPOCH", ccCode(out.code))
	}
}

// bulkLeadership evicts with n records, as a broker leading n partitions would.
type bulkLeadership struct{ n int }

func (l bulkLeadership) leads(*metadatalog.Image, int32) bool { return l.n > 0 }
func (l bulkLeadership) evict(_ *metadatalog.Image, bs []int32) []*metadatapb.Record {
	out := make([]*metadatapb.Record, l.n)
	for i := range out {
		out[i] = ccMarker(fmt.Sprintf("evict%v#%d", bs, i))
	}
	return out
}
func (l bulkLeadership) admit(*metadatalog.Image, int32) []*metadatapb.Record { return nil }

// A new incarnation replacing an unfenced one that led many partitions is written after more evictions
// than one batch holds: its epoch must be the offset of the batch that really holds its record.
func TestRegisterEpochIsTheOffsetOfItsBatch(t *testing.T) {
	img := fcImage(t, 4, ccRegistered(1, 7, 1, false, false))
	for _, n := range []int{0, maxRecordsPerBatch - 1, maxRecordsPerBatch, 2*maxRecordsPerBatch + 5} {
		cc := clusterControl{clusterID: ccCluster, leadership: bulkLeadership{n: n}}
		const offset = 20
		out := cc.register(img, ccRequest(1, 2), offset, 0)
		if out.code != nil {
			t.Fatalf("%d evictions: refused: %v %s", n, out.code, out.msg)
		}
		idx := len(out.records) - 1
		reg := out.records[idx].GetRegisterBroker()
		want := int64(offset + idx/maxRecordsPerBatch)
		if reg == nil || out.epoch != want || reg.GetBrokerEpoch() != want {
			t.Fatalf("%d evictions: epoch %d, record epoch %d, want %d (record %d of %d)", n, out.epoch, reg.GetBrokerEpoch(), want, idx, len(out.records))
		}
	}
}
