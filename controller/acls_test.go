package controller

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclImage is an image at metadata.version level holding bindings (ids 1, 2, … in order).
func aclImage(t *testing.T, level int16, bindings ...metadatalog.ACL) *metadatalog.Image {
	t.Helper()
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{Name: metadatalog.MetadataVersionFeature, FeatureLevel: int32(level)}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(bindings) == 0 {
		return img
	}
	var records []*metadatapb.Record
	for i, b := range bindings {
		id := make([]byte, 16)
		id[15] = byte(i + 1)
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
			Id: id, ResourceType: int32(b.ResourceType), ResourceName: b.ResourceName, PatternType: int32(b.PatternType),
			Principal: b.Principal, Host: b.Host, Operation: int32(b.Operation), PermissionType: int32(b.Permission)}}})
	}
	next, err := img.Apply(2, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// acl is a binding of a topic (or, for a name starting with "group:", a group) granting principal op
// from every host; a name ending in "*" other than "*" itself is a prefix.
func acl(resource, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metadatalog.ACL {
	rt, pt := kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeLiteral
	if g, ok := strings.CutPrefix(resource, "group:"); ok {
		rt, resource = kmsg.ACLResourceTypeGroup, g
	}
	if len(resource) > 1 && strings.HasSuffix(resource, "*") {
		pt, resource = kmsg.ACLResourcePatternTypePrefixed, strings.TrimSuffix(resource, "*")
	}
	return metadatalog.ACL{ResourceType: int8(rt), ResourceName: resource, PatternType: int8(pt), Principal: principal, Host: "*", Operation: int8(op), Permission: int8(perm)}
}

func anyACLFilter() metadatalog.ACLFilter {
	return metadatalog.ACLFilter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
}

func outcomeString(o aclOutcome) string {
	if o.code != nil {
		return fmt.Sprintf("%s: %s", o.code.Message, o.msg)
	}
	var m []string
	for _, a := range o.matched {
		m = append(m, aclString(a))
	}
	return "ok [" + strings.Join(m, ", ") + "]"
}

func aclString(a *metadatalog.ACL) string {
	return fmt.Sprintf("%s:%s:%s %s@%s %s %s", kmsg.ACLResourceType(a.ResourceType), a.ResourceName, kmsg.ACLResourcePatternType(a.PatternType),
		a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission))
}

func TestCreateACLsDecisions(t *testing.T) {
	existing := acl("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	img := aclImage(t, 3, existing)
	rng := rand.New(rand.NewPCG(1, 2))
	bad := acl("orders", "alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	anyOp := acl("orders", "User:bob", kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAllow)
	fresh := acl("ord*", "User:bob", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeDeny)
	records, outcomes := aclControl{}.createACLs(img, []metadatalog.ACL{existing, bad, fresh, anyOp, fresh}, rng)
	want := []string{
		"ok []",
		`INVALID_REQUEST: Invalid principal "alice": expected a string in format principalType:principalName, such as User:alice, or User:* for every user`,
		"ok []",
		"INVALID_REQUEST: Invalid operation ANY",
		"ok []",
	}
	for i, o := range outcomes {
		if got := outcomeString(o); got != want[i] {
			t.Errorf("creation %d: %s, want %s", i, got, want[i])
		}
	}
	// The existing binding and the repeated one write nothing: one record, for the new binding.
	if len(records) != 1 {
		t.Fatalf("%d records, want 1: %v", len(records), records)
	}
	r := records[0].GetAccessControlEntry()
	if r == nil || len(r.GetId()) != 16 || r.GetResourceName() != "ord" || r.GetPatternType() != int32(kmsg.ACLResourcePatternTypePrefixed) ||
		r.GetPrincipal() != "User:bob" || r.GetHost() != "*" || r.GetOperation() != int32(kmsg.ACLOperationWrite) || r.GetPermissionType() != int32(kmsg.ACLPermissionTypeDeny) {
		t.Fatalf("record %v", records[0])
	}
	next, err := img.Apply(3, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil || next.ACLCount() != 2 {
		t.Fatalf("applying the records: %v, %d ACLs", err, next.ACLCount())
	}
}

func TestNewACLIDsAreFreshAndNonZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	used := map[[16]byte]bool{}
	first := newACLID(rand.New(rand.NewPCG(7, 7)), nil)
	used[first] = true // the same seed draws first again: it must be passed over
	if id := newACLID(rng, used); id == first || id == ([16]byte{}) {
		t.Fatalf("drew %x again", id)
	}
}

func TestDeleteACLsDecisions(t *testing.T) {
	img := aclImage(t, 3,
		acl("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow),       // id 1
		acl("orders", "User:bob", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeDeny),         // id 2
		acl("ord*", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow),         // id 3
		acl("*", "User:carol", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow),        // id 4
		acl("group:orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow), // id 5
	)
	f := func(change func(*metadatalog.ACLFilter)) metadatalog.ACLFilter {
		x := anyACLFilter()
		change(&x)
		return x
	}
	str := kmsg.StringPtr
	filters := []metadatalog.ACLFilter{
		// alice's bindings on topics whose name is orders, literal or prefixed alike.
		f(func(x *metadatalog.ACLFilter) {
			x.ResourceType, x.ResourceName, x.PatternType, x.Principal = kmsg.ACLResourceTypeTopic, str("orders"), kmsg.ACLResourcePatternTypeMatch, str("User:alice")
		}),
		// Nothing.
		f(func(x *metadatalog.ACLFilter) { x.Principal = str("User:nobody") }),
		// UNKNOWN.
		f(func(x *metadatalog.ACLFilter) { x.PatternType = 0 }),
		// Every literal topic binding: overlaps the first filter (id 1).
		f(func(x *metadatalog.ACLFilter) {
			x.ResourceType, x.PatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeLiteral
		}),
	}
	records, outcomes := aclControl{}.deleteACLs(img, filters)
	want := []string{
		"ok [TOPIC:ord:PREFIXED User:alice@* READ ALLOW, TOPIC:orders:LITERAL User:alice@* READ ALLOW]",
		"ok []",
		"INVALID_REQUEST: Unknown patternFilter: its pattern type is UNKNOWN (code 0).",
		"ok [TOPIC:*:LITERAL User:carol@* DESCRIBE ALLOW, TOPIC:orders:LITERAL User:alice@* READ ALLOW, TOPIC:orders:LITERAL User:bob@* WRITE DENY]",
	}
	for i, o := range outcomes {
		if got := outcomeString(o); got != want[i] {
			t.Errorf("filter %d: %s\nwant      %s", i, got, want[i])
		}
	}
	// Ids 3, 1 from the first filter; 4, 2 from the last (1 only once).
	var ids []byte
	for _, r := range records {
		ids = append(ids, r.GetRemoveAccessControlEntry().GetId()[15])
	}
	if fmt.Sprint(ids) != "[3 1 4 2]" {
		t.Fatalf("removed ids %v, want [3 1 4 2]", ids)
	}
	next, err := img.Apply(3, 1, &metadatapb.RecordBatch{Records: records})
	if err != nil || next.ACLCount() != 1 || next.ACLs()[0].ResourceType != int8(kmsg.ACLResourceTypeGroup) {
		t.Fatalf("after the removals: %v, %v", err, next.ACLs())
	}
}

func TestACLDecisionsBelowLevel3(t *testing.T) {
	img := aclImage(t, 2)
	want := "UNSUPPORTED_VERSION: ACLs need metadata.version 1.1-IV0 (level 3) or later; the cluster is at 1.0-IV1 (level 2): raise it with `kraftctl features upgrade --metadata 1.1-IV0`"
	records, outcomes := aclControl{}.createACLs(img, []metadatalog.ACL{
		acl("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow), {},
	}, rand.New(rand.NewPCG(1, 1)))
	if len(records) != 0 || len(outcomes) != 2 || outcomeString(outcomes[0]) != want || outcomeString(outcomes[1]) != want {
		t.Fatalf("create at level 2: %v %+v", records, outcomes)
	}
	records, outcomes = aclControl{}.deleteACLs(img, []metadatalog.ACLFilter{anyACLFilter()})
	if len(records) != 0 || len(outcomes) != 1 || outcomeString(outcomes[0]) != want {
		t.Fatalf("delete at level 2: %v %+v", records, outcomes)
	}
}

func createACLsRequest(version int16, acls ...metadatalog.ACL) *kmsg.CreateACLsRequest {
	req := kmsg.NewPtrCreateACLsRequest()
	req.Version = version
	for _, a := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.ResourceName, kmsg.ACLResourcePatternType(a.PatternType)
		c.Principal, c.Host, c.Operation, c.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		req.Creations = append(req.Creations, c)
	}
	return req
}

func describeAllACLs(version int16) *kmsg.DescribeACLsRequest {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.Version = version
	req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	return req
}

// TestACLsAPI drives CreateAcls, DescribeAcls and DeleteAcls through a real controller at the latest
// metadata.version.
func TestACLsAPI(t *testing.T) {
	c, _ := startTestController(t, func(*Config) {})
	apis := c.APIs()
	for _, key := range []int16{29, 30, 31} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != 3 {
			t.Fatalf("APIs()[%d] = %+v, want 0–3", key, r)
		}
	}
	alice := acl("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	prefixed := acl("ord*", "User:bob", kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAllow)
	cluster := metadatalog.ACL{ResourceType: int8(kmsg.ACLResourceTypeCluster), ResourceName: "not-the-cluster", PatternType: int8(kmsg.ACLResourcePatternTypeLiteral),
		Principal: "User:alice", Host: "*", Operation: int8(kmsg.ACLOperationAlter), Permission: int8(kmsg.ACLPermissionTypeAllow)}
	for _, version := range []int16{1, 3} {
		resp := taDo(t, c, createACLsRequest(version, alice, prefixed, cluster)).(*kmsg.CreateACLsResponse)
		want := []string{"0 <nil>", "0 <nil>", fmt.Sprintf("%d The only valid name for the CLUSTER resource is kafka-cluster", kerr.InvalidRequest.Code)}
		if len(resp.Results) != 3 {
			t.Fatalf("v%d: %d results", version, len(resp.Results))
		}
		for i, r := range resp.Results {
			if got := fmt.Sprintf("%d %s", r.ErrorCode, taMsg(r.ErrorMessage)); got != want[i] {
				t.Fatalf("v%d creation %d: %s, want %s", version, i, got, want[i])
			}
		}
		// The second time the same bindings are accepted and nothing is added.
		mtWait(t, "two ACLs in the committed image", func() bool { return c.Image().ACLCount() == 2 })
	}

	// v0 creations are literal.
	v0 := createACLsRequest(0, acl("payments", "User:carol", kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow))
	if r := taDo(t, c, v0).(*kmsg.CreateACLsResponse); r.Results[0].ErrorCode != 0 {
		t.Fatalf("v0 create: %s", taMsg(r.Results[0].ErrorMessage))
	}
	mtWait(t, "three ACLs in the committed image", func() bool { return c.Image().ACLCount() == 3 })

	d := describeAllACLs(3)
	d.ResourceType, d.ResourceName, d.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("orders"), kmsg.ACLResourcePatternTypeMatch
	dr := taDo(t, c, d).(*kmsg.DescribeACLsResponse)
	if dr.ErrorCode != 0 || len(dr.Resources) != 2 || dr.Resources[0].ResourceName != "ord" || dr.Resources[1].ResourceName != "orders" {
		t.Fatalf("describe MATCH orders: %+v", dr)
	}

	// Delete: the prefixed binding by an exact filter; a filter matching nothing.
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Version = 3
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("ord"), kmsg.ACLResourcePatternTypePrefixed
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	none := f
	none.Principal = kmsg.StringPtr("User:nobody")
	del.Filters = []kmsg.DeleteACLsRequestFilter{f, none}
	delResp := taDo(t, c, del).(*kmsg.DeleteACLsResponse)
	if len(delResp.Results) != 2 || delResp.Results[0].ErrorCode != 0 || len(delResp.Results[0].MatchingACLs) != 1 ||
		delResp.Results[1].ErrorCode != 0 || len(delResp.Results[1].MatchingACLs) != 0 {
		t.Fatalf("delete: %+v", delResp.Results)
	}
	m := delResp.Results[0].MatchingACLs[0]
	if m.ResourceName != "ord" || m.ResourcePatternType != kmsg.ACLResourcePatternTypePrefixed || m.Principal != "User:bob" || m.Operation != kmsg.ACLOperationWrite {
		t.Fatalf("deleted %+v", m)
	}
	mtWait(t, "two ACLs left in the committed image", func() bool { return c.Image().ACLCount() == 2 })
	dr = taDo(t, c, describeAllACLs(3)).(*kmsg.DescribeACLsResponse)
	if len(dr.Resources) != 2 || dr.Resources[0].ResourceName != "orders" || dr.Resources[1].ResourceName != "payments" {
		t.Fatalf("describe after delete: %+v", dr.Resources)
	}
}

// TestACLsAPIGatedByMetadataVersion: at 1.0-IV1 every ACL API answers UNSUPPORTED_VERSION with the
// level needed and writes nothing; once metadata.version is raised to 1.1-IV0 they work.
func TestACLsAPIGatedByMetadataVersion(t *testing.T) {
	c := startControllerAt(t, 2)
	want := fmt.Sprintf("%d ACLs need metadata.version 1.1-IV0 (level 3) or later; the cluster is at 1.0-IV1 (level 2): raise it with `kraftctl features upgrade --metadata 1.1-IV0`",
		kerr.UnsupportedVersion.Code)
	alice := acl("orders", "User:alice", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow)
	cr := taDo(t, c, createACLsRequest(3, alice, alice)).(*kmsg.CreateACLsResponse)
	for i, r := range cr.Results {
		if got := fmt.Sprintf("%d %s", r.ErrorCode, taMsg(r.ErrorMessage)); got != want {
			t.Fatalf("create %d at level 2: %s", i, got)
		}
	}
	dr := taDo(t, c, describeAllACLs(3)).(*kmsg.DescribeACLsResponse)
	if got := fmt.Sprintf("%d %s", dr.ErrorCode, taMsg(dr.ErrorMessage)); got != want {
		t.Fatalf("describe at level 2: %s", got)
	}
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Version = 3
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	delResp := taDo(t, c, del).(*kmsg.DeleteACLsResponse)
	if got := fmt.Sprintf("%d %s", delResp.Results[0].ErrorCode, taMsg(delResp.Results[0].ErrorMessage)); got != want {
		t.Fatalf("delete at level 2: %s", got)
	}

	uf := kmsg.NewPtrUpdateFeaturesRequest()
	uf.Version = 1
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = metadatalog.MetadataVersionFeature, 3, 1
	uf.FeatureUpdates = append(uf.FeatureUpdates, u)
	if r := taDo(t, c, uf).(*kmsg.UpdateFeaturesResponse); r.ErrorCode != 0 {
		t.Fatalf("upgrading to level 3: %s", taMsg(r.ErrorMessage))
	}
	cr = taDo(t, c, createACLsRequest(3, alice)).(*kmsg.CreateACLsResponse)
	if cr.Results[0].ErrorCode != 0 {
		t.Fatalf("create at level 3: %s", taMsg(cr.Results[0].ErrorMessage))
	}
	mtWait(t, "the ACL in the committed image", func() bool { return c.Image().ACLCount() == 1 })
	if dr := taDo(t, c, describeAllACLs(3)).(*kmsg.DescribeACLsResponse); dr.ErrorCode != 0 || len(dr.Resources) != 1 {
		t.Fatalf("describe at level 3: %+v", dr)
	}
}
