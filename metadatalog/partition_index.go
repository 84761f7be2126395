package metadatalog

// The partition index answers "which partitions is broker b in the ISR of" and "which partitions
// does broker b lead" without scanning every partition, so that fencing a broker costs what that
// broker holds, not what the cluster holds (DESIGN.md: applying a batch costs O(records × log n)).
// Kafka's controller keeps the same thing as BrokersToIsrs.
//
// It is two sets of (broker, topic id, partition id) keys, one for ISR membership and one for
// leadership (leader -1 is kept too: those are the offline partitions). The sets are derived state:
// Apply keeps them in step with PartitionRecord, PartitionChangeRecord and RemoveTopicRecord, and no
// record or snapshot carries them.
//
// Why not iradix, like the rest of the image: an iradix key costs a node, a leaf and two channels,
// about 380 bytes once built, so the ISR set alone of a replication-factor-3 cluster would cost about
// 1.15 KiB per partition, above the whole image's budget of 1 KiB. The sets here are persistent
// B+trees of fixed 24-byte keys instead, whose leaves stay nearly full: 104–137 bytes per partition
// for both sets at replication factor 3, depending on how topics are shaped (see
// BenchmarkPartitionIndexMemory). They are immutable the same way: a transaction copies the nodes it
// changes the first time it touches them (and changes its own copies in place after that), so an
// image that was committed never changes and readers need no locks.

import (
	"encoding/binary"
	"sort"
)

// memberKey is (broker, topic id, partition id) packed into three words so that comparing words in
// order compares the broker (as a signed number, so -1 sorts first), then the topic id's bytes, then
// the partition id.
type memberKey [3]uint64

const signFlip = 1 << 31

func makeMemberKey(broker int32, topic *[16]byte, p int32) memberKey {
	return memberKey{
		uint64(uint32(broker)^signFlip)<<32 | uint64(binary.BigEndian.Uint32(topic[0:4])),
		binary.BigEndian.Uint64(topic[4:12]),
		uint64(binary.BigEndian.Uint32(topic[12:16]))<<32 | uint64(uint32(p)^signFlip),
	}
}

// firstKeyOf is the smallest key a broker can have.
func firstKeyOf(broker int32) memberKey {
	return memberKey{uint64(uint32(broker)^signFlip) << 32, 0, 0}
}

func (k memberKey) broker() int32 { return int32(uint32(k[0]>>32) ^ signFlip) }

func (k memberKey) partition() int32 { return int32(uint32(k[2]) ^ signFlip) }

func (k memberKey) topic() (t [16]byte) {
	binary.BigEndian.PutUint32(t[0:4], uint32(k[0]))
	binary.BigEndian.PutUint64(t[4:12], k[1])
	binary.BigEndian.PutUint32(t[12:16], uint32(k[2]>>32))
	return t
}

func (k memberKey) less(o memberKey) bool {
	if k[0] != o[0] {
		return k[0] < o[0]
	}
	if k[1] != o[1] {
		return k[1] < o[1]
	}
	return k[2] < o[2]
}

// memberNodeMax is the most keys a leaf holds and the most children an inner node has. 64 keys of 24
// bytes fill one 1536-byte allocation size class exactly.
const (
	memberNodeMax = 64
	// memberNodeMin: a node that shrinks below this is merged into a neighbour when they fit together,
	// so deletions cannot leave the tree mostly empty.
	memberNodeMin = memberNodeMax / 4
)

// memberNode is a node of a memberSet. In a leaf, keys are the members in order. In an inner node,
// keys[i] is a lower bound of every key under children[i] and greater than every key under
// children[i-1]; keys[0] is ignored for routing but kept true, so the node can be merged into its left
// neighbour.
type memberNode struct {
	// owner is the transaction that created this node; only that transaction may change it in place.
	owner    *memberOwner
	keys     []memberKey
	children []*memberNode // nil in a leaf
}

type memberOwner struct{ _ byte } // not zero-sized, so every owner has its own address

func (n *memberNode) leaf() bool { return n.children == nil }

// route is the child of an inner node whose keys may include k.
func (n *memberNode) route(k memberKey) int {
	return sort.Search(len(n.keys)-1, func(i int) bool { return k.less(n.keys[i+1]) })
}

