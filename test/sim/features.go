package sim

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/controller"
	"github.com/kraftgo/kraft/metadatalog"
)

// metadata.version, ACLs and client quotas in the simulation. Now and then the active controller decides
// an UpdateFeatures for metadata.version with the product's own decision (controller.UpdateMetadataVersion),
// or, at a level that allows them, writes ACLs (level 3) and client quotas (level 4), all against its
// speculative image. An unsafe downgrade removes, in the batch that lowers the level, every ACL and quota
// the lower level cannot represent; invariant 18 holds that batch to being all or nothing however the
// leadership moves, and invariant 19 holds every node's snapshots to the lower level once it has
// written one after the downgrade (see snapshots.go for the purge that the Snapshotter does).

const (
	// featureChance is the chance per step that the active controller decides a feature or ACL/quota
	// request.
	featureChance = 1.0 / 60
	// raceChance is the chance that a downgrade's proposal is followed, 0–30 steps later, by a crash of
	// its leader or a partition that cuts it off, unless some other fault came first: so that many
	// downgrades race a failover rather than the few the background faults would give.
	raceChance = 0.3
)

// FeatureStats say what metadata.version changes, ACLs and quotas the run went through.
type FeatureStats struct {
	Decided, Refused int // level changes decided by the active controllers; refused (nothing written)
	// Downgrades proposed (lowering the level of the speculative image), and of those: unsafe ones that
	// removed something, committed, acknowledged to the client, lost (never committed), and raced (the
	// proposer crashed or was cut off from a majority before the downgrade was decided either way).
	Downgrades, DowngradesDropping, DowngradesCommitted, DowngradesAcked, DowngradesLost, DowngradesRaced int
	// Committed, counted once per offset of the committed history.
	ACLsCreated, ACLsDropped, QuotasSet, QuotasRemoved, QuotasDropped int
	ToLevel                                                           [5]int // committed metadata.version changes, by new level
	Below3, Below4                                                    int    // committed downgrades from >= 3 to < 3, and from 4 to < 4
	PurgeSnapshots, PurgeRetired                                      int    // snapshots written for a downgrade; files they retired
}

func (a *FeatureStats) add(o FeatureStats) {
	a.Decided += o.Decided
	a.Refused += o.Refused
	a.Downgrades += o.Downgrades
	a.DowngradesDropping += o.DowngradesDropping
	a.DowngradesCommitted += o.DowngradesCommitted
	a.DowngradesAcked += o.DowngradesAcked
	a.DowngradesLost += o.DowngradesLost
	a.DowngradesRaced += o.DowngradesRaced
	a.ACLsCreated += o.ACLsCreated
	a.ACLsDropped += o.ACLsDropped
	a.QuotasSet += o.QuotasSet
	a.QuotasRemoved += o.QuotasRemoved
	a.QuotasDropped += o.QuotasDropped
	for i := range a.ToLevel {
		a.ToLevel[i] += o.ToLevel[i]
	}
	a.Below3 += o.Below3
	a.Below4 += o.Below4
	a.PurgeSnapshots += o.PurgeSnapshots
	a.PurgeRetired += o.PurgeRetired
}

// downgrade is one downgrade the active controller proposed: the answer's message, and the batches
// (parts) that carry it, which the product writes as one (want = 1). A part is pending from its
// proposal until the committed history decides its offset: its own entry, or another.
type downgrade struct {
	node          uint64
	epoch         uint64
	from, to      int16
	unsafe        bool
	dropping      bool // it removes something
	msg           string
	step          int64
	want          int
	proposed      int
	committed     int
	lost          int
	pending       int
	firstOffset   uint64
	acked, raced  bool
	removedACLs   int // what its committed parts removed
	removedQuotas int
}

// partRef is one proposed part of a downgrade, waiting for the committed history at its offset.
type partRef struct {
	d     *downgrade
	epoch uint64
	data  string
}

// strike is a fault aimed at a downgrade's proposer (raceChance).
type strike struct {
	node uint64
	at   int64
}

