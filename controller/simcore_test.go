package controller

import (
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMembershipCore drives the exported core through one broker's life, writing each result at the
// offset it was decided for, as test/sim does: register, unfence, go silent and be fenced once, come
// back with another incarnation after expiry, and lose every session on resignation.
func TestMembershipCore(t *testing.T) {
	const timeout = time.Second
	core := NewMembershipCore(ccCluster, timeout)
	img := metadatalog.EmptyImage()
	next := uint64(1)
	write := func(records []*metadatapb.Record) {
		t.Helper()
		if len(records) == 0 {
			return
		}
		img = ccApply(t, img, next, records)
		next++
	}
	register := func(inc byte, now time.Time) *kmsg.BrokerRegistrationResponse {
		req := kmsg.NewPtrBrokerRegistrationRequest()
		req.BrokerID, req.ClusterID, req.IncarnationID = 1, ccCluster, ccInc(inc)
		records, resp := core.Register(img, req, next, now)
		write(records)
		return resp
	}
	heartbeat := func(epoch, offset int64, now time.Time) *kmsg.BrokerHeartbeatResponse {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = 1, epoch, offset
		records, resp := core.Heartbeat(img, req, next, now)
		write(records)
		return resp
	}

	core.Activate(img, sessAt(0))
	reg := register(1, sessAt(0))
	if reg.ErrorCode != 0 || reg.BrokerEpoch != 1 {
		t.Fatalf("registration = error %d epoch %d, want epoch 1 (its offset)", reg.ErrorCode, reg.BrokerEpoch)
	}
	if hb := heartbeat(1, 1, sessAt(100*time.Millisecond)); hb.ErrorCode != 0 || !hb.IsCaughtUp || hb.IsFenced {
		t.Fatalf("caught-up heartbeat = %+v", hb)
	}
	if b, _ := img.Broker(1); b.Fenced {
		t.Fatal("the unfence was not written")
	}
	if AnswerWaits(img, img, 1) {
		t.Fatal("an answer waits with nothing in flight")
	}
	if r := register(2, sessAt(200*time.Millisecond)); r.ErrorCode != kerr.DuplicateBrokerRegistration.Code {
		t.Fatalf("another incarnation while the session lives = error %d", r.ErrorCode)
	}

	// Silence: one fence, however often the expiry is asked again.
	if records := core.Expire(img, sessAt(time.Second)); len(records) != 0 {
		t.Fatalf("expired before the deadline: %v", ccDescribe(records))
	}
	records := core.Expire(img, sessAt(1200*time.Millisecond))
	if got := ccDescribe(records); len(got) != 1 || got[0] != "change(1,epoch=1,fenced=TRUE,ics=-)" {
		t.Fatalf("expiry wrote %v", got)
	}
	spec := ccApply(t, img, next, records)
	if !AnswerWaits(spec, img, 1) {
		t.Fatal("an answer about a broker whose fence is in flight does not wait")
	}
	write(records)
	if records := core.Expire(img, sessAt(5*time.Second)); len(records) != 0 {
		t.Fatalf("fenced twice: %v", ccDescribe(records))
	}

	// The old session is gone, so a new incarnation registers at a new epoch.
	if r := register(2, sessAt(1300*time.Millisecond)); r.ErrorCode != 0 || r.BrokerEpoch != 4 {
		t.Fatalf("new incarnation = error %d epoch %d, want epoch 4", r.ErrorCode, r.BrokerEpoch)
	}
	if hb := heartbeat(1, 4, sessAt(1400*time.Millisecond)); hb.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("the old incarnation's heartbeat = %+v", hb)
	}

	// A resigned core holds no session: after activating again the broker has a fresh one.
	core.Resign()
	if r := register(3, sessAt(1500*time.Millisecond)); r.ErrorCode != 0 || r.BrokerEpoch != 5 {
		t.Fatalf("after resigning, another incarnation = error %d epoch %d, want epoch 5", r.ErrorCode, r.BrokerEpoch)
	}
	// Activation gives every broker a fresh session, but a fenced registration does not hold its id
	// (as in Kafka), so another incarnation still registers.
	core.Activate(img, sessAt(2*time.Second))
	if r := register(5, sessAt(2100*time.Millisecond)); r.ErrorCode != 0 {
		t.Fatalf("after activating, another incarnation of a fenced broker = error %d, want success", r.ErrorCode)
	}
}
