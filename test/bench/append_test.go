//go:build linux

package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// sequentialWrites sends n writes, one after the other, from one client on one connection to the
// leader at addr, after warmup unmeasured ones; each timing runs from sending the request to reading
// its answer, which the controller sends once the write has committed.
func sequentialWrites(addr string, warmup, n int, op writeOp) ([]time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := make([]time.Duration, 0, n)
	for i := range warmup + n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		err := op(ctx, cl, 0, i)
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

// loadResult is one level of concurrency. appends counts the answered requests, whatever they write.
type loadResult struct {
	clients  int
	appends  int
	elapsed  time.Duration
	lat      []time.Duration
	firstHWM int64 // the leader's high watermark before and after the measured window
	lastHWM  int64
	cpu      cpuWindow // over the measured window only
}

func (r loadResult) perSecond() float64 { return float64(r.appends) / r.elapsed.Seconds() }

// writeOp is one write of a concurrent load: client number i sends its seq-th request on cl.
type writeOp func(ctx context.Context, cl *kgo.Client, i, seq int) error

// appendOp is the UpdateFeatures of newUpdateFeatures.
func appendOp(ctx context.Context, cl *kgo.Client, _, _ int) error {
	return updateFeatures(ctx, cl, newUpdateFeatures())
}

// concurrentWrites runs n clients, each with its own connection to the leader at addr, each sending op
// back to back for d. Every client has connected and had one answer before the clock starts, so
// connection setup is not measured. startCPU opens the CPU window at the same moment, and it closes
// when the last client has had its last answer.
func concurrentWrites(addr string, n int, d time.Duration, op writeOp, startCPU func() func() cpuWindow) (loadResult, error) {
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
			ctx := context.Background()
			warm, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := op(warm, cl, i, 0)
			cancel()
			ready.Done()
			if err != nil {
				fail(fmt.Errorf("client %d warm-up: %w", i, err))
				return
			}
			<-start
			own := make([]time.Duration, 0, 4096)
			for seq := 1; time.Now().Before(deadline); seq++ {
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t0 := time.Now()
				err := op(rctx, cl, i, seq)
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
	stopCPU := startCPU()
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	cpu := stopCPU()
	if first != nil {
		return loadResult{}, first
	}
	res := loadResult{clients: n, elapsed: elapsed, cpu: cpu}
	for _, l := range lats {
		res.appends += len(l)
		res.lat = append(res.lat, l...)
	}
	return res, nil
}