// featureWorld is the features' part of the simulation.
type featureWorld struct {
	downgrades []*downgrade
	parts      map[uint64][]partRef // by offset
	strikes    []strike
}

var droppedMsg = regexp.MustCompile(`^dropped (\d+) ACL entr(?:y|ies) and (\d+) client-quota entr(?:y|ies)$`)

// decideFeatures has n's active controller decide one request: a metadata.version change, or, when the
// speculative level allows them, ACLs or client quotas.
func (s *sim) decideFeatures(n *node) {
	c := n.ctl
	if c.splitting {
		return // SabotageSplitDowngrade: the rest of a downgrade is still to be written
	}
	lvl := c.spec.MetadataVersion()
	if lvl >= metadatalog.ACLsLevel && s.rng.Float64() < 0.5 {
		if lvl >= metadatalog.QuotasLevel && s.rng.Float64() < 0.5 {
			s.writeQuotas(n)
		} else {
			s.writeACLs(n)
		}
		return
	}
	// Upgrades are likelier from the low levels, so that levels 3 and 4 come often, and so are unsafe
	// downgrades from the high ones; targets are drawn from every level, so refusals happen too.
	upgrade := 0.3
	if lvl < metadatalog.ACLsLevel {
		upgrade = 0.65
	}
	var typ int8 = 3
	switch r := s.rng.Float64(); {
	case r < upgrade:
		typ = 1
	case r < upgrade+(1-upgrade)/4:
		typ = 2
	}
	target := int16(1 + s.rng.IntN(len(metadatalog.MetadataVersions)))
	if typ == 1 && lvl < metadatalog.ACLsLevel && s.rng.Float64() < 0.5 {
		target = metadatalog.ACLsLevel + int16(s.rng.IntN(2))
	}
	records, msg := controller.UpdateMetadataVersion(c.spec, target, typ)
	s.stats.Features.Decided++
	if len(records) == 0 {
		s.stats.Features.Refused++
		s.record(uint64(s.now), n.id, 60, uint64(target), uint64(typ))
		return
	}
	lowers := target < lvl
	if m := droppedMsg.FindStringSubmatch(msg); (m != nil) != (typ == 3 && lowers) {
		s.fail(18, "node %d's controller answers %q to an accepted %s to metadata.version %d from %d", n.id, msg, upgradeTypeName(typ), target, lvl)
	}
	if !lowers {
		s.ctlWrite(n, records, nil)
		return
	}
	d := &downgrade{node: n.id, epoch: c.epoch, from: lvl, to: target, unsafe: typ == 3, msg: msg, step: s.now, want: 1}
	parts := [][]*metadatapb.Record{records}
	switch s.cfg.Sabotage {
	case SabotageSplitDowngrade:
		if len(records) > 1 {
			parts = [][]*metadatapb.Record{records[:len(records)-1], records[len(records)-1:]}
		}
	case SabotageDowngradeKeepsOne:
		if len(records) > 1 {
			parts = [][]*metadatapb.Record{records[1:]}
		}
	}
	d.want, d.dropping = len(parts), len(records) > 1
	s.fw.downgrades = append(s.fw.downgrades, d)
	s.record(uint64(s.now), n.id, 61, uint64(lvl), uint64(target), uint64(len(records)))
	if s.faulty && s.rng.Float64() < raceChance {
		s.fw.strikes = append(s.fw.strikes, strike{node: n.id, at: s.now + s.rng.Int64N(31)})
	}
	if len(parts) == 1 {
		s.writeDowngradePart(n, d, parts[0], func() { s.downgradeAnswered(n, d) })
		return
	}
	// The sabotage: the removals first, and the level only once they have committed, as a controller
	// that did not write them as one batch would.
	c.splitting = true
	s.writeDowngradePart(n, d, parts[0], func() {
		s.writeDowngradePart(n, d, parts[1], func() {
			c.splitting = false
			s.downgradeAnswered(n, d)
		})
	})
}

func upgradeTypeName(typ int8) string {
	return map[int8]string{1: "upgrade", 2: "safe downgrade", 3: "unsafe downgrade"}[typ]
}

