package kafkaserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ioTimeout bounds every blocking socket operation in these tests. It is a
// safety net against hangs, never an assertion about how fast anything is.
const ioTimeout = 15 * time.Second

const testClusterID = "kraft-test"

var testAPIs = map[int16]VersionRange{
	3:  {Min: 0, Max: 12}, // Metadata
	60: {Min: 0, Max: 1},  // DescribeCluster
}

type handlerFunc func(context.Context, kmsg.Request) (kmsg.Response, error)

func (f handlerFunc) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	return f(ctx, req)
}

// echoHandler serves Metadata and DescribeCluster describing a one-node
// cluster at addr. Metadata echoes the requested topic names back, and
// sleeps first when asked for a topic named "slow".
func echoHandler(addr net.Addr) handlerFunc {
	tcp := addr.(*net.TCPAddr)
	host, port := tcp.IP.String(), int32(tcp.Port)
	return func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
		switch req := req.(type) {
		case *kmsg.MetadataRequest:
			resp := req.ResponseKind().(*kmsg.MetadataResponse)
			resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: host, Port: port}}
			resp.ClusterID = kmsg.StringPtr(testClusterID)
			resp.ControllerID = 1
			for _, rt := range req.Topics {
				if rt.Topic != nil && *rt.Topic == "slow" {
					select {
					case <-time.After(300 * time.Millisecond):
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				t := kmsg.NewMetadataResponseTopic()
				t.Topic = rt.Topic
				resp.Topics = append(resp.Topics, t)
			}
			return resp, nil
		case *kmsg.DescribeClusterRequest:
			resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
			resp.ClusterID = testClusterID
			resp.ControllerID = 1
			resp.EndpointType = req.EndpointType
			resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: 1, Host: host, Port: port}}
			return resp, nil
		}
		return nil, fmt.Errorf("unexpected request %T", req)
	}
}

// logSink collects the server's log output (and mirrors it to the test log)
// so tests can check what was reported.
type logSink struct {
	t   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logSink) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf.Write(p)
	w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls until the log holds a line containing every one of parts.
func (w *logSink) waitFor(parts ...string) {
	w.t.Helper()
	eventually(w.t, fmt.Sprintf("a log line containing %q", parts), func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for line := range strings.SplitSeq(w.buf.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	})
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// start serves opts (on a fresh listener if opts has none) with a logger
// feeding a logSink, and closes the server when the test ends.
func start(t testing.TB, opts Options) (*Server, *logSink) {
	t.Helper()
	if opts.Listener == nil {
		opts.Listener = listen(t)
	}
	sink := &logSink{t: t}
	opts.Logger = slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := Serve(opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, sink
}

// startEcho starts a server serving testAPIs with echoHandler.
func startEcho(t testing.TB, opts Options) (*Server, *logSink) {
	t.Helper()
	ln := listen(t)
	opts.Listener = ln
	if opts.APIs == nil {
		opts.APIs = testAPIs
	}
	if opts.Handler == nil {
		opts.Handler = echoHandler(ln.Addr())
	}
	return start(t, opts)
}

// rawConn is a hand-rolled Kafka client, so tests control every byte.
type rawConn struct {
	t testing.TB
	c net.Conn
}

func dial(t testing.TB, addr net.Addr) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) write(p []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := r.c.Write(p); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// headerTags are optional tagged fields for a flexible request header.
type headerTags map[uint32][]byte

// appendFrame appends a whole request frame: size, header v1/v2, body.
// Whether the header carries tagged fields follows the request's own
// flexibility, like a real client.
func appendFrame(dst []byte, req kmsg.Request, corr int32, tags headerTags) []byte {
	return appendRawFrame(dst, req.Key(), req.GetVersion(), corr, req.IsFlexible(), tags, req.AppendTo(nil))
}

func appendRawFrame(dst []byte, key, version int16, corr int32, flexible bool, tags headerTags, body []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt16(dst, key)
	dst = kbin.AppendInt16(dst, version)
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendNullableString(dst, kmsg.StringPtr("raw-test"))
	if flexible {
		dst = kbin.AppendUvarint(dst, uint32(len(tags)))
		for tag, v := range tags {
			dst = kbin.AppendUvarint(dst, tag)
			dst = kbin.AppendUvarint(dst, uint32(len(v)))
			dst = append(dst, v...)
		}
	}
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

func (r *rawConn) send(req kmsg.Request, corr int32, tags headerTags) {
	r.t.Helper()
	r.write(appendFrame(nil, req, corr, tags))
}

// readFrame reads one response frame and splits off the correlation id.
func (r *rawConn) readFrame() (int32, []byte) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		r.t.Fatalf("reading response size: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, frame); err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	if len(frame) < 4 {
		r.t.Fatalf("response frame of %d bytes has no correlation id", len(frame))
	}
	return int32(binary.BigEndian.Uint32(frame)), frame[4:]
}

// read reads the response to req, which was sent with corr, decoding it the
// way a client must: header v1 (an empty tag section) for flexible requests
// except ApiVersions.
func (r *rawConn) read(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	gotCorr, body := r.readFrame()
	if gotCorr != corr {
		r.t.Fatalf("correlation id %d, want %d", gotCorr, corr)
	}
	if req.IsFlexible() && req.Key() != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			r.t.Fatalf("flexible response header: want one zero byte of tagged fields, got % x", body[:min(len(body), 8)])
		}
		body = body[1:]
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("decoding %T v%d: %v", resp, resp.GetVersion(), err)
	}
	return resp
}

