package controller

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mtWait polls cond with a generous deadline: the test is about what happens, not how fast.
func mtWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mtController starts a single-voter controller on a real log, with a short session timeout.
func mtController(t *testing.T, sessionTimeout time.Duration) (*Controller, string) {
	return startTestController(t, func(cfg *Config) { cfg.SessionTimeout = sessionTimeout })
}

// startTestController starts a single-voter controller on a real log in a temporary directory, with
// tune adjusting its configuration, and waits until it is active and bootstrapped.
func startTestController(t *testing.T, tune func(*Config)) (*Controller, string) {
	t.Helper()
	clusterID := metadatalog.RandomUUID()
	dir := filepath.Join(t.TempDir(), "node-1")
	boot := metadatalog.BootstrapRecords(metadatalog.LatestMetadataVersion)
	if err := metadatalog.Format(dir, metadatalog.MetaProperties{ClusterID: clusterID, NodeID: 1}, boot, false); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	l, err := metadatalog.OpenLog(metadatalog.LogConfig{
		NodeID: 1, ClusterID: clusterID, Voters: map[uint64]string{1: "127.0.0.1:1"}, Dir: dir,
		ElectionTimeout: 100 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		NodeID: 1, ClusterID: clusterID, Voters: map[int32]string{1: "127.0.0.1:1"}, Log: l, Bootstrap: boot,
		Logger: quiet, OnFatal: func(err error) { t.Errorf("controller fatal: %v", err) },
	}
	tune(&cfg)
	c := New(cfg)
	l.Start()
	c.Start()
	t.Cleanup(func() {
		c.Close()
		l.Close()
	})
	mtWait(t, "the controller to activate and bootstrap", func() bool {
		return c.Active() && c.Image().MetadataVersion() == metadatalog.LatestMetadataVersion.Level
	})
	return c, clusterID
}

func mtRegister(t *testing.T, c *Controller, clusterID string, id int32, inc byte) *kmsg.BrokerRegistrationResponse {
	t.Helper()
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.Version, req.BrokerID, req.ClusterID, req.IncarnationID = 4, id, clusterID, ccInc(inc)
	l := kmsg.NewBrokerRegistrationRequestListener()
	l.Name, l.Host, l.Port = "PLAINTEXT", "127.0.0.1", 9092
	req.Listeners = append(req.Listeners, l)
	f := kmsg.NewBrokerRegistrationRequestFeature()
	f.Name, f.MinSupportedVersion, f.MaxSupportedVersion = metadatalog.MetadataVersionFeature, metadatalog.MinMetadataVersion.Level, metadatalog.LatestMetadataVersion.Level
	req.Features = append(req.Features, f)
	resp, err := c.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.BrokerRegistrationResponse)
}

func mtHeartbeat(t *testing.T, c *Controller, id int32, epoch, offset int64, wantFence, wantShutdown bool) *kmsg.BrokerHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.Version, req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset, req.WantFence, req.WantShutdown = 2, id, epoch, offset, wantFence, wantShutdown
	resp, err := c.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*kmsg.BrokerHeartbeatResponse)
}

func mtBroker(c *Controller, id int32) (*metadatalog.Broker, bool) { return c.Image().Broker(id) }

