package controller

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"google.golang.org/protobuf/proto"
)

// clusterControl is the cluster-membership manager, Kafka's ClusterControlManager together with the
// decisions of its BrokerHeartbeatManager: registration, the broker state machine that heartbeats drive,
// fencing on session expiry, and unregistration. It is pure: (image, request, the offset its records
// will land at, the soft state it needs) in, (records, answer) out. The soft state itself — sessions,
// reported offsets, where a controlled shutdown began — belongs to the event loop (sessions.go), because
// only the active controller has it and it never enters the log.
//
// The broker states are Kafka's BrokerControlState. FENCED, UNFENCED and CONTROLLED_SHUTDOWN are read
// from the image (a fenced broker is FENCED whatever its in-controlled-shutdown flag says); SHUTDOWN_NOW
// is only ever an answer. The transitions follow Kafka's BrokerHeartbeatManager.calculateNextBrokerState
// and ReplicationControlManager.processBrokerHeartbeat / handleBrokerFenced / handleBrokerUnfenced /
// handleBrokerInControlledShutdown:
//
//	FENCED     WantShutDown                          → SHUTDOWN_NOW  nothing to write: it leads nothing
//	                                                                 (Kafka re-writes a redundant fence)
//	           !WantFence, offset ≥ registration     → UNFENCED      {fenced FALSE}, then leaders for
//	                                                                 leaderless partitions
//	           otherwise                             → FENCED
//	UNFENCED   WantFence (with or without shutdown)  → FENCED, or SHUTDOWN_NOW if WantShutDown:
//	                                                                 ISR/leader moves, then {fenced TRUE}
//	           WantShutDown, leads partitions        → CONTROLLED_SHUTDOWN {in_controlled_shutdown TRUE},
//	                                                                 then ISR/leader moves
//	           WantShutDown, leads nothing           → SHUTDOWN_NOW  {fenced TRUE}
//	           otherwise                             → UNFENCED
//	CONTROLLED still leads partitions                → CONTROLLED_SHUTDOWN
//	_SHUTDOWN  every active broker (unfenced, not    → SHUTDOWN_NOW  {fenced TRUE}; Kafka leaves
//	           shutting down) has reached the offset                 in_controlled_shutdown set, and so
//	           where the shutdown was written                        do we (a new registration resets it)
//	           otherwise                             → CONTROLLED_SHUTDOWN
//
// The answer: IsCaughtUp = CurrentMetadataOffset ≥ the registration's offset (the broker epoch), so a
// broker learns it is current from the offsets it applies, never from a periodic no-op (KAFKA-13955);
// IsFenced = the next state is FENCED or SHUTDOWN_NOW; ShouldShutDown = it is SHUTDOWN_NOW. An answer is
// sent only once the records it describes commit, as Kafka completes a write event.
type clusterControl struct {
	clusterID string
	// leadership moves partition leaders when a broker's state changes; nil means the replication
	// manager (replicationControl), so every clusterControl, the loop's and test/sim's, has it. Tests put
	// a fake here.
	leadership partitionLeadership
}

// partitionLeadership is the hook where the replication manager moves partition leadership and ISR
// membership away from brokers that are fenced, shutting down or unregistered, and gives leaderless
// partitions to brokers that are unfenced. Records it returns go into the same write as the broker's
// state change: the moves before a fence or unregistration, after an unfence or the controlled-shutdown
// flag. The write may span batches (Controller.writeInBatches); that order is what keeps it safe, so no
// image ever shows a fenced broker leading (DESIGN.md, "Fencing").
type partitionLeadership interface {
	// leads reports whether the broker leads any partition (Kafka's hasLeaderships).
	leads(img *metadatalog.Image, broker int32) bool
	// evict returns the records that remove the brokers from every ISR and elect new leaders for the
	// partitions they led. Several brokers come together when their sessions expire at once, so that a
	// partition that lost two replicas changes once.
	evict(img *metadatalog.Image, brokers []int32) []*metadatapb.Record
	// admit returns the records that elect the newly unfenced broker leader of partitions that have none.
	admit(img *metadatalog.Image, broker int32) []*metadatapb.Record
}

// moves is the leadership hook in use.
func (cc clusterControl) moves() partitionLeadership {
	if cc.leadership == nil {
		return replicationControl{}
	}
	return cc.leadership
}

// brokerState is Kafka's BrokerControlState.
type brokerState int8

const (
	brokerFenced brokerState = iota
	brokerUnfenced
	brokerControlledShutdown
	brokerShutdownNow
)

func (s brokerState) String() string {
	switch s {
	case brokerFenced:
		return "FENCED"
	case brokerUnfenced:
		return "UNFENCED"
	case brokerControlledShutdown:
		return "CONTROLLED_SHUTDOWN"
	case brokerShutdownNow:
		return "SHUTDOWN_NOW"
	}
	return fmt.Sprintf("brokerState(%d)", int8(s))
}

