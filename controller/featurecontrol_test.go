package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// fcMV is the feature name, short for the tables below.
const fcMV = metadatalog.MetadataVersionFeature

func fcFeatureRecord(name string, level int32) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{Name: name, FeatureLevel: level}}}
}

// fcImage is an image finalized at metadata.version level (none when 0), plus extra records.
func fcImage(t *testing.T, level int16, extra ...*metadatapb.Record) *metadatalog.Image {
	t.Helper()
	var recs []*metadatapb.Record
	if level != 0 {
		recs = append(recs, fcFeatureRecord(fcMV, int32(level)))
	}
	recs = append(recs, extra...)
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	if img.MetadataVersion() != level {
		t.Fatalf("image at metadata.version %d, want %d", img.MetadataVersion(), level)
	}
	return img
}

func TestUpdateFeaturesAccepted(t *testing.T) {
	tests := []struct {
		name    string
		cur     int16
		target  int16
		upgrade int8
	}{
		{"upgrade 1 to 4", 1, 4, upgradeTypeUpgrade},
		{"upgrade 1 to 2", 1, 2, upgradeTypeUpgrade},
		{"upgrade 2 to 3", 2, 3, upgradeTypeUpgrade},
		{"upgrade 3 to 4", 3, 4, upgradeTypeUpgrade},
		{"equal level 1, upgrade", 1, 1, upgradeTypeUpgrade},
		{"equal level 4, upgrade", 4, 4, upgradeTypeUpgrade},
		{"equal level 3, safe downgrade", 3, 3, upgradeTypeSafeDowngrade},
		{"equal level 4, unsafe downgrade", 4, 4, upgradeTypeUnsafeDowngrade},
		{"safe downgrade 2 to 1", 2, 1, upgradeTypeSafeDowngrade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := fcImage(t, tc.cur)
			fr := featureControl{}.updateFeatures(img, []featureUpdate{{name: fcMV, level: tc.target, upgradeType: tc.upgrade}}, nil)
			recs, code, msg := fr.records, fr.code, fr.msg
			if code != nil {
				t.Fatalf("refused: %v %s", code, msg)
			}
			if msg != "" {
				t.Fatalf("success with a message %q", msg)
			}
			want := []*metadatapb.Record{fcFeatureRecord(fcMV, int32(tc.target))}
			if len(recs) != 1 || !proto.Equal(recs[0], want[0]) {
				t.Fatalf("records %v, want %v", recs, want)
			}
			// The record does what the request asked when applied.
			next, err := img.Apply(2, 1, &metadatapb.RecordBatch{Records: recs})
			if err != nil || next.MetadataVersion() != tc.target {
				t.Fatalf("applied: metadata.version %d (err %v), want %d", next.MetadataVersion(), err, tc.target)
			}
			if img.MetadataVersion() != tc.cur {
				t.Fatal("updateFeatures changed its image")
			}
		})
	}
}

