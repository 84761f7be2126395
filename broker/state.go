package broker

import "fmt"

// State is where a broker is in its life, named and numbered as Kafka's BrokerState so operators and
// tools read the same words.
type State int8

const (
	// StateNotRunning: Start has not been called.
	StateNotRunning State = 0
	// StateStarting: the broker holds no registration and is registering with the active controller.
	StateStarting State = 1
	// StateRecovery: registered, but fenced: the controller has not yet seen it catch up.
	StateRecovery State = 2
	// StateRunning: registered and unfenced; it may lead partitions.
	StateRunning State = 3
	// StatePendingControlledShutdown: it asked to shut down and waits for the controller to move its
	// leaderships away.
	StatePendingControlledShutdown State = 6
	// StateShuttingDown: it has stopped, or is stopping, talking to the quorum.
	StateShuttingDown State = 7
)

func (s State) String() string {
	switch s {
	case StateNotRunning:
		return "NOT_RUNNING"
	case StateStarting:
		return "STARTING"
	case StateRecovery:
		return "RECOVERY"
	case StateRunning:
		return "RUNNING"
	case StatePendingControlledShutdown:
		return "PENDING_CONTROLLED_SHUTDOWN"
	case StateShuttingDown:
		return "SHUTTING_DOWN"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int8(s))
}

// lifecycleEvent is something the broker learned that may move its State. Only the session goroutine
// (and Close, after that goroutine has exited) feeds events, so transitions are serial.
type lifecycleEvent struct {
	kind eventKind
	// For evHeartbeat: what the controller answered.
	fenced, shouldShutDown bool
}

type eventKind int8

const (
	// evStart: Start was called.
	evStart eventKind = iota + 1
	// evRegistered: the active controller accepted the registration and gave a broker epoch.
	evRegistered
	// evHeartbeat: the active controller answered a heartbeat without error.
	evHeartbeat
	// evSessionLost: the controller no longer knows this registration (STALE_BROKER_EPOCH or
	// BROKER_ID_NOT_REGISTERED); the broker must register again.
	evSessionLost
	// evShutdownRequested: Shutdown was called.
	evShutdownRequested
	// evStopped: the broker stopped talking to the quorum (Close, a fatal error, or the end of a
	// controlled shutdown).
	evStopped
)

func (k eventKind) String() string {
	switch k {
	case evStart:
		return "start"
	case evRegistered:
		return "registered"
	case evHeartbeat:
		return "heartbeat"
	case evSessionLost:
		return "session lost"
	case evShutdownRequested:
		return "shutdown requested"
	case evStopped:
		return "stopped"
	}
	return fmt.Sprintf("event(%d)", int8(k))
}

// nextState is the broker's lifecycle as a pure function. An event that means nothing in the current
// state leaves it unchanged: for example a heartbeat answer that arrives after the session was lost.
func nextState(cur State, ev lifecycleEvent) State {
	if cur == StateShuttingDown {
		return cur // terminal
	}
	switch ev.kind {
	case evStopped:
		return StateShuttingDown
	case evStart:
		if cur == StateNotRunning {
			return StateStarting
		}
	case evRegistered:
		// A new registration is always fenced: the controller unfences it once a heartbeat shows
		// the broker has applied its own registration record.
		if cur == StateStarting {
			return StateRecovery
		}
	case evHeartbeat:
		switch cur {
		case StateRecovery, StateRunning:
			if ev.fenced {
				return StateRecovery
			}
			return StateRunning
		case StatePendingControlledShutdown:
			if ev.shouldShutDown {
				return StateShuttingDown
			}
		}
	case evSessionLost:
		switch cur {
		case StateRecovery, StateRunning:
			return StateStarting
		case StatePendingControlledShutdown:
			// The controller holds no registration of ours at our epoch, so nothing is led under
			// it and there is nothing left to hand over.
			return StateShuttingDown
		}
	case evShutdownRequested:
		switch cur {
		case StateRecovery, StateRunning:
			return StatePendingControlledShutdown
		case StateNotRunning, StateStarting:
			// Never registered (or not any more): nothing to hand over.
			return StateShuttingDown
		}
	}
	return cur
}
