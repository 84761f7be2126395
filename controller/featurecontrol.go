package controller

import (
	"fmt"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Upgrade types of UpdateFeatures v1+ (KIP-778).
const (
	upgradeTypeUpgrade         = 1
	upgradeTypeSafeDowngrade   = 2
	upgradeTypeUnsafeDowngrade = 3
)

// featureControl turns feature requests into FeatureLevelRecords. It is pure: (image, request) in,
// (records, per-feature outcome) out.
type featureControl struct {
	// supportedMax is the newest metadata.version this controller supports
	// (metadata.version.supported.max); zero means the latest.
	supportedMax int16
}

// localMax is the newest level this controller supports.
func (f featureControl) localMax() int16 {
	if f.supportedMax == 0 {
		return metadatalog.LatestMetadataVersion.Level
	}
	return f.supportedMax
}

// bootstrapRecords are what an active controller writes to a log that has no metadata.version yet.
func (featureControl) bootstrapRecords(img *metadatalog.Image, bootstrap *metadatapb.RecordBatch) []*metadatapb.Record {
	if img.MetadataVersion() != 0 {
		return nil
	}
	return bootstrap.GetRecords()
}

type featureUpdate struct {
	name        string
	level       int16
	upgradeType int8
}

// controllerSupport is the metadata.version range a voter reports over the controller port; err says
// why it is unknown (the voter did not answer).
type controllerSupport struct {
	id     int32
	lo, hi int16
	err    error
}

// featureResult is what updateFeatures decides: the records to write, or the error that refuses the
// whole request, and what an unsafe downgrade drops.
type featureResult struct {
	records []*metadatapb.Record
	code    *kerr.Error
	msg     string
	// droppedACLs and droppedQuotas count what an unsafe downgrade removes.
	droppedACLs, droppedQuotas int
}

// dropped says what an unsafe downgrade removed, as its answer's message does: "dropped 2 ACL entries
// and 1 client-quota entry" (validateOnly: "would drop ..."); empty when nothing was unsafe.
func (r featureResult) dropped(validateOnly bool, unsafe bool) string {
	if !unsafe {
		return ""
	}
	verb := "dropped"
	if validateOnly {
		verb = "would drop"
	}
	return fmt.Sprintf("%s %s and %s", verb, plural(r.droppedACLs, "ACL entry", "ACL entries"), plural(r.droppedQuotas, "client-quota entry", "client-quota entries"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// updateFeatures validates updates in request order; the first error aborts the whole request and writes
// nothing, as Kafka does. An update to the level already finalized is accepted and still written.
// controllers are the voters' reported ranges: every one must support an upgrade's target.
//
// An unsafe downgrade, which Kafka refuses, is done in one batch: the records removing everything the
// target level cannot represent (ACLs below level 3, client quotas below level 4), then the level.
func (f featureControl) updateFeatures(img *metadatalog.Image, updates []featureUpdate, controllers []controllerSupport) featureResult {
	var res featureResult
	refuse := func(format string, args ...any) featureResult {
		return featureResult{code: kerr.InvalidUpdateVersion, msg: fmt.Sprintf(format, args...)}
	}
	cur := img.MetadataVersion()
	dropped := 0 // how far unrepresentable has been applied: 0, or the lowest unsafe target so far
	for _, u := range updates {
		if u.name != metadatalog.MetadataVersionFeature {
			return refuse("Invalid update version for feature %s: the controller does not support that feature.", u.name)
		}
		if u.upgradeType < upgradeTypeUpgrade || u.upgradeType > upgradeTypeUnsafeDowngrade {
			return refuse("Invalid update version for feature %s: unknown upgrade type %d.", u.name, u.upgradeType)
		}
		if u.level < 0 {
			return refuse("Invalid update version %d for feature %s: the level must not be negative.", u.level, u.name)
		}
		target, known := metadatalog.MetadataVersionByLevel(u.level)
		if !known || u.level > f.localMax() {
			return refuse("Invalid update version %d for feature %s: the local controller only supports versions %d-%d.",
				u.level, u.name, metadatalog.MinMetadataVersion.Level, f.localMax())
		}
		if msg := brokersRefusing(img, u); msg != "" {
			return refuse("%s", msg)
		}
		if msg := controllersRefusing(controllers, u); u.level > cur && msg != "" {
			return refuse("%s", msg)
		}
		switch {
		case u.level < cur && u.upgradeType == upgradeTypeUpgrade:
			return refuse("Invalid update version %d for feature %s: Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.", u.level, u.name)
		case u.level > cur && u.upgradeType != upgradeTypeUpgrade:
			return refuse("Invalid update version %d for feature %s: Can't downgrade to a newer version.", u.level, u.name)
		case u.level < cur && u.upgradeType == upgradeTypeSafeDowngrade:
			for _, v := range metadatalog.MetadataVersions {
				if v.Level > u.level && v.Level <= cur && v.ChangesMetadata {
					return refuse("Invalid metadata.version %d. Refusing to perform the requested downgrade because it might delete metadata information.", u.level)
				}
			}
		case u.level < cur && u.upgradeType == upgradeTypeUnsafeDowngrade:
			// A request may name the feature more than once; each removal is written once.
			removals, acls, quotas := unrepresentable(img, u.level, int16(dropped))
			res.records = append(res.records, removals...)
			res.droppedACLs += acls
			res.droppedQuotas += quotas
			if dropped == 0 || int(u.level) < dropped {
				dropped = int(u.level)
			}
		}
		res.records = append(res.records, &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{
			Name: u.name, FeatureLevel: int32(target.Level)}}})
	}
	return res
}

// unrepresentable returns the records removing what level cannot hold, with how many ACLs and
// client-quota entries they remove, leaving out what an earlier removal down to done (0 for none)
// already removed.
func unrepresentable(img *metadatalog.Image, level, done int16) (records []*metadatapb.Record, acls, quotas int) {
	if done != 0 && level >= done {
		return nil, 0, 0
	}
	if level < metadatalog.ACLsLevel && (done == 0 || done >= metadatalog.ACLsLevel) {
		for _, a := range img.ACLs() {
			records = append(records, &metadatapb.Record{Record: &metadatapb.Record_RemoveAccessControlEntry{
				RemoveAccessControlEntry: &metadatapb.RemoveAccessControlEntryRecord{Id: a.ID[:]}}})
			acls++
		}
	}
	if level < metadatalog.QuotasLevel && (done == 0 || done >= metadatalog.QuotasLevel) {
		for _, q := range img.ClientQuotas() {
			for key := range q.Values {
				records = append(records, metadatalog.QuotaRecord(q.Entity, key, 0, true))
				quotas++
			}
		}
	}
	return records, acls, quotas
}

// controllersRefusing names the first voter that does not support a target level, or whose range is
// unknown because it did not answer. Only upgrades are checked: every level down to the minimum stays
// supported.
func controllersRefusing(controllers []controllerSupport, u featureUpdate) string {
	for _, c := range controllers {
		if c.err != nil {
			return fmt.Sprintf("Invalid update version %d for feature %s. Controller %d did not report the versions it supports (%v): start it, or retry once it is back.", u.level, u.name, c.id, c.err)
		}
		if u.level < c.lo || u.level > c.hi {
			return fmt.Sprintf("Invalid update version %d for feature %s. Controller %d only supports versions %d-%d.", u.level, u.name, c.id, c.lo, c.hi)
		}
	}
	return ""
}

// brokersRefusing names the first registered broker, fenced or not, that cannot run at the target
// level. A broker that reported no metadata.version range is taken to support only level 1, as Kafka does.
func brokersRefusing(img *metadatalog.Image, u featureUpdate) string {
	for _, b := range img.Brokers() {
		lo, hi, reported := int32(1), int32(1), false
		for _, f := range b.Features {
			if f.GetName() == u.name {
				lo, hi, reported = f.GetMinSupportedVersion(), f.GetMaxSupportedVersion(), true
			}
		}
		if int32(u.level) >= lo && int32(u.level) <= hi {
			continue
		}
		if !reported && u.level > 1 {
			return fmt.Sprintf("Invalid update version %d for feature %s. Broker %d does not support this feature.", u.level, u.name, b.ID)
		}
		return fmt.Sprintf("Invalid update version %d for feature %s. Broker %d only supports versions %d-%d.", u.level, u.name, b.ID, lo, hi)
	}
	return ""
}

// updatesFromRequest reads UpdateFeatures v0 (AllowDowngrade) and v1+ (UpgradeType) alike.
func updatesFromRequest(req *kmsg.UpdateFeaturesRequest) []featureUpdate {
	out := make([]featureUpdate, 0, len(req.FeatureUpdates))
	for _, f := range req.FeatureUpdates {
		u := featureUpdate{name: f.Feature, level: f.MaxVersionLevel, upgradeType: f.UpgradeType}
		if req.Version == 0 {
			u.upgradeType = upgradeTypeUpgrade
			if f.AllowDowngrade {
				u.upgradeType = upgradeTypeSafeDowngrade
			}
		}
		out = append(out, u)
	}
	return out
}
