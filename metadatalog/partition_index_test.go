package metadatalog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
)

func pixKey(broker int32, topic byte, chunk int32) memberKey {
	return makeMemberKey(broker, uint64(topic), chunk)
}

func TestMemberKeyOrderAndRoundTrip(t *testing.T) {
	const hi = 1<<64 - 1
	keys := []memberKey{
		makeMemberKey(-1<<31, 0, 0), makeMemberKey(-1, 0, 0), makeMemberKey(-1, hi, 5),
		makeMemberKey(0, 0, 0), makeMemberKey(0, 0, 1), makeMemberKey(0, 7, 0), makeMemberKey(0, 1<<32, 0), makeMemberKey(0, hi, 0),
		makeMemberKey(1, 0, 0), makeMemberKey(1, 7, 2), makeMemberKey(1, 7, 1000), makeMemberKey(1, 8, 0), makeMemberKey(1<<30, 0, 0),
	}
	for i := 1; i < len(keys); i++ {
		if !keys[i-1].less(keys[i]) || keys[i].less(keys[i-1]) {
			t.Errorf("key %d does not sort before key %d", i-1, i)
		}
	}
	for _, b := range []int32{-1, 0, 3, 1 << 30, -1 << 31} {
		for _, seq := range []uint64{0, 1, 7, 1<<32 + 5, hi} {
			for _, c := range []int32{0, 1, 77, 1<<31 - 1} {
				k := makeMemberKey(b, seq, c)
				if k.broker() != b || k.seq() != seq || k.chunk() != c {
					t.Errorf("(%d, %d, %d) came back as (%d, %d, %d)", b, seq, c, k.broker(), k.seq(), k.chunk())
				}
				if k.less(firstKeyOf(b)) || (b < 1<<30 && !k.less(firstKeyOf(b+1))) {
					t.Errorf("key of broker %d is outside [firstKeyOf(%d), firstKeyOf(%d))", b, b, b+1)
				}
			}
		}
	}
	for _, p := range []int32{0, 1, 63, 64, 100, 1<<31 - 1} {
		if c, bit := chunkOf(p); c != p/64 || bit != 1<<(p%64) {
			t.Errorf("chunkOf(%d) = %d, %x", p, c, bit)
		}
	}
}

// pixCheck verifies a set's structure: sorted keys, true lower bounds, no empty nodes or entries, and
// its count; it returns the entries in order.
func pixCheck(t *testing.T, s memberSet) []memberEntry {
	t.Helper()
	var all []memberEntry
	var walk func(n *memberNode, depth int) int
	leafDepth := -1
	walk = func(n *memberNode, depth int) int {
		if len(n.ents) == 0 || len(n.ents) > memberNodeMax {
			t.Fatalf("node with %d entries", len(n.ents))
		}
		if n.leaf() {
			if leafDepth >= 0 && depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
			leafDepth = depth
			for _, e := range n.ents {
				if e.bits == 0 {
					t.Fatalf("entry %v without bits", e.key)
				}
			}
			all = append(all, n.ents...)
			return len(n.ents)
		}
		if len(n.children) != len(n.ents) {
			t.Fatalf("inner node with %d entries and %d children", len(n.ents), len(n.children))
		}
		total := 0
		for i, c := range n.children {
			start := len(all)
			total += walk(c, depth+1)
			if all[start].key.less(n.ents[i].key) {
				t.Fatalf("lower bound %v above the first key %v under it", n.ents[i].key, all[start].key)
			}
			if i > 0 && start > 0 && !all[start-1].key.less(n.ents[i].key) {
				t.Fatalf("lower bound %v not above the last key %v of the previous child", n.ents[i].key, all[start-1].key)
			}
		}
		return total
	}
	if s.root != nil {
		if n := walk(s.root, 0); n != s.n {
			t.Fatalf("set says %d entries, holds %d", s.n, n)
		}
	} else if s.n != 0 {
		t.Fatalf("empty set says %d entries", s.n)
	}
	if !slices.IsSortedFunc(all, func(a, b memberEntry) int { return a.key.compare(b.key) }) {
		t.Fatal("keys out of order")
	}
	return all
}

