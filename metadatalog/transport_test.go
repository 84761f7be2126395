package metadatalog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const (
	testClusterID = "test-cluster-0001"
	waitDeadline  = 20 * time.Second
)

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// never checks that cond stays false for a short while.
func never(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inbox records delivered messages.
type inbox struct {
	mu   sync.Mutex
	msgs []*raftpb.Message
}

func (b *inbox) deliver(m *raftpb.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
}

func (b *inbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

func (b *inbox) snapshot() []*raftpb.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*raftpb.Message(nil), b.msgs...)
}

func (b *inbox) from(id uint64) []*raftpb.Message {
	var out []*raftpb.Message
	for _, m := range b.snapshot() {
		if m.GetFrom() == id {
			out = append(out, m)
		}
	}
	return out
}

// peerListener stands in for the Kafka server: it accepts connections, checks
// the magic and hands the rest to a peer handler — a Transport's HandleInbound
// or a Log's HandlePeer — set after construction, since transports need every
// listener's address first.
type peerListener struct {
	t      *testing.T
	ln     net.Listener
	target atomic.Pointer[func(net.Conn)]
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newPeerListener(t *testing.T) *peerListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startPeerListener(t, ln)
}

func startPeerListener(t *testing.T, ln net.Listener) *peerListener {
	pl := &peerListener{t: t, ln: ln, conns: make(map[net.Conn]struct{})}
	pl.wg.Add(1)
	go pl.acceptLoop()
	t.Cleanup(pl.close)
	return pl
}

func (pl *peerListener) addr() string { return pl.ln.Addr().String() }

func (pl *peerListener) acceptLoop() {
	defer pl.wg.Done()
	for {
		c, err := pl.ln.Accept()
		if err != nil {
			return
		}
		pl.mu.Lock()
		pl.conns[c] = struct{}{}
		pl.mu.Unlock()
		pl.wg.Add(1)
		go func() {
			defer pl.wg.Done()
			defer func() {
				pl.mu.Lock()
				delete(pl.conns, c)
				pl.mu.Unlock()
			}()
			var magic [4]byte
			if _, err := io.ReadFull(c, magic[:]); err != nil || binary.BigEndian.Uint32(magic[:]) != PeerMagic {
				pl.t.Errorf("peer listener: bad magic %x (err %v)", magic, err)
				_ = c.Close()
				return
			}
			handle := pl.target.Load()
			if handle == nil {
				_ = c.Close()
				return
			}
			(*handle)(c)
		}()
	}
}

// handTo sets where accepted peer streams go.
func (pl *peerListener) handTo(handle func(net.Conn)) { pl.target.Store(&handle) }

// close stops accepting and closes connections not yet owned by a Transport.
func (pl *peerListener) close() {
	_ = pl.ln.Close()
	pl.mu.Lock()
	for c := range pl.conns {
		_ = c.Close()
	}
	pl.mu.Unlock()
	pl.wg.Wait()
}

// node bundles a Transport with its listener, inbox and Unreachable counters.
type node struct {
	id    uint64
	ln    *peerListener
	tr    *Transport
	in    *inbox
	logs  *syncBuffer
	unrMu sync.Mutex
	unr   map[uint64]int
}

func (n *node) unreachableCount(id uint64) int {
	n.unrMu.Lock()
	defer n.unrMu.Unlock()
	return n.unr[id]
}

// newCluster starts one transport per id, all knowing each other.
func newCluster(t *testing.T, ids ...uint64) map[uint64]*node {
	t.Helper()
	nodes := make(map[uint64]*node)
	peers := make(map[uint64]string)
	for _, id := range ids {
		n := &node{id: id, ln: newPeerListener(t), in: &inbox{}, logs: &syncBuffer{}, unr: map[uint64]int{}}
		nodes[id] = n
		peers[id] = n.ln.addr()
	}
	for _, n := range nodes {
		n.tr = NewTransport(TransportConfig{
			Self:      n.id,
			ClusterID: testClusterID,
			Peers:     peers, // includes Self, which must be ignored
			Deliver:   n.in.deliver,
			Unreachable: func(id uint64) {
				n.unrMu.Lock()
				n.unr[id]++
				n.unrMu.Unlock()
			},
			Logger: slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		n.ln.handTo(n.tr.HandleInbound)
		t.Cleanup(func() { _ = n.tr.Close() })
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range ids {
				t.Logf("logs of node %d:\n%s", id, nodes[id].logs.String())
			}
		}
	})
	return nodes
}