func (s brokerState) fenced() bool { return s == brokerFenced || s == brokerShutdownNow }

// stateOf reads a registered broker's state from the image.
func stateOf(b *metadatalog.Broker) brokerState {
	switch {
	case b.Fenced:
		return brokerFenced
	case b.InControlledShutdown:
		return brokerControlledShutdown
	}
	return brokerUnfenced
}

// brokerRegistration is a BrokerRegistration request, whatever its version.
type brokerRegistration struct {
	id          int32
	clusterID   string
	incarnation [16]byte
	endpoints   []*metadatapb.Endpoint
	features    []*metadatapb.FeatureRange
	rack        string
	logDirs     [][16]byte
	// migratingZK: v1+'s IsMigratingZkBroker. There is no ZooKeeper here to migrate from.
	migratingZK bool
}

// registerOutcome is what a registration decides.
type registerOutcome struct {
	records []*metadatapb.Record
	// epoch is the broker epoch to answer with once records (if any) commit.
	epoch int64
	// newIncarnation: the registration replaces whatever session the id had.
	newIncarnation bool
	code           *kerr.Error
	msg            string
}

// register decides a BrokerRegistration. offset is where its batch will land, which becomes the broker
// epoch of a new incarnation; liveFor is how long the id's current session still has (0: none alive, per
// the active controller's soft state). A broker id that is also a voter is fine: in combined mode one
// node.id is both.
func (cc clusterControl) register(img *metadatalog.Image, r brokerRegistration, offset uint64, liveFor time.Duration) registerOutcome {
	if r.clusterID != cc.clusterID {
		return registerOutcome{code: kerr.InconsistentClusterID, msg: fmt.Sprintf(
			"Expected cluster ID %s, but got cluster ID %s: broker %d was formatted for another cluster.", cc.clusterID, r.clusterID, r.id)}
	}
	existing, registered := img.Broker(r.id)
	sameIncarnation := registered && bytes.Equal(existing.IncarnationID, r.incarnation[:])
	// Only a live, unfenced registration holds its id, as in Kafka (a fenced broker has no valid
	// session there): a broker restarted right after its controlled shutdown, or after a failover
	// gave every broker a fresh session, must not wait out a session it no longer uses.
	if registered && !sameIncarnation && liveFor > 0 && !existing.Fenced {
		return registerOutcome{code: kerr.DuplicateBrokerRegistration, msg: fmt.Sprintf(
			"Another broker is registered with that broker id. Broker %d is registered at epoch %d by incarnation %s, whose session is alive for another %v; "+
				"if that broker was restarted, this resolves once its old session expires.",
			r.id, existing.Epoch, uuidString(existing.IncarnationID), liveFor.Round(time.Millisecond))}
	}
	if r.migratingZK {
		return registerOutcome{code: kerr.BrokerIDNotRegistered, msg: "Controller does not support registering ZK brokers."}
	}
	features := withImpliedMetadataVersion(r.features)
	if msg := unsupportedFinalizedFeature(img, features); msg != "" {
		return registerOutcome{code: kerr.UnsupportedVersion, msg: msg}
	}
	rec := &metadatapb.RegisterBrokerRecord{
		BrokerId: r.id, IncarnationId: slices.Clone(r.incarnation[:]), BrokerEpoch: int64(offset),
		Endpoints: r.endpoints, Features: features, Rack: r.rack, Fenced: true,
	}
	for _, d := range r.logDirs {
		rec.LogDirs = append(rec.LogDirs, slices.Clone(d[:]))
	}
	if sameIncarnation {
		// The same process again (a retry, or a broker that lost its session but not its life): amend the
		// registration in place. Its epoch, fenced and controlled-shutdown state stay, and nothing is
		// written unless what it advertises changed.
		rec.BrokerEpoch, rec.Fenced, rec.InControlledShutdown = existing.Epoch, existing.Fenced, existing.InControlledShutdown
		if sameAdvertisement(existing, rec) {
			return registerOutcome{epoch: existing.Epoch}
		}
		return registerOutcome{epoch: existing.Epoch, records: []*metadatapb.Record{registerRecord(rec)}}
	}
	var records []*metadatapb.Record
	if registered && !existing.Fenced {
		// The old incarnation's session has lapsed but its fence has not been written yet: take it out of
		// leadership before the new incarnation replaces it.
		records = append(records, cc.moves().evict(img, []int32{r.id})...)
	}
	// The epoch is the offset of the batch that holds the registration, which follows the evictions.
	epoch := int64(batchOffset(offset, len(records)))
	rec.BrokerEpoch = epoch
	records = append(records, registerRecord(rec))
	return registerOutcome{records: records, epoch: epoch, newIncarnation: true}
}