func (r *rawConn) roundTrip(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	r.send(req, corr, nil)
	return r.read(req, corr)
}

// expectClosed asserts the server closes the connection (EOF, or a reset if
// it closed with our bytes unread), rather than answering or hanging.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(ioTimeout))
	var buf [512]byte
	for {
		n, err := r.c.Read(buf[:])
		if n > 0 {
			r.t.Fatalf("server sent %d bytes (% x) instead of closing", n, buf[:min(n, 16)])
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		r.t.Fatalf("want connection closed by server, got %v", err)
	}
}

func apiVersionsReq(version int16) *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	req.ClientSoftwareName = "raw-test"
	req.ClientSoftwareVersion = "1.0.0"
	return req
}

func metadataReq(version int16, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = version
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func describeClusterReq(version int16) *kmsg.DescribeClusterRequest {
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = version
	return req
}

// checkServing asserts the server still answers, on a new connection.
func checkServing(t testing.TB, s *Server) {
	t.Helper()
	rc := dial(t, s.Addr())
	resp := rc.roundTrip(apiVersionsReq(4), 99).(*kmsg.ApiVersionsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions on a fresh connection: error code %d", resp.ErrorCode)
	}
}

func wantKeys(t testing.TB, got []kmsg.ApiVersionsResponseApiKey, want ...kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ApiKeys\n got %+v\nwant %+v", got, want)
	}
}

var wantTestKeys = []kmsg.ApiVersionsResponseApiKey{
	{ApiKey: 3, MinVersion: 0, MaxVersion: 12},
	{ApiKey: 18, MinVersion: 0, MaxVersion: 4},
	{ApiKey: 60, MinVersion: 0, MaxVersion: 1},
}