// writeDowngradePart proposes one part of d and registers it with the committed history's offset.
func (s *sim) writeDowngradePart(n *node, d *downgrade, records []*metadatapb.Record, reply func()) {
	c := n.ctl
	offset, epoch := c.next, c.epoch
	data, ok := s.ctlWrite(n, records, reply)
	if !ok {
		return
	}
	if d.proposed == 0 {
		d.firstOffset = offset
		s.stats.Features.Downgrades++
		if d.dropping {
			s.stats.Features.DowngradesDropping++
		}
	}
	d.proposed++
	d.pending++
	ref := partRef{d: d, epoch: epoch, data: string(data)}
	if offset <= uint64(len(s.history)) {
		s.resolvePart(ref, offset, s.history[offset-1]) // a deposed leader's proposal at a decided offset
		return
	}
	if s.fw.parts == nil {
		s.fw.parts = map[uint64][]partRef{}
	}
	s.fw.parts[offset] = append(s.fw.parts[offset], ref)
}

// resolvePart decides one part of a downgrade once the committed history has its offset: its own entry
// committed, or another won the offset. A downgrade that loses a part after another committed has
// happened in part: invariant 18.
func (s *sim) resolvePart(ref partRef, offset uint64, h historyEntry) {
	d := ref.d
	d.pending--
	if h.epoch != ref.epoch || h.data != ref.data {
		d.lost++
		if d.acked {
			s.fail(18, "the downgrade to metadata.version %d that node %d proposed at offset %d epoch %d was acknowledged, but epoch %d's entry committed there", d.to, d.node, offset, ref.epoch, h.epoch)
		}
		if d.committed > 0 {
			s.fail(18, "the downgrade to metadata.version %d that node %d proposed at step %d committed in part (%d of %d batches, removing %d ACLs and %d quotas), but the batch at offset %d was lost to epoch %d's entry: it happened only in part", d.to, d.node, d.step, d.committed, d.want, d.removedACLs, d.removedQuotas, offset, h.epoch)
		}
		if d.pending == 0 && d.committed == 0 {
			s.stats.Features.DowngradesLost++
		}
		return
	}
	d.committed++
	if d.lost > 0 {
		s.fail(18, "the downgrade to metadata.version %d that node %d proposed at step %d lost a batch, yet its batch at offset %d committed: it happened only in part", d.to, d.node, d.step, offset)
	}
	if d.committed == d.want {
		s.stats.Features.DowngradesCommitted++
	}
}

// downgradeAnswered is the downgrade's answer going to the client: the proposer applied its last batch,
// committed in its epoch. The message must count what the committed batches removed.
func (s *sim) downgradeAnswered(n *node, d *downgrade) {
	if d.committed != d.want || d.lost > 0 {
		s.fail(18, "node %d acknowledged the downgrade to metadata.version %d (proposed at step %d in epoch %d), but %d of its %d batches committed", n.id, d.to, d.step, d.epoch, d.committed, d.want)
	}
	d.acked = true
	s.stats.Features.DowngradesAcked++
	if !d.unsafe {
		return
	}
	m := droppedMsg.FindStringSubmatch(d.msg)
	acls, _ := strconv.Atoi(m[1])
	quotas, _ := strconv.Atoi(m[2])
	if acls != d.removedACLs || quotas != d.removedQuotas {
		s.fail(18, "node %d answered the downgrade to metadata.version %d with %q, but its committed batches removed %d ACLs and %d client quotas", n.id, d.to, d.msg, d.removedACLs, d.removedQuotas)
	}
}

