package broker

// ApiVersions (key 18) is answered by the Kafka-protocol server itself; this file fills its feature
// fields (v3+): the metadata.version range this broker supports, the finalized features of the image it
// serves, and FinalizedFeaturesEpoch = that image's offset (left at -1, "unknown", before the broker has
// applied anything).

import (
	"cmp"
	"slices"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DecorateApiVersions adds the supported and finalized features to an ApiVersions answer.
func (b *Broker) DecorateApiVersions(resp *kmsg.ApiVersionsResponse) {
	decorateApiVersions(resp, b.cfg.SupportedMetadataVersion, b.image.Load())
}

func decorateApiVersions(resp *kmsg.ApiVersionsResponse, supported [2]int16, img *metadatalog.Image) {
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name = metadatalog.MetadataVersionFeature
	sf.MinVersion, sf.MaxVersion = supported[0], supported[1]
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)

	if img.Offset == 0 {
		return
	}
	resp.FinalizedFeaturesEpoch = int64(img.Offset)
	for name, level := range img.Features() {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = name, level, level
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	}
	slices.SortFunc(resp.FinalizedFeatures, func(a, b kmsg.ApiVersionsResponseFinalizedFeature) int { return cmp.Compare(a.Name, b.Name) })
}