func TestApiVersionsWithKgo(t *testing.T) {
	var decorated atomic.Int32
	s, _ := startEcho(t, Options{
		DecorateApiVersions: func(resp *kmsg.ApiVersionsResponse) {
			decorated.Add(1)
			resp.SupportedFeatures = []kmsg.ApiVersionsResponseSupportedFeature{{Name: "kraft.version", MinVersion: 0, MaxVersion: 1}}
			resp.FinalizedFeatures = []kmsg.ApiVersionsResponseFinalizedFeature{{Name: "kraft.version", MinVersionLevel: 1, MaxVersionLevel: 1}}
			resp.FinalizedFeaturesEpoch = 42
		},
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()

	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ThrottleMillis != 0 {
		t.Fatalf("error code %d, throttle %d", resp.ErrorCode, resp.ThrottleMillis)
	}
	// kgo asks at min(its max, our advertised max); 4 proves it read our
	// range from the connection handshake.
	if resp.Version != 4 {
		t.Errorf("kgo used ApiVersions v%d, want 4", resp.Version)
	}
	wantKeys(t, resp.ApiKeys, wantTestKeys...)
	if resp.FinalizedFeaturesEpoch != 42 ||
		len(resp.SupportedFeatures) != 1 || resp.SupportedFeatures[0].Name != "kraft.version" || resp.SupportedFeatures[0].MaxVersion != 1 ||
		len(resp.FinalizedFeatures) != 1 || resp.FinalizedFeatures[0].Name != "kraft.version" || resp.FinalizedFeatures[0].MaxVersionLevel != 1 {
		t.Errorf("features did not come through: epoch %d, supported %+v, finalized %+v",
			resp.FinalizedFeaturesEpoch, resp.SupportedFeatures, resp.FinalizedFeatures)
	}
	// kgo opens each connection with ApiVersions v5, which we do not serve.
	// The decorator only runs for successful answers, so a second call
	// means the handshake was downgraded per KIP-511 and retried at v4
	// rather than settling for the v0 error answer.
	if n := decorated.Load(); n < 2 {
		t.Errorf("decorator ran %d times; want the handshake retry plus our request", n)
	}

	dc, err := describeClusterReq(1).RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dc.ClusterID != testClusterID || dc.Version != 1 || dc.EndpointType != 1 {
		t.Errorf("DescribeCluster through the handler: cluster %q version %d endpoint type %d", dc.ClusterID, dc.Version, dc.EndpointType)
	}

	// kadm goes through Metadata to find brokers, then asks each one.
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("kadm saw %d brokers, want 1", len(vs))
	}
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			t.Fatalf("kadm ApiVersions for node %d: %v", v.NodeID, v.Err)
		}
		for _, k := range wantTestKeys {
			if lo, hi, ok := v.KeyVersions(k.ApiKey); !ok || lo != k.MinVersion || hi != k.MaxVersion {
				t.Errorf("kadm key %d: %d..%d (exists %v), want %d..%d", k.ApiKey, lo, hi, ok, k.MinVersion, k.MaxVersion)
			}
		}
		if _, ok := v.KeyMaxVersion(0); ok {
			t.Errorf("Produce advertised but not served")
		}
	}
}

func TestApiVersionsAllVersions(t *testing.T) {
	s, _ := startEcho(t, Options{})
	rc := dial(t, s.Addr())
	for v := range apiVersionsMaxVersion + 1 {
		resp := rc.roundTrip(apiVersionsReq(v), int32(v)).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error code %d", v, resp.ErrorCode)
		}
		wantKeys(t, resp.ApiKeys, wantTestKeys...)
		// Without a decorator no feature tags may be encoded; in
		// particular no bogus epoch 0.
		if resp.FinalizedFeaturesEpoch != -1 || resp.SupportedFeatures != nil || resp.FinalizedFeatures != nil {
			t.Errorf("v%d: undecorated response carries features: %+v", v, resp)
		}
	}
}

func TestApiVersionsOnlyServer(t *testing.T) {
	// No APIs and no Handler is valid: a listener that only negotiates.
	s, _ := start(t, Options{})
	rc := dial(t, s.Addr())
	resp := rc.roundTrip(apiVersionsReq(3), 1).(*kmsg.ApiVersionsResponse)
	wantKeys(t, resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: 18, MinVersion: 0, MaxVersion: 4})
	rc.send(metadataReq(12), 2, nil)
	rc.expectClosed()
}