// writeACLs creates 1–3 ACLs with fresh ids.
func (s *sim) writeACLs(n *node) {
	var records []*metadatapb.Record
	for range 1 + s.rng.IntN(3) {
		id := make([]byte, 16)
		for i := range 2 {
			v := s.rng.Uint64()
			for j := range 8 {
				id[i*8+j] = byte(v >> (8 * j))
			}
		}
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
			Id: id, ResourceType: int32(2 + s.rng.IntN(4)), ResourceName: fmt.Sprintf("resource-%d", s.rng.IntN(8)), PatternType: 3,
			Principal: fmt.Sprintf("User:u%d", s.rng.IntN(5)), Host: "*", Operation: int32(2 + s.rng.IntN(10)), PermissionType: int32(2 + s.rng.IntN(2)),
		}}})
	}
	s.record(uint64(s.now), n.id, 62, uint64(len(records)))
	s.ctlWrite(n, records, nil)
}

var quotaKeys = []string{"producer_byte_rate", "consumer_byte_rate", "request_percentage", "connection_creation_rate"}

// writeQuotas sets or removes 1–3 client quotas, of a few users and client ids (some the default).
func (s *sim) writeQuotas(n *node) {
	var records []*metadatapb.Record
	held := n.ctl.spec.ClientQuotas()
	for range 1 + s.rng.IntN(3) {
		if len(held) > 0 && s.rng.Float64() < 0.3 {
			q := held[s.rng.IntN(len(held))]
			keys := make([]string, 0, len(q.Values))
			for k := range q.Values {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			records = append(records, metadatalog.QuotaRecord(q.Entity, keys[s.rng.IntN(len(keys))], 0, true))
			continue
		}
		var entity []metadatalog.QuotaEntityPart
		for _, typ := range []string{"user", "client-id"} {
			switch s.rng.IntN(3) {
			case 0:
			case 1:
				entity = append(entity, metadatalog.QuotaEntityPart{Type: typ}) // the default entity
			default:
				entity = append(entity, metadatalog.QuotaEntityPart{Type: typ, Name: new(fmt.Sprintf("%s-%d", typ, s.rng.IntN(3)))})
			}
		}
		if len(entity) == 0 {
			entity = append(entity, metadatalog.QuotaEntityPart{Type: "ip", Name: new(fmt.Sprintf("10.0.0.%d", s.rng.IntN(4)))})
		}
		records = append(records, metadatalog.QuotaRecord(entity, quotaKeys[s.rng.IntN(len(quotaKeys))], float64(1+s.rng.IntN(1000)), false))
	}
	s.record(uint64(s.now), n.id, 63, uint64(len(records)))
	s.ctlWrite(n, records, nil)
}

// quotaKey names one (entity, key) of a ClientQuotaRecord, as the image keys it.
func quotaKey(r *metadatapb.ClientQuotaRecord) string {
	var b strings.Builder
	for _, e := range r.GetEntity() {
		b.WriteString(e.GetEntityType())
		if e.EntityName == nil {
			b.WriteString("=<default>;")
		} else {
			fmt.Fprintf(&b, "=%q;", e.GetEntityName())
		}
	}
	return b.String() + "#" + r.GetKey()
}

// heldQuotas names every (entity, key) img holds, as quotaKey does.
func heldQuotas(img *metadatalog.Image) []string {
	var out []string
	for _, q := range img.ClientQuotas() {
		for key := range q.Values {
			out = append(out, quotaKey(metadatalog.QuotaRecord(q.Entity, key, 0, true).GetClientQuota()))
		}
	}
	return out
}

// checkDowngradeBatch checks invariant 18 on one batch over prev, before the image applies it: every
// FeatureLevelRecord that takes metadata.version below 3 (below 4) follows, in the same batch, the
// removal of every ACL (quota) prev held and of every one the batch added before it. It returns what the
// batch removed.
func (s *sim) checkDowngradeBatch(prev *metadatalog.Image, batch *metadatapb.RecordBatch, where string) (acls, quotas int) {
	lvl := prev.MetadataVersion()
	var (
		aclSet, quotaSet map[string]bool // what the image holds at this point of the batch; nil until needed
	)
	load := func() {
		if aclSet != nil {
			return
		}
		aclSet, quotaSet = map[string]bool{}, map[string]bool{}
		for _, a := range prev.ACLs() {
			aclSet[string(a.ID[:])] = true
		}
		for _, k := range heldQuotas(prev) {
			quotaSet[k] = true
		}
	}
	for _, r := range batch.GetRecords() {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_AccessControlEntry:
			load()
			aclSet[string(rec.AccessControlEntry.GetId())] = true
		case *metadatapb.Record_RemoveAccessControlEntry:
			load()
			delete(aclSet, string(rec.RemoveAccessControlEntry.GetId()))
			acls++
		case *metadatapb.Record_ClientQuota:
			load()
			if rec.ClientQuota.GetRemove() {
				delete(quotaSet, quotaKey(rec.ClientQuota))
				quotas++
			} else {
				quotaSet[quotaKey(rec.ClientQuota)] = true
			}
		case *metadatapb.Record_FeatureLevel:
			f := rec.FeatureLevel
			if f.GetName() != metadatalog.MetadataVersionFeature {
				continue
			}
			next := int16(f.GetFeatureLevel())
			if next < metadatalog.QuotasLevel && prev.ClientQuotaCount() > 0 || next < metadatalog.ACLsLevel && prev.ACLCount() > 0 {
				load()
			}
			if aclSet != nil && next < metadatalog.ACLsLevel && len(aclSet) > 0 {
				s.fail(18, "%s lowers metadata.version from %d to %d, but removes only %d of its ACLs before (%d remain): the downgrade is not whole", where, lvl, next, acls, len(aclSet))
			}
			if quotaSet != nil && next < metadatalog.QuotasLevel && len(quotaSet) > 0 {
				s.fail(18, "%s lowers metadata.version from %d to %d, but removes only %d of its client quotas before (%d remain): the downgrade is not whole", where, lvl, next, quotas, len(quotaSet))
			}
			lvl = next
		}
	}
	return acls, quotas
}