func TestUpdateFeaturesRefused(t *testing.T) {
	tests := []struct {
		name    string
		cur     int16
		update  featureUpdate
		mention []string
	}{
		{"upgrade type to a lower level", 4, featureUpdate{fcMV, 1, upgradeTypeUpgrade},
			[]string{"Can't downgrade", "without setting the upgrade type to either safe or unsafe downgrade"}},
		{"upgrade type to a lower level by one", 2, featureUpdate{fcMV, 1, upgradeTypeUpgrade},
			[]string{"Can't downgrade", "without setting the upgrade type"}},
		{"safe downgrade type to a higher level", 1, featureUpdate{fcMV, 4, upgradeTypeSafeDowngrade}, []string{"Can't downgrade to a newer version"}},
		{"unsafe downgrade type to a higher level", 3, featureUpdate{fcMV, 4, upgradeTypeUnsafeDowngrade}, []string{"Can't downgrade to a newer version"}},
		{"safe 4 to 3 crosses a metadata change", 4, featureUpdate{fcMV, 3, upgradeTypeSafeDowngrade}, []string{"might delete metadata information"}},
		{"safe 4 to 2 crosses two", 4, featureUpdate{fcMV, 2, upgradeTypeSafeDowngrade}, []string{"might delete metadata information"}},
		{"safe 4 to 1", 4, featureUpdate{fcMV, 1, upgradeTypeSafeDowngrade}, []string{"might delete metadata information"}},
		{"safe 3 to 2 crosses level 3", 3, featureUpdate{fcMV, 2, upgradeTypeSafeDowngrade}, []string{"might delete metadata information"}},
		{"unknown feature", 1, featureUpdate{"group.version", 1, upgradeTypeUpgrade}, []string{"group.version"}},
		{"empty feature name", 1, featureUpdate{"", 1, upgradeTypeUpgrade}, nil},
		{"upgrade type 0 (UNKNOWN)", 1, featureUpdate{fcMV, 2, 0}, []string{"upgrade type 0"}},
		{"upgrade type 4", 1, featureUpdate{fcMV, 2, 4}, []string{"upgrade type 4"}},
		{"upgrade type -1", 1, featureUpdate{fcMV, 2, -1}, []string{"upgrade type -1"}},
		{"negative level", 1, featureUpdate{fcMV, -1, upgradeTypeUpgrade}, []string{"-1"}},
		{"negative level as a downgrade", 2, featureUpdate{fcMV, -2, upgradeTypeSafeDowngrade}, []string{"-2"}},
		{"level 9", 1, featureUpdate{fcMV, 9, upgradeTypeUpgrade}, []string{"9", "1-4"}},
		{"level 5", 4, featureUpdate{fcMV, 5, upgradeTypeUpgrade}, []string{"5", "1-4"}},
		{"level 0 disables metadata.version", 2, featureUpdate{fcMV, 0, upgradeTypeSafeDowngrade}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Alone, and after a valid update: the refusal must drop that one's record too.
			for _, updates := range [][]featureUpdate{{tc.update}, {{fcMV, tc.cur, upgradeTypeUpgrade}, tc.update}} {
				fr := featureControl{}.updateFeatures(fcImage(t, tc.cur), updates, nil)
				recs, code, msg := fr.records, fr.code, fr.msg
				if code == nil {
					t.Fatalf("%+v accepted, writing %v", updates, recs)
				}
				if code != kerr.InvalidUpdateVersion {
					t.Fatalf("%+v: error %v, want INVALID_UPDATE_VERSION", updates, code)
				}
				if len(recs) != 0 {
					t.Fatalf("%+v: a refusal returned records %v", updates, recs)
				}
				if msg == "" {
					t.Fatalf("%+v: a refusal without a message", updates)
				}
				for _, w := range tc.mention {
					if !strings.Contains(msg, w) {
						t.Fatalf("%+v: message %q does not mention %q", updates, msg, w)
					}
				}
			}
		})
	}
}

func TestUpdateFeaturesFirstErrorAbortsAll(t *testing.T) {
	tests := []struct {
		name    string
		updates []featureUpdate
	}{
		{"second fails", []featureUpdate{{fcMV, 3, upgradeTypeUpgrade}, {"group.version", 1, upgradeTypeUpgrade}}},
		{"first fails", []featureUpdate{{fcMV, 9, upgradeTypeUpgrade}, {fcMV, 3, upgradeTypeUpgrade}}},
		{"third fails", []featureUpdate{{fcMV, 2, upgradeTypeUpgrade}, {fcMV, 3, upgradeTypeUpgrade}, {fcMV, 1, upgradeTypeUpgrade}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := featureControl{}.updateFeatures(fcImage(t, 2), tc.updates, nil)
			recs, code := fr.records, fr.code
			if code != kerr.InvalidUpdateVersion {
				t.Fatalf("error %v, want INVALID_UPDATE_VERSION", code)
			}
			if len(recs) != 0 {
				t.Fatalf("a failed request still writes %v", recs)
			}
		})
	}
	// With no errors, every update is written, in request order.
	fr := featureControl{}.updateFeatures(fcImage(t, 2), []featureUpdate{{fcMV, 2, upgradeTypeUpgrade}, {fcMV, 3, upgradeTypeUpgrade}}, nil)
	recs, code, msg := fr.records, fr.code, fr.msg
	if code != nil {
		t.Fatalf("refused: %s", msg)
	}
	if len(recs) != 2 || recs[0].GetFeatureLevel().GetFeatureLevel() != 2 || recs[1].GetFeatureLevel().GetFeatureLevel() != 3 {
		t.Fatalf("records %v", recs)
	}
	// An empty request writes nothing and succeeds.
	if fr := (featureControl{}).updateFeatures(fcImage(t, 2), nil, nil); fr.code != nil || len(fr.records) != 0 {
		t.Fatalf("empty request: %v %v", fr.records, fr.code)
	}
}