func TestApiVersionsUnsupportedVersion(t *testing.T) {
	s, _ := startEcho(t, Options{})
	for _, version := range []int16{127, 5, -1} {
		t.Run(strconv.Itoa(int(version)), func(t *testing.T) {
			rc := dial(t, s.Addr())
			const corr = 0x12345678
			// A body we could not parse anyway: the server must not
			// try to read a version it does not know.
			rc.write(appendRawFrame(nil, apiVersionsKey, version, corr, true, nil, []byte{0xde, 0xad, 0xbe, 0xef}))

			gotCorr, body := rc.readFrame()
			if gotCorr != corr {
				t.Fatalf("correlation id %#x, want %#x", gotCorr, corr)
			}
			// v0 body behind a v0 header: error code, one-entry
			// array {18, 0, 4}, nothing else (no throttle, no tags).
			want := []byte{0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 4}
			if !bytes.Equal(body, want) {
				t.Fatalf("body % x, want % x", body, want)
			}
			resp := kmsg.NewPtrApiVersionsResponse() // Version 0
			if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != 35 {
				t.Fatalf("v0 decode: %v, error code %d", err, resp.ErrorCode)
			}

			// The client retries at the advertised max on the same
			// connection and gets the full answer.
			resp = rc.roundTrip(apiVersionsReq(resp.ApiKeys[0].MaxVersion), corr+1).(*kmsg.ApiVersionsResponse)
			if resp.ErrorCode != 0 {
				t.Fatalf("retry: error code %d", resp.ErrorCode)
			}
			wantKeys(t, resp.ApiKeys, wantTestKeys...)
		})
	}
}

func TestApiVersionsFlexibleRequestHeader(t *testing.T) {
	s, _ := startEcho(t, Options{})
	rc := dial(t, s.Addr())

	// The v3 request header carries tagged fields that must be skipped,
	// but the response header stays v0: the byte after the correlation id
	// is the error code's high byte, not a tag count.
	rc.send(apiVersionsReq(3), 7, headerTags{5: []byte("xyz"), 9: nil})
	corr, body := rc.readFrame()
	if corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding v3 body right after a v0 header: %v", err)
	}
	wantKeys(t, resp.ApiKeys, wantTestKeys...)

	// For every other key a flexible request gets a flexible response
	// header; read checks for its empty tag section.
	req := metadataReq(12, "a")
	rc.send(req, 8, headerTags{1: []byte{1, 2, 3}})
	md := rc.read(req, 8).(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 || *md.Topics[0].Topic != "a" || md.Version != 12 {
		t.Fatalf("metadata v12 answer: %+v", md)
	}
	// And a non-flexible one a v0 header.
	req = metadataReq(8, "b")
	md = rc.roundTrip(req, 9).(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 || *md.Topics[0].Topic != "b" {
		t.Fatalf("metadata v8 answer: %+v", md)
	}
}

func TestApiVersionsClientSoftwareValidation(t *testing.T) {
	s, _ := startEcho(t, Options{DecorateApiVersions: func(r *kmsg.ApiVersionsResponse) { r.FinalizedFeaturesEpoch = 1 }})
	for _, tc := range []struct {
		name, version string
		ok            bool
	}{
		{"kgo", "v1.22.2", true},
		{"a", "1", true},
		{"apache-kafka-java", "3.9.0-rc.1", true},
		{"", "1.0", false},
		{"kgo", "", false},
		{"-kgo", "1.0", false},
		{"kgo.", "1.0", false},
		{"k go", "1.0", false},
		{"kgo", "1.0+build", false},
		{"k_go", "1.0", false},
	} {
		t.Run(tc.name+"/"+tc.version, func(t *testing.T) {
			rc := dial(t, s.Addr())
			req := apiVersionsReq(3)
			req.ClientSoftwareName, req.ClientSoftwareVersion = tc.name, tc.version
			resp := rc.roundTrip(req, 1).(*kmsg.ApiVersionsResponse)
			if tc.ok {
				if resp.ErrorCode != 0 || len(resp.ApiKeys) != len(wantTestKeys) || resp.FinalizedFeaturesEpoch != 1 {
					t.Fatalf("valid software: error %d, %d keys, epoch %d", resp.ErrorCode, len(resp.ApiKeys), resp.FinalizedFeaturesEpoch)
				}
			} else if resp.ErrorCode != 42 || len(resp.ApiKeys) != 0 || resp.FinalizedFeaturesEpoch != -1 {
				t.Fatalf("invalid software: error %d, %d keys, epoch %d; want 42, none, undecorated", resp.ErrorCode, len(resp.ApiKeys), resp.FinalizedFeaturesEpoch)
			}
			// Either way the connection stays usable, as in Kafka.
			if resp := rc.roundTrip(apiVersionsReq(3), 2).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
				t.Fatalf("follow-up: error %d", resp.ErrorCode)
			}
		})
	}
	// v0-v2 have no software fields, so nothing to validate.
	rc := dial(t, s.Addr())
	if resp := rc.roundTrip(apiVersionsReq(2), 3).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("v2: error %d", resp.ErrorCode)
	}
}

