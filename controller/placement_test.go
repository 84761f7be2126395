package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
)

// tpBroker describes a registered broker for placement and topic tests.
type tpBroker struct {
	id       int32
	rack     string
	fenced   bool
	shutdown bool // in controlled shutdown (and unfenced)
}

// tpImage is an image holding the brokers, registered at offsets 1, 2, ….
func tpImage(t testing.TB, brokers ...tpBroker) *metadatalog.Image {
	t.Helper()
	img := metadatalog.EmptyImage()
	for i, b := range brokers {
		next, err := img.Apply(uint64(i+1), 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{registerRecord(&metadatapb.RegisterBrokerRecord{
			BrokerId: b.id, BrokerEpoch: int64(i + 1), Rack: b.rack, Fenced: b.fenced, InControlledShutdown: b.shutdown,
		})}})
		if err != nil {
			t.Fatal(err)
		}
		img = next
	}
	return img
}

// tpBrokers is n unfenced brokers 1…n spread over the racks round-robin (no racks if none given).
func tpBrokers(n int, racks ...string) []tpBroker {
	out := make([]tpBroker, n)
	for i := range out {
		out[i].id = int32(i + 1)
		if len(racks) > 0 {
			out[i].rack = racks[i%len(racks)]
		}
	}
	return out
}

// tpPlace places n partitions of rf replicas.
func tpPlace(t *testing.T, img *metadatalog.Image, seed uint64, n, rf int) [][]int32 {
	t.Helper()
	p := newPlacer(img, seed)
	if reason := p.check(rf); reason != "" {
		t.Fatalf("check(%d) = %q", rf, reason)
	}
	out := make([][]int32, n)
	for i := range out {
		out[i] = make([]int32, rf)
		p.place(out[i])
	}
	return out
}

func tpRackOf(img *metadatalog.Image, id int32) string {
	b, _ := img.Broker(id)
	return b.Rack
}

// tpCheckHardRules checks what no placement may break: distinct replicas, an unfenced leader, no
// broker in controlled shutdown.
func tpCheckHardRules(t *testing.T, img *metadatalog.Image, parts [][]int32) {
	t.Helper()
	for i, replicas := range parts {
		if len(slices.Compact(slices.Sorted(slices.Values(replicas)))) != len(replicas) {
			t.Fatalf("partition %d has a broker twice: %v", i, replicas)
		}
		for j, id := range replicas {
			b, ok := img.Broker(id)
			switch {
			case !ok:
				t.Fatalf("partition %d uses unregistered broker %d", i, id)
			case stateOf(b) == brokerControlledShutdown:
				t.Fatalf("partition %d uses broker %d, which is in controlled shutdown: %v", i, id, replicas)
			case j == 0 && b.Fenced:
				t.Fatalf("partition %d is led by fenced broker %d: %v", i, id, replicas)
			}
		}
	}
}

func tpCount(parts [][]int32, leadersOnly bool) map[int32]int {
	counts := map[int32]int{}
	for _, replicas := range parts {
		for j, id := range replicas {
			if j == 0 || !leadersOnly {
				counts[id]++
			}
		}
	}
	return counts
}

func TestPlacementStripesRacks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []tpBroker
		rf      int
		// minRacks is how many racks every partition must span.
		minRacks int
	}{
		{"3 racks of 3, RF 3", tpBrokers(9, "a", "b", "c"), 3, 3},
		{"3 racks of 3, RF 2", tpBrokers(9, "a", "b", "c"), 2, 2},
		{"3 racks of 2, RF 4", tpBrokers(6, "a", "b", "c"), 4, 3},
		{"2 racks of 5, RF 3", tpBrokers(10, "x", "y"), 3, 2},
		{"rackless brokers are a rack of their own", append(tpBrokers(4, "a", "b"), tpBroker{id: 5}, tpBroker{id: 6}), 3, 3},
		{"unequal racks", []tpBroker{{id: 1, rack: "a"}, {id: 2, rack: "a"}, {id: 3, rack: "a"}, {id: 4, rack: "a"}, {id: 5, rack: "b"}}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tpImage(t, tc.brokers...)
			parts := tpPlace(t, img, 7, 600, tc.rf)
			tpCheckHardRules(t, img, parts)
			for i, replicas := range parts {
				racks := map[string]bool{}
				for _, id := range replicas {
					racks[tpRackOf(img, id)] = true
				}
				if len(racks) < tc.minRacks {
					t.Fatalf("partition %d spans %d rack(s), want %d: %v", i, len(racks), tc.minRacks, replicas)
				}
			}
		})
	}
}

