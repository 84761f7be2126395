package kafkaext

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The state must survive a real encode and decode, as a client receives it.
func TestBrokerStateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		epoch int64
		cs    bool
	}{{7, false}, {1 << 40, true}, {0, true}} {
		resp := kmsg.NewPtrDescribeClusterResponse()
		resp.Version = 2
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID = 4
		SetBrokerState(&b, tc.epoch, tc.cs)
		resp.Brokers = append(resp.Brokers, b)
		wire := resp.AppendTo(nil)

		got := kmsg.NewPtrDescribeClusterResponse()
		got.Version = 2
		if err := got.ReadFrom(wire); err != nil {
			t.Fatal(err)
		}
		epoch, cs, ok := BrokerState(&got.Brokers[0])
		if !ok || epoch != tc.epoch || cs != tc.cs {
			t.Errorf("round trip of (%d, %v) gave (%d, %v, %v)", tc.epoch, tc.cs, epoch, cs, ok)
		}
	}
	var plain kmsg.DescribeClusterResponseBroker
	if _, _, ok := BrokerState(&plain); ok {
		t.Error("an entry without our tags reported a state")
	}
}
