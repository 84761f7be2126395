package compat

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzGoUpdateFeatures drives UpdateFeatures with kadm through a broker, without changing the
// shared cluster's level: a validateOnly request at the current level is accepted; an UPGRADE to a
// lower level, a safe downgrade across the ACL level and an unknown feature are refused with
// INVALID_UPDATE_VERSION; a validateOnly unsafe downgrade is accepted and its answer says what it
// would drop.
func TestFranzGoUpdateFeatures(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[c.brokers[0]]), kgo.ClientID("kraft-compat-features"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	mv := metadatalog.MetadataVersionFeature
	latest := metadatalog.LatestMetadataVersion.Level

	cases := []struct {
		name         string
		validateOnly bool
		update       kadm.FeatureUpdate
		want         error
	}{
		{"the current level, validateOnly", true, kadm.FeatureUpdate{Feature: mv, MaxVersionLevel: latest, UpgradeType: 1}, nil},
		{"a lower level as an upgrade", true, kadm.FeatureUpdate{Feature: mv, MaxVersionLevel: 2, UpgradeType: 1}, kerr.InvalidUpdateVersion},
		{"a safe downgrade across the ACL level", true, kadm.FeatureUpdate{Feature: mv, MaxVersionLevel: 2, UpgradeType: 2}, kerr.InvalidUpdateVersion},
		{"a level this software does not know", true, kadm.FeatureUpdate{Feature: mv, MaxVersionLevel: latest + 1, UpgradeType: 1}, kerr.InvalidUpdateVersion},
		{"an unknown feature", true, kadm.FeatureUpdate{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}, kerr.InvalidUpdateVersion},
		{"an unsafe downgrade, validateOnly", true, kadm.FeatureUpdate{Feature: mv, MaxVersionLevel: 2, UpgradeType: 3}, nil},
	}
	for _, tc := range cases {
		res, err := adm.UpdateFeatures(ctx, tc.validateOnly, tc.update)
		if err != nil {
			t.Fatalf("%s: kadm UpdateFeatures: %v", tc.name, err)
		}
		got := res[tc.update.Feature].Err
		if (tc.want == nil) != (got == nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// The unsafe dry run's message, which kadm does not surface, from the raw answer.
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.ValidateOnly, req.TimeoutMillis = true, 30000
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = mv, 2, 3
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	r, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if r.ErrorCode != 0 || r.ErrorMessage == nil || !strings.HasPrefix(*r.ErrorMessage, "would drop ") {
		t.Fatalf("unsafe dry run answered %v %v, want no error and a \"would drop ...\" message", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	// Nothing changed.
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		for _, f := range v.Raw().FinalizedFeatures {
			if f.Name == mv && f.MaxVersionLevel != latest {
				t.Errorf("broker %d finalized metadata.version %d after dry runs, want %d", v.NodeID, f.MaxVersionLevel, latest)
			}
		}
	}
}