// fcBroker registers a broker supporting metadata.version [lo, hi] (no range at all when hi is 0).
func fcBroker(id int32, lo, hi int32, fenced bool) *metadatapb.Record {
	r := &metadatapb.RegisterBrokerRecord{BrokerId: id, BrokerEpoch: 1, Fenced: fenced}
	if hi != 0 {
		r.Features = []*metadatapb.FeatureRange{{Name: fcMV, MinSupportedVersion: lo, MaxSupportedVersion: hi}}
	}
	return &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: r}}
}

// BUG (see report): KRAFT-REFERENCE.md §1 and DESIGN.md ("Upgrade … is refused while any registered
// broker or controller does not support the target, and the message names that node") — updateFeatures
// never looks at the registered brokers' supported ranges.
func TestUpdateFeaturesRefusesLevelsBrokersDoNotSupport(t *testing.T) {
	tests := []struct {
		name   string
		broker *metadatapb.Record
		target int16
		ok     bool
	}{
		{"broker supports the target", fcBroker(5, 1, 4, false), 4, true},
		{"unfenced broker supports only up to 2", fcBroker(5, 1, 2, false), 4, false},
		{"fenced broker supports only up to 2", fcBroker(5, 1, 2, true), 3, false},
		{"broker without a metadata.version range supports only 1", fcBroker(5, 0, 0, false), 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fr := featureControl{}.updateFeatures(fcImage(t, 1, tc.broker), []featureUpdate{{fcMV, tc.target, upgradeTypeUpgrade}}, nil)
			recs, code, msg := fr.records, fr.code, fr.msg
			if tc.ok {
				if code != nil || len(recs) != 1 {
					t.Fatalf("refused (%v %s) although every broker supports %d", code, msg, tc.target)
				}
				return
			}
			if code == nil {
				t.Fatalf("BUG: upgrade to %d accepted although broker 5 does not support it (records %v)", tc.target, recs)
			}
			if code != kerr.InvalidUpdateVersion || !strings.Contains(msg, "Broker 5") {
				t.Fatalf("refusal %v %q, want INVALID_UPDATE_VERSION naming Broker 5", code, msg)
			}
		})
	}
}

func TestBootstrapRecords(t *testing.T) {
	bootstrap := metadatalog.BootstrapRecords(metadatalog.LatestMetadataVersion)
	tests := []struct {
		name string
		img  *metadatalog.Image
		want bool
	}{
		{"empty log", metadatalog.EmptyImage(), true},
		{"other features but no metadata.version", fcImage(t, 0, fcFeatureRecord("group.version", 1)), true},
		{"metadata.version 1", fcImage(t, 1), false},
		{"metadata.version 4", fcImage(t, 4), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := featureControl{}.bootstrapRecords(tc.img, bootstrap)
			if !tc.want {
				if len(got) != 0 {
					t.Fatalf("bootstrap records %v written over an existing metadata.version", got)
				}
				return
			}
			if len(got) != len(bootstrap.GetRecords()) {
				t.Fatalf("records %v, want %v", got, bootstrap.GetRecords())
			}
			for i := range got {
				if !proto.Equal(got[i], bootstrap.GetRecords()[i]) {
					t.Fatalf("record %d = %v, want %v", i, got[i], bootstrap.GetRecords()[i])
				}
			}
			next, err := tc.img.Apply(2, 1, &metadatapb.RecordBatch{Records: got})
			if err != nil || next.MetadataVersion() != metadatalog.LatestMetadataVersion.Level {
				t.Fatalf("bootstrapped image at metadata.version %d (err %v)", next.MetadataVersion(), err)
			}
		})
	}
	if got := (featureControl{}).bootstrapRecords(metadatalog.EmptyImage(), nil); len(got) != 0 {
		t.Fatalf("no bootstrap batch gave records %v", got)
	}
}