func pixSorted(m map[memberKey]uint64) []memberEntry {
	out := make([]memberEntry, 0, len(m))
	for k, b := range m {
		if b != 0 {
			out = append(out, memberEntry{key: k, bits: b})
		}
	}
	slices.SortFunc(out, func(a, b memberEntry) int { return a.key.compare(b.key) })
	return out
}

// TestMemberSetAgainstAMap runs random puts and deletes in transactions of random size and checks
// the set against a map after each, and that every earlier set is unchanged.
func TestMemberSetAgainstAMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			var set memberSet
			model := map[memberKey]uint64{}
			type snap struct {
				set  memberSet
				ents []memberEntry
			}
			var snaps []snap
			for round := 0; round < 60; round++ {
				txn := set.txn()
				ops := rng.IntN(3000)
				// Phases: grow, then shrink hard, so that merges and root collapses happen.
				deleting := round%10 >= 6
				for range ops {
					k := pixKey(rng.Int32N(8)-1, byte(rng.IntN(4)), rng.Int32N(300))
					if deleting || rng.IntN(3) == 0 {
						if got, want := txn.delete(k), model[k] != 0; got != want {
							t.Fatalf("delete(%v) = %v, want %v", k, got, want)
						}
						delete(model, k)
					} else {
						bits := rng.Uint64() >> rng.UintN(64) // now and then 0, which deletes
						txn.put(memberEntry{key: k, bits: bits})
						model[k] = bits
					}
					if got := txn.get(k); got != model[k] {
						t.Fatalf("get(%v) = %x after a change, want %x", k, got, model[k])
					}
				}
				set = txn.commit()
				got := pixCheck(t, set)
				if want := pixSorted(model); !slices.Equal(got, want) {
					t.Fatalf("round %d: set holds %d entries, model %d", round, len(got), len(want))
				}
				for k, b := range model {
					if set.get(k) != b {
						t.Fatalf("get(%v) = %x, want %x", k, set.get(k), b)
					}
				}
				for range 20 {
					from := pixKey(rng.Int32N(9)-1, byte(rng.IntN(5)), rng.Int32N(301))
					var gotFrom []memberEntry
					set.ascend(from, func(e memberEntry) bool { gotFrom = append(gotFrom, e); return len(gotFrom) < 100 })
					i, _ := slices.BinarySearchFunc(got, from, func(a memberEntry, b memberKey) int { return a.key.compare(b) })
					if want := got[i:min(i+100, len(got))]; !slices.Equal(gotFrom, want) {
						t.Fatalf("ascend(%v) gave %d entries, want %d", from, len(gotFrom), len(want))
					}
				}
				snaps = append(snaps, snap{set, got})
				for i, s := range snaps {
					if got := pixCheck(t, s.set); !slices.Equal(got, s.ents) {
						t.Fatalf("the set committed in round %d changed", i)
					}
				}
			}
		})
	}
}

func TestMemberSetAscend(t *testing.T) {
	txn := memberSet{}.txn()
	for b := int32(-1); b < 5; b++ {
		for p := int32(0); p < 500; p++ {
			txn.put(memberEntry{key: pixKey(b, 1, p), bits: uint64(p) + 1})
		}
	}
	s := txn.commit()
	for b := int32(-1); b < 5; b++ {
		var got []int32
		s.ascend(firstKeyOf(b), func(e memberEntry) bool {
			if e.key.broker() != b {
				return false
			}
			if e.bits != uint64(e.key.chunk())+1 {
				t.Fatalf("entry %v has bits %x", e.key, e.bits)
			}
			got = append(got, e.key.chunk())
			return true
		})
		if len(got) != 500 || !slices.IsSorted(got) || got[0] != 0 {
			t.Fatalf("broker %d: %d keys from ascend", b, len(got))
		}
	}
	n := 0
	s.ascend(pixKey(2, 1, 250), func(memberEntry) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("ascend did not stop when told: %d", n)
	}
	if (memberSet{}).get(pixKey(0, 0, 0)) != 0 {
		t.Fatal("the empty set has a key")
	}
}