func TestFrameSizeLimit(t *testing.T) {
	const limit = 1024
	s, logs := startEcho(t, Options{MaxRequestBytes: limit})

	// A frame of exactly the limit is fine.
	rc := dial(t, s.Addr())
	req := apiVersionsReq(3)
	for n := 1; ; n++ {
		req.ClientSoftwareName = strings.Repeat("a", n)
		if size := len(appendFrame(nil, req, 1, nil)) - 4; size == limit {
			break
		} else if size > limit {
			t.Fatal("could not build a frame of exactly the limit")
		}
	}
	if resp := rc.roundTrip(req, 1).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		t.Fatalf("frame at the limit: error %d", resp.ErrorCode)
	}

	for _, size := range []int32{limit + 1, -1, 1<<31 - 1} {
		t.Run(strconv.Itoa(int(size)), func(t *testing.T) {
			rc := dial(t, s.Addr())
			// Only the size: if the server waited for the body
			// instead of refusing, this would hang, not close.
			rc.write(binary.BigEndian.AppendUint32(nil, uint32(size)))
			rc.expectClosed()
			logs.waitFor("out of bounds", "size="+strconv.Itoa(int(size)), "limit=1024", "remote="+rc.c.LocalAddr().String())
		})
	}
	checkServing(t, s)
}

func TestMalformedRequestsCloseOnlyThatConnection(t *testing.T) {
	s, logs := startEcho(t, Options{})
	bystander := dial(t, s.Addr())
	bystander.roundTrip(describeClusterReq(0), 1)

	garbage := []byte{0xff, 0xff, 0xff}
	if err := describeClusterReq(0).ReadFrom(garbage); err == nil {
		t.Fatal("test garbage decodes; pick other bytes")
	}

	for _, tc := range []struct {
		name   string
		frame  []byte
		reason string
	}{
		{"garbage body", appendRawFrame(nil, 60, 0, 1, true, nil, garbage), "does not decode"},
		{"garbage ApiVersions body", appendRawFrame(nil, 18, 3, 1, true, nil, garbage), "does not decode"},
		{"truncated header tags", appendRawFrame(nil, 60, 0, 1, false, nil, []byte{3, 1}), "truncated header tagged fields"},
		{"unknown key", appendFrame(nil, kmsg.NewPtrProduceRequest(), 1, nil), "not served"},
		{"key kmsg does not know", appendRawFrame(nil, 9999, 0, 1, false, nil, nil), "not served"},
		{"version above range", appendFrame(nil, metadataReq(13), 1, nil), "outside served range"},
		{"negative version", appendRawFrame(nil, 3, -1, 1, false, nil, nil), "outside served range"},
		{"truncated header", []byte{0, 0, 0, 3, 0, 3, 0}, "truncated request header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dial(t, s.Addr())
			rc.write(tc.frame)
			rc.expectClosed()
			logs.waitFor(tc.reason, "remote="+rc.c.LocalAddr().String())
		})
	}

	// The connection that behaved was never disturbed.
	dc := bystander.roundTrip(describeClusterReq(1), 2).(*kmsg.DescribeClusterResponse)
	if dc.ClusterID != testClusterID {
		t.Fatalf("bystander answer: %+v", dc)
	}
}

