package controller

// ApiVersions (key 18) is answered by the Kafka-protocol server itself; this file fills its feature
// fields (v3+): the metadata.version range this software supports, the finalized level, and
// FinalizedFeaturesEpoch = the offset of the image the answer comes from.

import (
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DecorateApiVersions adds the supported and finalized features to an ApiVersions answer.
func (c *Controller) DecorateApiVersions(resp *kmsg.ApiVersionsResponse) {
	sf := kmsg.NewApiVersionsResponseSupportedFeature()
	sf.Name = metadatalog.MetadataVersionFeature
	sf.MinVersion, sf.MaxVersion = metadatalog.MinMetadataVersion.Level, c.features.localMax()
	resp.SupportedFeatures = append(resp.SupportedFeatures, sf)

	img := c.image.Load()
	resp.FinalizedFeaturesEpoch = int64(img.Offset)
	for name, level := range img.Features() {
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = name, level, level
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
	}
}
