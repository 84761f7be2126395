//go:build linux

package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The floors the latency target is stated in: what one durable write and one loopback round trip cost
// on this machine, right now.

const (
	syncWrites   = 2000
	syncBlock    = 4 << 10
	rttWarmup    = 1000
	rttRounds    = 10000
	rttMsgBytes  = 64
	preallocSize = 16 << 20
)

// measureFsync appends 4 KiB to a new file in dir and fsyncs it (os.File.Sync), syncWrites times: the
// cost of making one small write durable, the file growing as a log does.
func measureFsync(dir string) ([]time.Duration, error) {
	path := filepath.Join(dir, "fsync-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, syncBlock)
	out := make([]time.Duration, 0, syncWrites)
	for range syncWrites {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// measureFdatasync does what etcd's WAL does: the file is preallocated with fallocate, and each 4 KiB
// write into it is followed by fdatasync.
func measureFdatasync(dir string) ([]time.Duration, error) {
	path := filepath.Join(dir, "fdatasync-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, preallocSize); err != nil {
		return nil, fmt.Errorf("fallocate: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	buf := make([]byte, syncBlock)
	out := make([]time.Duration, 0, syncWrites)
	for range syncWrites {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// measureRTT ping-pongs a small message over one TCP connection on 127.0.0.1 (Nagle off, Go's default),
// echoed by a goroutine of this process: one request and its answer, as a client and a peer exchange.
func measureRTT() ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, rttMsgBytes)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	msg, reply := make([]byte, rttMsgBytes), make([]byte, rttMsgBytes)
	out := make([]time.Duration, 0, rttRounds)
	for i := range rttWarmup + rttRounds {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			return nil, err
		}
		if i >= rttWarmup {
			out = append(out, time.Since(start))
		}
	}
	return out, nil
}