func TestHandlerFailureClosesConnection(t *testing.T) {
	ln := listen(t)
	echo := echoHandler(ln.Addr())
	s, logs := start(t, Options{
		Listener: ln,
		APIs:     testAPIs,
		Handler: handlerFunc(func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
			if md, ok := req.(*kmsg.MetadataRequest); ok && len(md.Topics) == 1 {
				switch *md.Topics[0].Topic {
				case "panic":
					panic("handler blew up")
				case "error":
					return nil, errors.New("handler refused")
				case "nil":
					return nil, nil
				case "wrong":
					return kmsg.NewPtrDescribeClusterResponse(), nil
				}
			}
			return echo(ctx, req)
		}),
	})
	for _, tc := range []struct{ topic, log string }{
		{"panic", "handler blew up"},
		{"error", "handler refused"},
		{"nil", "no response"},
		{"wrong", "no response or one for another key"},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			rc := dial(t, s.Addr())
			rc.send(metadataReq(12, tc.topic), 1, nil)
			rc.expectClosed()
			logs.waitFor(tc.log)
			checkServing(t, s)
		})
	}
}

func TestPipelinedResponsesInRequestOrder(t *testing.T) {
	ln := listen(t)
	echo := echoHandler(ln.Addr())
	var inFlight, maxInFlight atomic.Int32
	s, _ := start(t, Options{
		Listener: ln,
		APIs:     testAPIs,
		Handler: handlerFunc(func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := maxInFlight.Load()
				if n <= m || maxInFlight.CompareAndSwap(m, n) {
					break
				}
			}
			return echo(ctx, req)
		}),
	})

	rc := dial(t, s.Addr())
	// Everything in one write; the first request is the slow one, so
	// concurrent handling would answer it last.
	reqs := []kmsg.Request{
		metadataReq(12, "slow"),
		metadataReq(12, "b"),
		describeClusterReq(1),
		apiVersionsReq(4),
		metadataReq(4, "c"),
	}
	var batch []byte
	for i, req := range reqs {
		batch = appendFrame(batch, req, int32(100+i), nil)
	}
	rc.write(batch)
	for i, req := range reqs {
		resp := rc.read(req, int32(100+i)) // fails on an out-of-order correlation id
		if md, ok := resp.(*kmsg.MetadataResponse); ok {
			want := *req.(*kmsg.MetadataRequest).Topics[0].Topic
			if len(md.Topics) != 1 || *md.Topics[0].Topic != want {
				t.Fatalf("response %d answers the wrong request: %+v", i, md.Topics)
			}
		}
	}
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("%d requests of one connection were handled at once", m)
	}
}

func TestPeerConnection(t *testing.T) {
	const magic = 0xCAFEBABE
	got := make(chan []byte, 1)
	s, _ := startEcho(t, Options{
		PeerMagic: magic,
		PeerHandler: func(c net.Conn) {
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			buf := make([]byte, len("hello, peer"))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Errorf("peer handler read: %v", err)
			}
			got <- buf
			c.Write([]byte("ack"))
		},
	})

	rc := dial(t, s.Addr())
	// Split the magic across writes and glue the payload to its tail, so
	// the payload arrives with (or right behind) the magic's last bytes.
	stream := binary.BigEndian.AppendUint32(nil, magic)
	rc.write(stream[:2])
	rc.write(append(stream[2:], "hello, peer"...))
	select {
	case b := <-got:
		if string(b) != "hello, peer" {
			t.Fatalf("peer handler got %q", b)
		}
	case <-time.After(ioTimeout):
		t.Fatal("peer handler never got the stream")
	}
	rc.c.SetReadDeadline(time.Now().Add(ioTimeout))
	ack, err := io.ReadAll(rc.c)
	if err != nil || string(ack) != "ack" {
		t.Fatalf("reply from peer handler: %q, %v", ack, err)
	}

	// Kafka traffic on the same listener is unaffected.
	checkServing(t, s)
}

