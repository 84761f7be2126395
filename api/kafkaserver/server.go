// Package kafkaserver is the Kafka-protocol front end shared by every listener
// of a node: it accepts TCP connections, frames and decodes Kafka requests,
// answers ApiVersions itself (so every listener negotiates versions the same
// way), hands every other request to a Handler, and writes the responses back
// in request order.
//
// It also lets one port carry a second, non-Kafka protocol: a connection that
// opens with a configured 4-byte magic value is handed over raw to a peer
// handler. That keeps node-to-node traffic on the listener the operator
// already opened, without a second port.
//
// The package deliberately knows nothing about what the requests mean;
// authorization, routing to the quorum, and so on belong to the Handler.
package kafkaserver

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler serves decoded requests. It is never called for ApiVersions (key
// 18), which the server answers itself.
//
// Handle may block; the server handles one request per connection at a time,
// so responses leave in request order (Kafka does the same: a connection is
// muted while its request is in flight). Requests on different connections
// are handled concurrently, so Handle must be safe for concurrent use.
//
// Returning a non-nil error logs it and closes that connection. Returning a
// nil response with a nil error is treated the same way: every request the
// server accepts expects an answer, and silently dropping one would leave the
// client waiting until its request timeout.
//
// The context is cancelled when the connection closes (including when the
// client disconnects while the request is in flight) or the server closes;
// context.Cause says which.
type Handler interface {
	Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
}

type clientIDKey struct{}

// ClientID returns the client id from the header of the request a Handler is serving ("" if none).
func ClientID(ctx context.Context) string {
	id, _ := ctx.Value(clientIDKey{}).(string)
	return id
}

// VersionRange is an inclusive range of versions of one API key.
type VersionRange struct{ Min, Max int16 }

// Options configures a Server. See Serve for which combinations are invalid.
type Options struct {
	// Listener is already bound by the caller, so the caller controls the
	// address (and can learn an ephemeral port) before anything is served.
	// The server closes it on Close.
	Listener net.Listener
	// Handler serves every request except ApiVersions.
	Handler Handler
	// APIs lists the keys served besides ApiVersions; ApiVersions (0..4) is
	// always served and advertised, and an entry for key 18 here is an
	// error. A request for a key not listed, or at a version outside its
	// range, closes the connection.
	APIs map[int16]VersionRange
	// DecorateApiVersions, when set, fills feature fields
	// (SupportedFeatures, FinalizedFeatures, FinalizedFeaturesEpoch) of a
	// successful ApiVersions response. It is called for every successful
	// ApiVersions response, on connection goroutines, so it must be safe
	// for concurrent use; the fields only reach the wire for version 3+.
	DecorateApiVersions func(resp *kmsg.ApiVersionsResponse)
	// PeerMagic/PeerHandler: a connection whose first 4 bytes equal
	// PeerMagic (big-endian) is not Kafka traffic but a peer stream; the
	// server hands it, with those 4 bytes consumed, to PeerHandler (which
	// owns and closes it). This works because a Kafka frame size can never
	// be that large (the magic is > MaxRequestBytes, or negative as an
	// int32).
	//
	// PeerHandler runs on the connection's goroutine. While it runs, Close
	// closes the connection and waits for PeerHandler to return; once it
	// has returned the server forgets the connection, so PeerHandler may
	// hand it to longer-lived code and return. PeerMagic is ignored when
	// PeerHandler is nil.
	PeerMagic   uint32
	PeerHandler func(net.Conn)
	// MaxRequestBytes is socket.request.max.bytes: the largest request
	// frame accepted. 0 means 100 MiB (104857600), Kafka's default.
	MaxRequestBytes int32
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
}

// defaultMaxRequestBytes is Kafka's default socket.request.max.bytes.
const defaultMaxRequestBytes = 100 << 20

// Server is a running Kafka-protocol server. Create it with Serve.
type Server struct {
	ln          net.Listener
	handler     Handler
	apis        map[int16]VersionRange
	apiKeys     []kmsg.ApiVersionsResponseApiKey // advertised, sorted by key, including ApiVersions
	decorate    func(*kmsg.ApiVersionsResponse)
	peerMagic   uint32
	peerHandler func(net.Conn)
	maxBytes    int32
	log         *slog.Logger

	// ctx is the parent of every connection's context; cancelling it is how
	// Close reaches handlers that are blocked.
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	errServerClosed = errors.New("kafkaserver: server closed")
	errConnClosed   = errors.New("kafkaserver: connection closed")
)

// Serve validates opts and starts accepting connections in the background.
//
// Serve panics if opts are unusable, because each case is a programming error
// that would otherwise surface much later as mysteriously closed client
// connections: a nil Listener; a non-empty APIs with a nil Handler; an APIs
// entry for ApiVersions, for a key kmsg cannot decode, with Min < 0,
// Min > Max, or Max above what kmsg can decode; a negative MaxRequestBytes;
// or a PeerMagic that a legitimate Kafka frame size could equal.
func Serve(opts Options) *Server {
	s, err := newServer(opts)
	if err != nil {
		panic(err)
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

func newServer(opts Options) (*Server, error) {
	if opts.Listener == nil {
		return nil, errors.New("kafkaserver: Options.Listener is nil")
	}
	if len(opts.APIs) > 0 && opts.Handler == nil {
		return nil, errors.New("kafkaserver: Options.APIs is set but Options.Handler is nil")
	}
	maxBytes := opts.MaxRequestBytes
	switch {
	case maxBytes < 0:
		return nil, fmt.Errorf("kafkaserver: negative Options.MaxRequestBytes %d", maxBytes)
	case maxBytes == 0:
		maxBytes = defaultMaxRequestBytes
	}
	if opts.PeerHandler != nil {
		// The dispatch on the first 4 bytes is only unambiguous if no
		// frame the server would accept can start with the magic.
		if asSize := int32(opts.PeerMagic); asSize >= 0 && asSize <= maxBytes {
			return nil, fmt.Errorf("kafkaserver: PeerMagic %#x is a valid frame size (MaxRequestBytes %d)", opts.PeerMagic, maxBytes)
		}
	}

	apis := make(map[int16]VersionRange, len(opts.APIs))
	keys := []kmsg.ApiVersionsResponseApiKey{{ApiKey: apiVersionsKey, MinVersion: 0, MaxVersion: apiVersionsMaxVersion}}
	for key, vr := range opts.APIs {
		if key == apiVersionsKey {
			return nil, errors.New("kafkaserver: Options.APIs must not contain ApiVersions (18); the server serves it")
		}
		req := kmsg.RequestForKey(key)
		if req == nil {
			return nil, fmt.Errorf("kafkaserver: Options.APIs has key %d, which kmsg cannot decode", key)
		}
		if vr.Min < 0 || vr.Min > vr.Max || vr.Max > req.MaxVersion() {
			return nil, fmt.Errorf("kafkaserver: Options.APIs[%d] range %d..%d is invalid (kmsg decodes up to %d)", key, vr.Min, vr.Max, req.MaxVersion())
		}
		apis[key] = vr
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: vr.Min, MaxVersion: vr.Max})
	}
	slices.SortFunc(keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })

	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Server{
		ln:          opts.Listener,
		handler:     opts.Handler,
		apis:        apis,
		apiKeys:     keys,
		decorate:    opts.DecorateApiVersions,
		peerMagic:   opts.PeerMagic,
		peerHandler: opts.PeerHandler,
		maxBytes:    maxBytes,
		log:         logger.With("component", "kafkaserver", "listener", opts.Listener.Addr().String()),
		ctx:         ctx,
		cancel:      cancel,
		conns:       make(map[net.Conn]struct{}),
	}, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection (cancelling the contexts of
// in-flight Handle calls), and waits for the server's goroutines, including
// running Handle and PeerHandler calls, to return. It is idempotent; every
// call returns the first call's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]net.Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()

		// Cancel before closing so goroutines that see their reads fail
		// know it is shutdown, not a misbehaving client, and stay quiet.
		s.cancel(errServerClosed)
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = err
		}
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				if s.ctx.Err() == nil {
					s.log.Error("listener closed underneath the server; no longer accepting")
				}
				return
			}
			// Typically EMFILE/ENFILE: the condition may clear as
			// connections close, so retry rather than silently stop
			// serving, but back off so we do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			return
		}
		go s.serveConn(c)
	}
}

