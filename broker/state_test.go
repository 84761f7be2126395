package broker

import "testing"

func TestNextState(t *testing.T) {
	ev := func(k eventKind) lifecycleEvent { return lifecycleEvent{kind: k} }
	hb := func(fenced, shouldShutDown bool) lifecycleEvent {
		return lifecycleEvent{kind: evHeartbeat, fenced: fenced, shouldShutDown: shouldShutDown}
	}
	for _, tc := range []struct {
		from State
		ev   lifecycleEvent
		to   State
	}{
		{StateNotRunning, ev(evStart), StateStarting},
		{StateNotRunning, ev(evShutdownRequested), StateShuttingDown},
		{StateNotRunning, ev(evStopped), StateShuttingDown},
		{StateNotRunning, hb(false, false), StateNotRunning},

		{StateStarting, ev(evRegistered), StateRecovery},
		{StateStarting, hb(false, false), StateStarting}, // a stray answer does not skip registration
		{StateStarting, ev(evShutdownRequested), StateShuttingDown},
		{StateStarting, ev(evSessionLost), StateStarting},
		{StateStarting, ev(evStart), StateStarting},
		{StateStarting, ev(evStopped), StateShuttingDown},

		{StateRecovery, hb(true, false), StateRecovery},
		{StateRecovery, hb(false, false), StateRunning},
		{StateRecovery, ev(evSessionLost), StateStarting},
		{StateRecovery, ev(evShutdownRequested), StatePendingControlledShutdown},
		{StateRecovery, ev(evRegistered), StateRecovery},
		{StateRecovery, ev(evStopped), StateShuttingDown},

		{StateRunning, hb(false, false), StateRunning},
		{StateRunning, hb(true, false), StateRecovery},
		{StateRunning, hb(false, true), StateRunning}, // ShouldShutDown means nothing unasked
		{StateRunning, ev(evSessionLost), StateStarting},
		{StateRunning, ev(evShutdownRequested), StatePendingControlledShutdown},
		{StateRunning, ev(evStopped), StateShuttingDown},

		{StatePendingControlledShutdown, hb(false, false), StatePendingControlledShutdown},
		{StatePendingControlledShutdown, hb(true, false), StatePendingControlledShutdown},
		{StatePendingControlledShutdown, hb(true, true), StateShuttingDown},
		{StatePendingControlledShutdown, hb(false, true), StateShuttingDown},
		{StatePendingControlledShutdown, ev(evSessionLost), StateShuttingDown},
		{StatePendingControlledShutdown, ev(evShutdownRequested), StatePendingControlledShutdown},
		{StatePendingControlledShutdown, ev(evStopped), StateShuttingDown},

		{StateShuttingDown, ev(evStart), StateShuttingDown},
		{StateShuttingDown, ev(evRegistered), StateShuttingDown},
		{StateShuttingDown, hb(false, false), StateShuttingDown},
		{StateShuttingDown, ev(evSessionLost), StateShuttingDown},
		{StateShuttingDown, ev(evShutdownRequested), StateShuttingDown},
	} {
		if got := nextState(tc.from, tc.ev); got != tc.to {
			t.Errorf("%v + %v (fenced=%v shouldShutDown=%v) = %v, want %v", tc.from, tc.ev.kind, tc.ev.fenced, tc.ev.shouldShutDown, got, tc.to)
		}
	}
}

func TestStateNamesAreKafkas(t *testing.T) {
	for s, want := range map[State]string{
		StateNotRunning: "NOT_RUNNING", StateStarting: "STARTING", StateRecovery: "RECOVERY", StateRunning: "RUNNING",
		StatePendingControlledShutdown: "PENDING_CONTROLLED_SHUTDOWN", StateShuttingDown: "SHUTTING_DOWN",
	} {
		if s.String() != want {
			t.Errorf("%d is %q, want %q", int8(s), s.String(), want)
		}
	}
	// Kafka's BrokerState values, which JMX and tools report.
	if StateRunning != 3 || StatePendingControlledShutdown != 6 || StateShuttingDown != 7 {
		t.Error("state values differ from Kafka's BrokerState")
	}
}