// search is where k is, or would go, among a leaf's keys.
func (n *memberNode) search(k memberKey) (int, bool) {
	i := sort.Search(len(n.keys), func(i int) bool { return !n.keys[i].less(k) })
	return i, i < len(n.keys) && n.keys[i] == k
}

// memberSet is an immutable sorted set of memberKeys. The zero value is empty.
type memberSet struct {
	root *memberNode
	n    int
}

func (s memberSet) len() int { return s.n }

func (s memberSet) has(k memberKey) bool {
	n := s.root
	if n == nil {
		return false
	}
	for !n.leaf() {
		n = n.children[n.route(k)]
	}
	_, found := n.search(k)
	return found
}

// ascend calls fn with every key ≥ from, in order, until fn returns false.
func (s memberSet) ascend(from memberKey, fn func(memberKey) bool) {
	if s.root != nil {
		ascendNode(s.root, from, fn)
	}
}

func ascendNode(n *memberNode, from memberKey, fn func(memberKey) bool) bool {
	if n.leaf() {
		i, _ := n.search(from)
		for _, k := range n.keys[i:] {
			if !fn(k) {
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
	owner *memberOwner
}

func (s memberSet) txn() *memberTxn { return &memberTxn{root: s.root, n: s.n, owner: &memberOwner{}} }

// commit returns the set as changed. The transaction must not be used after.
func (t *memberTxn) commit() memberSet {
	t.owner = nil
	return memberSet{root: t.root, n: t.n}
}

// writable returns n if this transaction owns it, else a copy it owns.
func (t *memberTxn) writable(n *memberNode) *memberNode {
	if n.owner == t.owner {
		return n
	}
	c := &memberNode{owner: t.owner, keys: make([]memberKey, len(n.keys), memberNodeMax)}
	copy(c.keys, n.keys)
	if n.children != nil {
		c.children = make([]*memberNode, len(n.children), memberNodeMax)
		copy(c.children, n.children)
	}
	return c
}

func (t *memberTxn) newNode(inner bool) *memberNode {
	n := &memberNode{owner: t.owner, keys: make([]memberKey, 0, memberNodeMax)}
	if inner {
		n.children = make([]*memberNode, 0, memberNodeMax)
	}
	return n
}

// insert adds k; false if it was there already.
func (t *memberTxn) insert(k memberKey) bool {
	if t.root == nil {
		t.root = t.newNode(false)
	}
	root, right, added := t.insertInto(t.root, k)
	if !added {
		return false
	}
	t.n++
	if right != nil {
		r := t.newNode(true)
		r.keys = append(r.keys, root.keys[0], right.keys[0])
		r.children = append(r.children, root, right)
		root = r
	}
	t.root = root
	return true
}

// insertInto adds k under n and returns n's replacement and, if it split, the new right neighbour.
func (t *memberTxn) insertInto(n *memberNode, k memberKey) (*memberNode, *memberNode, bool) {
	if n.leaf() {
		i, found := n.search(k)
		if found {
			return n, nil, false
		}
		n = t.writable(n)
		right := t.insertAt(n, i, k, nil)
		return n, right, true
	}
	i := n.route(k)
	if c := n.children[i]; c.leaf() && len(c.keys) == memberNodeMax {
		at, found := c.search(k)
		if found {
			return n, nil, false
		}
		if at < len(c.keys) {
			var spilled bool
			if n, spilled = t.spill(n, i); spilled {
				i = n.route(k)
			}
		}
	}
	child, childRight, added := t.insertInto(n.children[i], k)
	if !added {
		return n, nil, false
	}
	n = t.writable(n)
	n.children[i] = child
	if k.less(n.keys[i]) {
		n.keys[i] = k // k went under children[i], so its lower bound must not exceed k
	}
	if childRight == nil {
		return n, nil, true
	}
	return n, t.insertAt(n, i+1, childRight.keys[0], childRight), true
}

// spill makes room in the full leaf i of n, when k is to go inside it, by passing its last key to the
// leaf after it or its first to the leaf before it, whichever has room; it returns n's replacement and
// whether it did. Keys that arrive in no order then fill leaves instead of leaving split halves behind.
// (Appends are left to insertAt, which starts a new leaf for them.)
func (t *memberTxn) spill(n *memberNode, i int) (*memberNode, bool) {
	switch {
	case i+1 < len(n.children) && len(n.children[i+1].keys) < memberNodeMax:
		n = t.writable(n)
		c, r := t.writable(n.children[i]), t.writable(n.children[i+1])
		m := c.keys[len(c.keys)-1]
		c.keys = removeKey(c.keys, len(c.keys)-1)
		r.keys = insertKey(r.keys, 0, m)
		n.children[i], n.children[i+1], n.keys[i+1] = c, r, m
		return n, true
	case i > 0 && len(n.children[i-1].keys) < memberNodeMax:
		n = t.writable(n)
		l, c := t.writable(n.children[i-1]), t.writable(n.children[i])
		l.keys = append(l.keys, c.keys[0])
		c.keys = removeKey(c.keys, 0)
		n.children[i-1], n.children[i], n.keys[i] = l, c, c.keys[0]
		return n, true
	}
	return n, false
}

// insertAt puts key (and, in an inner node, child) at position i of the writable node n. If n is full
// it splits first and returns the new right half. The keys of a new topic arrive in order, one run per
// broker, so where the key continues a run (the key before it has the same broker and topic) the node
// splits just after it, leaving at least a quarter on the left, and appending to a full node starts a
// new one: the run goes on at the end of a node and fills it. Elsewhere the node splits in half, which
// suits keys that arrive in no order.
func (t *memberTxn) insertAt(n *memberNode, i int, k memberKey, child *memberNode) *memberNode {
	if len(n.keys) < memberNodeMax {
		n.keys = insertKey(n.keys, i, k)
		if child != nil {
			n.children = insertChild(n.children, i, child)
		}
		return nil
	}
	right := t.newNode(child != nil)
	if i == len(n.keys) {
		right.keys = append(right.keys, k)
		if child != nil {
			right.children = append(right.children, child)
		}
		return right
	}
	at := len(n.keys) / 2
	if i > 0 && sameRun(n.keys[i-1], k) {
		at = max(i, memberNodeMax/4)
	}
	right.keys = append(right.keys, n.keys[at:]...)
	clear(n.keys[at:])
	n.keys = n.keys[:at]
	if child != nil {
		right.children = append(right.children, n.children[at:]...)
		clear(n.children[at:])
		n.children = n.children[:at]
	}
	into, j := n, i
	if i > at {
		into, j = right, i-at
	}
	into.keys = insertKey(into.keys, j, k)
	if child != nil {
		into.children = insertChild(into.children, j, child)
	}
	return right
}

// sameRun reports whether two keys have the same broker and topic.
func sameRun(a, b memberKey) bool { return a[0] == b[0] && a[1] == b[1] && a[2]>>32 == b[2]>>32 }

func insertKey(s []memberKey, i int, k memberKey) []memberKey {
	s = append(s, memberKey{})
	copy(s[i+1:], s[i:])
	s[i] = k
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
	if root != nil && len(root.keys) == 0 {
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
		n.keys = removeKey(n.keys, i)
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
	case len(child.keys) == 0:
		t.removeChild(n, i)
	case len(child.keys) < memberNodeMin:
		t.mergeSmall(n, i)
	}
	return n, true
}

// mergeSmall folds the small child i of the writable node n into a neighbour, when they fit in one.
func (t *memberTxn) mergeSmall(n *memberNode, i int) {
	left := i - 1
	if left < 0 || len(n.children[left].keys)+len(n.children[i].keys) > memberNodeMax {
		left = i
	}
	if left+1 >= len(n.children) || len(n.children[left].keys)+len(n.children[left+1].keys) > memberNodeMax {
		return
	}
	into, from := t.writable(n.children[left]), n.children[left+1]
	into.keys = append(into.keys, from.keys...)
	if !into.leaf() {
		into.children = append(into.children, from.children...)
	}
	n.children[left] = into
	t.removeChild(n, left+1)
}

// removeChild drops entry i of the writable inner node n. Dropping entry 0 makes the next lower bound
// the first; it is still true for everything now under the node.
func (t *memberTxn) removeChild(n *memberNode, i int) {
	n.keys = removeKey(n.keys, i)
	copy(n.children[i:], n.children[i+1:])
	n.children[len(n.children)-1] = nil
	n.children = n.children[:len(n.children)-1]
}

func removeKey(s []memberKey, i int) []memberKey {
	copy(s[i:], s[i+1:])
	s[len(s)-1] = memberKey{}
	return s[:len(s)-1]
}

// partitionIndex is the image's index of ISR membership and leadership. The zero value is empty.
type partitionIndex struct {
	isr     memberSet // broker ‖ topic ‖ partition, for every broker in the partition's ISR
	leaders memberSet // leader ‖ topic ‖ partition, for every partition, leader -1 included
}

// partitionIndexTxn changes a partitionIndex within one batch.
type partitionIndexTxn struct {
	isr, leaders *memberTxn
}

func (ix partitionIndex) txn() *partitionIndexTxn {
	return &partitionIndexTxn{isr: ix.isr.txn(), leaders: ix.leaders.txn()}
}

func (t *partitionIndexTxn) commit() partitionIndex {
	return partitionIndex{isr: t.isr.commit(), leaders: t.leaders.commit()}
}

// update moves one partition's entries from what old says to what next says; nil means the partition
// does not exist (before its creation, after its topic's removal).
func (t *partitionIndexTxn) update(topic *[16]byte, p int32, old, next *Partition) {
	var oldISR, nextISR []int32
	if old != nil {
		oldISR = old.ISR
	}
	if next != nil {
		nextISR = next.ISR
	}
	for _, b := range oldISR {
		if !containsBroker(nextISR, b) {
			t.isr.delete(makeMemberKey(b, topic, p))
		}
	}
	for _, b := range nextISR {
		if !containsBroker(oldISR, b) {
			t.isr.insert(makeMemberKey(b, topic, p))
		}
	}
	if old != nil && (next == nil || next.Leader != old.Leader) {
		t.leaders.delete(makeMemberKey(old.Leader, topic, p))
	}
	if next != nil && (old == nil || next.Leader != old.Leader) {
		t.leaders.insert(makeMemberKey(next.Leader, topic, p))
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

// reindex records that a partition changed from old to next (nil: absent).
func (d *delta) reindex(topic [16]byte, p int32, old, next *Partition) {
	d.indexTxn().update(&topic, p, old, next)
}

// unindexTopic drops every partition of a topic that is about to be removed.
func (d *delta) unindexTopic(topic [16]byte) {
	ix := d.indexTxn()
	d.partitionTxn().Root().WalkPrefix(topic[:], func(k []byte, part *Partition) bool {
		ix.update(&topic, int32(binary.BigEndian.Uint32(k[16:])), part, nil)
		return false
	})
}

// PartitionsInISR calls fn with every partition whose ISR holds broker, ordered by topic id then
// partition id, until fn returns false. It costs O(log n) plus O(log n) per partition it visits.
func (img *Image) PartitionsInISR(broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	img.walkIndex(img.index.isr, broker, fn)
}

// PartitionsLedBy calls fn with every partition that broker leads, ordered by topic id then partition
// id, until fn returns false. Broker -1 lists the partitions with no leader: the offline ones.
func (img *Image) PartitionsLedBy(broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	img.walkIndex(img.index.leaders, broker, fn)
}

// LeadsAny reports whether broker leads at least one partition, in O(log n).
func (img *Image) LeadsAny(broker int32) bool {
	leads := false
	img.index.leaders.ascend(firstKeyOf(broker), func(k memberKey) bool {
		leads = k.broker() == broker
		return false
	})
	return leads
}

func (img *Image) walkIndex(s memberSet, broker int32, fn func(topic [16]byte, p int32, part *Partition) bool) {
	s.ascend(firstKeyOf(broker), func(k memberKey) bool {
		if k.broker() != broker {
			return false
		}
		topic, p := k.topic(), k.partition()
		part, ok := img.Partition(topic, p)
		if !ok {
			panic("metadatalog: the partition index names a partition the image does not hold")
		}
		return fn(topic, p, part)
	})
}
