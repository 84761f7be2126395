package metadatalog

import (
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

func recACL(id byte, principal string) *metadatapb.Record {
	uuid := make([]byte, 16)
	uuid[15] = id
	return &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
		Id: uuid, ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: principal, Host: "*", Operation: 3, PermissionType: 3}}}
}

func recRemoveACL(id byte) *metadatapb.Record {
	uuid := make([]byte, 16)
	uuid[15] = id
	return &metadatapb.Record{Record: &metadatapb.Record_RemoveAccessControlEntry{RemoveAccessControlEntry: &metadatapb.RemoveAccessControlEntryRecord{Id: uuid}}}
}

func name(s string) *string { return &s }

// applyBatches applies batches at consecutive offsets from 1.
func applyBatches(t *testing.T, img *Image, batches ...[]*metadatapb.Record) *Image {
	t.Helper()
	for _, b := range batches {
		next, err := img.Apply(img.Offset+1, 1, imgBatch(b...))
		if err != nil {
			t.Fatal(err)
		}
		img = next
	}
	return img
}

func applyErr(img *Image, recs ...*metadatapb.Record) string {
	_, err := img.Apply(img.Offset+1, 1, imgBatch(recs...))
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestACLsInTheImage(t *testing.T) {
	img := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 3)}, []*metadatapb.Record{recACL(1, "User:alice"), recACL(2, "User:bob")})
	if img.ACLCount() != 2 || len(img.ACLs()) != 2 || img.ACLs()[0].Principal != "User:alice" || img.ACLs()[1].ID[15] != 2 {
		t.Fatalf("ACLs = %v (count %d)", img.ACLs(), img.ACLCount())
	}
	if err := applyErr(img, recACL(1, "User:carol")); !strings.Contains(err, "a second ACL with id") {
		t.Errorf("a duplicate id: %q", err)
	}
	if err := applyErr(img, recRemoveACL(9)); !strings.Contains(err, "removal of unknown ACL") {
		t.Errorf("removing an unknown ACL: %q", err)
	}
	after := applyBatches(t, img, []*metadatapb.Record{recRemoveACL(1)})
	if after.ACLCount() != 1 || after.ACLs()[0].Principal != "User:bob" || img.ACLCount() != 2 {
		t.Fatalf("after removing 1: %v; the old image must keep 2: %d", after.ACLs(), img.ACLCount())
	}
}

func TestClientQuotasInTheImage(t *testing.T) {
	alice := []QuotaEntityPart{{Type: "user", Name: name("alice")}}
	aliceApp := []QuotaEntityPart{{Type: "user", Name: name("alice")}, {Type: "client-id", Name: name("app")}}
	defUser := []QuotaEntityPart{{Type: "user"}}
	img := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 4)}, []*metadatapb.Record{
		QuotaRecord(alice, "producer_byte_rate", 1000, false),
		QuotaRecord(alice, "consumer_byte_rate", 2000, false),
		QuotaRecord(aliceApp, "request_percentage", 50, false),
		QuotaRecord(defUser, "producer_byte_rate", 10, false),
		QuotaRecord(alice, "producer_byte_rate", 1500, false), // an update
	})
	if img.ClientQuotaCount() != 4 {
		t.Fatalf("ClientQuotaCount = %d, want 4", img.ClientQuotaCount())
	}
	if v := img.ClientQuotaValues(alice); len(v) != 2 || v["producer_byte_rate"] != 1500 || v["consumer_byte_rate"] != 2000 {
		t.Errorf("alice's quotas: %v", v)
	}
	// Part order does not matter; the default entity is not the entity named "".
	if v := img.ClientQuotaValues([]QuotaEntityPart{{Type: "client-id", Name: name("app")}, {Type: "user", Name: name("alice")}}); v["request_percentage"] != 50 {
		t.Errorf("alice/app's quotas: %v", v)
	}
	if v := img.ClientQuotaValues([]QuotaEntityPart{{Type: "user", Name: name("")}}); v != nil {
		t.Errorf("the user named \"\" holds %v; only the default user has quotas", v)
	}
	if all := img.ClientQuotas(); len(all) != 3 {
		t.Errorf("ClientQuotas lists %d entities, want 3: %+v", len(all), all)
	}
	img = applyBatches(t, img, []*metadatapb.Record{QuotaRecord(defUser, "producer_byte_rate", 0, true), QuotaRecord(defUser, "nothing", 0, true)})
	if img.ClientQuotaCount() != 3 || img.ClientQuotaValues(defUser) != nil {
		t.Errorf("after removing the default's only quota: count %d, values %v", img.ClientQuotaCount(), img.ClientQuotaValues(defUser))
	}
	if err := applyErr(img, &metadatapb.Record{Record: &metadatapb.Record_ClientQuota{ClientQuota: &metadatapb.ClientQuotaRecord{Key: "x"}}}); !strings.Contains(err, "without an entity") {
		t.Errorf("a quota without an entity: %q", err)
	}
}

