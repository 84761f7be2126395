package broker

import (
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSimCoreMatchesTheBroker checks that the exported entry points are the broker's own code paths.
func TestSimCoreMatchesTheBroker(t *testing.T) {
	for _, ev := range []lifecycleEvent{
		{kind: evStart}, {kind: evRegistered}, {kind: evHeartbeat}, {kind: evHeartbeat, fenced: true},
		{kind: evHeartbeat, shouldShutDown: true}, {kind: evSessionLost}, {kind: evShutdownRequested}, {kind: evStopped},
	} {
		for _, cur := range []State{StateNotRunning, StateStarting, StateRecovery, StateRunning, StatePendingControlledShutdown, StateShuttingDown} {
			got := NextState(cur, LifecycleEvent{Kind: LifecycleEventKind(ev.kind), Fenced: ev.fenced, ShouldShutDown: ev.shouldShutDown})
			if want := nextState(cur, ev); got != want {
				t.Errorf("NextState(%v, %v) = %v, want %v", cur, ev.kind, got, want)
			}
		}
	}

	cfg := Config{NodeID: 7, ClusterID: "c", Listeners: []Listener{{Name: "PLAINTEXT", Host: "h", Port: 9092}}}
	reg := RegistrationRequest(cfg, [16]byte{9})
	if reg.BrokerID != 7 || reg.ClusterID != "c" || reg.IncarnationID != [16]byte{9} || len(reg.Listeners) != 1 || len(reg.Features) != 1 {
		t.Fatalf("registration request = %+v", reg)
	}
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: &metadatapb.RegisterBrokerRecord{
			BrokerId: 7, BrokerEpoch: 1, Fenced: false, Endpoints: []*metadatapb.Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9092}}}}},
		{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: &metadatapb.RegisterBrokerRecord{
			BrokerId: 8, BrokerEpoch: 1, Fenced: true, Endpoints: []*metadatapb.Endpoint{{Name: "PLAINTEXT", Host: "h8", Port: 9092}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if f := FetchRequest(cfg, img); f.Topics[0].Partitions[0].FetchOffset != 2 {
		t.Fatalf("fetch request asks from %d, want 2", f.Topics[0].Partitions[0].FetchOffset)
	}
	resp := MetadataResponse(img, "c", 7, "PLAINTEXT", kmsg.NewPtrMetadataRequest())
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 7 || resp.ControllerID != 7 || *resp.ClusterID != "c" {
		t.Fatalf("Metadata = brokers %+v controller %d", resp.Brokers, resp.ControllerID)
	}
	if out := ApplyFetch(img, kmsg.NewPtrFetchResponse()); out.Image != img || out.Refused == nil || out.Fatal != nil {
		t.Fatalf("an answer without the metadata partition = %+v", out)
	}
}
