package broker

// DescribeCluster (key 60), versions 0–2, on the broker port: the unfenced brokers with their endpoint
// on the client's listener, the cluster id, and a live broker as the controller (see
// clientControllerID). v1 added EndpointType: a broker port describes brokers (1); asking it for
// controllers (2) answers MISMATCHED_ENDPOINT_TYPE, and any other type UNSUPPORTED_ENDPOINT_TYPE, as
// Kafka does. v2 added IncludeFencedBrokers and IsFenced. Each entry also carries the broker's epoch
// and controlled-shutdown state in tagged fields (api/kafkaext) for `kraftctl brokers list`. There are
// no ACLs yet, so ClusterAuthorizedOperations stays "not provided".

import (
	"fmt"

	"github.com/kraftgo/kraft/api/kafkaext"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const describeClusterMaxVersion = 2

// Kafka's EndpointType values.
const (
	endpointTypeBroker     = 1
	endpointTypeController = 2
)

func describeClusterResponse(v view, req *kmsg.DescribeClusterRequest) *kmsg.DescribeClusterResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = endpointTypeBroker
	if req.Version >= 1 && req.EndpointType != endpointTypeBroker {
		var msg string
		if req.EndpointType == endpointTypeController {
			resp.ErrorCode = kerr.MismatchedEndpointType.Code
			msg = "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER: use --bootstrap-controller with a controller's address"
		} else {
			resp.ErrorCode = kerr.UnsupportedEndpointType.Code
			msg = fmt.Sprintf("Unsupported endpoint type %d", req.EndpointType)
		}
		resp.ErrorMessage = &msg
		return resp
	}
	resp.ClusterID = v.clusterID
	resp.ControllerID = v.controllerID
	for _, reg := range v.img.Brokers() {
		if reg.Fenced && !req.IncludeFencedBrokers {
			continue
		}
		live := *reg
		live.Fenced = false // brokerEndpoint skips fenced brokers; here they were asked for
		ep, ok := brokerEndpoint(&live, v.listener)
		if !ok {
			continue
		}
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack, b.IsFenced = ep.id, ep.host, ep.port, ep.rack, reg.Fenced
		kafkaext.SetBrokerState(&b, reg.Epoch, reg.InControlledShutdown)
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp
}
