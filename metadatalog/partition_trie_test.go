package metadatalog

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// trieContents lists a trie through each, checking that ids come in order.
func trieContents(t *testing.T, tr partitionTrie) map[int32]*Partition {
	t.Helper()
	out := map[int32]*Partition{}
	last := int32(-1)
	tr.each(func(p int32, part *Partition) bool {
		if p <= last {
			t.Fatalf("each gave %d after %d", p, last)
		}
		last = p
		out[p] = part
		return true
	})
	return out
}

// TestPartitionTrieAgainstAMap sets random ids, dense and sparse, in transactions of random size, and
// checks every version against a map after each: a later transaction never changes an earlier trie.
func TestPartitionTrieAgainstAMap(t *testing.T) {
	for _, spread := range []int32{40, 3000, 1<<31 - 1} {
		t.Run(fmt.Sprint(spread), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(spread), 9))
			var tr partitionTrie
			model := map[int32]*Partition{}
			type version struct {
				tr    partitionTrie
				model map[int32]*Partition
			}
			var versions []version
			for range 50 {
				owner := &txnOwner{}
				for range rng.IntN(200) {
					p := rng.Int32N(spread)
					part := &Partition{Leader: p}
					tr = tr.set(p, part, owner)
					model[p] = part
				}
				versions = append(versions, version{tr, maps.Clone(model)})
				for _, v := range versions {
					if got := trieContents(t, v.tr); !maps.Equal(got, v.model) {
						t.Fatalf("a trie holds %d partitions, want %d", len(got), len(v.model))
					}
				}
				for range 100 {
					p := rng.Int32N(spread)
					if got := tr.get(p); got != model[p] {
						t.Fatalf("get(%d) = %v, want %v", p, got, model[p])
					}
				}
			}
			for _, p := range []int32{-1, -1 << 31} {
				if tr.get(p) != nil {
					t.Fatalf("get(%d) found a partition", p)
				}
			}
		})
	}
}

// The ids of a topic come in order from 0, so a trie of n partitions is as small as n allows: one leaf
// of one slot for a one-partition topic, full leaves under one inner node for a hundred.
func TestPartitionTrieShape(t *testing.T) {
	for _, tc := range []struct {
		n             int32
		height        uint8
		leaves, slots int
	}{{1, 0, 1, 1}, {32, 0, 1, 32}, {33, 1, 2, 33}, {100, 1, 4, 100}, {1025, 2, 33, 1025}} {
		owner := &txnOwner{}
		var tr partitionTrie
		for p := range tc.n {
			tr = tr.set(p, &Partition{}, owner)
		}
		leaves, slots := 0, 0
		var walk func(n *trieNode, h uint8)
		walk = func(n *trieNode, h uint8) {
			if h == 0 {
				leaves++
				slots += cap(n.parts)
				return
			}
			for _, k := range n.kids {
				walk(k, h-1)
			}
		}
		walk(tr.root, tr.height)
		if tr.height != tc.height || leaves != tc.leaves || slots > tc.slots+trieWidth {
			t.Errorf("%d partitions: height %d, %d leaves, %d slots; want height %d, %d leaves, about %d slots",
				tc.n, tr.height, leaves, slots, tc.height, tc.leaves, tc.slots)
		}
		if got := slices.Sorted(maps.Keys(trieContents(t, tr))); len(got) != int(tc.n) || got[len(got)-1] != tc.n-1 {
			t.Errorf("%d partitions: each gave %d", tc.n, len(got))
		}
	}
}

func TestPartitionTrieEachStops(t *testing.T) {
	owner := &txnOwner{}
	var tr partitionTrie
	for p := range int32(100) {
		tr = tr.set(p, &Partition{}, owner)
	}
	n := 0
	tr.each(func(int32, *Partition) bool { n++; return n < 40 })
	if n != 40 {
		t.Fatalf("each went on for %d calls after being told to stop at 40", n)
	}
}
