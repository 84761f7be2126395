//go:build linux

package bench

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// pollInterval is what the image poller asks nanosleep for between looks. With the thread's timer
// slack cut to 1 µs it wakes a little later than asked; the report states the mean interval achieved.
// Shorter intervals cost the machine more wake-ups, which showed in the answers' latency.
const pollInterval = 50 * time.Microsecond

// prSetTimerSlack is prctl's PR_SET_TIMERSLACK (linux/prctl.h).
const prSetTimerSlack = 29

// poller looks at the brokers' images until they hold an offset. Go's own timers cannot wait less
// than about a millisecond when the process is otherwise idle (the runtime's network poller sleeps in
// whole milliseconds), which is coarser than what is measured; a loop that yields with
// runtime.Gosched keeps the runnable queue full, so idle processors never block in the network poller
// and answers to this process are only picked up by the runtime's 10 ms background poll. So the poller
// locks its goroutine to an OS thread and sleeps in nanosleep(2), a blocking system call that leaves
// the processor to everything else.
type poller struct {
	f      *fleet
	ts     syscall.Timespec
	sleeps int
	waited time.Duration
}

// newPoller locks the calling goroutine to its thread, for good: call it on a goroutine that ends when
// the measurement does, so the thread, with its altered timer slack, exits with it.
func newPoller(f *fleet) *poller {
	runtime.LockOSThread()
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, 1000, 0) // best effort: only finer sleeps
	return &poller{f: f, ts: syscall.NsecToTimespec(int64(pollInterval))}
}

// wait returns when every broker has applied offset, or an error after 30 s.
func (p *poller) wait(offset uint64, since time.Time) (time.Time, error) {
	for {
		if p.f.minOffset() >= offset {
			now := time.Now()
			p.waited += now.Sub(since)
			return now, nil
		}
		if time.Since(since) > 30*time.Second {
			return time.Time{}, fmt.Errorf("offset %d not in every broker's image after 30 s (lowest applied %d)", offset, p.f.minOffset())
		}
		syscall.Nanosleep(&p.ts, nil)
		p.sleeps++
	}
}

// meanLook is the mean time between two looks at the images.
func (p *poller) meanLook() time.Duration {
	if p.sleeps == 0 {
		return 0
	}
	return p.waited / time.Duration(p.sleeps)
}

// visibility is how long a committed write takes to reach every broker's image.
type visibility struct {
	brokers int
	// fromSend runs from sending the UpdateFeatures to the moment every broker's image holds its
	// offset; fromAnswer from the client reading the answer (sent once the leader has committed) to
	// that same moment, and is negative when the brokers were quicker than the client. answer is the
	// request's own round trip, to compare with the plain single-append row.
	fromSend, fromAnswer, answer latencies
	// beside counts appends that another write committed next to, whose offset was therefore
	// uncertain: those wait for the high watermark read after the answer, which overstates them.
	beside int
	cpu    cpuWindow
	// look is the mean time between two looks at the brokers' images: the resolution of the figures.
	look time.Duration
	// started is how long the brokers took from Start to all RUNNING and caught up with a log of
	// startOffset entries (the new ones replay it from the start).
	started     time.Duration
	startOffset int64
}

// measureVisibility sends n sequential UpdateFeatures to the leader at addr, after warmup unmeasured
// ones, pausing pace between them, and times each until every broker of f has applied it.
//
// The offset of each write is the high watermark read before it plus one, which holds when nothing
// else writes; the high watermark read after each write checks that, and a write that had company is
// timed to the later high watermark instead and counted in beside. The poller runs only while a write
// is in flight.
func measureVisibility(c *cluster, addr string, f *fleet, warmup, n int, pace time.Duration) (visibility, error) {
	type result struct {
		v   visibility
		err error
	}
	done := make(chan result)
	// Its own goroutine, since the poller keeps the thread it locks.
	go func() {
		v, err := timeVisibility(c, addr, newPoller(f), warmup, n, pace)
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}

func timeVisibility(c *cluster, addr string, p *poller, warmup, n int, pace time.Duration) (visibility, error) {
	res := visibility{brokers: len(p.f.brokers)}
	cl, err := c.client(addr)
	if err != nil {
		return res, err
	}
	hwm := func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q, err := c.describeQuorum(ctx, addr)
		return q.hwm, err
	}
	pre, err := hwm()
	if err != nil {
		return res, err
	}
	var fromSend, fromAnswer, answer []time.Duration
	var stopCPU func() cpuWindow
	req := newUpdateFeatures()
	for i := range warmup + n {
		if i == warmup {
			stopCPU = c.startCPU()
		}
		time.Sleep(pace)
		type answered struct {
			at  time.Time
			err error
		}
		done := make(chan answered, 1)
		sent := time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := updateFeatures(ctx, cl, req)
			done <- answered{time.Now(), err}
		}()
		visible, err := p.wait(uint64(pre)+1, sent)
		if err != nil {
			return res, err
		}
		a := <-done
		if a.err != nil {
			return res, fmt.Errorf("append %d: %w", i, a.err)
		}
		post, err := hwm()
		if err != nil {
			return res, err
		}
		if post != pre+1 {
			if i >= warmup {
				res.beside++
			}
			if visible, err = p.wait(uint64(post), sent); err != nil {
				return res, err
			}
		}
		pre = post
		if i >= warmup {
			fromSend = append(fromSend, visible.Sub(sent))
			fromAnswer = append(fromAnswer, visible.Sub(a.at))
			answer = append(answer, a.at.Sub(sent))
		}
	}
	res.cpu = stopCPU()
	res.look = p.meanLook()
	res.fromSend, res.fromAnswer, res.answer = summarize(fromSend), summarize(fromAnswer), summarize(answer)
	return res, nil
}
