//go:build linux

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// setupConns is how many connections register, unfence and unregister the brokers, outside the window.
const setupConns = 16

// heartbeats is one level of the heartbeat load.
type heartbeats struct {
	brokers, conns int
	beats          int
	elapsed        time.Duration
	lat            latencies
	// written is how many entries the leader committed during the window: steady heartbeats should
	// write none.
	written int64
	cpu     cpuWindow
}

func (h heartbeats) perSecond() float64 { return float64(h.beats) / h.elapsed.Seconds() }

// measureHeartbeats registers brokers broker ids from firstID at the leader at addr and unfences them,
// then sends BrokerHeartbeat from conns connections, each back to back for d, each connection taking
// its own share of the ids round robin. Every heartbeat carries the broker's epoch and an offset past
// its registration, so it only refreshes a session and writes nothing. The registrations are removed
// afterwards.
func measureHeartbeats(c *cluster, addr string, firstID int32, brokers, conns int, d time.Duration) (heartbeats, error) {
	if conns > brokers {
		return heartbeats{}, fmt.Errorf("%d connections for %d brokers: each connection needs brokers of its own", conns, brokers)
	}
	ids := make([]int32, brokers)
	for i := range ids {
		ids[i] = firstID + int32(i)
	}
	res, err := driveHeartbeats(c, addr, ids, conns, d)
	if uerr := unregisterAll(addr, ids, max(conns, setupConns)); uerr != nil && err == nil {
		err = fmt.Errorf("removing the heartbeat load's brokers: %w", uerr)
	}
	return res, err
}

func driveHeartbeats(c *cluster, addr string, ids []int32, conns int, d time.Duration) (heartbeats, error) {
	res := heartbeats{brokers: len(ids), conns: conns}
	var mu sync.Mutex
	epochs := map[int32]int64{}
	err := forEachID(addr, ids, max(conns, setupConns), func(ctx context.Context, cl *kgo.Client, id int32) error {
		epoch, err := registerBroker(ctx, cl, c.clusterID, id)
		mu.Lock()
		epochs[id] = epoch
		mu.Unlock()
		return err
	})
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	q, err := c.describeQuorum(ctx, addr)
	cancel()
	if err != nil {
		return res, err
	}
	// Every epoch is a committed offset, so the high watermark now is past all of them: reporting it
	// unfences each broker with its first heartbeat (one write each), and the rest write nothing.
	caughtUp := q.hwm
	err = forEachID(addr, ids, max(conns, setupConns), func(ctx context.Context, cl *kgo.Client, id int32) error {
		return heartbeat(ctx, cl, id, epochs[id], caughtUp)
	})
	if err != nil {
		return res, fmt.Errorf("unfencing: %w", err)
	}

	clients := make([]*kgo.Client, conns)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i := range clients {
		if clients[i], err = quorumClient(addr); err != nil {
			return res, err
		}
		// Connect and negotiate versions before the clock starts.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = heartbeat(ctx, clients[i], ids[i], epochs[ids[i]], caughtUp)
		cancel()
		if err != nil {
			return res, err
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	before, err := c.describeQuorum(ctx, addr)
	cancel()
	if err != nil {
		return res, err
	}
	var (
		wg   sync.WaitGroup
		lats = make([][]time.Duration, conns)
		errs = make([]error, conns)
	)
	stopCPU := c.startCPU()
	t0 := time.Now()
	deadline := t0.Add(d)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var share []int32
			for j := i; j < len(ids); j += conns {
				share = append(share, ids[j])
			}
			own := make([]time.Duration, 0, 1<<14)
			for j := 0; time.Now().Before(deadline); j++ {
				id := share[j%len(share)]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				err := heartbeat(ctx, cl, id, epochs[id], caughtUp)
				own = append(own, time.Since(start))
				cancel()
				if err != nil {
					errs[i] = err
					return
				}
			}
			lats[i] = own
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(t0)
	res.cpu = stopCPU()
	for i := range conns {
		if errs[i] != nil {
			return res, errs[i]
		}
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	res.beats, res.lat = len(all), summarize(all)
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	after, err := c.describeQuorum(ctx, addr)
	cancel()
	if err != nil {
		return res, err
	}
	res.written = after.hwm - before.hwm
	return res, nil
}