func TestPlacementUnfencedFirst(t *testing.T) {
	t.Run("a fenced broker is used only when the unfenced run out", func(t *testing.T) {
		img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2}, tpBroker{id: 3, fenced: true}, tpBroker{id: 4})
		for i, replicas := range tpPlace(t, img, 1, 300, 3) {
			if slices.Contains(replicas, 3) {
				t.Fatalf("partition %d uses fenced broker 3 although three are unfenced: %v", i, replicas)
			}
		}
	})
	t.Run("a 3-broker cluster creates RF=3 while one broker is fenced", func(t *testing.T) {
		img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2, fenced: true}, tpBroker{id: 3})
		parts := tpPlace(t, img, 1, 300, 3)
		tpCheckHardRules(t, img, parts)
		for i, replicas := range parts {
			if !slices.Contains(replicas, 2) {
				t.Fatalf("partition %d = %v, want all three brokers", i, replicas)
			}
		}
	})
	t.Run("within a rack, unfenced first", func(t *testing.T) {
		img := tpImage(t, tpBroker{id: 1, rack: "a"}, tpBroker{id: 2, rack: "a", fenced: true}, tpBroker{id: 3, rack: "b"}, tpBroker{id: 4, rack: "b"})
		for i, replicas := range tpPlace(t, img, 3, 300, 3) {
			if slices.Contains(replicas, 2) {
				t.Fatalf("partition %d uses fenced broker 2: %v", i, replicas)
			}
		}
	})
	t.Run("fenced replicas are spread over the fenced brokers", func(t *testing.T) {
		img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2, fenced: true}, tpBroker{id: 3, fenced: true})
		counts := tpCount(tpPlace(t, img, 5, 300, 2), false)
		if counts[1] != 300 || counts[2] != 150 || counts[3] != 150 {
			t.Fatalf("replica counts = %v, want broker 1 in all 300 and brokers 2 and 3 in 150 each", counts)
		}
	})
}

func TestPlacementLeaderAlwaysUnfenced(t *testing.T) {
	for seed := range uint64(20) {
		img := tpImage(t,
			tpBroker{id: 1, rack: "a", fenced: true}, tpBroker{id: 2, rack: "a"},
			tpBroker{id: 3, rack: "b", fenced: true}, tpBroker{id: 4, rack: "b", fenced: true},
			tpBroker{id: 5, rack: "c"}, tpBroker{id: 6, fenced: true})
		parts := tpPlace(t, img, seed, 200, 5)
		tpCheckHardRules(t, img, parts)
		if c := tpCount(parts, true); c[2]+c[5] != 200 || c[2] != 100 {
			t.Fatalf("seed %d: leaders %v, want brokers 2 and 5 leading 100 each", seed, c)
		}
	}
}

func TestPlacementNeverControlledShutdown(t *testing.T) {
	img := tpImage(t, tpBroker{id: 1}, tpBroker{id: 2, shutdown: true}, tpBroker{id: 3}, tpBroker{id: 4, rack: "r", shutdown: true}, tpBroker{id: 5, fenced: true})
	parts := tpPlace(t, img, 9, 500, 3)
	tpCheckHardRules(t, img, parts)
	if c := tpCount(parts, false); c[2] != 0 || c[4] != 0 || c[5] != 500 {
		t.Fatalf("replica counts = %v: brokers 2 and 4 are shutting down, so 1, 3 and the fenced 5 must hold every partition", c)
	}
	// A fenced broker that kept the flag from a finished controlled shutdown is FENCED, and usable.
	img = tpImage(t, tpBroker{id: 1}, tpBroker{id: 2, fenced: true, shutdown: true})
	if reason := newPlacer(img, 1).check(2); reason != "" {
		t.Fatalf("check(2) with a fenced broker left in controlled shutdown = %q", reason)
	}
}

