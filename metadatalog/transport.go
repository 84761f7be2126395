package metadatalog

// Peer transport between controller voters.
//
// Controllers exchange Raft messages over the same TCP port that serves
// Kafka-protocol requests. The Kafka server sniffs the first 4 bytes of every
// inbound connection; when they equal PeerMagic it hands the connection (with
// those 4 bytes consumed) to Transport.HandleInbound.
//
// Streams are one-directional: every voter dials its own outbound connection
// to every other voter and only writes to it; inbound connections are only
// read. Wire format of one stream, all integers big-endian:
//
//	magic   uint32   PeerMagic ("KRFT")
//	hello   uint64   sender (voter) id
//	        uint16   length of the cluster id
//	        []byte   cluster id
//	frame*  uint32   length n of the payload (at most maxFrameSize = 64 MiB)
//	        [n]byte  proto.Marshal(raftpb.Message)
//
// The receiver checks the hello (the sender must be one of Peers and the
// cluster id must match) and that every message's From equals the hello's
// sender id; any violation, a malformed frame or an oversized frame closes
// that stream only. Messages are delivered in order per stream. Messages may
// be lost (queue overflow, reconnects); Raft retransmits, and the transport
// reports such losses through TransportConfig.Unreachable.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// PeerMagic opens every peer stream; as a Kafka frame size it would exceed any allowed request, so it cannot be mistaken for one.
const PeerMagic uint32 = 0x4B524654 // "KRFT"

const (
	// maxFrameSize caps the marshalled size of one raftpb.Message on the wire.
	maxFrameSize = 64 << 20
	// peerQueueSize is the number of messages queued per peer before Send
	// starts dropping.
	peerQueueSize = 4096
	// defaultDialTimeout applies when TransportConfig.DialTimeout is 0.
	defaultDialTimeout = time.Second
	// helloTimeout bounds how long an inbound stream may take to send its hello.
	helloTimeout = 10 * time.Second
	// writeTimeoutBase (plus writeTimeoutPerMiB for every MiB) bounds one
	// message write, so that a peer that stops reading is eventually dropped.
	writeTimeoutBase   = 5 * time.Second
	writeTimeoutPerMiB = time.Second
	// Redial back-off after a failed dial or write.
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
	// readBufKeep is the largest inbound frame buffer kept between frames.
	readBufKeep = 1 << 20
	// maxClusterIDLen is what the 2-byte length prefix can express.
	maxClusterIDLen = 1<<16 - 1
)

// TransportConfig configures a Transport.
type TransportConfig struct {
	Self      uint64
	ClusterID string
	// Peers maps voter id → host:port. Self may be present; it is ignored.
	Peers map[uint64]string
	// Deliver is called for each inbound message, from transport goroutines;
	// it must not block long. The message is owned by the callee.
	Deliver func(m *raftpb.Message)
	// Unreachable is called when a send to a peer fails or its queue
	// overflows. It is called from Send's caller and from transport
	// goroutines, so it must not block. May be nil.
	Unreachable func(id uint64)
	// Logger may be nil (logs are discarded).
	Logger *slog.Logger
	// DialTimeout bounds one outbound dial; 0 means 1s.
	DialTimeout time.Duration
}

// Transport carries Raft messages between voters. See the package comment
// above for the wire format.
type Transport struct {
	cfg    TransportConfig
	log    *slog.Logger
	peers  map[uint64]*peerSender // immutable after NewTransport
	dialer net.Dialer

	ctx    context.Context // cancelled by Close; aborts dials
	cancel context.CancelFunc

	closing atomic.Bool // set first thing by Close; read on hot paths

	mu      sync.Mutex
	closed  bool
	conns   map[net.Conn]struct{} // every open connection, inbound and outbound
	inbound map[uint64]net.Conn   // newest accepted stream per sender
	wg      sync.WaitGroup        // peer goroutines and running HandleInbound calls

	closeOnce sync.Once
}

// peerSender owns the outbound stream to one peer.
type peerSender struct {
	t    *Transport
	id   uint64
	addr string
	q    chan *raftpb.Message

	// Owned by the run goroutine.
	conn    net.Conn
	bw      *bufio.Writer
	buf     []byte
	backoff time.Duration
	retryAt time.Time
	logged  bool // a connection failure has been logged since the last success
}

// NewTransport returns a Transport with one (lazily dialing) sender goroutine
// per peer.
func NewTransport(cfg TransportConfig) *Transport {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "raft-transport", "self", cfg.Self)
	cfg.Peers = maps.Clone(cfg.Peers) // the caller may reuse its map
	if len(cfg.ClusterID) > maxClusterIDLen {
		log.Error("cluster id too long for the peer hello; peers will reject this node", "len", len(cfg.ClusterID))
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:     cfg,
		log:     log,
		peers:   make(map[uint64]*peerSender, len(cfg.Peers)),
		dialer:  net.Dialer{Timeout: cfg.DialTimeout},
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[net.Conn]struct{}),
		inbound: make(map[uint64]net.Conn),
	}
	for id, addr := range cfg.Peers {
		if id == cfg.Self {
			continue
		}
		t.peers[id] = &peerSender{t: t, id: id, addr: addr, q: make(chan *raftpb.Message, peerQueueSize)}
	}
	for _, p := range t.peers {
		t.wg.Add(1)
		go p.run()
	}
	return t
}