// track registers c so Close can reach it, and accounts for its goroutine.
// It reports false once the server is closed; the Add happens under mu so it
// can never race with Close's Wait.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	log := s.log.With("remote", c.RemoteAddr().String())

	// Read the first 4 bytes straight from the socket, before any buffering,
	// so that a peer stream is handed over with nothing of it stuck in our
	// buffer.
	var first [4]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		if s.ctx.Err() == nil {
			log.Debug("connection closed before its first frame", "err", err)
		}
		s.untrack(c)
		c.Close()
		return
	}
	word := binary.BigEndian.Uint32(first[:])
	if s.peerHandler != nil && word == s.peerMagic {
		s.servePeer(c, log)
		return
	}

	s.serveKafka(c, int32(word), log)
	s.untrack(c)
	c.Close()
}

func (s *Server) servePeer(c net.Conn, log *slog.Logger) {
	// Ownership passes to PeerHandler, so we only close c if it panicked
	// (it cannot be trusted to have cleaned up) and otherwise just forget it.
	defer func() {
		s.untrack(c)
		if r := recover(); r != nil {
			log.Error("peer handler panicked; closing connection", "panic", r, "stack", string(debug.Stack()))
			c.Close()
		}
	}()
	log.Debug("peer connection")
	s.peerHandler(c)
}

