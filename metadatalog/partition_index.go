package metadatalog

// The partition index answers "which partitions is broker b in the ISR of" and "which partitions
// does broker b lead" without scanning every partition, so that fencing a broker costs what that
// broker holds, not what the cluster holds (DESIGN.md: applying a batch costs O(records × log n)).
// Kafka's controller keeps the same thing as BrokersToIsrs.
//
// It is two sorted maps, one for ISR membership and one for leadership (leader -1 is kept too: those
// are the offline partitions). A key is (broker, topic, chunk), a chunk being 64 consecutive partition
// ids, and its value has one bit per partition of the chunk. A topic's partitions sit together on its
// replicas, so one entry stands for many partitions: 10,000 topics of 100 partitions with replication
// factor 3 on three brokers take 60,000 ISR entries instead of 3,000,000 keys. The maps are derived
// state: Apply keeps them in step with PartitionRecord, PartitionChangeRecord and RemoveTopicRecord,
// and no record or snapshot carries them.
//
// The topic in a key is its creation sequence number (Topic.seq), not its id: ids are random, so new
// topics would land all over each broker's range of keys, and a transaction copies every node it
// changes (on 30 brokers, that made creating topics cost four times as much); numbered in the order
// the image took them, a new topic's entries go at the end of each broker's range, into the same few
// nodes. The entry carries the topic id besides, for the reader. So a broker's partitions come topic
// by topic in that order, which is the log's, or a snapshot's for the topics a snapshot brought.
//
// Apply does not touch the maps record by record. It gathers a batch's changes per entry (bits to set,
// bits to clear) and writes each changed entry once when the batch commits: creating a topic of 100
// partitions on three brokers then writes a dozen entries, not 400 keys.
//
// The maps are persistent B+trees of fixed 40-byte entries. Why not iradix, like the rest of the
// image: an iradix key costs a node, a leaf and two channels, about 380 bytes once built, and each
// insert allocates several of them. The B+trees are immutable the way iradix is: a transaction copies
// the nodes it changes the first time it touches them (and changes its own copies in place after
// that), so an image that was committed never changes and readers need no locks.

import "math/bits"

// memberKey is (broker, topic sequence number, chunk) packed into two words so that comparing words
// in order compares the broker (as a signed number, so -1 sorts first), then the sequence number, then
// the chunk.
type memberKey [2]uint64

const signFlip = 1 << 31

// chunkShift: a chunk is 1<<chunkShift partitions, one bit each of a uint64.
const chunkShift = 6

func makeMemberKey(broker int32, seq uint64, chunk int32) memberKey {
	return memberKey{
		uint64(uint32(broker)^signFlip)<<32 | seq>>32,
		seq<<32 | uint64(uint32(chunk)^signFlip),
	}
}

// chunkOf is the chunk of partition p and its bit in the chunk.
func chunkOf(p int32) (int32, uint64) { return p >> chunkShift, 1 << (p & (1<<chunkShift - 1)) }

// firstKeyOf is the smallest key a broker can have.
func firstKeyOf(broker int32) memberKey {
	return memberKey{uint64(uint32(broker)^signFlip) << 32, 0}
}

func (k memberKey) broker() int32 { return int32(uint32(k[0]>>32) ^ signFlip) }

func (k memberKey) seq() uint64 { return k[0]<<32 | k[1]>>32 }

func (k memberKey) chunk() int32 { return int32(uint32(k[1]) ^ signFlip) }

func (k memberKey) less(o memberKey) bool {
	if k[0] != o[0] {
		return k[0] < o[0]
	}
	return k[1] < o[1]
}

func (k memberKey) compare(o memberKey) int {
	switch {
	case k.less(o):
		return -1
	case o.less(k):
		return 1
	}
	return 0
}

// memberEntry is one chunk of a broker's partitions in one topic. bits is never 0 in a leaf: an entry
// whose last bit clears is removed. In an inner node only key is used.
type memberEntry struct {
	key   memberKey
	topic [16]byte // the id of the topic key names
	bits  uint64
}

