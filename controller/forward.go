package controller

import (
	"context"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// forwardedClientPrefix marks requests one controller forwards to another, so that two controllers
// that briefly disagree about the leader never bounce a request between them.
const forwardedClientPrefix = "kraft-controller-forward-"

// isForwarded reports whether a request came from another controller's forwarder.
func isForwarded(clientID string) bool { return strings.HasPrefix(clientID, forwardedClientPrefix) }

// forwarder sends requests to another controller over its Kafka port, one cached client per address.
type forwarder struct {
	clientID string
	mu       struct {
		sync.Mutex
	}
	clients map[string]*kgo.Client
}

func (f *forwarder) client(addr string) (*kgo.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cl, ok := f.clients[addr]; ok {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(f.clientID))
	if err != nil {
		return nil, err
	}
	f.clients[addr] = cl
	return cl, nil
}

// forward sends req straight to the controller at addr: controllers do not serve Metadata, so there is
// nothing for the client to discover.
func (f *forwarder) forward(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	cl, err := f.client(addr)
	if err != nil {
		return nil, err
	}
	return cl.SeedBrokers()[0].Request(ctx, req)
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, cl := range f.clients {
		cl.Close()
		delete(f.clients, addr)
	}
}
