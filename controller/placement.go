package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/kraftgo/kraft/metadatalog"
)

// placer chooses the replicas of new partitions, with the goals of Kafka's StripedReplicaPlacer
// (KRAFT-REFERENCE.md §2), in this order:
//
//  1. Hard rules: no broker twice in one partition; the leader (first replica) is unfenced; a broker in
//     controlled shutdown is never chosen.
//  2. Racks: the replicas of a partition stripe across racks (brokers without a rack are one more rack)
//     before any rack is used twice.
//  3. Unfenced first: a fenced broker is chosen only when no unfenced one is left to choose. So a
//     3-broker cluster still creates RF=3 partitions while one broker is briefly fenced; that replica
//     starts outside the ISR. As in Kafka, rack spread comes before this: in the first round over the
//     racks, a rack whose brokers are all fenced still gets its replica. Later rounds add nothing to
//     the rack spread, so there any rack's unfenced broker comes before a fenced one.
//  4. Even spread: leaders are dealt from a shuffled deck holding every unfenced broker once, so over
//     each run of that many partitions every unfenced broker leads exactly once. The followers of a
//     partition come from the racks after the leader's, each rack handing out its brokers round-robin,
//     so replicas spread evenly too. Each new deck reshuffles the leaders and the order of the racks, so
//     partitions do not keep landing on the same few replica sets.
//
// The algorithm is our own; only the goals and the error messages are Kafka's. Given the image and the
// seed it is deterministic. Setting it up costs O(brokers); each partition then costs O(RF²) with no
// allocation, so a million partitions in one call is cheap.
type placer struct {
	rng *rand.Rand

	racks []*placementRack // in visiting order; reshuffled with each deck
	deck  []placementLeader
	next  int // the next leader's position in deck

	usable, unfenced int     // brokers not in controlled shutdown; of those, the unfenced
	shuttingDown     []int32 // registered but never chosen, named in errors
	active           map[int32]bool
	placed           uint64 // partitions placed so far; stamps what a rack has offered
}

type placementLeader struct {
	id   int32
	rack *placementRack
}

// placementRack hands out its brokers round-robin, unfenced before fenced.
type placementRack struct {
	name             string
	pos              int // index in placer.racks
	unfenced, fenced []int32
	ucur, fcur       int // where the round-robin resumes
	// How many of each list the partition numbered stamp has been offered: a rack offers each of its
	// brokers at most once per partition.
	stamp          uint64
	utried, ftried int
}

// newPlacer reads the registered brokers from the image. seed makes every choice reproducible.
func newPlacer(img *metadatalog.Image, seed uint64) *placer {
	p := &placer{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), active: map[int32]bool{}}
	byName := map[string]*placementRack{}
	for _, b := range img.Brokers() { // by id, so the outcome does not depend on map order
		if stateOf(b) == brokerControlledShutdown {
			p.shuttingDown = append(p.shuttingDown, b.ID)
			continue
		}
		r := byName[b.Rack]
		if r == nil {
			r = &placementRack{name: b.Rack}
			byName[b.Rack] = r
			p.racks = append(p.racks, r)
		}
		p.usable++
		if b.Fenced {
			r.fenced = append(r.fenced, b.ID)
			continue
		}
		p.unfenced++
		r.unfenced = append(r.unfenced, b.ID)
		p.active[b.ID] = true
		p.deck = append(p.deck, placementLeader{id: b.ID, rack: r})
	}
	slices.SortFunc(p.racks, func(a, b *placementRack) int { return strings.Compare(a.name, b.name) })
	for _, r := range p.racks {
		if len(r.unfenced) > 0 {
			r.ucur = p.rng.IntN(len(r.unfenced))
		}
		if len(r.fenced) > 0 {
			r.fcur = p.rng.IntN(len(r.fenced))
		}
	}
	p.next = len(p.deck) // the first partition deals a fresh deck
	return p
}

// isActive reports whether a broker may be in a new partition's ISR: unfenced and not shutting down.
func (p *placer) isActive(id int32) bool { return p.active[id] }

