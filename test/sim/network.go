package sim

import (
	"container/heap"
)

// envelope is one message on the wire. It travels marshalled so that sender and receiver never share
// a protobuf object, and a message Raft cannot encode fails here as it would on TCP.
type envelope struct {
	at       int64  // step at which it arrives
	seq      uint64 // send order, to break ties deterministically
	from, to uint64
	data     []byte
}

// network holds every message in flight, ordered by arrival step then send order. Reordering needs no
// mechanism of its own: two messages with different random delays simply swap.
type network struct {
	q   envelopes
	seq uint64
	// group is each node's side of the current partition (absent: side 0); nodes on different sides
	// cannot talk.
	group map[uint64]int
	ids   []uint64
}

func newNetwork(ids []uint64) *network { return &network{group: map[uint64]int{}, ids: ids} }

func (n *network) send(at int64, from, to uint64, data []byte) {
	n.seq++
	heap.Push(&n.q, &envelope{at: at, seq: n.seq, from: from, to: to, data: data})
}

// due pops every message that has arrived by step now, in arrival order.
func (n *network) due(now int64, into []*envelope) []*envelope {
	for len(n.q) > 0 && n.q[0].at <= now {
		into = append(into, heap.Pop(&n.q).(*envelope))
	}
	return into
}

// cut reports whether a partition separates a and b. It is checked on send and again on arrival,
// because a partition also drops what was already on the wire.
func (n *network) cut(a, b uint64) bool { return n.group[a] != n.group[b] }

// split reports whether some pair of nodes cannot talk.
func (n *network) split() bool {
	for _, id := range n.ids[1:] {
		if n.cut(n.ids[0], id) {
			return true
		}
	}
	return false
}

func (n *network) heal() { clear(n.group) }

type envelopes []*envelope

func (q envelopes) Len() int { return len(q) }
func (q envelopes) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q envelopes) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *envelopes) Push(x any)   { *q = append(*q, x.(*envelope)) }
func (q *envelopes) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