func TestUpdatesFromRequest(t *testing.T) {
	type fu = kmsg.UpdateFeaturesRequestFeatureUpdate
	tests := []struct {
		name    string
		version int16
		updates []fu
		want    []featureUpdate
	}{
		{"v0 without AllowDowngrade is an upgrade", 0, []fu{{Feature: fcMV, MaxVersionLevel: 4}}, []featureUpdate{{fcMV, 4, upgradeTypeUpgrade}}},
		{"v0 AllowDowngrade is a safe downgrade", 0, []fu{{Feature: fcMV, MaxVersionLevel: 1, AllowDowngrade: true}}, []featureUpdate{{fcMV, 1, upgradeTypeSafeDowngrade}}},
		{"v0 ignores UpgradeType", 0, []fu{{Feature: fcMV, MaxVersionLevel: 1, UpgradeType: upgradeTypeUnsafeDowngrade}}, []featureUpdate{{fcMV, 1, upgradeTypeUpgrade}}},
		{"v1 uses UpgradeType", 1, []fu{{Feature: fcMV, MaxVersionLevel: 2, UpgradeType: upgradeTypeSafeDowngrade}}, []featureUpdate{{fcMV, 2, upgradeTypeSafeDowngrade}}},
		{"v1 ignores AllowDowngrade", 1, []fu{{Feature: fcMV, MaxVersionLevel: 2, AllowDowngrade: true, UpgradeType: upgradeTypeUpgrade}}, []featureUpdate{{fcMV, 2, upgradeTypeUpgrade}}},
		{"v1 passes an unknown type through for validation", 1, []fu{{Feature: fcMV, MaxVersionLevel: 2, UpgradeType: 0}}, []featureUpdate{{fcMV, 2, 0}}},
		{"v2 unsafe downgrade", 2, []fu{{Feature: fcMV, MaxVersionLevel: 3, UpgradeType: upgradeTypeUnsafeDowngrade}}, []featureUpdate{{fcMV, 3, upgradeTypeUnsafeDowngrade}}},
		{"order and names kept", 1, []fu{{Feature: "b", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "a", MaxVersionLevel: 2, UpgradeType: 2}},
			[]featureUpdate{{"b", 1, 1}, {"a", 2, 2}}},
		{"empty", 1, nil, []featureUpdate{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.Version = tc.version
			req.FeatureUpdates = tc.updates
			got := updatesFromRequest(req)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("updates %+v, want %+v", got, tc.want)
			}
		})
	}
	// End to end: a v0 downgrade is held to the safe-downgrade rule.
	for _, tc := range []struct {
		cur, target int16
		ok          bool
	}{{2, 1, true}, {4, 3, false}, {3, 4, true}} {
		t.Run(fmt.Sprintf("v0 AllowDowngrade %d to %d", tc.cur, tc.target), func(t *testing.T) {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.Version = 0
			req.FeatureUpdates = []fu{{Feature: fcMV, MaxVersionLevel: tc.target, AllowDowngrade: tc.cur > tc.target}}
			fr := featureControl{}.updateFeatures(fcImage(t, tc.cur), updatesFromRequest(req), nil)
			code, msg := fr.code, fr.msg
			if (code == nil) != tc.ok {
				t.Fatalf("outcome %v %q, want ok=%v", code, msg, tc.ok)
			}
		})
	}
}

func fcACL(id byte) *metadatapb.Record {
	uuid := make([]byte, 16)
	uuid[15] = id
	return &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
		Id: uuid, ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, PermissionType: 3}}}
}

