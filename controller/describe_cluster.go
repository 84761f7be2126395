package controller

// DescribeCluster (key 60), versions 0–2. v1 added EndpointType (1 brokers, 2 controllers), which is
// what `--bootstrap-controller` tools use to find the controllers; v2 added IncludeFencedBrokers and
// each broker's IsFenced. Broker entries also carry each broker's epoch and controlled-shutdown state
// in tagged fields (api/kafkaext) for `kraftctl brokers list`.

import (
	"context"
	"net"
	"sort"
	"strconv"

	"github.com/kraftgo/kraft/api/kafkaext"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const endpointTypeControllers = 2

func (c *Controller) handleDescribeCluster(_ context.Context, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = c.cfg.ClusterID
	resp.ControllerID = -1
	if leader := c.leader.Load(); leader != 0 {
		resp.ControllerID = int32(leader)
	}
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType == endpointTypeControllers {
		resp.Brokers = c.controllerEndpoints()
		return resp, nil
	}
	for _, b := range c.Image().Brokers() {
		if b.Fenced && !req.IncludeFencedBrokers {
			continue
		}
		e := kmsg.NewDescribeClusterResponseBroker()
		e.NodeID, e.IsFenced = b.ID, b.Fenced
		if len(b.Endpoints) > 0 {
			e.Host, e.Port = b.Endpoints[0].GetHost(), b.Endpoints[0].GetPort()
		}
		if b.Rack != "" {
			rack := b.Rack
			e.Rack = &rack
		}
		kafkaext.SetBrokerState(&e, b.Epoch, b.InControlledShutdown)
		resp.Brokers = append(resp.Brokers, e)
	}
	return resp, nil
}

// controllerEndpoints lists the voters, by id.
func (c *Controller) controllerEndpoints() []kmsg.DescribeClusterResponseBroker {
	ids := make([]int32, 0, len(c.cfg.Voters))
	for id := range c.cfg.Voters {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []kmsg.DescribeClusterResponseBroker
	for _, id := range ids {
		host, port, err := net.SplitHostPort(c.cfg.Voters[id])
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(port)
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = id, host, int32(p)
		out = append(out, b)
	}
	return out
}