func registerRecord(r *metadatapb.RegisterBrokerRecord) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: r}}
}

func sameAdvertisement(b *metadatalog.Broker, r *metadatapb.RegisterBrokerRecord) bool {
	eq := func(x, y *metadatapb.Endpoint) bool { return proto.Equal(x, y) }
	feq := func(x, y *metadatapb.FeatureRange) bool { return proto.Equal(x, y) }
	return b.Rack == r.Rack && slices.EqualFunc(b.Endpoints, r.Endpoints, eq) && slices.EqualFunc(b.Features, r.Features, feq)
}

// withImpliedMetadataVersion adds metadata.version [1,1] when the broker sent no range for it: Kafka
// takes such a broker to support only the first level, and writes that range into its record.
func withImpliedMetadataVersion(features []*metadatapb.FeatureRange) []*metadatapb.FeatureRange {
	for _, f := range features {
		if f.GetName() == metadatalog.MetadataVersionFeature {
			return features
		}
	}
	lvl := int32(metadatalog.MinMetadataVersion.Level)
	return append(slices.Clip(features), &metadatapb.FeatureRange{Name: metadatalog.MetadataVersionFeature, MinSupportedVersion: lvl, MaxSupportedVersion: lvl})
}

// unsupportedFinalizedFeature names the first finalized feature whose level the broker's range excludes.
// A feature the broker does not mention is taken to be supported at level 0 only.
func unsupportedFinalizedFeature(img *metadatalog.Image, features []*metadatapb.FeatureRange) string {
	finalized := img.Features()
	names := make([]string, 0, len(finalized))
	for name := range finalized {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		level := int32(finalized[name])
		if level == 0 {
			continue
		}
		lo, hi := int32(0), int32(0)
		for _, f := range features {
			if f.GetName() == name {
				lo, hi = f.GetMinSupportedVersion(), f.GetMaxSupportedVersion()
			}
		}
		if level < lo || level > hi {
			return fmt.Sprintf("Unable to register because the broker does not support finalized version %d of %s. The broker wants a version between %d and %d, inclusive.",
				level, name, lo, hi)
		}
	}
	return ""
}

// brokerHeartbeat is a BrokerHeartbeat request, whatever its version.
type brokerHeartbeat struct {
	id             int32
	epoch          int64
	metadataOffset int64
	wantFence      bool
	wantShutDown   bool
}

// shutdownProgress is the soft state a heartbeat of a broker in controlled shutdown needs.
type shutdownProgress struct {
	// startedAt is the offset of the batch that began this broker's controlled shutdown on this
	// controller, or -1 if it began before this controller activated.
	startedAt int64
	// lowestActiveOffset is the lowest metadata offset reported by the active brokers (unfenced and not
	// shutting down); math.MaxInt64 if there are none. It is only consulted while a broker in controlled
	// shutdown leads nothing.
	lowestActiveOffset func() int64
}

// heartbeatOutcome is what a heartbeat decides.
type heartbeatOutcome struct {
	records  []*metadatapb.Record
	from, to brokerState
	caughtUp bool
	// shutdownOffset is where the controlled shutdown counts as written when to is CONTROLLED_SHUTDOWN:
	// the loop remembers it, and the broker may stop once every active broker has reached it.
	shutdownOffset int64
	code           *kerr.Error
	msg            string
}