// TestControllerBrokerMembership drives a real controller through a broker's life over its Kafka API.
func TestControllerBrokerMembership(t *testing.T) {
	const timeout = time.Second
	c, clusterID := mtController(t, timeout)
	apis := c.APIs()
	for key, want := range map[int16]int16{62: 4, 63: 2, 64: 0} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != want {
			t.Fatalf("APIs()[%d] = %+v, want 0–%d", key, r, want)
		}
	}

	// Node 1 is a voter and registers as a broker too: combined mode.
	reg := mtRegister(t, c, clusterID, 1, 1)
	if reg.ErrorCode != 0 || reg.BrokerEpoch <= 0 {
		t.Fatalf("registration = error %d epoch %d", reg.ErrorCode, reg.BrokerEpoch)
	}
	epoch := reg.BrokerEpoch
	mtWait(t, "the registration in the image", func() bool { b, ok := mtBroker(c, 1); return ok && b.Epoch == epoch && b.Fenced })

	if hb := mtHeartbeat(t, c, 1, epoch, epoch-1, false, false); hb.ErrorCode != 0 || hb.IsCaughtUp || !hb.IsFenced {
		t.Fatalf("heartbeat behind the registration = %+v", hb)
	}
	if hb := mtHeartbeat(t, c, 1, epoch, epoch, false, false); hb.ErrorCode != 0 || !hb.IsCaughtUp || hb.IsFenced {
		t.Fatalf("caught-up heartbeat = %+v", hb)
	}
	mtWait(t, "the unfence in the image", func() bool { b, _ := mtBroker(c, 1); return !b.Fenced })

	// Steady heartbeats write nothing.
	before := c.Image().Offset
	for range 20 {
		if hb := mtHeartbeat(t, c, 1, epoch, int64(before), false, false); hb.ErrorCode != 0 || hb.IsFenced || hb.ShouldShutdown {
			t.Fatalf("steady heartbeat = %+v", hb)
		}
	}
	if after := c.Image().Offset; after != before {
		t.Fatalf("20 steady heartbeats moved the log from %d to %d", before, after)
	}

	if r := mtRegister(t, c, clusterID, 1, 1); r.ErrorCode != 0 || r.BrokerEpoch != epoch {
		t.Fatalf("same incarnation again = error %d epoch %d, want epoch %d", r.ErrorCode, r.BrokerEpoch, epoch)
	}
	if r := mtRegister(t, c, clusterID, 1, 2); r.ErrorCode != kerr.DuplicateBrokerRegistration.Code {
		t.Fatalf("another incarnation while the session lives = error %d", r.ErrorCode)
	}
	if r := mtRegister(t, c, "another-cluster", 1, 2); r.ErrorCode != kerr.InconsistentClusterID.Code {
		t.Fatalf("another cluster's broker = error %d", r.ErrorCode)
	}

	// Silence: the session expires and the controller fences the broker on its own.
	mtWait(t, "the expired session to fence broker 1", func() bool { b, _ := mtBroker(c, 1); return b.Fenced })

	reg2 := mtRegister(t, c, clusterID, 1, 2)
	if reg2.ErrorCode != 0 || reg2.BrokerEpoch <= epoch {
		t.Fatalf("new incarnation after expiry = error %d epoch %d (old %d)", reg2.ErrorCode, reg2.BrokerEpoch, epoch)
	}
	if hb := mtHeartbeat(t, c, 1, epoch, reg2.BrokerEpoch, false, false); hb.ErrorCode != kerr.StaleBrokerEpoch.Code || !hb.IsFenced {
		t.Fatalf("the old incarnation's heartbeat = %+v", hb)
	}
	if hb := mtHeartbeat(t, c, 2, 1, 100, false, false); hb.ErrorCode != kerr.StaleBrokerEpoch.Code {
		t.Fatalf("an unregistered broker's heartbeat = %+v", hb)
	}
	if hb := mtHeartbeat(t, c, 1, reg2.BrokerEpoch, reg2.BrokerEpoch, false, true); hb.ErrorCode != 0 || !hb.ShouldShutdown || !hb.IsFenced {
		t.Fatalf("a fenced broker asking to shut down = %+v", hb)
	}

	un := kmsg.NewPtrUnregisterBrokerRequest()
	un.BrokerID = 1
	resp, err := c.Handle(context.Background(), un)
	if err != nil || resp.(*kmsg.UnregisterBrokerResponse).ErrorCode != 0 {
		t.Fatalf("unregister = %+v %v", resp, err)
	}
	mtWait(t, "the unregistration in the image", func() bool { _, ok := mtBroker(c, 1); return !ok })
	resp, _ = c.Handle(context.Background(), un)
	if r := resp.(*kmsg.UnregisterBrokerResponse); r.ErrorCode != kerr.BrokerIDNotRegistered.Code || r.ErrorMessage == nil || *r.ErrorMessage != "Broker ID 1 is not currently registered" {
		t.Fatalf("unregister of an unknown broker = %+v", r)
	}
}