// kconn is one Kafka connection. Two goroutines share it: the reader, which
// owns br, and the processor (serveKafka's caller), which owns writes.
type kconn struct {
	s      *Server
	c      net.Conn
	br     *bufio.Reader
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelCauseFunc
	// frames hands each request frame from the reader to the processor.
	frames chan []byte
	// next tells the reader the processor finished the last frame, so it
	// may parse the next one. Buffered so the processor never blocks on it.
	next chan struct{}
}

// serveKafka serves Kafka requests on c until the connection fails, the
// client breaks the protocol, or the server closes. firstSize is the already
// read size of the first frame.
func (s *Server) serveKafka(c net.Conn, firstSize int32, log *slog.Logger) {
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(errConnClosed)
	kc := &kconn{
		s:      s,
		c:      c,
		br:     bufio.NewReader(c),
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		frames: make(chan []byte),
		next:   make(chan struct{}, 1),
	}
	// The reader is separate from the processor only so that a client
	// disconnecting while its request is in flight cancels the handler's
	// context; see readLoop. It exits once the connection is closed.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		kc.readLoop(firstSize)
	}()

	for {
		var frame []byte
		select {
		case frame = <-kc.frames:
		case <-ctx.Done():
			return
		}
		if !kc.serveFrame(frame) {
			return
		}
		kc.next <- struct{}{}
	}
}

// readLoop reads frames and passes them to the processor one at a time.
//
// Like Kafka muting a channel, it does not parse the next frame until the
// previous response is written: memory per connection stays bounded by one
// frame and the socket buffer, and a client that pipelines gets TCP
// backpressure. While a request is in flight it still peeks for one byte, so
// a client that goes away is noticed (and the handler's context cancelled)
// instead of the handler working on for nobody. The peek holds at most one
// bufio buffer of the next request, so muting is preserved.
func (kc *kconn) readLoop(size int32) {
	first := true
	for {
		if !first {
			var hdr [4]byte
			if _, err := io.ReadFull(kc.br, hdr[:]); err != nil {
				kc.readFailed("connection closed", err)
				return
			}
			size = int32(binary.BigEndian.Uint32(hdr[:]))
		}
		first = false

		// Refuse before reading the body: the point of the cap is to
		// not buffer what a broken or hostile client claims it sends.
		if size < 0 || size > kc.s.maxBytes {
			kc.log.Warn("request frame size out of bounds; closing connection", "size", size, "limit", kc.s.maxBytes)
			kc.cancel(fmt.Errorf("kafkaserver: frame size %d out of bounds", size))
			return
		}
		body, err := readFull(kc.br, int(size))
		if err != nil {
			kc.readFailed("connection closed mid-frame", err)
			return
		}
		select {
		case kc.frames <- body:
		case <-kc.ctx.Done():
			return
		}

		if _, err := kc.br.Peek(1); err != nil {
			// This also catches a client that only half-closed; no
			// Kafka client does that, and treating EOF as "gone" is
			// what lets us notice the common case, a full close.
			kc.readFailed("connection closed with a request in flight", err)
			return
		}
		select {
		case <-kc.next:
		case <-kc.ctx.Done():
			return
		}
	}
}

// readFailed ends the connection after a read error, logging it unless it is
// the expected result of our own shutdown or a plain disconnect.
func (kc *kconn) readFailed(what string, err error) {
	if kc.ctx.Err() == nil {
		kc.log.Debug(what, "err", err)
	}
	kc.cancel(fmt.Errorf("kafkaserver: %s: %w", what, err))
}