// memberNodeMax is the most entries a leaf holds and the most children an inner node has. 32 entries
// of 40 bytes fill one 1280-byte allocation size class exactly; a small node is cheap to copy, which
// a transaction does to every node it changes first.
const (
	memberNodeMax = 32
	// memberNodeMin: a node that shrinks below this is merged into a neighbour when they fit together,
	// so deletions cannot leave the tree mostly empty.
	memberNodeMin = memberNodeMax / 4
)

// memberNode is a node of a memberSet. In a leaf, ents are the entries in key order. In an inner node,
// ents[i].key is a lower bound of every key under children[i] and greater than every key under
// children[i-1]; ents[0].key is ignored for routing but kept true, so the node can be merged into its
// left neighbour.
type memberNode struct {
	// owner is the transaction that created this node; only that transaction may change it in place.
	owner    *txnOwner
	ents     []memberEntry
	children []*memberNode // nil in a leaf
}

func (n *memberNode) leaf() bool { return n.children == nil }

// route is the child of an inner node whose keys may include k: the last i ≥ 0 with ents[i].key ≤ k
// (ents[0] counts as below everything).
func (n *memberNode) route(k memberKey) int {
	lo, hi := 1, len(n.ents) // the answer + 1 is in [lo, hi]: the first i ≥ 1 with k < ents[i].key
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.less(n.ents[m].key) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// search is where k is, or would go, among a leaf's entries.
func (n *memberNode) search(k memberKey) (int, bool) {
	lo, hi := 0, len(n.ents)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if n.ents[m].key.less(k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(n.ents) && n.ents[lo].key == k
}

// memberSet is an immutable sorted map of memberKey to non-zero bits. The zero value is empty.
type memberSet struct {
	root *memberNode
	n    int // entries
}

func (s memberSet) len() int { return s.n }

func (s memberSet) get(k memberKey) uint64 {
	n := s.root
	if n == nil {
		return 0
	}
	for !n.leaf() {
		n = n.children[n.route(k)]
	}
	if i, found := n.search(k); found {
		return n.ents[i].bits
	}
	return 0
}

// ascend calls fn with every entry whose key is ≥ from, in order, until fn returns false.
func (s memberSet) ascend(from memberKey, fn func(memberEntry) bool) {
	if s.root != nil {
		ascendNode(s.root, from, fn)
	}
}

func ascendNode(n *memberNode, from memberKey, fn func(memberEntry) bool) bool {
	if n.leaf() {
		i, _ := n.search(from)
		for _, e := range n.ents[i:] {
			if !fn(e) {
				return false
			}
		}
		return true
	}
	for _, c := range n.children[n.route(from):] {
		if !ascendNode(c, from, fn) {
			return false
		}
	}
	return true
}

// memberTxn changes a memberSet: it copies a node the first time it changes it, and changes its own
// copies in place after that. The set it started from never changes.
type memberTxn struct {
	root  *memberNode
	n     int
	owner *txnOwner
}

func (s memberSet) txn() *memberTxn { return &memberTxn{root: s.root, n: s.n, owner: &txnOwner{}} }

// commit returns the set as changed. The transaction must not be used after.
func (t *memberTxn) commit() memberSet {
	t.owner = nil
	return memberSet{root: t.root, n: t.n}
}

func (t *memberTxn) get(k memberKey) uint64 { return memberSet{root: t.root}.get(k) }

// writable returns n if this transaction owns it, else a copy it owns.
func (t *memberTxn) writable(n *memberNode) *memberNode {
	if n.owner == t.owner {
		return n
	}
	c := &memberNode{owner: t.owner, ents: make([]memberEntry, len(n.ents), memberNodeMax)}
	copy(c.ents, n.ents)
	if n.children != nil {
		c.children = make([]*memberNode, len(n.children), memberNodeMax)
		copy(c.children, n.children)
	}
	return c
}

func (t *memberTxn) newNode(inner bool) *memberNode {
	n := &memberNode{owner: t.owner, ents: make([]memberEntry, 0, memberNodeMax)}
	if inner {
		n.children = make([]*memberNode, 0, memberNodeMax)
	}
	return n
}

// put sets e's bits; 0 removes e's key.
func (t *memberTxn) put(e memberEntry) {
	if e.bits == 0 {
		t.delete(e.key)
		return
	}
	t.insert(e, false)
}

// or adds e's bits (not 0) to those of its key.
func (t *memberTxn) or(e memberEntry) { t.insert(e, true) }

// insert puts e, or with or adds its bits to those k has.
func (t *memberTxn) insert(e memberEntry, or bool) {
	if t.root == nil {
		t.root = t.newNode(false)
	}
	root, right, added := t.insertInto(t.root, e, or)
	if added {
		t.n++
	}
	if right != nil {
		r := t.newNode(true)
		r.ents = append(r.ents, memberEntry{key: root.ents[0].key}, memberEntry{key: right.ents[0].key})
		r.children = append(r.children, root, right)
		root = r
	}
	t.root = root
}

// insertInto puts e under n (with or, adds its bits to the entry's) and returns n's replacement (n
// itself when nothing under it changed) and, if it split, the new right neighbour; added says whether
// e's key is new.
func (t *memberTxn) insertInto(n *memberNode, e memberEntry, or bool) (*memberNode, *memberNode, bool) {
	if n.leaf() {
		i, found := n.search(e.key)
		if found {
			if or {
				e.bits |= n.ents[i].bits
			}
			if n.ents[i].bits != e.bits {
				n = t.writable(n)
				n.ents[i].bits = e.bits
			}
			return n, nil, false
		}
		n = t.writable(n)
		right := t.insertAt(n, i, e, nil)
		return n, right, true
	}
	i := n.route(e.key)
	if c := n.children[i]; c.leaf() && len(c.ents) == memberNodeMax {
		at, found := c.search(e.key)
		if !found && at < len(c.ents) && !(at > 0 && sameBroker(c.ents[at-1].key, e.key)) {
			var spilled bool
			if n, spilled = t.spill(n, i); spilled {
				i = n.route(e.key)
			}
		}
	}
	child, right, added := t.insertInto(n.children[i], e, or)
	if child == n.children[i] && right == nil && !e.key.less(n.ents[i].key) {
		return n, nil, added
	}
	n = t.writable(n)
	n.children[i] = child
	if e.key.less(n.ents[i].key) {
		n.ents[i].key = e.key // e went under children[i], so its lower bound must not exceed e
	}
	if right == nil {
		return n, nil, added
	}
	return n, t.insertAt(n, i+1, memberEntry{key: right.ents[0].key}, right), added
}

// spill makes room in the full leaf i of n, when an entry is to go inside it, by passing its last
// entry to the leaf after it or its first to the leaf before it, whichever has room; it returns n's
// replacement and whether it did. Entries that arrive in no order then fill leaves instead of leaving
// split halves behind. (Appends, and entries that go on from one of the same broker, are left to
// insertAt, which splits so that the run goes on at the end of a node.)
func (t *memberTxn) spill(n *memberNode, i int) (*memberNode, bool) {
	switch {
	case i+1 < len(n.children) && len(n.children[i+1].ents) < memberNodeMax:
		n = t.writable(n)
		c, r := t.writable(n.children[i]), t.writable(n.children[i+1])
		m := c.ents[len(c.ents)-1]
		c.ents = removeEntry(c.ents, len(c.ents)-1)
		r.ents = insertEntry(r.ents, 0, m)
		n.children[i], n.children[i+1], n.ents[i+1].key = c, r, m.key
		return n, true
	case i > 0 && len(n.children[i-1].ents) < memberNodeMax:
		n = t.writable(n)
		l, c := t.writable(n.children[i-1]), t.writable(n.children[i])
		l.ents = append(l.ents, c.ents[0])
		c.ents = removeEntry(c.ents, 0)
		n.children[i-1], n.children[i], n.ents[i].key = l, c, c.ents[0].key
		return n, true
	}
	return n, false
}

// insertAt puts e (and, in an inner node, child) at position i of the writable node n. If n is full
// it splits first and returns the new right half. New topics' entries arrive in order at the end of
// each broker's range, so where the entry goes on from one of the same broker the node splits just
// after it, leaving at least a quarter on the left, and appending to a full node starts a new one: the
// run goes on at the end of a node and fills it. Elsewhere the node splits in half, which suits entries
// that arrive in no order.
func (t *memberTxn) insertAt(n *memberNode, i int, e memberEntry, child *memberNode) *memberNode {
	if len(n.ents) < memberNodeMax {
		n.ents = insertEntry(n.ents, i, e)
		if child != nil {
			n.children = insertChild(n.children, i, child)
		}
		return nil
	}
	right := t.newNode(child != nil)
	if i == len(n.ents) {
		right.ents = append(right.ents, e)
		if child != nil {
			right.children = append(right.children, child)
		}
		return right
	}
	at := len(n.ents) / 2
	if i > 0 && sameBroker(n.ents[i-1].key, e.key) {
		at = max(i, memberNodeMax/4)
	}
	right.ents = append(right.ents, n.ents[at:]...)
	clear(n.ents[at:])
	n.ents = n.ents[:at]
	if child != nil {
		right.children = append(right.children, n.children[at:]...)
		clear(n.children[at:])
		n.children = n.children[:at]
	}
	into, j := n, i
	if i > at {
		into, j = right, i-at
	}
	into.ents = insertEntry(into.ents, j, e)
	if child != nil {
		into.children = insertChild(into.children, j, child)
	}
	return right
}

// sameBroker reports whether two keys have the same broker.
func sameBroker(a, b memberKey) bool { return a[0]>>32 == b[0]>>32 }

func insertEntry(s []memberEntry, i int, e memberEntry) []memberEntry {
	s = append(s, memberEntry{})
	copy(s[i+1:], s[i:])
	s[i] = e
	return s
}

func insertChild(s []*memberNode, i int, c *memberNode) []*memberNode {
	s = append(s, nil)
	copy(s[i+1:], s[i:])
	s[i] = c
	return s
}

// delete removes k; false if it was not there.
func (t *memberTxn) delete(k memberKey) bool {
	if t.root == nil {
		return false
	}
	root, removed := t.deleteFrom(t.root, k)
	if !removed {
		return false
	}
	t.n--
	for root != nil && !root.leaf() && len(root.children) == 1 {
		root = root.children[0]
	}
	if root != nil && len(root.ents) == 0 {
		root = nil
	}
	t.root = root
	return true
}

// deleteFrom removes k under n and returns n's replacement, which may be left empty or small for the
// caller to drop or merge.
func (t *memberTxn) deleteFrom(n *memberNode, k memberKey) (*memberNode, bool) {
	if n.leaf() {
		i, found := n.search(k)
		if !found {
			return n, false
		}
		n = t.writable(n)
		n.ents = removeEntry(n.ents, i)
		return n, true
	}
	i := n.route(k)
	child, removed := t.deleteFrom(n.children[i], k)
	if !removed {
		return n, false
	}
	n = t.writable(n)
	n.children[i] = child
	switch {
	case len(child.ents) == 0:
		t.removeChild(n, i)
	case len(child.ents) < memberNodeMin:
		t.mergeSmall(n, i)
	}
	return n, true
}

// mergeSmall folds the small child i of the writable node n into a neighbour, when they fit in one.
func (t *memberTxn) mergeSmall(n *memberNode, i int) {
	left := i - 1
	if left < 0 || len(n.children[left].ents)+len(n.children[i].ents) > memberNodeMax {
		left = i
	}
	if left+1 >= len(n.children) || len(n.children[left].ents)+len(n.children[left+1].ents) > memberNodeMax {
		return
	}
	into, from := t.writable(n.children[left]), n.children[left+1]
	into.ents = append(into.ents, from.ents...)
	if !into.leaf() {
		into.children = append(into.children, from.children...)
	}
	n.children[left] = into
	t.removeChild(n, left+1)
}

// removeChild drops entry i of the writable inner node n. Dropping entry 0 makes the next lower bound
// the first; it is still true for everything now under the node.
func (t *memberTxn) removeChild(n *memberNode, i int) {
	n.ents = removeEntry(n.ents, i)
	copy(n.children[i:], n.children[i+1:])
	n.children[len(n.children)-1] = nil
	n.children = n.children[:len(n.children)-1]
}

func removeEntry(s []memberEntry, i int) []memberEntry {
	copy(s[i:], s[i+1:])
	s[len(s)-1] = memberEntry{}
	return s[:len(s)-1]
}

// partitionIndex is the image's index of ISR membership and leadership. The zero value is empty.
type partitionIndex struct {
	isr     memberSet // broker ‖ topic seq ‖ chunk → the chunk's partitions whose ISR holds broker
	leaders memberSet // leader ‖ topic seq ‖ chunk → the chunk's partitions it leads, leader -1 included
}

// partitionIndexTxn gathers one batch's changes to a partitionIndex.
type partitionIndexTxn struct {
	base         partitionIndex
	isr, leaders bitChanges
}

func (ix partitionIndex) txn() *partitionIndexTxn { return &partitionIndexTxn{base: ix} }

// commit writes the batch's changes and returns the index after them.
func (t *partitionIndexTxn) commit() partitionIndex {
	return partitionIndex{isr: t.isr.applyTo(t.base.isr), leaders: t.leaders.applyTo(t.base.leaders)}
}

// bitChanges is one batch's changes to one memberSet, per entry: the bits it set and the bits it
// cleared last.
type bitChanges struct {
	at      map[memberKey]int32
	changes []bitChange
	// recent remembers where recent keys are in changes (index + 1; 0 is empty), saving a map lookup
	// per partition while one topic's partitions go by; it is allocated with the first change.
	recent *[recentSlots]recentKey
}

// recentSlots is the size of bitChanges.recent: enough for the entries one topic's partitions touch
// on a few dozen brokers.
const recentSlots = 256

type recentKey struct {
	key memberKey
	at  int32
}

type bitChange struct {
	key        memberKey
	topic      [16]byte
	set, clear uint64
}

// change sets (on) or clears bit of the entry of (broker, topic, chunk), over whatever the batch did
// to it before.
func (c *bitChanges) change(broker int32, topic *Topic, chunk int32, bit uint64, on bool) {
	k := makeMemberKey(broker, topic.seq, chunk)
	if c.recent == nil {
		c.recent = new([recentSlots]recentKey)
	}
	slot := &c.recent[(k[0]^k[1])*0x9e3779b97f4a7c15>>56]
	var i int32
	if slot.at > 0 && slot.key == k {
		i = slot.at - 1
	} else {
		var ok bool
		if i, ok = c.at[k]; !ok {
			if c.at == nil {
				c.at = map[memberKey]int32{}
			}
			i = int32(len(c.changes))
			c.changes = append(c.changes, bitChange{key: k, topic: topic.ID})
			c.at[k] = i
		}
		slot.key, slot.at = k, i+1
	}
	ch := &c.changes[i]
	if on {
		ch.set, ch.clear = ch.set|bit, ch.clear&^bit
	} else {
		ch.set, ch.clear = ch.set&^bit, ch.clear|bit
	}
}

// applyTo writes the changes into s, in the order the batch first made them, and returns the set after
// them. That order is already right for the tree: a batch takes its topics in creation order, so each
// broker's new entries come in key order, at the end of its range.
func (c *bitChanges) applyTo(s memberSet) memberSet {
	if len(c.changes) == 0 {
		return s
	}
	t := s.txn()
	for _, ch := range c.changes {
		if ch.clear == 0 {
			t.or(memberEntry{key: ch.key, topic: ch.topic, bits: ch.set}) // adding only: one descent
			continue
		}
		old := t.get(ch.key)
		if next := old&^ch.clear | ch.set; next != old {
			t.put(memberEntry{key: ch.key, topic: ch.topic, bits: next})
		}
	}
	return t.commit()
}

// update moves one partition's entries from what old says to what next says; nil means the partition
// does not exist (before its creation, after its topic's removal).
func (t *partitionIndexTxn) update(topic *Topic, p int32, old, next *Partition) {
	chunk, bit := chunkOf(p)
	if old == nil && next != nil { // a new partition: the common case, and nothing to compare
		for _, b := range next.ISR {
			t.isr.change(b, topic, chunk, bit, true)
		}
		t.leaders.change(next.Leader, topic, chunk, bit, true)
		return
	}
	var oldISR, nextISR []int32
	if old != nil {
		oldISR = old.ISR
	}
	if next != nil {
		nextISR = next.ISR
	}
	for _, b := range oldISR {
		if !containsBroker(nextISR, b) {
			t.isr.change(b, topic, chunk, bit, false)
		}
	}
	for _, b := range nextISR {
		if !containsBroker(oldISR, b) {
			t.isr.change(b, topic, chunk, bit, true)
		}
	}
	if old != nil && (next == nil || next.Leader != old.Leader) {
		t.leaders.change(old.Leader, topic, chunk, bit, false)
	}
	if next != nil && (old == nil || next.Leader != old.Leader) {
		t.leaders.change(next.Leader, topic, chunk, bit, true)
	}
}

func containsBroker(s []int32, b int32) bool {
	for _, x := range s {
		if x == b {
			return true
		}
	}
	return false
}

// indexTxn opens the batch's index transaction on first use.
func (d *delta) indexTxn() *partitionIndexTxn {
	if d.index == nil {
		d.index = d.base.index.txn()
	}
	return d.index
}

// reindex records that a partition of topic changed from old to next (nil: absent).
func (d *delta) reindex(topic *Topic, p int32, old, next *Partition) {
	d.indexTxn().update(topic, p, old, next)
}

// unindexTopic drops every partition of a topic that is being removed.
func (d *delta) unindexTopic(topic *Topic) {
	ix := d.indexTxn()
	topic.parts.each(func(p int32, part *Partition) bool {
		ix.update(topic, p, part, nil)
		return true
	})
}

// PartitionsInISR calls fn with every partition whose ISR holds broker, until fn returns false. The
// partitions come topic by topic, each topic's in ascending order; the order of the topics depends on
// the image's history. It costs O(log n) plus O(1) per partition it visits.
func (img *Image) PartitionsInISR(broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	img.walkIndex(img.index.isr, broker, fn)
}

// PartitionsLedBy calls fn with every partition that broker leads, until fn returns false, in the
// order PartitionsInISR has. Broker -1 lists the partitions with no leader: the offline ones.
func (img *Image) PartitionsLedBy(broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	img.walkIndex(img.index.leaders, broker, fn)
}

// LeadsAny reports whether broker leads at least one partition, in O(log n).
func (img *Image) LeadsAny(broker int32) bool {
	leads := false
	img.index.leaders.ascend(firstKeyOf(broker), func(e memberEntry) bool {
		leads = e.key.broker() == broker
		return false
	})
	return leads
}

func (img *Image) walkIndex(s memberSet, broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	s.ascend(firstKeyOf(broker), func(e memberEntry) bool {
		if e.key.broker() != broker {
			return false
		}
		id := e.topic
		t, ok := img.topicsByID.Get(id[:])
		if !ok {
			panic("metadatalog: the partition index names a topic the image does not hold")
		}
		first := e.key.chunk() << chunkShift
		for b := e.bits; b != 0; b &= b - 1 {
			p := first + int32(bits.TrailingZeros64(b))
			part := t.parts.get(p)
			if part == nil {
				panic("metadatalog: the partition index names a partition the image does not hold")
			}
			if !fn(id, p, part) {
				return false
			}
		}
		return true
	})
}