// Send queues messages for their recipients (m.GetTo()); never blocks: when a
// peer's queue is full the message is dropped and Unreachable is called — Raft
// retransmits. Messages for unknown recipients are dropped. Send after Close
// is a no-op. Messages are marshalled later, on the peer's goroutine, so the
// caller must not modify them after Send.
func (t *Transport) Send(msgs []*raftpb.Message) {
	if t.closing.Load() {
		return
	}
	var overflowed []uint64 // report each peer at most once per call
	for _, m := range msgs {
		if m == nil {
			continue
		}
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			t.log.Warn("dropping raft message for unknown peer", "to", to, "type", m.GetType().String())
			continue
		}
		select {
		case p.q <- m:
		default:
			if !containsID(overflowed, to) {
				overflowed = append(overflowed, to)
				t.log.Debug("peer queue full, dropping raft message", "peer", to, "type", m.GetType().String())
			}
		}
	}
	for _, id := range overflowed {
		t.unreachable(id)
	}
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Close closes every connection and stops every goroutine, including running
// HandleInbound calls; once it returns Deliver and Unreachable are no longer
// called. It is idempotent and safe to call concurrently.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		// Flag and cancel first so goroutines whose connection is about to
		// be closed below see an orderly shutdown, not a peer failure.
		t.closing.Store(true)
		t.cancel()
		t.mu.Lock()
		t.closed = true
		for c := range t.conns {
			_ = c.Close()
		}
		t.mu.Unlock()
	})
	t.wg.Wait()
	return nil
}

