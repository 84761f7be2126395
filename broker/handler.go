package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler serves the broker port's Kafka APIs, answering with the endpoints of the first configured
// listener. A node with several listeners should serve each with HandlerFor.
func (b *Broker) Handler() kafkaserver.Handler {
	name := ""
	if len(b.cfg.Listeners) > 0 {
		name = b.cfg.Listeners[0].Name
	}
	return b.HandlerFor(name)
}

// HandlerFor serves the broker port's Kafka APIs on the listener named listenerName. The server cannot
// tell which listener a client came in on, so the caller binds one handler per listener: a client is
// then told each broker's endpoint on the same listener, the one it can reach.
func (b *Broker) HandlerFor(listenerName string) kafkaserver.Handler {
	if !slices.ContainsFunc(b.cfg.Listeners, func(l Listener) bool { return l.Name == listenerName }) {
		b.log.Warn("serving a listener this broker does not advertise; its clients will see no brokers", "listener", listenerName)
	}
	return listenerHandler{b: b, listener: listenerName}
}

type listenerHandler struct {
	b        *Broker
	listener string
}

func (h listenerHandler) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	v := h.b.view(h.listener)
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		return metadataResponse(v, r), nil
	case *kmsg.DescribeClusterRequest:
		return describeClusterResponse(v, r), nil
	case *kmsg.DescribeConfigsRequest:
		return v.img.DescribeConfigsResponse(h.b.cfg.NodeID, r), nil
	case *kmsg.DescribeACLsRequest:
		return v.img.DescribeACLsResponse(r), nil
	case *kmsg.DescribeClientQuotasRequest:
		return v.img.DescribeClientQuotasResponse(r), nil
	case *kmsg.DescribeQuorumRequest:
		return h.b.forwardDescribeQuorum(ctx, r), nil
	}
	if api, ok := forwardedAPIs[req.Key()]; ok {
		return h.b.forwardToController(ctx, req, api), nil
	}
	return nil, fmt.Errorf("the broker port does not serve %s", kmsg.NameForKey(req.Key()))
}

// view is what one answer is built from: an image, and the facts about the cluster the image does not
// hold. Answers built from a view are pure functions of it.
type view struct {
	img          *metadatalog.Image
	clusterID    string
	controllerID int32
	listener     string
}

func (b *Broker) view(listener string) view {
	img := b.image.Load()
	return view{img: img, clusterID: b.cfg.ClusterID, controllerID: clientControllerID(img, b.cfg.NodeID), listener: listener}
}

// clientControllerID is the "controller" a broker names to Kafka clients. As in Kafka's KRaft mode it
// is a live broker, never the active controller: clients send controller-bound admin requests to that
// id, controllers are not in the broker list clients see, and brokers forward such requests. This
// broker names itself when it is live, else the lowest live broker, else -1. (The active controller is
// what `kraftctl quorum describe` shows.)
func clientControllerID(img *metadatalog.Image, self int32) int32 {
	if me, ok := img.Broker(self); ok && !me.Fenced {
		return self
	}
	for _, b := range img.Brokers() {
		if !b.Fenced {
			return b.ID
		}
	}
	return -1
}

// endpoint is where clients reach a broker on one listener.
type endpoint struct {
	id   int32
	host string
	port int32
	rack *string
}

// brokerEndpoint is b's endpoint on listener, if it serves clients: registered, unfenced, and
// listening there.
func brokerEndpoint(b *metadatalog.Broker, listener string) (endpoint, bool) {
	if b == nil || b.Fenced {
		return endpoint{}, false
	}
	for _, e := range b.Endpoints {
		if e.GetName() == listener {
			ep := endpoint{id: b.ID, host: e.GetHost(), port: e.GetPort()}
			if b.Rack != "" {
				rack := b.Rack
				ep.rack = &rack
			}
			return ep, true
		}
	}
	return endpoint{}, false
}

// liveEndpoints lists, by id, the brokers clients may use on listener: only unfenced ones, since a
// fenced broker may lead nothing and may be gone.
func liveEndpoints(img *metadatalog.Image, listener string) []endpoint {
	var out []endpoint
	for _, b := range img.Brokers() {
		if ep, ok := brokerEndpoint(b, listener); ok {
			out = append(out, ep)
		}
	}
	return out
}
