package broker

import (
	"context"
	"math/rand/v2"
	"time"
)

// Default retry bounds when a controller cannot be reached or refuses: quick enough to find a new
// active controller within a failover, slow enough not to hammer a quorum that is electing.
const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 2 * time.Second
)

// backoff yields retry delays that double from min to max, each jittered into [d/2, d] so brokers that
// lost the same controller at the same moment do not come back in lockstep.
type backoff struct {
	min, max time.Duration
	attempt  int
	// rand returns a number in [0, 1); nil means math/rand/v2.
	rand func() float64
}

// next returns the delay before the next retry and counts the attempt.
func (b *backoff) next() time.Duration {
	d := b.min
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	r := rand.Float64
	if b.rand != nil {
		r = b.rand
	}
	half := d / 2
	return half + time.Duration(r()*float64(d-half))
}

// reset starts over from min after a success.
func (b *backoff) reset() { b.attempt = 0 }

// sleep waits d, or less if ctx ends first; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
