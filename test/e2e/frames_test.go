package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestHeader is a v1 (non-flexible) Kafka request header.
func requestHeader(key, version int16, corr int32, clientID string) []byte {
	b := kbin.AppendInt16(nil, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, corr)
	return kbin.AppendNullableString(b, &clientID)
}

// framed prefixes body with its 4-byte big-endian size, as every Kafka request is framed.
func framed(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// TestMalformedFramesKeepServing sends broken input on separate connections to a running controller:
// each such connection is closed by the server, while a well-behaved franz-go client on its own
// connection keeps getting answers and the node keeps running.
func TestMalformedFramesKeepServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	c.formatAndStartAll()
	c.waitLeader(c.ids, nil)
	addr := c.addrs[1]

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	rawGarbage := garbage(4096)
	rawGarbage[0] |= 0x80 // as a frame size: negative
	framedGarbage := garbage(512)
	framedGarbage[0] = 0x7e // as an api key: 0x7eXX, which no one serves
	unknownKey := requestHeader(9999, 0, 1, "e2e")
	unknownKey = append(unknownKey, garbage(32)...)
	badVersion := append(requestHeader((&kmsg.DescribeQuorumRequest{}).Key(), 99, 2, "e2e"), 0, 0, 0, 0)
	badPeerHello := binary.BigEndian.AppendUint32(nil, metadatalog.PeerMagic)
	badPeerHello = binary.BigEndian.AppendUint64(badPeerHello, 4242) // not a voter
	badPeerHello = binary.BigEndian.AppendUint16(badPeerHello, 5)
	badPeerHello = append(badPeerHello, "bogus"...)
	badPeerHello = append(badPeerHello, garbage(64)...)

	inputs := []struct {
		name string
		data []byte
	}{
		{"a frame claiming 200 MiB", append(binary.BigEndian.AppendUint32(nil, 200<<20), garbage(1024)...)},
		{"random garbage", rawGarbage},
		{"a frame of random garbage", framed(framedGarbage)},
		{"a valid header with an unknown api key", framed(unknownKey)},
		{"DescribeQuorum at an unsupported version", framed(badVersion)},
		{"a truncated header", framed([]byte{0, 55})},
		{"a peer stream from an unknown voter", badPeerHello},
	}

	// A well-behaved client on its own long-lived connection, polling the whole time.
	var conns connCounter
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kraft-e2e-steady"), kgo.WithHooks(&conns), kgo.ConnIdleTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	steady := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		r, err := cl.SeedBrokers()[0].Request(ctx, newDescribeQuorumRequest())
		if err != nil {
			return err
		}
		q, err := parseDescribeQuorum(r.(*kmsg.DescribeQuorumResponse))
		if err != nil {
			return err
		}
		if q.Leader != 1 {
			return fmt.Errorf("leader %d, want 1", q.Leader)
		}
		return nil
	}
	if err := steady(); err != nil {
		t.Fatalf("DescribeQuorum before any bad input: %v", err)
	}
	// The steady client polls in the background while every bad input is sent several times over, from
	// several connections at once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var steadyErrs []error
	steadyOK := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			err := steady()
			mu.Lock()
			if err != nil {
				steadyErrs = append(steadyErrs, err)
			} else {
				steadyOK++
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const rounds = 5
	var sent sync.WaitGroup
	for _, in := range inputs {
		for round := range rounds {
			sent.Add(1)
			go func() {
				defer sent.Done()
				closed, detail := sendAndWaitClose(addr, in.data)
				if !closed {
					t.Errorf("%s: the server did not close the connection: %s", in.name, detail)
				} else if round == 0 {
					t.Logf("%s: closed (%s)", in.name, detail)
				}
			}()
		}
	}
	sent.Wait()
	c.requireRunning(1)
	// Let the poller run a little past the bad input, so that it provably answered after all of it.
	mu.Lock()
	atEnd := steadyOK
	mu.Unlock()
	c.eventually(pollTimeout, "the steady client's DescribeQuorum to keep answering", c.ids, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return steadyOK >= atEnd+3, fmt.Sprintf("%d answers, %d failures", steadyOK, len(steadyErrs))
	})
	close(stop)
	wg.Wait()
	mu.Lock()
	for _, err := range steadyErrs {
		t.Errorf("background DescribeQuorum failed: %v", err)
	}
	t.Logf("background DescribeQuorum: %d answers, %d failures", steadyOK, len(steadyErrs))
	mu.Unlock()
	c.requireRunning(1)
	if err := steady(); err != nil {
		t.Errorf("DescribeQuorum at the end: %v", err)
	}
	if connects, disconnects := conns.counts(); connects != 1 || disconnects != 0 {
		t.Errorf("the steady client connected %d times and was disconnected %d times; want one connection that stays open", connects, disconnects)
	}
	// A fresh connection works too.
	if _, err := describeQuorum(addr); err != nil {
		t.Errorf("DescribeQuorum on a new connection at the end: %v", err)
	}
	c.stop(1)
}

// sendAndWaitClose writes data on a new connection and reads until the server closes it. It reports
// whether it did before the deadline, and how.
func sendAndWaitClose(addr string, data []byte) (bool, string) {
	conn, err := net.DialTimeout("tcp", addr, requestTimeout)
	if err != nil {
		return false, "dial: " + err.Error()
	}
	defer conn.Close()
	// The server may close while we are still writing; that is a close too.
	if _, err := conn.Write(data); err != nil {
		return true, "write failed: " + err.Error()
	}
	conn.SetReadDeadline(time.Now().Add(exitTimeout))
	buf := make([]byte, 4096)
	got := 0
	for {
		n, err := conn.Read(buf)
		got += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return false, fmt.Sprintf("still open after %v (%d bytes received)", exitTimeout, got)
			}
			return true, fmt.Sprintf("%v after %d bytes", err, got)
		}
	}
}

// connCounter counts a kgo client's connections, to tell that its one connection stayed open.
type connCounter struct {
	mu                    sync.Mutex
	connects, disconnects int
}

func (h *connCounter) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.connects++
	}
}

func (h *connCounter) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.disconnects++
}

func (h *connCounter) counts() (connects, disconnects int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connects, h.disconnects
}