// pixBruteForce lists, from the partitions themselves, what the index must hold.
func pixBruteForce(img *Image) (isr, leaders map[memberKey]memberEntry) {
	isr, leaders = map[memberKey]memberEntry{}, map[memberKey]memberEntry{}
	add := func(m map[memberKey]memberEntry, b int32, t *Topic, p int32) {
		chunk, bit := chunkOf(p)
		k := makeMemberKey(b, t.seq, chunk)
		e := m[k]
		e.key, e.topic, e.bits = k, t.ID, e.bits|bit
		m[k] = e
	}
	n := 0
	for _, t := range img.Topics() {
		t.parts.each(func(id int32, p *Partition) bool {
			n++
			for _, b := range p.ISR {
				add(isr, b, t, id)
			}
			add(leaders, p.Leader, t, id)
			return true
		})
	}
	if n != img.PartitionCount() {
		panic(fmt.Sprintf("the topics hold %d partitions, PartitionCount says %d", n, img.PartitionCount()))
	}
	return isr, leaders
}

func pixCheckImage(t *testing.T, img *Image) {
	t.Helper()
	isr, leaders := pixBruteForce(img)
	sorted := func(m map[memberKey]memberEntry) []memberEntry {
		out := slices.Collect(maps.Values(m))
		slices.SortFunc(out, func(a, b memberEntry) int { return a.key.compare(b.key) })
		return out
	}
	if got := pixCheck(t, img.index.isr); !slices.Equal(got, sorted(isr)) {
		t.Fatalf("ISR index holds %d entries, the partitions say %d", len(got), len(isr))
	}
	if got := pixCheck(t, img.index.leaders); !slices.Equal(got, sorted(leaders)) {
		t.Fatalf("leader index holds %d entries, the partitions say %d", len(got), len(leaders))
	}
}

type pixRef struct {
	topic byte
	p     int32
}

func pixCollect(walk func(int32, func([16]byte, int32, *Partition) bool), broker int32) []pixRef {
	var out []pixRef
	walk(broker, func(topic [16]byte, p int32, _ *Partition) bool {
		out = append(out, pixRef{topic[0], p})
		return true
	})
	return out
}

func TestImageIndexFollowsPartitionRecords(t *testing.T) {
	foo, bar := imgTopicID(1), imgTopicID(2)
	img := mustApply(t, EmptyImage(), 1, 1,
		recTopic("foo", foo[:]), recTopic("bar", bar[:]),
		recPartition(foo[:], 0, []int32{1, 2, 3}, 1),
		recPartition(foo[:], 1, []int32{2, 3, 1}, 2),
		recPartition(bar[:], 0, []int32{3, 1, 2}, 3),
	)
	pixCheckImage(t, img)
	if got := pixCollect(img.PartitionsLedBy, 1); !slices.Equal(got, []pixRef{{1, 0}}) {
		t.Fatalf("broker 1 leads %v", got)
	}
	if got := pixCollect(img.PartitionsInISR, 1); !slices.Equal(got, []pixRef{{1, 0}, {1, 1}, {2, 0}}) {
		t.Fatalf("broker 1 is in the ISR of %v", got)
	}
	if !img.LeadsAny(1) || img.LeadsAny(4) || img.LeadsAny(-1) {
		t.Fatal("LeadsAny is wrong")
	}

	// Leader 1 goes, then the ISR shrinks to one, then a leaderless partition.
	leader := func(l int32) *int32 { return &l }
	img2 := mustApply(t, img, 2, 1,
		recPartitionChange(&metadatapb.PartitionChangeRecord{TopicId: foo[:], PartitionId: 0, Leader: leader(2), Isr: &metadatapb.Int32List{Values: []int32{2, 3}}}),
		recPartitionChange(&metadatapb.PartitionChangeRecord{TopicId: bar[:], PartitionId: 0, Isr: &metadatapb.Int32List{Values: []int32{3}}}),
		recPartitionChange(&metadatapb.PartitionChangeRecord{TopicId: foo[:], PartitionId: 1, Leader: leader(-1)}),
	)
	pixCheckImage(t, img2)
	if img2.LeadsAny(1) {
		t.Fatal("broker 1 still leads")
	}
	if got := pixCollect(img2.PartitionsLedBy, -1); !slices.Equal(got, []pixRef{{1, 1}}) {
		t.Fatalf("offline partitions %v", got)
	}
	if got := pixCollect(img2.PartitionsInISR, 1); !slices.Equal(got, []pixRef{{1, 1}}) {
		t.Fatalf("broker 1 is in the ISR of %v", got)
	}
	// The image before is untouched.
	pixCheckImage(t, img)
	if !img.LeadsAny(1) {
		t.Fatal("the old image changed")
	}

	// A PartitionRecord that replaces a partition, then a topic removal.
	img3 := mustApply(t, img2, 3, 1, recPartition(foo[:], 0, []int32{4, 5}, 4), recRemoveTopic(bar[:]))
	pixCheckImage(t, img3)
	if got := pixCollect(img3.PartitionsInISR, 3); !slices.Equal(got, []pixRef{{1, 1}}) {
		t.Fatalf("broker 3 is in the ISR of %v", got)
	}
	if !img3.LeadsAny(4) || img3.LeadsAny(3) || img3.LeadsAny(2) {
		t.Fatal("LeadsAny after the replacement and removal is wrong")
	}
	img4 := mustApply(t, img3, 4, 1, recRemoveTopic(foo[:]))
	pixCheckImage(t, img4)
	if img4.index.isr.len() != 0 || img4.index.leaders.len() != 0 {
		t.Fatal("the index is not empty once every topic is gone")
	}
}

