package metadatalog

// A topic's partitions are numbered 0..n-1, so the image keeps them per topic in a persistent trie
// indexed by partition id (32 ways a level), held in the Topic itself, instead of one radix-tree key
// per partition. A radix key costs a node, a leaf and two channels, about 380 bytes once built, and
// each insert allocates several of them; a trie slot costs 8 bytes and a lookup is two or three array
// indexes. The trie is immutable the way the index is (partition_index.go): a transaction copies a node
// the first time it changes it and changes its own copies in place after that, so a committed image
// never changes.

const (
	trieBits  = 5
	trieWidth = 1 << trieBits
)

// txnOwner marks the nodes one transaction created: only that transaction may change them in place.
// It is not zero-sized, so that every owner has its own address.
type txnOwner struct{ _ byte }

// partitionTrie is one topic's partitions by id. The zero value is empty.
type partitionTrie struct {
	root *trieNode
	// height is the number of inner levels above the leaves: the trie holds ids below 32^(height+1).
	height uint8
}

// trieNode is an inner node (kids) or a leaf (parts). Both slices are only as long as their highest
// slot in use, so a topic of one partition costs one node with one slot.
type trieNode struct {
	owner *txnOwner
	kids  []*trieNode
	parts []*Partition
}

// fits reports whether id u is within a trie of the given height.
func fits(u uint32, height uint8) bool {
	return u>>(trieBits*(uint(height)+1)) == 0 // shifts of 32 or more give 0 in Go
}

func (t partitionTrie) get(p int32) *Partition {
	if p < 0 || t.root == nil || !fits(uint32(p), t.height) {
		return nil
	}
	u, n := uint32(p), t.root
	for h := t.height; h > 0; h-- {
		i := int(u>>(trieBits*uint(h))) & (trieWidth - 1)
		if i >= len(n.kids) || n.kids[i] == nil {
			return nil
		}
		n = n.kids[i]
	}
	if i := int(u) & (trieWidth - 1); i < len(n.parts) {
		return n.parts[i]
	}
	return nil
}

// set returns the trie with partition p (≥ 0) set to part, changing in place the nodes owner made and
// copying the others.
func (t partitionTrie) set(p int32, part *Partition, owner *txnOwner) partitionTrie {
	u := uint32(p)
	if t.root == nil {
		t.height = 0
		for !fits(u, t.height) {
			t.height++
		}
	}
	for !fits(u, t.height) {
		t.root = &trieNode{owner: owner, kids: []*trieNode{t.root}}
		t.height++
	}
	t.root = trieSet(t.root, t.height, u, part, owner)
	return t
}

func trieSet(n *trieNode, h uint8, u uint32, part *Partition, owner *txnOwner) *trieNode {
	switch {
	case n == nil:
		n = &trieNode{owner: owner}
	case n.owner != owner:
		c := &trieNode{owner: owner}
		if n.kids != nil {
			c.kids = append(make([]*trieNode, 0, len(n.kids)), n.kids...)
		} else if n.parts != nil {
			c.parts = append(make([]*Partition, 0, len(n.parts)), n.parts...)
		}
		n = c
	}
	i := int(u>>(trieBits*uint(h))) & (trieWidth - 1)
	if h == 0 {
		if i >= len(n.parts) {
			n.parts = growSlots(n.parts, i+1)
		}
		n.parts[i] = part
		return n
	}
	if i >= len(n.kids) {
		n.kids = growSlots(n.kids, i+1)
	}
	n.kids[i] = trieSet(n.kids[i], h-1, u, part, owner)
	return n
}

// growSlots lengthens s to n slots. Partitions usually arrive in order, one at a time, so the room
// doubles (up to a full node) rather than growing by one.
func growSlots[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	c := min(max(n, 2*cap(s)), trieWidth)
	return append(make([]T, 0, c), s...)[:n]
}

// each calls fn with every partition in id order until fn returns false.
func (t partitionTrie) each(fn func(p int32, part *Partition) bool) {
	if t.root != nil {
		trieEach(t.root, t.height, 0, fn)
	}
}

func trieEach(n *trieNode, h uint8, base uint32, fn func(p int32, part *Partition) bool) bool {
	if h == 0 {
		for i, part := range n.parts {
			if part != nil && !fn(int32(base|uint32(i)), part) {
				return false
			}
		}
		return true
	}
	for i, k := range n.kids {
		if k != nil && !trieEach(k, h-1, base|uint32(i)<<(trieBits*uint(h)), fn) {
			return false
		}
	}
	return true
}
