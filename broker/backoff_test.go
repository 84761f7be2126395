package broker

import (
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 2 * time.Second
	for _, r := range []float64{0, 0.5, 0.999999} {
		b := backoff{min: lo, max: hi, rand: func() float64 { return r }}
		ceiling := lo
		for i := 0; i < 40; i++ {
			d := b.next()
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("rand %v attempt %d: %v outside [%v, %v]", r, i, d, ceiling/2, ceiling)
			}
			ceiling = min(2*ceiling, hi)
		}
		// After doubling past the cap, every delay stays within [max/2, max].
		if d := b.next(); d < hi/2 || d > hi {
			t.Fatalf("capped delay %v outside [%v, %v]", d, hi/2, hi)
		}
		b.reset()
		if d := b.next(); d > lo {
			t.Fatalf("after reset: %v, want at most %v", d, lo)
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		b.reset()
		seen[b.next()] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter: 20 first delays were all equal")
	}
}