// An unsafe downgrade removes, in one batch, what the target level cannot represent, then sets the
// level; the counts make its answer's message.
func TestUnsafeDowngrade(t *testing.T) {
	alice := "alice"
	quota := metadatalog.QuotaRecord([]metadatalog.QuotaEntityPart{{Type: "user", Name: &alice}}, "producer_byte_rate", 1024, false)
	img := fcImage(t, 4, fcACL(1), fcACL(2), quota)
	tests := []struct {
		name           string
		updates        []featureUpdate
		level          int16
		acls, quotas   int
		message        string
		remainingACLs  int
		remainingQuota int
	}{
		{"4 to 2", []featureUpdate{{fcMV, 2, upgradeTypeUnsafeDowngrade}}, 2, 2, 1, "dropped 2 ACL entries and 1 client-quota entry", 0, 0},
		{"4 to 3", []featureUpdate{{fcMV, 3, upgradeTypeUnsafeDowngrade}}, 3, 0, 1, "dropped 0 ACL entries and 1 client-quota entry", 2, 0},
		{"4 to 1", []featureUpdate{{fcMV, 1, upgradeTypeUnsafeDowngrade}}, 1, 2, 1, "dropped 2 ACL entries and 1 client-quota entry", 0, 0},
		{"named twice", []featureUpdate{{fcMV, 3, upgradeTypeUnsafeDowngrade}, {fcMV, 2, upgradeTypeUnsafeDowngrade}}, 2, 2, 1, "dropped 2 ACL entries and 1 client-quota entry", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := featureControl{}.updateFeatures(img, tc.updates, nil)
			if res.code != nil {
				t.Fatalf("refused: %v %s", res.code, res.msg)
			}
			if res.droppedACLs != tc.acls || res.droppedQuotas != tc.quotas || res.dropped(false, true) != tc.message {
				t.Fatalf("dropped %d ACLs and %d quotas (%q), want %d, %d (%q)", res.droppedACLs, res.droppedQuotas, res.dropped(false, true), tc.acls, tc.quotas, tc.message)
			}
			next, err := img.Apply(2, 1, &metadatapb.RecordBatch{Records: res.records})
			if err != nil {
				t.Fatalf("the batch does not apply: %v", err)
			}
			if next.MetadataVersion() != tc.level || next.ACLCount() != tc.remainingACLs || next.ClientQuotaCount() != tc.remainingQuota {
				t.Fatalf("after: level %d, %d ACLs, %d quotas; want %d, %d, %d", next.MetadataVersion(), next.ACLCount(), next.ClientQuotaCount(), tc.level, tc.remainingACLs, tc.remainingQuota)
			}
		})
	}
	if got := (featureResult{droppedACLs: 1, droppedQuotas: 2}).dropped(true, true); got != "would drop 1 ACL entry and 2 client-quota entries" {
		t.Errorf("validateOnly message %q", got)
	}
	if got := (featureResult{}).dropped(false, false); got != "" {
		t.Errorf("a safe change's message %q", got)
	}
}

// Every voter must support an upgrade's target; one that cannot, or did not answer, is named.
// Downgrades do not ask.
func TestUpdateFeaturesRefusesLevelsControllersDoNotSupport(t *testing.T) {
	voters := []controllerSupport{{id: 1, lo: 1, hi: 4}, {id: 2, lo: 1, hi: 2}, {id: 3, lo: 1, hi: 4}}
	res := featureControl{}.updateFeatures(fcImage(t, 1), []featureUpdate{{fcMV, 3, upgradeTypeUpgrade}}, voters)
	if res.code != kerr.InvalidUpdateVersion || !strings.Contains(res.msg, "Controller 2 only supports versions 1-2") {
		t.Fatalf("upgrade past a voter's range: %v %q", res.code, res.msg)
	}
	if res := (featureControl{}).updateFeatures(fcImage(t, 1), []featureUpdate{{fcMV, 2, upgradeTypeUpgrade}}, voters); res.code != nil {
		t.Fatalf("upgrade within every range: %v %q", res.code, res.msg)
	}
	down := []controllerSupport{{id: 1, lo: 1, hi: 4}, {id: 3, err: fmt.Errorf("connection refused")}}
	res = featureControl{}.updateFeatures(fcImage(t, 1), []featureUpdate{{fcMV, 2, upgradeTypeUpgrade}}, down)
	if res.code != kerr.InvalidUpdateVersion || !strings.Contains(res.msg, "Controller 3 did not report") {
		t.Fatalf("upgrade with a voter down: %v %q", res.code, res.msg)
	}
	if res := (featureControl{}).updateFeatures(fcImage(t, 2), []featureUpdate{{fcMV, 1, upgradeTypeSafeDowngrade}}, down); res.code != nil {
		t.Fatalf("a downgrade with a voter down: %v %q", res.code, res.msg)
	}
	// metadata.version.supported.max caps this controller.
	res = featureControl{supportedMax: 2}.updateFeatures(fcImage(t, 1), []featureUpdate{{fcMV, 3, upgradeTypeUpgrade}}, nil)
	if res.code != kerr.InvalidUpdateVersion || !strings.Contains(res.msg, "the local controller only supports versions 1-2") {
		t.Fatalf("upgrade past the local cap: %v %q", res.code, res.msg)
	}
}