func u64(v uint64) *uint64 { return &v }

func msgType(v raftpb.MessageType) *raftpb.MessageType { return &v }

func entType(v raftpb.EntryType) *raftpb.EntryType { return &v }

func appMsg(from, to, index uint64, payloads ...string) *raftpb.Message {
	m := &raftpb.Message{
		Type:    msgType(raftpb.MessageType_MsgApp),
		From:    u64(from),
		To:      u64(to),
		Term:    u64(3),
		LogTerm: u64(2),
		Index:   u64(index),
		Commit:  u64(index),
	}
	for i, p := range payloads {
		m.Entries = append(m.Entries, &raftpb.Entry{
			Term:  u64(3),
			Index: u64(index + 1 + uint64(i)),
			Type:  entType(raftpb.EntryType_EntryNormal),
			Data:  []byte(p),
		})
	}
	return m
}

func heartbeat(from, to, commit uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:    msgType(raftpb.MessageType_MsgHeartbeat),
		From:    u64(from),
		To:      u64(to),
		Term:    u64(3),
		Commit:  u64(commit),
		Context: []byte("ctx"),
	}
}

func checkSame(t *testing.T, got, want []*raftpb.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("message %d:\n got  %v\n want %v", i, got[i], want[i])
		}
	}
}

func TestTransportTwoPeers(t *testing.T) {
	c := newCluster(t, 1, 2)
	var to2, to1 []*raftpb.Message
	for i := uint64(0); i < 50; i++ {
		to2 = append(to2, appMsg(1, 2, 10+i, fmt.Sprintf("entry-%d-a", i), fmt.Sprintf("entry-%d-b", i)))
		to2 = append(to2, heartbeat(1, 2, 10+i))
		to1 = append(to1, &raftpb.Message{
			Type: msgType(raftpb.MessageType_MsgAppResp), From: u64(2), To: u64(1),
			Term: u64(3), Index: u64(10 + i), Reject: proto.Bool(i%7 == 0), RejectHint: u64(i),
		})
	}
	// A larger entry spanning several bufio buffers.
	big := appMsg(1, 2, 1000, strings.Repeat("x", 300<<10))
	to2 = append(to2, big)

	// Send in several batches, as a Raft loop would.
	for i := 0; i < len(to2); i += 7 {
		c[1].tr.Send(to2[i:min(i+7, len(to2))])
	}
	c[2].tr.Send(to1)

	eventually(t, "node 2 receives all", func() bool { return c[2].in.len() >= len(to2) })
	eventually(t, "node 1 receives all", func() bool { return c[1].in.len() >= len(to1) })
	checkSame(t, c[2].in.snapshot(), to2)
	checkSame(t, c[1].in.snapshot(), to1)
}

func TestTransportThreePeersOrderPerSender(t *testing.T) {
	ids := []uint64{1, 2, 3}
	c := newCluster(t, ids...)
	const perPair = 300
	want := map[[2]uint64][]*raftpb.Message{} // {from,to} → messages
	var wg sync.WaitGroup
	for _, from := range ids {
		var batch []*raftpb.Message
		for i := uint64(0); i < perPair; i++ {
			for _, to := range ids {
				if to == from {
					continue
				}
				var m *raftpb.Message
				if i%3 == 0 {
					m = heartbeat(from, to, i)
				} else {
					m = appMsg(from, to, i, fmt.Sprintf("%d->%d #%d", from, to, i))
				}
				want[[2]uint64{from, to}] = append(want[[2]uint64{from, to}], m)
				batch = append(batch, m)
			}
		}
		wg.Add(1)
		go func(from uint64, batch []*raftpb.Message) {
			defer wg.Done()
			for i := 0; i < len(batch); i += 10 {
				c[from].tr.Send(batch[i:min(i+10, len(batch))])
			}
		}(from, batch)
	}
	wg.Wait()
	for _, to := range ids {
		eventually(t, fmt.Sprintf("node %d receives all", to), func() bool {
			return c[to].in.len() >= perPair*(len(ids)-1)
		})
		for _, from := range ids {
			if from == to {
				continue
			}
			checkSame(t, c[to].in.from(from), want[[2]uint64{from, to}])
		}
	}
	for _, n := range c {
		for _, id := range ids {
			if k := n.unreachableCount(id); k != 0 {
				t.Errorf("node %d reported %d unreachable %d times on a healthy cluster", n.id, id, k)
			}
		}
	}
}