// Records below their level are impossible, and so is a lower level that leaves them in the image.
func TestRecordsGatedByMetadataVersion(t *testing.T) {
	at2 := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 2)})
	if err := applyErr(at2, recACL(1, "User:a")); !strings.Contains(err, "AccessControlEntryRecord at metadata.version 2; it needs 3 (1.1-IV0)") {
		t.Errorf("an ACL at level 2: %q", err)
	}
	at3 := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 3)})
	if err := applyErr(at3, QuotaRecord([]QuotaEntityPart{{Type: "user"}}, "k", 1, false)); !strings.Contains(err, "ClientQuotaRecord at metadata.version 3; it needs 4 (1.1-IV1)") {
		t.Errorf("a quota at level 3: %q", err)
	}
	// A level raised earlier in the same batch lets the record in.
	if err := applyErr(at2, recFeature(MetadataVersionFeature, 3), recACL(1, "User:a")); err != "" {
		t.Errorf("an ACL after raising the level in the same batch: %q", err)
	}
	withACL := applyBatches(t, at3, []*metadatapb.Record{recACL(1, "User:a")})
	if err := applyErr(withACL, recFeature(MetadataVersionFeature, 2)); !strings.Contains(err, "metadata.version set to 2 while 1 ACLs remain") {
		t.Errorf("lowering the level under an ACL: %q", err)
	}
	// What an unsafe downgrade writes: the removals, then the level.
	if err := applyErr(withACL, recRemoveACL(1), recFeature(MetadataVersionFeature, 2)); err != "" {
		t.Errorf("removing the ACL, then lowering the level: %q", err)
	}
}

// ACLs and quotas survive a snapshot: the image's records rebuild it.
func TestACLsAndQuotasRoundTripThroughRecords(t *testing.T) {
	img := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 4)}, []*metadatapb.Record{
		recACL(3, "User:c"), recACL(1, "User:a"),
		QuotaRecord([]QuotaEntityPart{{Type: "user", Name: name("a")}, {Type: "client-id"}}, "producer_byte_rate", 7, false),
		QuotaRecord([]QuotaEntityPart{{Type: "ip", Name: name("10.0.0.1")}}, "connection_creation_rate", 3, false),
	})
	rebuilt, err := EmptyImage().Apply(img.Offset, img.Epoch, imgBatch(img.Records()...))
	if err != nil {
		t.Fatal(err)
	}
	a, b := img.Records(), rebuilt.Records()
	if len(a) != len(b) || rebuilt.ACLCount() != 2 || rebuilt.ClientQuotaCount() != 2 {
		t.Fatalf("rebuilt %d records (ACLs %d, quotas %d), want %d", len(b), rebuilt.ACLCount(), rebuilt.ClientQuotaCount(), len(a))
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("record %d: %v, rebuilt %v", i, a[i], b[i])
		}
	}
}