// readFull reads exactly n bytes. It grows the buffer as data arrives instead
// of allocating n up front, so a client that announces a large frame and then
// stalls does not pin that much memory.
func readFull(r io.Reader, n int) ([]byte, error) {
	const chunk = 1 << 20
	buf := make([]byte, min(n, chunk))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			if err == io.EOF && got > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if got == n {
			return buf, nil
		}
		buf = slices.Grow(buf, min(n-got, got))[:got+min(n-got, got)]
	}
}

// serveFrame decodes, serves and answers one request frame. It returns false
// if the connection must close. A panic anywhere in here (kmsg decoding,
// the handler, encoding) is contained to this connection.
func (kc *kconn) serveFrame(frame []byte) (ok bool) {
	key, version := int16(-1), int16(-1)
	defer func() {
		if r := recover(); r != nil {
			kc.log.Error("panic serving request; closing connection", "key", key, "version", version, "panic", r, "stack", string(debug.Stack()))
			ok = false
		}
	}()

	b := kbin.Reader{Src: frame}
	key, version = b.Int16(), b.Int16()
	corr := b.Int32()
	clientID := b.NullableString() // legacy-encoded even in flexible headers
	if !b.Ok() {
		kc.log.Warn("truncated request header; closing connection", "size", len(frame))
		return false
	}

	if key == apiVersionsKey {
		resp, ok := kc.s.apiVersions(&b, version, kc.log)
		if !ok {
			return false
		}
		// Always response header v0, even for flexible requests: a
		// client must be able to read the answer before it knows which
		// versions (and so which header format) the server speaks.
		return kc.write(corr, false, resp)
	}

	vr, served := kc.s.apis[key]
	if !served {
		return kc.reject(key, version, "api key not served")
	}
	if version < vr.Min || version > vr.Max {
		return kc.reject(key, version, fmt.Sprintf("version outside served range %d..%d", vr.Min, vr.Max))
	}
	req := kmsg.RequestForKey(key) // non-nil: Serve checked every served key
	req.SetVersion(version)
	if req.IsFlexible() {
		skipTags(&b)
		if !b.Ok() {
			return kc.reject(key, version, "truncated header tagged fields")
		}
	}
	if err := req.ReadFrom(b.Src); err != nil {
		return kc.reject(key, version, "body does not decode: "+err.Error())
	}

	ctx := kc.ctx
	if clientID != nil {
		ctx = context.WithValue(ctx, clientIDKey{}, *clientID)
	}
	resp, err := kc.s.handler.Handle(ctx, req)
	if err != nil {
		if kc.ctx.Err() != nil {
			// The handler gave up because the connection or the
			// server is going away; that is not worth an error log.
			kc.log.Debug("handler aborted", "key", key, "version", version, "err", err, "cause", context.Cause(kc.ctx))
		} else {
			kc.log.Error("handler failed; closing connection", "key", key, "version", version, "err", err)
		}
		return false
	}
	if resp == nil || resp.Key() != key {
		kc.log.Error("handler returned no response or one for another key; closing connection", "key", key, "version", version, "response", fmt.Sprintf("%T", resp))
		return false
	}
	// Always answer at the request's version, whatever the handler left in
	// the response: the client decodes by the version it sent.
	resp.SetVersion(version)
	return kc.write(corr, req.IsFlexible(), resp)
}

func (kc *kconn) reject(key, version int16, reason string) bool {
	kc.log.Warn("bad request; closing connection", "key", key, "version", version, "reason", reason)
	return false
}

// write sends one response frame in a single Write, so a response is never
// interleaved or left half-written by us.
func (kc *kconn) write(corr int32, flexibleHeader bool, resp kmsg.Response) bool {
	buf := make([]byte, 4, 64)
	buf = kbin.AppendInt32(buf, corr)
	if flexibleHeader {
		buf = append(buf, 0) // response header v1: empty tagged fields
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := kc.c.Write(buf); err != nil {
		if kc.ctx.Err() == nil {
			kc.log.Debug("writing response failed", "key", resp.Key(), "err", err)
		}
		return false
	}
	return true
}

// skipTags skips a tagged-field section. Unlike kmsg.SkipTags it stops as soon
// as the input runs out, so a huge announced count in a tiny frame cannot
// spin for billions of iterations.
func skipTags(b *kbin.Reader) {
	for n := b.Uvarint(); n > 0 && b.Ok(); n-- {
		b.Uvarint() // tag
		b.Span(int(b.Uvarint()))
	}
}