func TestTransportPeerDownThenUp(t *testing.T) {
	// Reserve an address for node 2, then free it so node 2 is "down".
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr2 := ln.Addr().String()
	_ = ln.Close()

	ln1 := newPeerListener(t)
	var unr atomic.Int64
	logs := &syncBuffer{}
	tr1 := NewTransport(TransportConfig{
		Self: 1, ClusterID: testClusterID,
		Peers:       map[uint64]string{1: ln1.addr(), 2: addr2},
		Deliver:     func(*raftpb.Message) { t.Error("node 1 got a message") },
		Unreachable: func(id uint64) { unr.Add(1) },
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		DialTimeout: 2 * time.Second,
	})
	ln1.handTo(tr1.HandleInbound)
	t.Cleanup(func() { _ = tr1.Close() })

	for i := uint64(0); unr.Load() == 0; i++ {
		if i > 2000 {
			t.Fatal("Unreachable never called while the peer was down")
		}
		tr1.Send([]*raftpb.Message{heartbeat(1, 2, i)})
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "dial failed") {
		t.Errorf("expected a dial failure in the logs, got:\n%s", logs.String())
	}

	// Bring node 2 up on the same address.
	ln2raw, err := net.Listen("tcp", addr2)
	if err != nil {
		t.Skipf("cannot re-listen on %s: %v", addr2, err)
	}
	ln2 := startPeerListener(t, ln2raw)
	in2 := &inbox{}
	tr2 := NewTransport(TransportConfig{
		Self: 2, ClusterID: testClusterID,
		Peers:   map[uint64]string{1: ln1.addr(), 2: addr2},
		Deliver: in2.deliver,
	})
	ln2.handTo(tr2.HandleInbound)
	t.Cleanup(func() { _ = tr2.Close() })

	// Keep sending (as Raft would keep heartbeating) until the redial lands.
	marker := uint64(1 << 40)
	eventually(t, "delivery after redial", func() bool {
		tr1.Send([]*raftpb.Message{heartbeat(1, 2, marker)})
		time.Sleep(20 * time.Millisecond)
		return in2.len() > 0
	})
	// Everything that got through is intact and in order.
	last := uint64(0)
	for _, m := range in2.snapshot() {
		if m.GetType() != raftpb.MessageType_MsgHeartbeat || m.GetFrom() != 1 || m.GetCommit() < last {
			t.Fatalf("unexpected delivery %v", m)
		}
		last = m.GetCommit()
	}
	// And a sequence sent now arrives completely.
	var seq []*raftpb.Message
	for i := uint64(0); i < 20; i++ {
		seq = append(seq, appMsg(1, 2, 500+i, "after-up"))
	}
	before := in2.len()
	tr1.Send(seq)
	eventually(t, "sequence after redial", func() bool { return in2.len() >= before+len(seq) })
	got := in2.snapshot()[before:]
	var apps []*raftpb.Message
	for _, m := range got {
		if m.GetType() == raftpb.MessageType_MsgApp {
			apps = append(apps, m)
		}
	}
	checkSame(t, apps, seq)
}

// rawStream dials a transport's listener by hand and sends the magic and a
// hello with the given sender and cluster id.
func rawStream(t *testing.T, addr string, sender uint64, clusterID string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var b []byte
	b = binary.BigEndian.AppendUint32(b, PeerMagic)
	b = binary.BigEndian.AppendUint64(b, sender)
	b = binary.BigEndian.AppendUint16(b, uint16(len(clusterID)))
	b = append(b, clusterID...)
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFrame(t *testing.T, c net.Conn, payload []byte) {
	t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	if _, err := c.Write(append(b, payload...)); err != nil {
		t.Fatal(err)
	}
}

func writeMsg(t *testing.T, c net.Conn, m *raftpb.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	writeFrame(t, c, b)
}

// expectClosed waits until the transport closes its end of c.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitDeadline))
	var b [1]byte
	_, err := c.Read(b[:])
	if err == nil {
		t.Fatal("peer sent data on a one-directional stream")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("stream was not closed by the transport")
	}
}

