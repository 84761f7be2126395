package broker

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const testClusterID = "test-cluster-id-0001"

// waitFor polls cond until it holds; the deadline is generous because the test asserts an outcome,
// never a duration.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stateLog records lifecycle transitions through the OnStateChange knob.
type stateLog struct {
	mu    sync.Mutex
	moves []string
}

func (s *stateLog) record(from, to State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.moves = append(s.moves, from.String()+"->"+to.String())
}

func (s *stateLog) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.moves)
}

// testBroker is a broker wired to fake controllers, with its own broker port served the way kraftd
// serves it.
type testBroker struct {
	*Broker
	addr   string
	states *stateLog
}

func startBroker(t *testing.T, controllers map[int32]string, tweak func(*Config)) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	states := &stateLog{}
	cfg := Config{
		NodeID:            101,
		ClusterID:         testClusterID,
		Controllers:       controllers,
		Listeners:         []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: int32(port), SecurityProtocol: "PLAINTEXT"}},
		Rack:              "rack-a",
		HeartbeatInterval: 20 * time.Millisecond,
		FetchMaxWait:      50 * time.Millisecond,
		RequestTimeout:    5 * time.Second,
		Logger:            quietLogger(),
		Knobs: Knobs{
			BackoffMin:    2 * time.Millisecond,
			BackoffMax:    20 * time.Millisecond,
			OnStateChange: states.record,
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b := New(cfg)
	srv := kafkaserver.Serve(kafkaserver.Options{
		Listener:            ln,
		Handler:             b.HandlerFor("PLAINTEXT"),
		APIs:                b.APIs(),
		DecorateApiVersions: b.DecorateApiVersions,
		Logger:              quietLogger(),
	})
	t.Cleanup(func() {
		b.Close()
		srv.Close()
	})
	b.Start()
	return &testBroker{Broker: b, addr: ln.Addr().String(), states: states}
}

func brokerUnfencedInImage(b *Broker) bool {
	br, ok := b.Image().Broker(b.cfg.NodeID)
	return ok && !br.Fenced
}

func TestBrokerRegistersFollowsAndServesMetadata(t *testing.T) {
	ctrl := newFakeController(t, 1, nil)
	b := startBroker(t, map[int32]string{1: ctrl.addr}, nil)

	waitFor(t, "RUNNING", func() bool { return b.State() == StateRunning })
	if got := b.Epoch(); got != 7 {
		t.Fatalf("epoch %d, want 7 (the offset of the registration record)", got)
	}
	waitFor(t, "the broker's own unfencing in its image", func() bool { return brokerUnfencedInImage(b.Broker) })
	waitFor(t, "caught up", b.CaughtUp)
	if got := b.ControllerID(); got != 1 {
		t.Fatalf("controller %d, want 1", got)
	}
	if got := b.Image().MetadataVersion(); got != fakeMV {
		t.Fatalf("metadata.version %d in the image, want %d", got, fakeMV)
	}
	// The broker negotiates: the newest each side speaks, and Fetch capped at 12.
	for key, want := range map[int16]int16{62: 4, 63: 2, 1: 12} {
		if got := ctrl.version(key); got != want {
			t.Errorf("key %d sent at v%d, want v%d", key, got, want)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The controller clients are told of is a live broker (this one), as in Kafka's KRaft mode.
	if md.Cluster != testClusterID || md.Controller != 101 {
		t.Fatalf("metadata cluster %q controller %d, want %q and 101", md.Cluster, md.Controller, testClusterID)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 101 || md.Brokers[0].Host != "127.0.0.1" ||
		net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))) != b.addr ||
		md.Brokers[0].Rack == nil || *md.Brokers[0].Rack != "rack-a" {
		t.Fatalf("metadata brokers %+v, want broker 101 at %s in rack-a", md.Brokers, b.addr)
	}

	// ApiVersions carries the features of the image the broker serves.
	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(av.FinalizedFeatures) != 1 || av.FinalizedFeatures[0].MaxVersionLevel != fakeMV || av.FinalizedFeaturesEpoch <= 0 {
		t.Fatalf("ApiVersions finalized %+v epoch %d", av.FinalizedFeatures, av.FinalizedFeaturesEpoch)
	}
	for _, k := range av.ApiKeys {
		if k.ApiKey == 0 || k.ApiKey == 1 {
			t.Fatalf("the broker port advertises data-plane key %d", k.ApiKey)
		}
	}

	// Controlled shutdown: WantShutDown heartbeats until the controller says ShouldShutDown.
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := b.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if n := ctrl.count("wantShutdown"); n < 2 {
		t.Fatalf("%d WantShutDown heartbeats, want at least 2 (the fake grants the second)", n)
	}
	want := []string{
		"NOT_RUNNING->STARTING", "STARTING->RECOVERY", "RECOVERY->RUNNING",
		"RUNNING->PENDING_CONTROLLED_SHUTDOWN", "PENDING_CONTROLLED_SHUTDOWN->SHUTTING_DOWN",
	}
	if got := b.states.get(); !slices.Equal(got, want) {
		t.Fatalf("lifecycle %v, want %v", got, want)
	}
	if b.State() != StateShuttingDown {
		t.Fatalf("state %v after Shutdown", b.State())
	}
}