// TestImageIndexRandomHistory applies random partition histories and checks the index against the
// partitions after every batch.
func TestImageIndexRandomHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	img := EmptyImage()
	offset := uint64(0)
	live := map[byte]int32{} // topic → partitions
	for round := 0; round < 200; round++ {
		var recs []*metadatapb.Record
		for range rng.IntN(40) + 1 {
			n := byte(rng.IntN(12) + 1)
			id := imgTopicID(n)
			parts, exists := live[n]
			switch op := rng.IntN(10); {
			case !exists:
				recs = append(recs, recTopic(fmt.Sprintf("t%d", n), id[:]))
				parts = int32(rng.IntN(50) + 1)
				for p := range parts {
					r := rng.Int32N(6)
					recs = append(recs, recPartition(id[:], p, []int32{r, (r + 1) % 6, (r + 2) % 6}, r))
				}
				live[n] = parts
			case op == 0:
				recs = append(recs, recRemoveTopic(id[:]))
				delete(live, n)
			default:
				c := &metadatapb.PartitionChangeRecord{TopicId: id[:], PartitionId: rng.Int32N(parts)}
				if rng.IntN(2) == 0 {
					l := rng.Int32N(7) - 1
					c.Leader = &l
				}
				if rng.IntN(2) == 0 {
					var isr []int32
					for b := range int32(6) {
						if rng.IntN(2) == 0 {
							isr = append(isr, b)
						}
					}
					c.Isr = &metadatapb.Int32List{Values: isr}
				}
				recs = append(recs, recPartitionChange(c))
			}
		}
		offset++
		img = mustApply(t, img, offset, 1, recs...)
		pixCheckImage(t, img)
		for b := int32(-1); b < 7; b++ {
			pixGrouped(t, pixCollect(img.PartitionsInISR, b))
			pixGrouped(t, pixCollect(img.PartitionsLedBy, b))
		}
	}
}

// pixBuild creates partitions partitions with replication factor 3 over brokers brokers, perTopic to a
// topic, in batches of 1000, as topic creation writes them. Topic ids ascend.
func pixBuild(tb testing.TB, partitions, perTopic int, brokers int32) *Image {
	return pixBuildIDs(tb, partitions, perTopic, brokers, func(n uint32) [16]byte {
		var id [16]byte
		binary.BigEndian.PutUint32(id[:], n)
		id[15] = 1
		return id
	})
}

// pixRandomID is a random topic id, as topic creation draws them.
func pixRandomID(rng *rand.Rand) func(uint32) [16]byte {
	return func(uint32) [16]byte {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		return id
	}
}

func pixBuildIDs(tb testing.TB, partitions, perTopic int, brokers int32, topicID func(n uint32) [16]byte) *Image {
	img := EmptyImage()
	offset := uint64(0)
	var id []byte
	for start := 0; start < partitions; start += 1000 {
		recs := make([]*metadatapb.Record, 0, 1000+1000/perTopic+1)
		for i := start; i < min(start+1000, partitions); i++ {
			if i%perTopic == 0 {
				next := topicID(uint32(i / perTopic))
				id = next[:]
				recs = append(recs, recTopic(fmt.Sprintf("topic-%06d", i/perTopic), id))
			}
			r := int32(i) % brokers
			recs = append(recs, recPartition(id, int32(i%perTopic), []int32{r, (r + 1) % brokers, (r + 2) % brokers}, r))
		}
		offset++
		next, err := img.Apply(offset, 1, imgBatch(recs...))
		if err != nil {
			tb.Fatal(err)
		}
		img = next
	}
	return img
}

func pixHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// pixHeapBytes is what a set's nodes occupy on the heap: per node its struct (56 bytes, a 64-byte size
// class), its entries (memberNodeMax × 40 bytes, a size class of its own) and, inner nodes, its
// children (memberNodeMax × 8 bytes, likewise).
func pixHeapBytes(s memberSet) int {
	total := 0
	var walk func(n *memberNode)
	walk = func(n *memberNode) {
		total += 64 + memberNodeMax*40
		if !n.leaf() {
			total += memberNodeMax * 8
			for _, c := range n.children {
				walk(c)
			}
		}
	}
	if s.root != nil {
		walk(s.root)
	}
	return total
}

// pixBits counts the partitions a set names.
func pixBits(s memberSet) int {
	n := 0
	s.ascend(memberKey{}, func(e memberEntry) bool { n += bits.OnesCount64(e.bits); return true })
	return n
}

// BenchmarkPartitionIndexMemory reports the heap the index takes per partition at 100,000 partitions
// with replication factor 3 (so 300,000 ISR memberships and 100,000 leaderships) over 5 brokers, built
// the way Apply builds it, for topics of several sizes; and the whole image's heap per partition beside
// it. DESIGN.md's budget for the whole controller image is 1 KiB per partition. The index's share is
// counted from its nodes, and checked against the heap.
func BenchmarkPartitionIndexMemory(b *testing.B) {
	const partitions = 100_000
	for _, shape := range []struct {
		perTopic  int
		randomIDs bool
	}{{1, true}, {100, false}, {100, true}, {10_000, true}} {
		ids := "ascending"
		if shape.randomIDs {
			ids = "random"
		}
		b.Run(fmt.Sprintf("partitions-per-topic=%d/ids=%s", shape.perTopic, ids), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				before := pixHeap()
				var img *Image
				if shape.randomIDs {
					img = pixBuildIDs(b, partitions, shape.perTopic, 5, pixRandomID(rand.New(rand.NewPCG(1, 2))))
				} else {
					img = pixBuild(b, partitions, shape.perTopic, 5)
				}
				whole := pixHeap()
				if pixBits(img.index.isr) != 3*partitions || pixBits(img.index.leaders) != partitions {
					b.Fatalf("index of %d ISR and %d leader bits", pixBits(img.index.isr), pixBits(img.index.leaders))
				}
				index := pixHeapBytes(img.index.isr) + pixHeapBytes(img.index.leaders)
				b.ReportMetric(float64(index)/partitions, "index-bytes/partition")
				b.ReportMetric(float64(whole-before)/partitions, "image-bytes/partition")
				// Cross-check the count against the heap: drop the index and measure what it freed.
				img.index = partitionIndex{}
				without := pixHeap()
				b.ReportMetric(float64(int64(whole)-int64(without))/partitions, "index-heap-bytes/partition")
				runtime.KeepAlive(img)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPartitionIndexUpdate is the index's share of applying one PartitionChangeRecord that moves
// a leader and shrinks the ISR, in a 100,000-partition image: gathering the change and writing it.
func BenchmarkPartitionIndexUpdate(b *testing.B) {
	img := pixBuild(b, 100_000, 100, 5)
	type ref struct {
		topic [16]byte
		p     int32
	}
	var refs []ref
	img.PartitionsLedBy(0, func(topic [16]byte, p int32, _ *Partition) bool {
		refs = append(refs, ref{topic, p})
		return len(refs) < 10_000
	})
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r := refs[i%len(refs)]
		i++
		topic, _ := img.TopicByID(r.topic)
		old, _ := img.Partition(r.topic, r.p)
		next := *old
		next.Leader, next.ISR = old.ISR[1], old.ISR[1:]
		txn := img.index.txn()
		txn.update(topic, r.p, old, &next)
		txn.commit()
	}
}

// TestPartitionIndexFillsNodes guards the index's memory: topics created the way topic creation writes
// them leave the nodes well filled, not half empty.
func TestPartitionIndexFillsNodes(t *testing.T) {
	for _, random := range []bool{false, true} {
		var img *Image
		if random {
			img = pixBuildIDs(t, 100_000, 10, 5, pixRandomID(rand.New(rand.NewPCG(1, 2))))
		} else {
			img = pixBuild(t, 100_000, 10, 5)
		}
		for name, s := range map[string]memberSet{"ISR": img.index.isr, "leader": img.index.leaders} {
			leaves, ents := 0, 0
			var walk func(n *memberNode)
			walk = func(n *memberNode) {
				if n.leaf() {
					leaves++
					ents += len(n.ents)
					return
				}
				for _, c := range n.children {
					walk(c)
				}
			}
			walk(s.root)
			if fill := float64(ents) / float64(leaves); fill < 0.7*memberNodeMax {
				t.Errorf("%s index (random ids %v): %.1f entries a leaf, want at least %.1f", name, random, fill, 0.7*memberNodeMax)
			}
		}
	}
}

// TestImageIndexConcurrentReaders: readers walk an image's index while batches are applied on top of
// it; under -race this shows that applying never writes a node an older image holds.
func TestImageIndexConcurrentReaders(t *testing.T) {
	base := pixBuild(t, 5_000, 50, 5)
	done := make(chan struct{})
	readers := make(chan int, 2)
	for range 2 {
		go func() {
			n := 0
			for {
				select {
				case <-done:
					readers <- n
					return
				default:
				}
				for b := int32(-1); b < 5; b++ {
					base.PartitionsInISR(b, func([16]byte, int32, *Partition) bool { n++; return true })
					base.PartitionsLedBy(b, func([16]byte, int32, *Partition) bool { n++; return true })
				}
			}
		}()
	}
	img := base
	rng := rand.New(rand.NewPCG(3, 3))
	for offset := uint64(1000); offset < 1100; offset++ {
		var recs []*metadatapb.Record
		for range 200 {
			var id [16]byte
			binary.BigEndian.PutUint32(id[:], uint32(rng.IntN(100)))
			id[15] = 1
			l := rng.Int32N(6) - 1
			recs = append(recs, recPartitionChange(&metadatapb.PartitionChangeRecord{TopicId: id[:], PartitionId: rng.Int32N(50), Leader: &l,
				Isr: &metadatapb.Int32List{Values: []int32{rng.Int32N(5)}}}))
		}
		img = mustApply(t, img, offset, 1, recs...)
	}
	close(done)
	<-readers
	<-readers
	pixCheckImage(t, img)
	pixCheckImage(t, base)
}

// pixGrouped checks that partitions come topic by topic, each topic's in ascending order.
func pixGrouped(t *testing.T, refs []pixRef) {
	t.Helper()
	seen := map[byte]bool{}
	for i, r := range refs {
		if i > 0 && refs[i-1].topic == r.topic {
			if refs[i-1].p >= r.p {
				t.Fatalf("partition %d of topic %d after partition %d", r.p, r.topic, refs[i-1].p)
			}
			continue
		}
		if seen[r.topic] {
			t.Fatalf("topic %d comes back after another topic", r.topic)
		}
		seen[r.topic] = true
	}
}

// Partition ids are never negative: a record with one is impossible.
func TestImageRefusesNegativePartitionIDs(t *testing.T) {
	foo := imgTopicID(1)
	img := mustApply(t, EmptyImage(), 1, 1, recTopic("foo", foo[:]))
	_, err := img.Apply(2, 1, imgBatch(recPartition(foo[:], 0, []int32{1}, 1), recPartition(foo[:], -1, []int32{1}, 1)))
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Index != 1 {
		t.Fatalf("Apply = %v, want an ApplyError at record 1", err)
	}
	l := int32(2)
	if _, err := img.Apply(2, 1, imgBatch(recPartitionChange(&metadatapb.PartitionChangeRecord{TopicId: foo[:], PartitionId: -1, Leader: &l}))); !errors.As(err, &ae) {
		t.Fatalf("a change to partition -1: %v, want an ApplyError", err)
	}
}