// expectOpen checks that c is still open a little later.
func expectOpen(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stream closed unexpectedly: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func TestTransportRejectsWrongClusterID(t *testing.T) {
	c := newCluster(t, 1, 2)
	conn := rawStream(t, c[2].ln.addr(), 1, "some-other-cluster")
	writeMsg(t, conn, heartbeat(1, 2, 1))
	expectClosed(t, conn)
	never(t, "delivery from another cluster", 100*time.Millisecond, func() bool { return c[2].in.len() > 0 })
	logs := c[2].logs.String()
	if !strings.Contains(logs, "rejecting raft peer stream") || !strings.Contains(logs, "some-other-cluster") ||
		!strings.Contains(logs, testClusterID) || !strings.Contains(logs, "sender=1") {
		t.Errorf("rejection log does not name both ids:\n%s", logs)
	}

	// A real transport configured with another cluster id is rejected too.
	in := &inbox{}
	other := NewTransport(TransportConfig{
		Self: 1, ClusterID: "some-other-cluster",
		Peers:   map[uint64]string{2: c[2].ln.addr()},
		Deliver: in.deliver,
	})
	t.Cleanup(func() { _ = other.Close() })
	for i := 0; i < 5; i++ {
		other.Send([]*raftpb.Message{heartbeat(1, 2, uint64(i))})
		time.Sleep(20 * time.Millisecond)
	}
	never(t, "delivery from another cluster's transport", 200*time.Millisecond, func() bool { return c[2].in.len() > 0 })
}

func TestTransportRejectsUnknownSender(t *testing.T) {
	c := newCluster(t, 1, 2)
	conn := rawStream(t, c[2].ln.addr(), 99, testClusterID)
	writeMsg(t, conn, heartbeat(99, 2, 1))
	expectClosed(t, conn)

	// Claiming to be the receiver itself is just as unknown.
	self := rawStream(t, c[2].ln.addr(), 2, testClusterID)
	writeMsg(t, self, heartbeat(2, 2, 1))
	expectClosed(t, self)

	never(t, "delivery from unknown sender", 100*time.Millisecond, func() bool { return c[2].in.len() > 0 })
	if logs := c[2].logs.String(); !strings.Contains(logs, "sender=99") || !strings.Contains(logs, testClusterID) {
		t.Errorf("rejection log does not name the sender:\n%s", logs)
	}
}

func TestTransportRejectsMismatchedFrom(t *testing.T) {
	c := newCluster(t, 1, 2, 3)
	conn := rawStream(t, c[2].ln.addr(), 1, testClusterID)
	writeMsg(t, conn, heartbeat(1, 2, 1)) // fine
	writeMsg(t, conn, heartbeat(3, 2, 2)) // spoofed sender
	writeMsg(t, conn, heartbeat(1, 2, 3)) // never read
	expectClosed(t, conn)
	eventually(t, "first message", func() bool { return c[2].in.len() == 1 })
	never(t, "delivery after spoofed sender", 100*time.Millisecond, func() bool { return c[2].in.len() > 1 })
	checkSame(t, c[2].in.snapshot(), []*raftpb.Message{heartbeat(1, 2, 1)})
}

func TestTransportBadFramesCloseOnlyThatStream(t *testing.T) {
	c := newCluster(t, 1, 2, 3)

	// Node 3 keeps a good stream to node 2 open throughout.
	c[3].tr.Send([]*raftpb.Message{heartbeat(3, 2, 1)})
	eventually(t, "good stream up", func() bool { return len(c[2].in.from(3)) == 1 })

	cases := map[string]func(net.Conn){
		"garbage": func(conn net.Conn) {
			// Field number 0 and a runaway varint: not a protobuf message.
			writeFrame(t, conn, []byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		},
		"oversized": func(conn net.Conn) {
			b := binary.BigEndian.AppendUint32(nil, maxFrameSize+1)
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
		},
		"huge-length": func(conn net.Conn) {
			if _, err := conn.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}); err != nil {
				t.Fatal(err)
			}
		},
		"truncated-hello": func(conn net.Conn) {
			_ = conn.(*net.TCPConn).CloseWrite()
		},
	}
	for name, poison := range cases {
		t.Run(name, func(t *testing.T) {
			var conn net.Conn
			if name == "truncated-hello" {
				var err error
				conn, err = net.Dial("tcp", c[2].ln.addr())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, PeerMagic)); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Write([]byte{0, 0, 0}); err != nil {
					t.Fatal(err)
				}
			} else {
				conn = rawStream(t, c[2].ln.addr(), 1, testClusterID)
				writeMsg(t, conn, heartbeat(1, 2, 7))
				expectOpen(t, conn)
			}
			poison(conn)
			expectClosed(t, conn)
		})
	}
	// The poisoned streams delivered only their good prefix.
	for _, m := range c[2].in.from(1) {
		if !proto.Equal(m, heartbeat(1, 2, 7)) {
			t.Fatalf("unexpected delivery %v", m)
		}
	}

	// The good stream still delivers, in order.
	var want []*raftpb.Message
	want = append(want, heartbeat(3, 2, 1))
	for i := uint64(2); i < 20; i++ {
		want = append(want, appMsg(3, 2, i, "still-good"))
	}
	c[3].tr.Send(want[1:])
	eventually(t, "good stream delivers", func() bool { return len(c[2].in.from(3)) == len(want) })
	checkSame(t, c[2].in.from(3), want)
	// Node 1's own transport can still open a fresh stream too.
	c[1].tr.Send([]*raftpb.Message{heartbeat(1, 2, 1234)})
	eventually(t, "node 1 real stream", func() bool {
		for _, m := range c[2].in.from(1) {
			if m.GetCommit() == 1234 {
				return true
			}
		}
		return false
	})
}

