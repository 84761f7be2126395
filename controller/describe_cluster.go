package controller

// DescribeCluster (key 60), versions 0–1. On the controller port it answers what
// `--bootstrap-controller` tools need: the cluster id, the active controller, and the controllers
// themselves as the endpoints (v1's EndpointType 2 asks for controllers; we give them either way,
// since controllers are all this port knows).

import (
	"context"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDescribeCluster(_ context.Context, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = c.cfg.ClusterID
	resp.ControllerID = -1
	if leader := c.leader.Load(); leader != 0 {
		resp.ControllerID = int32(leader)
	}
	resp.EndpointType = 2
	ids := make([]int32, 0, len(c.cfg.Voters))
	for id := range c.cfg.Voters {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		host, port, err := net.SplitHostPort(c.cfg.Voters[id])
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(port)
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = id, host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp, nil
}
