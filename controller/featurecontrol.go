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
type featureControl struct{}

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

// updateFeatures validates updates in request order; the first error aborts the whole request and writes
// nothing, as Kafka does. An update to the level already finalized is accepted and still written.
func (featureControl) updateFeatures(img *metadatalog.Image, updates []featureUpdate) ([]*metadatapb.Record, *kerr.Error, string) {
	var records []*metadatapb.Record
	for _, u := range updates {
		if u.name != metadatalog.MetadataVersionFeature {
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version for feature %s: the controller does not support that feature.", u.name)
		}
		if u.upgradeType < upgradeTypeUpgrade || u.upgradeType > upgradeTypeUnsafeDowngrade {
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version for feature %s: unknown upgrade type %d.", u.name, u.upgradeType)
		}
		if u.level < 0 {
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s: the level must not be negative.", u.level, u.name)
		}
		cur := img.MetadataVersion()
		target, known := metadatalog.MetadataVersionByLevel(u.level)
		if !known {
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s: the local controller only supports versions %d-%d.",
				u.level, u.name, metadatalog.MinMetadataVersion.Level, metadatalog.LatestMetadataVersion.Level)
		}
		if msg := brokersRefusing(img, u); msg != "" {
			return nil, kerr.InvalidUpdateVersion, msg
		}
		switch {
		case u.level < cur && u.upgradeType == upgradeTypeUpgrade:
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s: Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.", u.level, u.name)
		case u.level > cur && u.upgradeType != upgradeTypeUpgrade:
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid update version %d for feature %s: Can't downgrade to a newer version.", u.level, u.name)
		case u.level < cur && u.upgradeType == upgradeTypeSafeDowngrade:
			for _, v := range metadatalog.MetadataVersions {
				if v.Level > u.level && v.Level <= cur && v.ChangesMetadata {
					return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid metadata.version %d. Refusing to perform the requested downgrade because it might delete metadata information.", u.level)
				}
			}
		case u.level < cur && u.upgradeType == upgradeTypeUnsafeDowngrade:
			return nil, kerr.InvalidUpdateVersion, fmt.Sprintf("Invalid metadata.version %d. Unsafe metadata downgrade is not supported by this version yet.", u.level)
		}
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{
			Name: u.name, FeatureLevel: int32(target.Level)}}})
	}
	return records, nil, ""
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
