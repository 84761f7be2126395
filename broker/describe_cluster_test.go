package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = endpointTypeBroker
	resp := describeClusterResponse(testView(t, "INTERNAL"), req)
	if resp.ErrorCode != 0 || resp.ClusterID != "cid" || resp.ControllerID != 3000 || resp.EndpointType != endpointTypeBroker {
		t.Fatalf("answer %+v", resp)
	}
	if len(resp.Brokers) != 2 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != "i1" || resp.Brokers[0].Port != 19092 ||
		resp.Brokers[1].NodeID != 3 || resp.Brokers[1].Rack != nil {
		t.Fatalf("brokers %+v: want the unfenced 1 and 3 on INTERNAL", resp.Brokers)
	}

	req.Version = 0
	req.EndpointType = 0 // v0 has no endpoint type
	if resp := describeClusterResponse(testView(t, "PLAINTEXT"), req); resp.ErrorCode != 0 || len(resp.Brokers) != 1 {
		t.Fatalf("v0 answer %+v", resp)
	}
}

func TestDescribeClusterEndpointTypes(t *testing.T) {
	for et, want := range map[int8]*kerr.Error{endpointTypeController: kerr.MismatchedEndpointType, 7: kerr.UnsupportedEndpointType} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = 1
		req.EndpointType = et
		resp := describeClusterResponse(testView(t, "PLAINTEXT"), req)
		if resp.ErrorCode != want.Code || resp.ErrorMessage == nil || len(resp.Brokers) != 0 {
			t.Fatalf("endpoint type %d: code %d message %v brokers %d, want %s", et, resp.ErrorCode, resp.ErrorMessage, len(resp.Brokers), want.Message)
		}
	}
}