// check returns why partitions of rf replicas cannot be placed, or "". The messages are Kafka's.
func (p *placer) check(rf int) string {
	switch {
	case rf <= 0:
		return fmt.Sprintf("Invalid replication factor %d: the replication factor must be positive.", rf)
	case p.unfenced == 0 && p.usable == 0 && len(p.shuttingDown) == 0:
		return "No broker is registered yet, so there is nowhere to place a replica."
	case p.unfenced == 0 && p.usable == 0:
		return fmt.Sprintf("All brokers are in controlled shutdown: %s.", brokerList(p.shuttingDown))
	case p.unfenced == 0:
		return "All brokers are currently fenced."
	case rf > p.usable:
		msg := fmt.Sprintf("The target replication factor of %d cannot be reached because only %d broker(s) are registered.", rf, p.usable)
		if len(p.shuttingDown) > 0 {
			msg += fmt.Sprintf(" Not counted, because they are in controlled shutdown: %s.", brokerList(p.shuttingDown))
		}
		return msg
	}
	return ""
}

// place fills dst (its length is the replication factor) with the next partition's replicas, leader
// first. check(len(dst)) must have passed.
func (p *placer) place(dst []int32) {
	if p.next == len(p.deck) {
		p.shuffle()
	}
	leader := p.deck[p.next]
	p.next++
	p.placed++
	dst[0] = leader.id
	chosen := dst[:1]
	n := len(p.racks)
	visit := func(i int, fenced bool) bool {
		r := p.racks[(leader.rack.pos+i)%n]
		if r.stamp != p.placed {
			r.stamp, r.utried, r.ftried = p.placed, 0, 0
		}
		b, ok := r.offer(chosen, fenced)
		if ok {
			chosen = append(chosen, b)
		}
		return ok
	}
	// Round one: a replica from each other rack, in the order after the leader's, so the partition spans
	// as many racks as it can. Here a rack offers a fenced broker when it has no unfenced one.
	for i := 1; i < n && len(chosen) < len(dst); i++ {
		visit(i, true)
	}
	// Later rounds add nothing to the rack spread, so they take unfenced brokers from any rack first,
	// and fenced ones only once no rack has an unfenced broker left. check made sure there are enough
	// brokers, so this ends; a round that finds nothing with fenced brokers allowed would mean the
	// placer's own bookkeeping is broken.
	fenced := false
	for len(chosen) < len(dst) {
		found := false
		for i := 1; i <= n && len(chosen) < len(dst); i++ {
			found = visit(i, fenced) || found
		}
		if !found {
			if fenced {
				panic(fmt.Sprintf("placement ran out of brokers at %d of %d replicas; check let it through", len(chosen), len(dst)))
			}
			fenced = true
		}
	}
}

// shuffle deals a new deck of leaders and reorders the racks.
func (p *placer) shuffle() {
	p.rng.Shuffle(len(p.deck), func(i, j int) { p.deck[i], p.deck[j] = p.deck[j], p.deck[i] })
	p.rng.Shuffle(len(p.racks), func(i, j int) { p.racks[i], p.racks[j] = p.racks[j], p.racks[i] })
	for i, r := range p.racks {
		r.pos = i
	}
	p.next = 0
}

// offer returns the rack's next broker that the partition does not hold yet: unfenced ones first, then,
// if fenced allows, fenced ones.
func (r *placementRack) offer(chosen []int32, fenced bool) (int32, bool) {
	for r.utried < len(r.unfenced) {
		b := r.unfenced[r.ucur]
		r.ucur = (r.ucur + 1) % len(r.unfenced)
		r.utried++
		if !slices.Contains(chosen, b) {
			return b, true
		}
	}
	for fenced && r.ftried < len(r.fenced) {
		b := r.fenced[r.fcur]
		r.fcur = (r.fcur + 1) % len(r.fenced)
		r.ftried++
		if !slices.Contains(chosen, b) {
			return b, true
		}
	}
	return 0, false
}

func brokerList(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return "broker(s) " + strings.Join(parts, ", ")
}