func TestTransportNewStreamSupersedesOld(t *testing.T) {
	c := newCluster(t, 1, 2)
	old := rawStream(t, c[2].ln.addr(), 1, testClusterID)
	writeMsg(t, old, heartbeat(1, 2, 1))
	eventually(t, "old stream delivers", func() bool { return c[2].in.len() == 1 })
	fresh := rawStream(t, c[2].ln.addr(), 1, testClusterID)
	writeMsg(t, fresh, heartbeat(1, 2, 2))
	expectClosed(t, old)
	eventually(t, "new stream delivers", func() bool { return c[2].in.len() == 2 })
	expectOpen(t, fresh)
}

func TestTransportQueueOverflowDropsWithoutBlocking(t *testing.T) {
	// A "peer" that accepts and then never reads: the sender stalls on TCP
	// back-pressure and its queue fills up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case c := <-accepted:
			_ = c.Close()
		default:
		}
	})
	var unr atomic.Int64
	tr := NewTransport(TransportConfig{
		Self: 1, ClusterID: testClusterID,
		Peers:       map[uint64]string{2: ln.Addr().String()},
		Deliver:     func(*raftpb.Message) {},
		Unreachable: func(id uint64) { unr.Add(1) },
	})
	t.Cleanup(func() { _ = tr.Close() })

	big := appMsg(1, 2, 1, strings.Repeat("y", 1<<20)) // queued by pointer
	batch := make([]*raftpb.Message, 256)
	for i := range batch {
		batch[i] = big
	}
	eventually(t, "queue overflow reported", func() bool {
		tr.Send(batch) // must return even though the peer never reads
		return unr.Load() > 0
	})
	// Messages to unknown peers are dropped quietly.
	tr.Send([]*raftpb.Message{heartbeat(1, 42, 1), nil})
}