// track registers an open connection so Close can close it; it reports false
// (and the caller must close c) when the transport is already closed.
func (t *Transport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrackAndClose(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	_ = c.Close()
}

func (t *Transport) unreachable(id uint64) {
	if t.cfg.Unreachable != nil && !t.closing.Load() {
		t.cfg.Unreachable(id)
	}
}

// ---------------------------------------------------------------------------
// Outbound

func (p *peerSender) run() {
	defer p.t.wg.Done()
	defer p.disconnect()
	for {
		var m *raftpb.Message
		select {
		case <-p.t.ctx.Done():
			return
		case m = <-p.q:
		}
		if !p.ensureConn() {
			// Disconnected and backing off (or the dial just failed): drop
			// this message and whatever else is queued so the queue does
			// not fill with stale traffic.
			p.drainQueue()
			p.t.unreachable(p.id)
			continue
		}
		if err := p.write(m); err != nil {
			p.fail("write", err)
			continue
		}
		if len(p.q) == 0 {
			if err := p.bw.Flush(); err != nil {
				p.fail("write", err)
			}
		}
	}
}

// ensureConn dials the peer if there is no connection and the back-off has
// elapsed. It reports whether a connection is available.
func (p *peerSender) ensureConn() bool {
	if p.conn != nil {
		return true
	}
	if time.Now().Before(p.retryAt) || p.t.closing.Load() {
		return false
	}
	conn, err := p.t.dialer.DialContext(p.t.ctx, "tcp", p.addr)
	if err != nil {
		if !p.t.closing.Load() {
			p.noteFailure("dial", err)
		}
		return false
	}
	if !p.t.track(conn) {
		_ = conn.Close()
		return false
	}
	p.conn = conn
	if p.bw == nil {
		p.bw = bufio.NewWriterSize(conn, 64<<10)
	} else {
		p.bw.Reset(conn)
	}
	p.buf = binary.BigEndian.AppendUint32(p.buf[:0], PeerMagic)
	p.buf = binary.BigEndian.AppendUint64(p.buf, p.t.cfg.Self)
	cid := p.t.cfg.ClusterID
	if len(cid) > maxClusterIDLen {
		cid = cid[:maxClusterIDLen] // cannot match on the other side; logged there
	}
	p.buf = binary.BigEndian.AppendUint16(p.buf, uint16(len(cid)))
	p.buf = append(p.buf, cid...)
	// Buffered: goes out with the first frame.
	_, _ = p.bw.Write(p.buf)
	p.backoff = 0
	if p.logged {
		p.t.log.Info("raft peer connected", "peer", p.id, "addr", p.addr)
		p.logged = false
	}
	return true
}

// write frames m into the buffered writer.
func (p *peerSender) write(m *raftpb.Message) error {
	var err error
	p.buf, err = proto.MarshalOptions{}.MarshalAppend(append(p.buf[:0], 0, 0, 0, 0), m)
	if err != nil {
		p.t.log.Error("cannot marshal raft message, dropping", "peer", p.id, "type", m.GetType().String(), "err", err)
		p.t.unreachable(p.id)
		return nil // the stream is intact
	}
	n := len(p.buf) - 4
	if n > maxFrameSize {
		p.t.log.Error("raft message exceeds frame limit, dropping", "peer", p.id, "type", m.GetType().String(),
			"size", n, "limit", maxFrameSize)
		p.t.unreachable(p.id)
		p.shrinkBuf()
		return nil
	}
	binary.BigEndian.PutUint32(p.buf, uint32(n))
	_ = p.conn.SetWriteDeadline(time.Now().Add(writeTimeoutBase + time.Duration(n>>20)*writeTimeoutPerMiB))
	_, err = p.bw.Write(p.buf)
	p.shrinkBuf()
	return err
}

func (p *peerSender) shrinkBuf() {
	if cap(p.buf) > readBufKeep {
		p.buf = nil
	}
}

// fail handles a failed write: the connection and its buffered data are
// dropped, and the peer is reported unreachable.
func (p *peerSender) fail(op string, err error) {
	p.disconnect()
	if p.t.closing.Load() {
		return
	}
	p.noteFailure(op, err)
	p.t.unreachable(p.id)
}

// noteFailure logs (once per outage) and arms the redial back-off.
func (p *peerSender) noteFailure(op string, err error) {
	if !p.logged {
		p.t.log.Warn("raft peer "+op+" failed", "peer", p.id, "addr", p.addr, "err", err)
		p.logged = true
	} else {
		p.t.log.Debug("raft peer "+op+" failed", "peer", p.id, "addr", p.addr, "err", err)
	}
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	p.retryAt = time.Now().Add(p.backoff)
}

func (p *peerSender) disconnect() {
	if p.conn == nil {
		return
	}
	p.t.untrackAndClose(p.conn)
	p.conn = nil
	p.bw.Reset(io.Discard)
}

func (p *peerSender) drainQueue() {
	for {
		select {
		case <-p.q:
		default:
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Inbound

// HandleInbound reads one peer stream until it ends; it owns and closes conn.
// The caller has already consumed the 4 PeerMagic bytes. Messages are passed
// to Deliver on the calling goroutine, in stream order.
func (t *Transport) HandleInbound(conn net.Conn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = conn.Close()
		return
	}
	t.conns[conn] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	defer t.untrackAndClose(conn)

	log := t.log.With("remote", conn.RemoteAddr().String())
	br := bufio.NewReaderSize(conn, 64<<10)

	_ = conn.SetReadDeadline(time.Now().Add(helloTimeout))
	sender, clusterID, err := readHello(br)
	if err != nil {
		log.Warn("bad raft peer hello, closing stream", "err", err)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	_, known := t.cfg.Peers[sender]
	if clusterID != t.cfg.ClusterID || !known || sender == t.cfg.Self {
		log.Warn("rejecting raft peer stream",
			"sender", sender, "known_sender", known && sender != t.cfg.Self,
			"cluster_id", clusterID, "local_cluster_id", t.cfg.ClusterID)
		return
	}
	log = log.With("peer", sender)

	// A new stream from a sender supersedes its previous one (the sender
	// keeps a single outbound connection, so the old one is dead or dying).
	if !t.registerInbound(sender, conn) {
		return
	}
	defer t.unregisterInbound(sender, conn)
	log.Debug("raft peer stream accepted")

	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if !errors.Is(err, io.EOF) && !t.closing.Load() {
				log.Info("raft peer stream ended", "err", err)
			}
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrameSize {
			log.Warn("oversized raft frame, closing stream", "size", n, "limit", maxFrameSize)
			return
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			if !t.closing.Load() {
				log.Info("raft peer stream ended mid-frame", "err", err)
			}
			return
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(buf, m); err != nil {
			log.Warn("malformed raft frame, closing stream", "size", n, "err", err)
			return
		}
		if m.GetFrom() != sender {
			log.Warn("raft message sender mismatch, closing stream", "from", m.GetFrom(), "type", m.GetType().String())
			return
		}
		if cap(buf) > readBufKeep {
			buf = nil
		}
		if t.closing.Load() {
			return
		}
		t.cfg.Deliver(m)
	}
}

func readHello(r io.Reader) (sender uint64, clusterID string, err error) {
	var hdr [10]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", fmt.Errorf("reading hello: %w", err)
	}
	sender = binary.BigEndian.Uint64(hdr[:8])
	cid := make([]byte, binary.BigEndian.Uint16(hdr[8:]))
	if _, err := io.ReadFull(r, cid); err != nil {
		return 0, "", fmt.Errorf("reading hello cluster id: %w", err)
	}
	return sender, string(cid), nil
}

func (t *Transport) registerInbound(sender uint64, conn net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if old := t.inbound[sender]; old != nil {
		_ = old.Close() // its HandleInbound untracks it
	}
	t.inbound[sender] = conn
	return true
}

func (t *Transport) unregisterInbound(sender uint64, conn net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inbound[sender] == conn {
		delete(t.inbound, sender)
	}
}