func TestPlacementEvenSpread(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []tpBroker
		rf      int
	}{
		{"30 brokers, no racks, RF 3", tpBrokers(30), 3},
		{"30 brokers, 3 racks, RF 3", tpBrokers(30, "a", "b", "c"), 3},
		{"12 brokers, 4 racks, RF 2", tpBrokers(12, "a", "b", "c", "d"), 2},
		{"5 brokers, no racks, RF 2", tpBrokers(5), 2},
		{"3 brokers, RF 3", tpBrokers(3), 3},
		{"7 brokers, RF 1", tpBrokers(7), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tpImage(t, tc.brokers...)
			n := len(tc.brokers) * 100
			parts := tpPlace(t, img, 11, n, tc.rf)
			tpCheckHardRules(t, img, parts)
			leaders := tpCount(parts, true)
			for _, b := range tc.brokers {
				// Each deck deals every unfenced broker once, so the spread of leaders is exact.
				if leaders[b.id] != 100 {
					t.Fatalf("broker %d leads %d partitions, want 100 each: %v", b.id, leaders[b.id], leaders)
				}
			}
			replicas := tpCount(parts, false)
			want := 100 * tc.rf
			for _, b := range tc.brokers {
				if got := replicas[b.id]; got < want*9/10 || got > want*11/10 {
					t.Fatalf("broker %d holds %d replicas, want %d ± 10%%: %v", b.id, got, want, replicas)
				}
			}
		})
	}
}

func TestPlacementVariesReplicaSets(t *testing.T) {
	img := tpImage(t, tpBrokers(10)...)
	sets := map[string]bool{}
	for _, replicas := range tpPlace(t, img, 2, 1000, 2) {
		sets[fmt.Sprint(slices.Sorted(slices.Values(replicas)))] = true
	}
	// 45 pairs exist; a placer that only strides (leader, leader+1) would use 10.
	if len(sets) < 30 {
		t.Fatalf("1000 partitions of RF 2 on 10 brokers use only %d distinct replica sets", len(sets))
	}
}

func TestPlacementDeterministic(t *testing.T) {
	img := tpImage(t, tpBrokers(12, "a", "b", "c")...)
	a, b := tpPlace(t, img, 42, 500, 3), tpPlace(t, img, 42, 500, 3)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("two placers with the same seed disagree")
	}
	if c := tpPlace(t, img, 43, 500, 3); slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("seeds 42 and 43 place identically")
	}
}

func TestPlacementErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		brokers []tpBroker
		rf      int
		want    string
	}{
		{"RF above the brokers", tpBrokers(2), 3, "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."},
		{"RF above the brokers not shutting down", []tpBroker{{id: 1}, {id: 2}, {id: 3, shutdown: true}}, 3,
			"The target replication factor of 3 cannot be reached because only 2 broker(s) are registered. Not counted, because they are in controlled shutdown: broker(s) 3."},
		{"all fenced", []tpBroker{{id: 1, fenced: true}, {id: 2, fenced: true}}, 1, "All brokers are currently fenced."},
		{"all fenced beats too few", []tpBroker{{id: 1, fenced: true}}, 3, "All brokers are currently fenced."},
		{"no brokers", nil, 1, "No broker is registered yet, so there is nowhere to place a replica."},
		{"all shutting down", []tpBroker{{id: 1, shutdown: true}, {id: 2, shutdown: true}}, 1, "All brokers are in controlled shutdown: broker(s) 1, 2."},
		{"RF zero", tpBrokers(3), 0, "Invalid replication factor 0: the replication factor must be positive."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newPlacer(tpImage(t, tc.brokers...), 1).check(tc.rf); got != tc.want {
				t.Fatalf("check(%d) = %q, want %q", tc.rf, got, tc.want)
			}
		})
	}
	if got := newPlacer(tpImage(t, tpBrokers(3)...), 1).check(3); got != "" {
		t.Fatalf("check(3) on 3 brokers = %q", got)
	}
}

// TestPlacementAllocatesNothingPerPartition: a million partitions in one call must stay cheap on the
// event loop, so placing one allocates nothing.
func TestPlacementAllocatesNothingPerPartition(t *testing.T) {
	img := tpImage(t, tpBrokers(30, "a", "b", "c")...)
	p := newPlacer(img, 1)
	dst := make([]int32, 3)
	if allocs := testing.AllocsPerRun(10000, func() { p.place(dst) }); allocs != 0 {
		t.Fatalf("place allocates %.1f times per partition", allocs)
	}
}