// featureCommitted is the features' side of a new offset of the committed history, after
// checkDowngradeBatch: it counts what the batch did and decides the downgrade parts waiting for it.
func (s *sim) featureCommitted(off uint64, prev, next *metadatalog.Image, batch *metadatapb.RecordBatch, removedACLs, removedQuotas int) {
	st := &s.stats.Features
	for _, r := range batch.GetRecords() {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_AccessControlEntry:
			st.ACLsCreated++
		case *metadatapb.Record_ClientQuota:
			if !rec.ClientQuota.GetRemove() {
				st.QuotasSet++
			}
		}
	}
	from, to := prev.MetadataVersion(), next.MetadataVersion()
	if from != to && int(to) < len(st.ToLevel) {
		st.ToLevel[to]++
	}
	if from >= metadatalog.ACLsLevel && to < metadatalog.ACLsLevel {
		st.Below3++
	}
	if from >= metadatalog.QuotasLevel && to < metadatalog.QuotasLevel {
		st.Below4++
	}
	lowered := to < from
	if lowered {
		st.ACLsDropped += removedACLs
		st.QuotasDropped += removedQuotas
	} else {
		st.QuotasRemoved += removedQuotas
	}
	refs, ok := s.fw.parts[off]
	if !ok {
		return
	}
	delete(s.fw.parts, off)
	h := s.history[off-1]
	for _, ref := range refs {
		if h.epoch == ref.epoch && h.data == ref.data {
			ref.d.removedACLs += removedACLs
			ref.d.removedQuotas += removedQuotas
		}
		s.resolvePart(ref, off, h)
	}
}

// checkLevels checks the image half of invariant 18 on any image a node or broker holds: below
// metadata.version 3 it holds no ACL, below 4 no client quota.
func (s *sim) checkLevels(img *metadatalog.Image, who string) {
	lvl := img.MetadataVersion()
	if lvl < metadatalog.ACLsLevel && img.ACLCount() > 0 {
		s.fail(18, "%s at offset %d is at metadata.version %d and holds %d ACLs", who, img.Offset, lvl, img.ACLCount())
	}
	if lvl < metadatalog.QuotasLevel && img.ClientQuotaCount() > 0 {
		s.fail(18, "%s at offset %d is at metadata.version %d and holds %d client quotas", who, img.Offset, lvl, img.ClientQuotaCount())
	}
}

