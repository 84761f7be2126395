package broker

import (
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDecorateApiVersions(t *testing.T) {
	// Nothing applied yet: the supported range only, and the epoch stays "unknown".
	resp := kmsg.NewPtrApiVersionsResponse()
	decorateApiVersions(resp, [2]int16{1, 3}, metadatalog.EmptyImage())
	if len(resp.SupportedFeatures) != 1 || resp.SupportedFeatures[0].Name != "metadata.version" ||
		resp.SupportedFeatures[0].MinVersion != 1 || resp.SupportedFeatures[0].MaxVersion != 3 {
		t.Fatalf("supported %+v", resp.SupportedFeatures)
	}
	if len(resp.FinalizedFeatures) != 0 || resp.FinalizedFeaturesEpoch != -1 {
		t.Fatalf("finalized %+v epoch %d before any image", resp.FinalizedFeatures, resp.FinalizedFeaturesEpoch)
	}

	resp = kmsg.NewPtrApiVersionsResponse()
	decorateApiVersions(resp, [2]int16{1, 4}, testImage(t))
	if len(resp.FinalizedFeatures) != 1 || resp.FinalizedFeatures[0].Name != "metadata.version" ||
		resp.FinalizedFeatures[0].MinVersionLevel != 4 || resp.FinalizedFeatures[0].MaxVersionLevel != 4 {
		t.Fatalf("finalized %+v", resp.FinalizedFeatures)
	}
	if resp.FinalizedFeaturesEpoch != 2 {
		t.Fatalf("finalized epoch %d, want the image offset 2", resp.FinalizedFeaturesEpoch)
	}
}

func TestAPIsServeNoDataPlane(t *testing.T) {
	apis := New(Config{Logger: quietLogger()}).APIs()
	for _, key := range []int16{0, 1, 2, 8, 9, 10, 11} {
		if _, ok := apis[key]; ok {
			t.Errorf("the broker port advertises data-plane key %d", key)
		}
	}
	if r := apis[3]; r.Min != 0 || r.Max < 12 {
		t.Errorf("Metadata %d..%d: kcat and kafka-python need 0..12", r.Min, r.Max)
	}
	if r := apis[60]; r.Min != 0 || r.Max != 2 {
		t.Errorf("DescribeCluster %d..%d, want 0..2", r.Min, r.Max)
	}
	if r := apis[55]; r.Min != 0 || r.Max != 2 {
		t.Errorf("DescribeQuorum %d..%d, want 0..2 (forwarded)", r.Min, r.Max)
	}
}
