package broker

// Deterministic entry points into the broker's pure code, for test/sim: the lifecycle (nextState), the
// requests a broker sends to the quorum, how it applies a log-follow answer, and its Metadata answer.
// Each is a thin wrapper over the function the running broker calls, so that the simulation drives the
// product's decisions on its logical clock rather than a copy of them.

import (
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LifecycleEventKind is something a broker learns that may move its State.
type LifecycleEventKind int8

// The lifecycle events, as the broker's session feeds them to its state machine.
const (
	// LifecycleStart: the process started.
	LifecycleStart = LifecycleEventKind(evStart)
	// LifecycleRegistered: the active controller accepted the registration and gave a broker epoch.
	LifecycleRegistered = LifecycleEventKind(evRegistered)
	// LifecycleHeartbeat: the active controller answered a heartbeat without error.
	LifecycleHeartbeat = LifecycleEventKind(evHeartbeat)
	// LifecycleSessionLost: the controller answered STALE_BROKER_EPOCH or BROKER_ID_NOT_REGISTERED.
	LifecycleSessionLost = LifecycleEventKind(evSessionLost)
	// LifecycleShutdownRequested: a controlled shutdown was asked for (SIGTERM).
	LifecycleShutdownRequested = LifecycleEventKind(evShutdownRequested)
	// LifecycleStopped: the broker stopped talking to the quorum.
	LifecycleStopped = LifecycleEventKind(evStopped)
)

// LifecycleEvent is one event; Fenced and ShouldShutDown are a heartbeat answer's.
type LifecycleEvent struct {
	Kind                   LifecycleEventKind
	Fenced, ShouldShutDown bool
}

// NextState is the broker's lifecycle: the state after ev in cur.
func NextState(cur State, ev LifecycleEvent) State {
	return nextState(cur, lifecycleEvent{kind: eventKind(ev.Kind), fenced: ev.Fenced, shouldShutDown: ev.ShouldShutDown})
}

// RegistrationRequest is the BrokerRegistration a broker configured by cfg sends for its process
// incarnation.
func RegistrationRequest(cfg Config, incarnation [16]byte) *kmsg.BrokerRegistrationRequest {
	b := &Broker{cfg: cfg.withDefaults(), incarnation: incarnation}
	return b.registrationRequest().(*kmsg.BrokerRegistrationRequest)
}

// FetchRequest is the log-follow Fetch a broker configured by cfg sends when it has applied img.
func FetchRequest(cfg Config, img *metadatalog.Image) *kmsg.FetchRequest {
	b := &Broker{cfg: cfg.withDefaults()}
	return b.fetchRequest(img)
}

// FetchOutcome is what one log-follow answer means to the broker.
type FetchOutcome struct {
	// Image is the image after every entry of the answer (the one asked with if it carried none).
	Image *metadatalog.Image
	// HighWatermark is the answer's, -1 if it carried none.
	HighWatermark int64
	// Refused is a refusal to retry elsewhere or later; Leader is the controller a
	// NOT_LEADER_OR_FOLLOWER refusal names, -1 if none.
	Refused error
	Leader  int32
	// Fatal is an answer the broker must stop on: undecodable, impossible, a gap, a divergence.
	Fatal error
	// Snapshot, when set, is the controller's newest snapshot, named instead of records because the
	// log before the broker's next offset is gone: the broker downloads it with FetchSnapshot.
	Snapshot *SnapshotID
}

// ApplyFetch applies one Fetch answer to img, as the broker's follower does.
func ApplyFetch(img *metadatalog.Image, resp *kmsg.FetchResponse) FetchOutcome {
	r := applyFetch(img, resp)
	return FetchOutcome{Image: r.img, HighWatermark: r.hw, Refused: r.err, Leader: r.leader, Fatal: r.fatal, Snapshot: r.snapshot}
}

// MetadataResponse is the Metadata answer broker self of clusterID gives from img to a client that came
// in on listener.
func MetadataResponse(img *metadatalog.Image, clusterID string, self int32, listener string, req *kmsg.MetadataRequest) *kmsg.MetadataResponse {
	v := view{img: img, clusterID: clusterID, controllerID: clientControllerID(img, self), listener: listener}
	return metadataResponse(v, req)
}

// ISRExpansion is the AlterPartition request a broker at epoch sends, as leader, to grow ISRs back with
// the replicas img says may lead again; nil when there is nothing to grow. It is at the newest version,
// which the broker's client negotiates with our controllers.
func ISRExpansion(img *metadatalog.Image, self int32, epoch int64) *kmsg.AlterPartitionRequest {
	topics, n := isrExpansions(img, self, nil, maxAlterPartitions)
	if n == 0 {
		return nil
	}
	req := alterPartitionRequest(self, epoch, topics)
	req.Version = req.MaxVersion()
	return req
}