// raceFaults fires the faults aimed at downgrades' proposers: a crash if it still leads, or a partition
// that cuts it off alone if none is under way.
func (s *sim) raceFaults() {
	kept := s.fw.strikes[:0]
	for _, st := range s.fw.strikes {
		if st.at > s.now {
			kept = append(kept, st)
			continue
		}
		n := s.nodes[st.node-1]
		if n.r == nil || !n.r.IsLeader() {
			continue
		}
		if !s.net.split() && s.rng.Float64() < 0.5 {
			s.net.group[n.id] = 1
			s.healAt = s.now + 50 + s.rng.Int64N(400)
			s.stats.Partitions++
			s.markRaced(func(id uint64) bool { return id == n.id })
			s.record(uint64(s.now), n.id, 64)
			continue
		}
		s.stats.LeaderCrashes++
		s.crash(n)
	}
	s.fw.strikes = kept
}

// markRaced marks the downgrades still undecided whose proposer cut matches.
func (s *sim) markRaced(cut func(id uint64) bool) {
	for _, d := range s.fw.downgrades {
		if d.pending > 0 && !d.raced && cut(d.node) {
			d.raced = true
			s.stats.Features.DowngradesRaced++
		}
	}
}

// checkDowngradesWhole checks the end of invariant 18 once everything has settled: no downgrade has
// committed some of its batches and given up on the rest.
func (s *sim) checkDowngradesWhole() {
	for _, d := range s.fw.downgrades {
		if d.committed > 0 && d.committed < d.want && d.pending == 0 {
			s.fail(18, "the downgrade to metadata.version %d that node %d proposed at step %d (epoch %d, offset %d) committed %d of its %d batches, removing %d ACLs and %d client quotas, and the rest was never written: it happened only in part", d.to, d.node, d.step, d.epoch, d.firstOffset, d.committed, d.want, d.removedACLs, d.removedQuotas)
		}
		if d.proposed > 0 && d.committed == 0 && d.lost == 0 {
			s.stats.Features.DowngradesLost++ // proposed past where the committed history ended
		}
	}
}

// fileLevels reads, from a snapshot's records, its metadata.version and how many ACLs and quotas it
// holds.
func fileLevels(records []*metadatapb.Record) (level int16, acls, quotas int) {
	for _, r := range records {
		switch rec := r.GetRecord().(type) {
		case *metadatapb.Record_FeatureLevel:
			if rec.FeatureLevel.GetName() == metadatalog.MetadataVersionFeature {
				level = int16(rec.FeatureLevel.GetFeatureLevel())
			}
		case *metadatapb.Record_AccessControlEntry:
			acls++
		case *metadatapb.Record_ClientQuota:
			quotas++
		}
	}
	return level, acls, quotas
}

// checkKeptSnapshots checks invariant 19 once n's writer is done with the snapshot at offset p (the log
// took its compaction, retention ran): every older file n keeps can be represented at p's level. A
// downgrade makes the next snapshot purge every older one; a node that missed the downgrade keeps files
// the lower level cannot represent.
func (s *sim) checkKeptSnapshots(n *node, p uint64) {
	var at *snapFile
	for _, f := range n.snaps {
		if f.mark.Offset == p {
			at = f
		}
	}
	if at == nil {
		return // replaced meanwhile by a newer file of the leader's; its own retention will tell
	}
	for _, f := range n.snaps {
		if f.mark.Offset >= p {
			break
		}
		if at.level < metadatalog.ACLsLevel && f.acls > 0 || at.level < metadatalog.QuotasLevel && f.quotas > 0 {
			s.fail(19, "node %d wrote its snapshot at offset %d at metadata.version %d, and still keeps the one at offset %d (metadata.version %d, %d ACLs, %d client quotas), which that level cannot represent (files %s; snapshot levels seen since the node started: %d)",
				n.id, p, at.level, f.mark.Offset, f.level, f.acls, f.quotas, describeFiles(n.snaps), n.snapLevel)
		}
	}
}