func TestBrokerUnfencesWithoutWaitingAHeartbeatInterval(t *testing.T) {
	// With an hour between heartbeats, only the heartbeat sent when the follower applies the
	// registration record (or a first heartbeat that already carried it) can unfence the broker.
	ctrl := newFakeController(t, 1, nil)
	b := startBroker(t, map[int32]string{1: ctrl.addr}, func(c *Config) { c.HeartbeatInterval = time.Hour })
	waitFor(t, "RUNNING", func() bool { return b.State() == StateRunning })
	if n := ctrl.count("heartbeat"); n > 2 {
		t.Fatalf("%d heartbeats, want at most 2", n)
	}
}

func TestBrokerMovesPastStandbyController(t *testing.T) {
	active := newFakeController(t, 2, nil)
	standby := newFakeController(t, 1, func(f *fakeController) { f.standby, f.leaderHint = true, 2 })
	// The search starts at the lowest id, the standby, so the broker must move on by itself.
	b := startBroker(t, map[int32]string{1: standby.addr, 2: active.addr}, func(c *Config) { c.Knobs.NoRandomStart = true })

	waitFor(t, "RUNNING", func() bool { return b.State() == StateRunning })
	waitFor(t, "the broker's own unfencing in its image", func() bool { return brokerUnfencedInImage(b.Broker) })
	if got := b.ControllerID(); got != 2 {
		t.Fatalf("active controller %d, want 2", got)
	}
	if standby.count("registration") == 0 {
		t.Fatal("the standby was never asked; the test did not exercise NOT_CONTROLLER")
	}
	if active.count("registration") != 1 {
		t.Fatalf("%d registrations at the active controller, want 1", active.count("registration"))
	}
}

func TestBrokerReregistersWhenSessionLost(t *testing.T) {
	ctrl := newFakeController(t, 1, nil)
	b := startBroker(t, map[int32]string{1: ctrl.addr}, nil)
	waitFor(t, "RUNNING", func() bool { return b.State() == StateRunning })
	first := b.Epoch()

	ctrl.mu.Lock()
	ctrl.mu.staleOne = true
	ctrl.mu.Unlock()

	waitFor(t, "a new registration", func() bool { return ctrl.count("registration") >= 2 })
	waitFor(t, "RUNNING at a new epoch", func() bool { return b.State() == StateRunning && b.Epoch() > first })
	moves := b.states.get()
	if !slices.Contains(moves, "RUNNING->STARTING") {
		t.Fatalf("lifecycle %v: the lost session should send the broker back to STARTING", moves)
	}
}

func TestBrokerFatalAtRegistration(t *testing.T) {
	for _, tc := range []struct {
		name  string
		code  *kerr.Error
		wants []string
	}{
		{"unsupported metadata.version", kerr.UnsupportedVersion, []string{"5", "1-4", "metadata.version"}},
		{"another cluster", kerr.InconsistentClusterID, []string{testClusterID, "INCONSISTENT_CLUSTER_ID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrl := newFakeController(t, 1, func(f *fakeController) { f.registrationErr, f.finalizedMV = tc.code, 5 })
			b := startBroker(t, map[int32]string{1: ctrl.addr}, func(c *Config) { c.SupportedMetadataVersion = [2]int16{1, 4} })
			var err error
			select {
			case err = <-b.Fatal():
			case <-time.After(20 * time.Second):
				t.Fatal("no fatal error")
			}
			if !errors.Is(err, tc.code) {
				t.Fatalf("fatal %v, want %v", err, tc.code)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("fatal %q does not name %q", err, w)
				}
			}
			if _, open := <-b.Fatal(); open {
				t.Fatal("Fatal should close after its error")
			}
		})
	}
}

func TestBrokerFatalOnImpossibleRecord(t *testing.T) {
	ctrl := newFakeController(t, 1, nil)
	// A change to a broker nobody registered: an image built past it could not be vouched for.
	ctrl.appendRaw(batchBytes(t, &metadatapb.Record{Record: &metadatapb.Record_BrokerRegistrationChange{
		BrokerRegistrationChange: &metadatapb.BrokerRegistrationChangeRecord{BrokerId: 999, BrokerEpoch: 1}}}))
	b := startBroker(t, map[int32]string{1: ctrl.addr}, nil)
	select {
	case err := <-b.Fatal():
		if !strings.Contains(err.Error(), "impossible record") || !strings.Contains(err.Error(), "offset 7") {
			t.Fatalf("fatal %q should name the impossible record at offset 7", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no fatal error")
	}
	if off := b.Image().Offset; off >= 7 {
		t.Fatalf("the image reached offset %d, past the impossible record", off)
	}
}

func TestShutdownWithoutRegistration(t *testing.T) {
	// Nothing listens at this address, so the broker never registers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	b := startBroker(t, map[int32]string{1: dead}, nil)
	waitFor(t, "STARTING", func() bool { return b.State() == StateStarting })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.states.get(); !slices.Equal(got, []string{"NOT_RUNNING->STARTING", "STARTING->SHUTTING_DOWN"}) {
		t.Fatalf("lifecycle %v", got)
	}
}

func TestStartWithBadConfigIsFatal(t *testing.T) {
	b := New(Config{NodeID: 1, ClusterID: "x", Logger: quietLogger()})
	b.Start()
	defer b.Close()
	select {
	case err := <-b.Fatal():
		if !strings.Contains(err.Error(), "controller") {
			t.Fatalf("fatal %q should name the missing controllers", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no fatal error")
	}
}
