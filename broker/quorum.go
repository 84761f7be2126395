package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// fetchMaxVersion is the newest Fetch the broker sends to follow the log: v13 names topics by id, and
// the metadata log has no topic id, so the broker stays at v12 (flexible, with CurrentLeader).
const fetchMaxVersion = 12

// quorum is the broker's line to the controllers: one franz-go client per voter address, each used only
// to send requests straight to that one controller. Controllers serve no Metadata, so nothing may ask
// a client to discover the cluster; every request goes to SeedBrokers()[0].
type quorum struct {
	ids      []int32 // sorted voter ids
	addrs    map[int32]string
	clientID string
	versions *kversion.Versions

	mu struct {
		sync.Mutex
		clients map[string]*kgo.Client
		closed  bool
	}
}

func newQuorum(voters map[int32]string, clientID string) *quorum {
	q := &quorum{addrs: voters, clientID: clientID}
	for id := range voters {
		q.ids = append(q.ids, id)
	}
	slices.Sort(q.ids)
	// franz-go negotiates every request at min(what kmsg encodes, what the controller advertises);
	// the only cap we add is Fetch's. The quorum keys are set explicitly in case the release table
	// lacks them, since franz-go refuses keys its version table does not list.
	vs := kversion.Stable()
	vs.SetMaxKeyVersion((&kmsg.FetchRequest{}).Key(), fetchMaxVersion)
	for _, r := range []kmsg.Request{&kmsg.BrokerRegistrationRequest{}, &kmsg.BrokerHeartbeatRequest{}, &kmsg.ApiVersionsRequest{}, &kmsg.FetchSnapshotRequest{}} {
		if _, ok := vs.LookupMaxKeyVersion(r.Key()); !ok {
			vs.SetMaxKeyVersion(r.Key(), r.MaxVersion())
		}
	}
	q.versions = vs
	q.mu.clients = map[string]*kgo.Client{}
	return q
}

// known reports whether id is a voter.
func (q *quorum) known(id int32) bool { _, ok := q.addrs[id]; return ok }

// at returns the voter at position i (mod the voter count), for a round robin's start.
func (q *quorum) at(i int) int32 { return q.ids[i%len(q.ids)] }

// next is the voter after id in a fixed round robin; an unknown id starts at the first voter.
func (q *quorum) next(id int32) int32 {
	i, found := slices.BinarySearch(q.ids, id)
	if found {
		i++
	}
	return q.ids[i%len(q.ids)]
}

func (q *quorum) client(id int32) (*kgo.Client, error) {
	addr, ok := q.addrs[id]
	if !ok {
		return nil, fmt.Errorf("controller %d is not a voter", id)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.mu.closed {
		return nil, errQuorumClosed
	}
	if cl, ok := q.mu.clients[addr]; ok {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(q.clientID), kgo.MaxVersions(q.versions))
	if err != nil {
		return nil, fmt.Errorf("client for controller %d at %s: %w", id, addr, err)
	}
	q.mu.clients[addr] = cl
	return cl, nil
}

var errQuorumClosed = fmt.Errorf("broker: closed")

// request sends req to controller id and waits for its answer. req's version is set by the client.
func (q *quorum) request(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := q.client(id)
	if err != nil {
		return nil, err
	}
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("controller %d at %s: %w", id, q.addrs[id], err)
	}
	return resp, nil
}

func (q *quorum) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.closed = true
	for addr, cl := range q.mu.clients {
		cl.Close()
		delete(q.mu.clients, addr)
	}
}
