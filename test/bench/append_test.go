//go:build linux

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sequentialAppends sends n UpdateFeatures, one after the other, from one client on one connection to
// the leader at addr, after warmup unmeasured ones; each timing runs from sending the request to reading
// its answer, which the controller sends once the record has committed.
func sequentialAppends(addr string, warmup, n int) ([]time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := newUpdateFeatures()
	out := make([]time.Duration, 0, n)
	for i := range warmup + n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		err := updateFeatures(ctx, cl, req)
		d := time.Since(start)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("append %d: %w", i, err)
		}
		if i >= warmup {
			out = append(out, d)
		}
	}
	return out, nil
}

// loadResult is one level of concurrency.
type loadResult struct {
	clients  int
	appends  int
	elapsed  time.Duration
	lat      []time.Duration
	firstHWM int64 // the leader's high watermark before and after the measured window
	lastHWM  int64
}

func (r loadResult) perSecond() float64 { return float64(r.appends) / r.elapsed.Seconds() }

// concurrentAppends runs n clients, each with its own connection to the leader at addr, each sending
// UpdateFeatures back to back for d. Every client has connected and had one answer before the clock
// starts, so connection setup is not measured.
func concurrentAppends(addr string, n int, d time.Duration) (loadResult, error) {
	clients := make([]*kgo.Client, n)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	var (
		ready sync.WaitGroup
		done  sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := make(chan struct{})
	var deadline time.Time
	lats := make([][]time.Duration, n)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for i := range n {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return loadResult{}, err
		}
		clients[i] = cl
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req := newUpdateFeatures()
			ctx := context.Background()
			warm, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := updateFeatures(warm, cl, req)
			cancel()
			ready.Done()
			if err != nil {
				fail(fmt.Errorf("client %d warm-up: %w", i, err))
				return
			}
			<-start
			own := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				err := updateFeatures(rctx, cl, req)
				own = append(own, time.Since(t0))
				cancel()
				if err != nil {
					fail(fmt.Errorf("client %d: %w", i, err))
					return
				}
			}
			lats[i] = own
		}()
	}
	ready.Wait()
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	if first != nil {
		return loadResult{}, first
	}
	res := loadResult{clients: n, elapsed: elapsed}
	for _, l := range lats {
		res.appends += len(l)
		res.lat = append(res.lat, l...)
	}
	return res, nil
}