func TestTransportHandleInboundAfterClose(t *testing.T) {
	in := &inbox{}
	tr := NewTransport(TransportConfig{Self: 2, ClusterID: testClusterID, Peers: map[uint64]string{1: "127.0.0.1:1"}, Deliver: in.deliver})
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan struct{})
	go func() { tr.HandleInbound(b); close(done) }()
	select {
	case <-done:
	case <-time.After(waitDeadline):
		t.Fatal("HandleInbound after Close did not return")
	}
	if _, err := a.Write([]byte{1}); err == nil {
		t.Fatal("HandleInbound after Close left the connection open")
	}
	tr.Send([]*raftpb.Message{heartbeat(2, 1, 1)}) // no-op, no panic
}

func TestTransportCloseIdempotentNoGoroutineLeak(t *testing.T) {
	runtime.GC()
	baseline := runtime.NumGoroutine()

	func() {
		// Build everything by hand (not newCluster) so it is all torn down
		// before counting goroutines.
		ids := []uint64{1, 2, 3}
		lns := map[uint64]*peerListener{}
		peers := map[uint64]string{}
		ins := map[uint64]*inbox{}
		for _, id := range ids {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lns[id] = &peerListener{t: t, ln: ln, conns: map[net.Conn]struct{}{}}
			peers[id] = ln.Addr().String()
			ins[id] = &inbox{}
		}
		// A peer that is down, so a sender is in back-off at Close time.
		peers[4] = "127.0.0.1:1"
		trs := map[uint64]*Transport{}
		for _, id := range ids {
			trs[id] = NewTransport(TransportConfig{Self: id, ClusterID: testClusterID, Peers: peers, Deliver: ins[id].deliver})
			lns[id].handTo(trs[id].HandleInbound)
			lns[id].wg.Add(1)
			go lns[id].acceptLoop()
		}
		for _, from := range ids {
			var msgs []*raftpb.Message
			for _, to := range []uint64{1, 2, 3, 4} {
				if to != from {
					msgs = append(msgs, heartbeat(from, to, 1), appMsg(from, to, 1, "e"))
				}
			}
			trs[from].Send(msgs)
		}
		for _, id := range ids {
			eventually(t, "deliveries", func() bool { return ins[id].len() == 4 })
		}
		// Inbound streams are still open (HandleInbound running) at Close.
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(2)
			go func() { defer wg.Done(); _ = trs[id].Close() }()
			go func() { defer wg.Done(); _ = trs[id].Close() }()
		}
		wg.Wait()
		for _, id := range ids {
			if err := trs[id].Close(); err != nil {
				t.Fatal(err)
			}
			trs[id].Send([]*raftpb.Message{heartbeat(id, 1, 2)}) // no-op
			lns[id].close()
		}
		for _, id := range ids {
			if ins[id].len() != 4 {
				t.Errorf("node %d: %d deliveries, want 4", id, ins[id].len())
			}
		}
	}()

	deadline := time.Now().Add(waitDeadline)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTransportWireLayout checks the documented wire format byte for byte.
func TestTransportWireLayout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tr := NewTransport(TransportConfig{
		Self: 7, ClusterID: testClusterID,
		Peers:   map[uint64]string{8: ln.Addr().String()},
		Deliver: func(*raftpb.Message) {},
	})
	defer tr.Close()
	m := appMsg(7, 8, 3, "abc")
	tr.Send([]*raftpb.Message{m})

	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(waitDeadline))
	r := bufio.NewReader(conn)
	var hdr [4 + 8 + 2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint32(hdr[0:4]); got != PeerMagic || string(hdr[0:4]) != "KRFT" {
		t.Fatalf("magic %x", got)
	}
	if got := binary.BigEndian.Uint64(hdr[4:12]); got != 7 {
		t.Fatalf("sender %d", got)
	}
	cid := make([]byte, binary.BigEndian.Uint16(hdr[12:14]))
	if _, err := io.ReadFull(r, cid); err != nil || string(cid) != testClusterID {
		t.Fatalf("cluster id %q (%v)", cid, err)
	}
	var lenb [4]byte
	if _, err := io.ReadFull(r, lenb[:]); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, binary.BigEndian.Uint32(lenb[:]))
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatal(err)
	}
	got := new(raftpb.Message)
	if err := proto.Unmarshal(payload, got); err != nil {
		t.Fatal(err)
	}
	checkSame(t, []*raftpb.Message{got}, []*raftpb.Message{m})
}