func TestPeerHandlerPanicIsContained(t *testing.T) {
	s, logs := startEcho(t, Options{
		PeerMagic:   0xFFFF0001,
		PeerHandler: func(net.Conn) { panic("peer handler blew up") },
	})
	rc := dial(t, s.Addr())
	rc.write([]byte{0xff, 0xff, 0x00, 0x01})
	rc.expectClosed()
	logs.waitFor("peer handler blew up")
	checkServing(t, s)
}

func TestClientDisconnectCancelsHandler(t *testing.T) {
	started := make(chan struct{}, 1)
	cause := make(chan error, 1)
	s, _ := start(t, Options{
		APIs: testAPIs,
		Handler: handlerFunc(func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
			started <- struct{}{}
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil, ctx.Err()
		}),
	})
	rc := dial(t, s.Addr())
	rc.send(describeClusterReq(0), 1, nil)
	<-started
	rc.c.Close()
	select {
	case err := <-cause:
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("handler context cause %v, want the client's disconnect", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("handler context not cancelled after the client disconnected")
	}
}

func TestClose(t *testing.T) {
	started := make(chan struct{}, 1)
	cause := make(chan error, 1)
	peerDone := make(chan struct{})
	ln := listen(t)
	s := Serve(Options{
		Listener: ln,
		APIs:     testAPIs,
		Handler: handlerFunc(func(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
			started <- struct{}{}
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil, ctx.Err()
		}),
		PeerMagic: 0x80000000,
		PeerHandler: func(c net.Conn) {
			defer close(peerDone)
			io.Copy(io.Discard, c) // returns once Close closes c
		},
		Logger: slog.New(slog.NewTextHandler(&logSink{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	busy := dial(t, s.Addr())
	busy.send(describeClusterReq(0), 1, nil)
	<-started
	idle := dial(t, s.Addr())
	idle.roundTrip(apiVersionsReq(0), 1)
	peer := dial(t, s.Addr())
	peer.write([]byte{0x80, 0, 0, 0})
	silent := dial(t, s.Addr()) // connected, nothing sent yet

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Close did not return")
	}

	// Close waited for the handler, which saw the server's cause.
	select {
	case err := <-cause:
		if !errors.Is(err, errServerClosed) {
			t.Errorf("handler context cause %v, want server closed", err)
		}
	default:
		t.Error("Close returned before the handler did")
	}
	select {
	case <-peerDone:
	default:
		t.Error("Close returned before the peer handler did")
	}
	for _, rc := range []*rawConn{busy, idle, peer, silent} {
		rc.expectClosed()
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), ioTimeout); err == nil {
		c.Close()
		t.Error("listener still accepting after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestServeRejectsBadOptions(t *testing.T) {
	h := handlerFunc(func(context.Context, kmsg.Request) (kmsg.Response, error) { return nil, nil })
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no listener", Options{}},
		{"apis without handler", Options{APIs: testAPIs}},
		{"ApiVersions in APIs", Options{Handler: h, APIs: map[int16]VersionRange{18: {0, 3}}}},
		{"unknown key", Options{Handler: h, APIs: map[int16]VersionRange{9999: {0, 0}}}},
		{"min above max", Options{Handler: h, APIs: map[int16]VersionRange{3: {5, 4}}}},
		{"negative min", Options{Handler: h, APIs: map[int16]VersionRange{3: {-1, 4}}}},
		{"max beyond kmsg", Options{Handler: h, APIs: map[int16]VersionRange{3: {0, 100}}}},
		{"negative max bytes", Options{MaxRequestBytes: -1}},
		{"magic is a frame size", Options{PeerMagic: 1000, PeerHandler: func(net.Conn) {}}},
		{"magic within custom limit", Options{PeerMagic: 0x10000000, MaxRequestBytes: 0x10000000, PeerHandler: func(net.Conn) {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "no listener" {
				ln := listen(t)
				defer ln.Close()
				tc.opts.Listener = ln
			}
			defer func() {
				if recover() == nil {
					t.Fatal("Serve accepted invalid options")
				}
			}()
			Serve(tc.opts).Close()
		})
	}
}