// heartbeat decides a BrokerHeartbeat of a broker. offset is where its batch would land. Errors are
// Kafka's: an unknown broker and a wrong epoch both answer STALE_BROKER_EPOCH (Kafka reserves
// BROKER_ID_NOT_REGISTERED for UnregisterBroker), and the broker should register again.
func (cc clusterControl) heartbeat(img *metadatalog.Image, hb brokerHeartbeat, offset uint64, progress shutdownProgress) heartbeatOutcome {
	b, ok := img.Broker(hb.id)
	if !ok {
		return heartbeatOutcome{code: kerr.StaleBrokerEpoch, msg: fmt.Sprintf(
			"No broker registration found for broker id %d: the broker must register before it heartbeats.", hb.id)}
	}
	if b.Epoch != hb.epoch {
		return heartbeatOutcome{code: kerr.StaleBrokerEpoch, msg: fmt.Sprintf(
			"Expected broker epoch %d, but got broker epoch %d: broker %d has registered again since.", b.Epoch, hb.epoch, hb.id)}
	}
	o := heartbeatOutcome{from: stateOf(b), caughtUp: hb.metadataOffset >= b.Epoch, shutdownOffset: -1}
	o.to = o.from
	moves := cc.moves()
	switch o.from {
	case brokerFenced:
		switch {
		case hb.wantShutDown:
			o.to = brokerShutdownNow
		case !hb.wantFence && o.caughtUp:
			o.to = brokerUnfenced
			o.records = append(o.records, registrationChange(b, metadatapb.BoolChange_BOOL_CHANGE_FALSE, clearShutdownFlag(b)))
			o.records = append(o.records, moves.admit(img, b.ID)...)
		}
	case brokerUnfenced:
		switch {
		case hb.wantFence:
			o.to = brokerFenced
			if hb.wantShutDown {
				o.to = brokerShutdownNow
			}
			o.records = fenceRecords(moves, img, b)
		case hb.wantShutDown && moves.leads(img, b.ID):
			o.to = brokerControlledShutdown
			o.shutdownOffset = int64(offset)
			o.records = append(o.records, registrationChange(b, metadatapb.BoolChange_BOOL_CHANGE_NONE, metadatapb.BoolChange_BOOL_CHANGE_TRUE))
			o.records = append(o.records, moves.evict(img, []int32{b.ID})...)
		case hb.wantShutDown:
			o.to = brokerShutdownNow
			o.records = fenceRecords(moves, img, b)
		}
	case brokerControlledShutdown:
		o.shutdownOffset = progress.startedAt
		if o.shutdownOffset < 0 {
			// The shutdown began under an earlier active controller, whose writes this one has applied:
			// count it from the end of the log as this controller knows it.
			o.shutdownOffset = int64(offset) - 1
		}
		if !moves.leads(img, b.ID) && progress.lowestActiveOffset() >= o.shutdownOffset {
			o.to = brokerShutdownNow
			o.records = fenceRecords(moves, img, b)
		}
	}
	return o
}

// fenceRecords moves a broker's leadership away and fences it.
func fenceRecords(moves partitionLeadership, img *metadatalog.Image, b *metadatalog.Broker) []*metadatapb.Record {
	records := moves.evict(img, []int32{b.ID})
	return append(records, registrationChange(b, metadatapb.BoolChange_BOOL_CHANGE_TRUE, metadatapb.BoolChange_BOOL_CHANGE_NONE))
}

// clearShutdownFlag makes an unfence also leave controlled shutdown, so an unfenced broker is UNFENCED.
func clearShutdownFlag(b *metadatalog.Broker) metadatapb.BoolChange {
	if b.InControlledShutdown {
		return metadatapb.BoolChange_BOOL_CHANGE_FALSE
	}
	return metadatapb.BoolChange_BOOL_CHANGE_NONE
}

func registrationChange(b *metadatalog.Broker, fenced, inControlledShutdown metadatapb.BoolChange) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_BrokerRegistrationChange{BrokerRegistrationChange: &metadatapb.BrokerRegistrationChangeRecord{
		BrokerId: b.ID, BrokerEpoch: b.Epoch, Fenced: fenced, InControlledShutdown: inControlledShutdown}}}
}

// expiredSession is a session the loop found past its deadline.
type expiredSession struct {
	id    int32
	epoch int64
}

// fenceExpired fences the brokers whose sessions expired, in one write: their leadership moves away,
// then one BrokerRegistrationChange{fenced TRUE} each (the write may span bounded batches, fences
// last). A broker that is already fenced — or whose fence is in flight, which the speculative image
// already shows — or that registered again under another epoch is skipped, so an expiry fences at most
// once.
func (cc clusterControl) fenceExpired(img *metadatalog.Image, expired []expiredSession) (records []*metadatapb.Record, fenced []int32) {
	var brokers []*metadatalog.Broker
	for _, e := range expired {
		b, ok := img.Broker(e.id)
		if !ok || b.Epoch != e.epoch || b.Fenced {
			continue
		}
		brokers = append(brokers, b)
		fenced = append(fenced, b.ID)
	}
	if len(fenced) == 0 {
		return nil, nil
	}
	records = cc.moves().evict(img, fenced)
	for _, b := range brokers {
		records = append(records, registrationChange(b, metadatapb.BoolChange_BOOL_CHANGE_TRUE, metadatapb.BoolChange_BOOL_CHANGE_NONE))
	}
	return records, fenced
}

// unregister decides an UnregisterBroker: the broker's leadership moves away and its registration goes.
func (cc clusterControl) unregister(img *metadatalog.Image, id int32) ([]*metadatapb.Record, *kerr.Error, string) {
	b, ok := img.Broker(id)
	if !ok {
		return nil, kerr.BrokerIDNotRegistered, fmt.Sprintf("Broker ID %d is not currently registered", id)
	}
	records := cc.moves().evict(img, []int32{id})
	records = append(records, &metadatapb.Record{Record: &metadatapb.Record_UnregisterBroker{UnregisterBroker: &metadatapb.UnregisterBrokerRecord{
		BrokerId: id, BrokerEpoch: b.Epoch}}})
	return records, nil, ""
}

// uuidString renders an incarnation id in hex.
func uuidString(b []byte) string { return fmt.Sprintf("%x", b) }
