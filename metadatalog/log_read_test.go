package metadatalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// startSingleLog formats, opens and starts a one-voter log; with no peers it needs no listener.
func startSingleLog(t *testing.T) *Log {
	t.Helper()
	clusterID := RandomUUID()
	dir := filepath.Join(t.TempDir(), "node-1")
	if err := Format(dir, MetaProperties{ClusterID: clusterID, NodeID: 1}, BootstrapRecords(LatestMetadataVersion), false); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLog(LogConfig{
		NodeID: 1, ClusterID: clusterID, Voters: map[uint64]string{1: "127.0.0.1:1"}, Dir: dir,
		ElectionTimeout: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l
}

// appendCommitted appends data on a single-node log, retrying until the node has elected itself.
func appendCommitted(t *testing.T, l *Log, data []byte) uint64 {
	t.Helper()
	var res *AppendResult
	logWait(t, "the single node to lead", func() bool {
		var err error
		res, err = l.Append(context.Background(), data)
		if errors.Is(err, ErrNotLeader) {
			return false
		}
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		return true
	})
	waitAppended(t, res)
	return res.Offset
}

func TestLogReadCommitted(t *testing.T) {
	l := startSingleLog(t)
	if got := l.FirstOffset(); got != 1 {
		t.Fatalf("FirstOffset = %d, want 1", got)
	}
	var offsets []uint64
	for i := range 5 {
		offsets = append(offsets, appendCommitted(t, l, fmt.Appendf(nil, "batch %d", i)))
	}
	last := offsets[len(offsets)-1]
	// Append's result completes on commit, and the commit offset is published right after.
	commit := l.WaitCommitted(context.Background(), last)
	if commit < last || l.CommittedOffset() != commit {
		t.Fatalf("WaitCommitted = %d, CommittedOffset = %d, want ≥ %d", commit, l.CommittedOffset(), last)
	}

	// Everything from the start: the leader's empty entry (no data) then the five batches, with no gap.
	entries, hw, err := l.ReadCommitted(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hw != commit || uint64(len(entries)) != commit {
		t.Fatalf("ReadCommitted(1) = %d entries, commit %d; want %d entries, commit %d", len(entries), hw, commit, commit)
	}
	for i, e := range entries {
		if e.Offset != uint64(i)+1 {
			t.Fatalf("entry %d has offset %d", i, e.Offset)
		}
	}
	if len(entries[0].Data) != 0 || offsets[0] != 2 {
		t.Fatalf("the first entry should be the leader's empty entry, then the first append at 2 (got %q, first append at %d)", entries[0].Data, offsets[0])
	}
	for i, off := range offsets {
		if e := entries[off-1]; !bytes.Equal(e.Data, fmt.Appendf(nil, "batch %d", i)) || e.Epoch == 0 {
			t.Fatalf("entry at %d = %+v, want batch %d", off, e, i)
		}
	}

	// The limit counts Data: less than one entry still returns one; exactly two entries' Data returns
	// two, one byte less returns one.
	size := len("batch 0")
	for _, c := range []struct{ maxBytes, want int }{{0, 1}, {size, 1}, {2*size - 1, 1}, {2 * size, 2}, {3 * size, 3}, {1 << 20, 4}} {
		entries, _, err = l.ReadCommitted(offsets[1], c.maxBytes)
		if err != nil || len(entries) != c.want || entries[0].Offset != offsets[1] {
			t.Fatalf("ReadCommitted(%d, %d) = %+v, %v; want %d entries", offsets[1], c.maxBytes, entries, err, c.want)
		}
	}
	// The leader's empty entry costs one byte.
	entries, _, err = l.ReadCommitted(1, size)
	if err != nil || len(entries) != 1 {
		t.Fatalf("ReadCommitted(1, %d) = %+v, %v; want the empty entry alone", size, entries, err)
	}
	entries, _, err = l.ReadCommitted(1, size+1)
	if err != nil || len(entries) != 2 {
		t.Fatalf("ReadCommitted(1, %d) = %+v, %v; want the empty entry and one batch", size+1, entries, err)
	}

	// Past the commit: nothing, and the commit offset.
	entries, hw, err = l.ReadCommitted(commit+1, 1<<20)
	if err != nil || len(entries) != 0 || hw != commit {
		t.Fatalf("ReadCommitted past the commit = %+v, %d, %v", entries, hw, err)
	}
	entries, hw, err = l.ReadCommitted(commit+100, 1<<20)
	if err != nil || len(entries) != 0 || hw != commit {
		t.Fatalf("ReadCommitted far past the commit = %+v, %d, %v", entries, hw, err)
	}
	// Below the start.
	if _, _, err := l.ReadCommitted(0, 1<<20); !errors.Is(err, ErrCompacted) {
		t.Fatalf("ReadCommitted(0) error %v, want ErrCompacted", err)
	}
}

func TestLogWaitCommitted(t *testing.T) {
	l := startSingleLog(t)
	first := appendCommitted(t, l, []byte("first"))

	// Already committed: returns at once.
	if got := l.WaitCommitted(context.Background(), first); got < first {
		t.Fatalf("WaitCommitted(%d) = %d", first, got)
	}

	// Not yet committed: the context ends the wait, with the commit offset unchanged.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	got := l.WaitCommitted(ctx, first+1)
	cancel()
	if got != first {
		t.Fatalf("WaitCommitted after timeout = %d, want %d", got, first)
	}

	// A waiter wakes when the next entry commits.
	woke := make(chan uint64, 1)
	go func() { woke <- l.WaitCommitted(context.Background(), first+1) }()
	select {
	case got := <-woke:
		t.Fatalf("WaitCommitted returned %d before anything new committed", got)
	case <-time.After(20 * time.Millisecond):
	}
	second := appendCommitted(t, l, []byte("second"))
	select {
	case got := <-woke:
		if got < second {
			t.Fatalf("woke with commit %d, want ≥ %d", got, second)
		}
	case <-time.After(logTestDeadline):
		t.Fatal("WaitCommitted did not wake on commit")
	}
	entries, _, err := l.ReadCommitted(second, 1<<20)
	if err != nil || len(entries) != 1 || string(entries[0].Data) != "second" {
		t.Fatalf("ReadCommitted(%d) = %+v, %v", second, entries, err)
	}

	// Closing the log releases waiters.
	go func() { woke <- l.WaitCommitted(context.Background(), second+10) }()
	l.Close()
	select {
	case <-woke:
	case <-time.After(logTestDeadline):
		t.Fatal("WaitCommitted did not return when the log closed")
	}
}
