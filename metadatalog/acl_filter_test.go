package metadatalog

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Short names for Kafka's codes.
const (
	rtAny, rtTopic, rtGroup, rtCluster  = kmsg.ACLResourceTypeAny, kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster
	ptAny, ptMatch, ptLiteral, ptPrefix = kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch, kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	opAny, opRead, opWrite, opAll       = kmsg.ACLOperationAny, kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationAll
	pmAny, pmAllow, pmDeny              = kmsg.ACLPermissionTypeAny, kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
)

// binding is an ACL of the given resource, granting principal op from every host.
func binding(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) *ACL {
	return &ACL{ResourceType: int8(rt), ResourceName: name, PatternType: int8(pt), Principal: principal, Host: "*", Operation: int8(op), Permission: int8(perm)}
}

// anyFilter matches everything; tests narrow it.
func anyFilter() ACLFilter {
	return ACLFilter{ResourceType: rtAny, PatternType: ptAny, Operation: opAny, Permission: pmAny}
}

func TestACLFilterMatches(t *testing.T) {
	literal := binding(rtTopic, "orders", ptLiteral, "User:alice", opRead, pmAllow)
	wildcard := binding(rtTopic, "*", ptLiteral, "User:alice", opRead, pmAllow)
	prefixed := binding(rtTopic, "ord", ptPrefix, "User:alice", opRead, pmAllow)
	otherPrefix := binding(rtTopic, "pay", ptPrefix, "User:alice", opRead, pmAllow)
	group := binding(rtGroup, "orders", ptLiteral, "User:alice", opRead, pmAllow)
	deny := binding(rtTopic, "orders", ptLiteral, "User:bob", opWrite, pmDeny)
	fromHost := binding(rtTopic, "orders", ptLiteral, "User:alice", opRead, pmAllow)
	fromHost.Host = "10.0.0.1"
	all := map[string]*ACL{"literal": literal, "wildcard": wildcard, "prefixed": prefixed, "otherPrefix": otherPrefix, "group": group, "deny": deny, "fromHost": fromHost}
	order := []string{"literal", "wildcard", "prefixed", "otherPrefix", "group", "deny", "fromHost"}

	with := func(change func(*ACLFilter)) ACLFilter {
		f := anyFilter()
		change(&f)
		return f
	}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name   string
		filter ACLFilter
		want   string // the bindings matched, in order's order
	}{
		{"ANY everything", anyFilter(), "literal wildcard prefixed otherPrefix group deny fromHost"},
		{"resource type", with(func(f *ACLFilter) { f.ResourceType = rtGroup }), "group"},
		{"resource type absent", with(func(f *ACLFilter) { f.ResourceType = rtCluster }), ""},
		{"pattern ANY, name: exact names of either type", with(func(f *ACLFilter) { f.ResourceName = str("orders") }), "literal group deny fromHost"},
		{"pattern ANY, the name of a prefix", with(func(f *ACLFilter) { f.ResourceName = str("ord") }), "prefixed"},
		{"pattern ANY, name *: only the wildcard binding", with(func(f *ACLFilter) { f.ResourceName = str("*") }), "wildcard"},
		{"LITERAL, any name", with(func(f *ACLFilter) { f.PatternType = ptLiteral }), "literal wildcard group deny fromHost"},
		{"LITERAL orders", with(func(f *ACLFilter) { f.PatternType, f.ResourceName = ptLiteral, str("orders") }), "literal group deny fromHost"},
		{"LITERAL *", with(func(f *ACLFilter) { f.PatternType, f.ResourceName = ptLiteral, str("*") }), "wildcard"},
		{"PREFIXED, any name", with(func(f *ACLFilter) { f.PatternType = ptPrefix }), "prefixed otherPrefix"},
		{"PREFIXED ord", with(func(f *ACLFilter) { f.PatternType, f.ResourceName = ptPrefix, str("ord") }), "prefixed"},
		{"PREFIXED orders is not the prefix ord", with(func(f *ACLFilter) { f.PatternType, f.ResourceName = ptPrefix, str("orders") }), ""},
		{"MATCH orders: literal, wildcard and prefix", with(func(f *ACLFilter) { f.ResourceType, f.PatternType, f.ResourceName = rtTopic, ptMatch, str("orders") }), "literal wildcard prefixed deny fromHost"},
		{"MATCH order: the wildcard and the prefix", with(func(f *ACLFilter) { f.ResourceType, f.PatternType, f.ResourceName = rtTopic, ptMatch, str("order") }), "wildcard prefixed"},
		{"MATCH payments", with(func(f *ACLFilter) { f.ResourceType, f.PatternType, f.ResourceName = rtTopic, ptMatch, str("payments") }), "wildcard otherPrefix"},
		{"MATCH or: no prefix is longer than the name", with(func(f *ACLFilter) { f.ResourceType, f.PatternType, f.ResourceName = rtTopic, ptMatch, str("or") }), "wildcard"},
		{"MATCH without a name: everything", with(func(f *ACLFilter) { f.PatternType = ptMatch }), "literal wildcard prefixed otherPrefix group deny fromHost"},
		{"MATCH across resource types", with(func(f *ACLFilter) { f.PatternType, f.ResourceName = ptMatch, str("orders") }), "literal wildcard prefixed group deny fromHost"},
		{"principal", with(func(f *ACLFilter) { f.Principal = str("User:bob") }), "deny"},
		{"principal User:* is only the wildcard principal", with(func(f *ACLFilter) { f.Principal = str("User:*") }), ""},
		{"host", with(func(f *ACLFilter) { f.Host = str("10.0.0.1") }), "fromHost"},
		{"host *", with(func(f *ACLFilter) { f.Host = str("*") }), "literal wildcard prefixed otherPrefix group deny"},
		{"operation", with(func(f *ACLFilter) { f.Operation = opWrite }), "deny"},
		{"operation ALL is only ALL", with(func(f *ACLFilter) { f.Operation = opAll }), ""},
		{"permission", with(func(f *ACLFilter) { f.Permission = pmAllow }), "literal wildcard prefixed otherPrefix group fromHost"},
		{"permission deny", with(func(f *ACLFilter) { f.Permission = pmDeny }), "deny"},
		{"everything at once", ACLFilter{ResourceType: rtTopic, ResourceName: str("orders"), PatternType: ptLiteral, Principal: str("User:alice"), Host: str("*"), Operation: opRead, Permission: pmAllow}, "literal"},
	} {
		var got []string
		for _, n := range order {
			if tc.filter.Matches(all[n]) {
				got = append(got, n)
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, g, tc.want)
		}
	}
}

func TestACLFilterInvalid(t *testing.T) {
	for _, tc := range []struct {
		change func(*ACLFilter)
		want   string
	}{
		{func(*ACLFilter) {}, ""},
		{func(f *ACLFilter) { f.PatternType = ptMatch }, ""},
		{func(f *ACLFilter) { f.ResourceType = 0 }, "Unknown patternFilter: its resource type is UNKNOWN (code 0)."},
		{func(f *ACLFilter) { f.ResourceType = 8 }, "Unknown patternFilter: its resource type is UNKNOWN (code 8)."},
		{func(f *ACLFilter) { f.PatternType = 0 }, "Unknown patternFilter: its pattern type is UNKNOWN (code 0)."},
		{func(f *ACLFilter) { f.PatternType = 5 }, "Unknown patternFilter: its pattern type is UNKNOWN (code 5)."},
		{func(f *ACLFilter) { f.Operation = 0 }, "Unknown entryFilter: its operation is UNKNOWN (code 0)."},
		{func(f *ACLFilter) { f.Operation = 15 }, "Unknown entryFilter: its operation is UNKNOWN (code 15)."},
		{func(f *ACLFilter) { f.Permission = 0 }, "Unknown entryFilter: its permission type is UNKNOWN (code 0)."},
		{func(f *ACLFilter) { f.Permission = -1 }, "Unknown entryFilter: its permission type is UNKNOWN (code -1)."},
	} {
		f := anyFilter()
		tc.change(&f)
		if got := f.Invalid(); got != tc.want {
			t.Errorf("%+v: %q, want %q", f, got, tc.want)
		}
	}
}

func TestValidateNewACL(t *testing.T) {
	good := *binding(rtTopic, "orders", ptLiteral, "User:alice", opRead, pmAllow)
	for _, tc := range []struct {
		name   string
		change func(*ACL)
		want   string
	}{
		{"a good binding", func(*ACL) {}, ""},
		{"prefixed", func(a *ACL) { a.PatternType = int8(ptPrefix) }, ""},
		{"a prefixed *, which Kafka allows (a prefix, not a wildcard)", func(a *ACL) { a.PatternType, a.ResourceName = int8(ptPrefix), "*" }, ""},
		{"the wildcard principal", func(a *ACL) { a.Principal = "User:*" }, ""},
		{"a principal name with a colon", func(a *ACL) { a.Principal = "User:CN=x:y" }, ""},
		{"deny, all operations", func(a *ACL) { a.Permission, a.Operation = int8(pmDeny), int8(opAll) }, ""},
		{"the cluster", func(a *ACL) { a.ResourceType, a.ResourceName = int8(rtCluster), "kafka-cluster" }, ""},
		{"resource type UNKNOWN", func(a *ACL) { a.ResourceType = 0 }, "Invalid resourceType UNKNOWN"},
		{"resource type ANY", func(a *ACL) { a.ResourceType = int8(rtAny) }, "Invalid resourceType ANY"},
		{"resource type out of range", func(a *ACL) { a.ResourceType = 42 }, "Invalid resourceType UNKNOWN"},
		{"pattern type UNKNOWN", func(a *ACL) { a.PatternType = 0 }, "Invalid patternType UNKNOWN"},
		{"pattern type ANY", func(a *ACL) { a.PatternType = int8(ptAny) }, "Invalid patternType ANY"},
		{"pattern type MATCH", func(a *ACL) { a.PatternType = int8(ptMatch) }, "Invalid patternType MATCH"},
		{"operation UNKNOWN", func(a *ACL) { a.Operation = 0 }, "Invalid operation UNKNOWN"},
		{"operation ANY", func(a *ACL) { a.Operation = int8(opAny) }, "Invalid operation ANY"},
		{"operation out of range", func(a *ACL) { a.Operation = 15 }, "Invalid operation UNKNOWN"},
		{"permission UNKNOWN", func(a *ACL) { a.Permission = 0 }, "Invalid permissionType UNKNOWN"},
		{"permission ANY", func(a *ACL) { a.Permission = int8(pmAny) }, "Invalid permissionType ANY"},
		{"a cluster not named kafka-cluster", func(a *ACL) { a.ResourceType, a.ResourceName = int8(rtCluster), "mine" }, "The only valid name for the CLUSTER resource is kafka-cluster"},
		{"a cluster with no name", func(a *ACL) { a.ResourceType, a.ResourceName = int8(rtCluster), "" }, "The only valid name for the CLUSTER resource is kafka-cluster"},
		{"an empty name", func(a *ACL) { a.ResourceName = "" }, "Invalid empty resource name"},
		{"codes come before the name", func(a *ACL) { a.ResourceName, a.Operation = "", int8(opAny) }, "Invalid operation ANY"},
		{"a principal without a type", func(a *ACL) { a.Principal = "alice" }, `Invalid principal "alice": expected a string in format principalType:principalName, such as User:alice, or User:* for every user`},
		{"an empty principal", func(a *ACL) { a.Principal = "" }, `Invalid principal "": expected`},
		{"a principal with an empty type", func(a *ACL) { a.Principal = ":alice" }, `Invalid principal ":alice"`},
		{"a principal with an empty name", func(a *ACL) { a.Principal = "User:" }, `Invalid principal "User:"`},
		{"an empty host", func(a *ACL) { a.Host = "" }, "Invalid empty host: give a host's IP address, or * for every host"},
	} {
		a := good
		tc.change(&a)
		got := ValidateNewACL(a)
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestACLsRefusal(t *testing.T) {
	if got := ACLsRefusal(3); got != "" {
		t.Errorf("level 3: %q", got)
	}
	if got := ACLsRefusal(4); got != "" {
		t.Errorf("level 4: %q", got)
	}
	want := "ACLs need metadata.version 1.1-IV0 (level 3) or later; the cluster is at 1.0-IV1 (level 2): raise it with `kraftctl features upgrade --metadata 1.1-IV0`"
	if got := ACLsRefusal(2); got != want {
		t.Errorf("level 2: %q\nwant       %q", got, want)
	}
	if got := ACLsRefusal(0); !strings.Contains(got, "the cluster is at level 0:") {
		t.Errorf("no level: %q", got)
	}
}

// aclRecord is the AccessControlEntryRecord of a with id.
func aclRecord(id byte, a *ACL) *metadatapb.Record {
	uuid := make([]byte, 16)
	uuid[0] = id
	return &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
		Id: uuid, ResourceType: int32(a.ResourceType), ResourceName: a.ResourceName, PatternType: int32(a.PatternType),
		Principal: a.Principal, Host: a.Host, Operation: int32(a.Operation), PermissionType: int32(a.Permission)}}}
}

// describedACLs renders an answer as "TYPE:name:PATTERN[principal host OP PERM, …]; …", after a
// round trip through its wire form at the request's version.
func describedACLs(t *testing.T, req *kmsg.DescribeACLsRequest, resp *kmsg.DescribeACLsResponse) string {
	t.Helper()
	back := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("the answer does not decode at v%d: %v", req.Version, err)
	}
	if back.ErrorCode != 0 {
		return fmt.Sprintf("error %d: %s", back.ErrorCode, *back.ErrorMessage)
	}
	var out []string
	for _, r := range back.Resources {
		var acls []string
		for _, a := range r.ACLs {
			acls = append(acls, fmt.Sprintf("%s %s %s %s", a.Principal, a.Host, a.Operation, a.PermissionType))
		}
		out = append(out, fmt.Sprintf("%s:%s:%s[%s]", r.ResourceType, r.ResourceName, r.ResourcePatternType, strings.Join(acls, ", ")))
	}
	return strings.Join(out, "; ")
}

func TestDescribeACLsResponse(t *testing.T) {
	img := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 3)}, []*metadatapb.Record{
		aclRecord(1, binding(rtTopic, "orders", ptLiteral, "User:bob", opWrite, pmDeny)),
		aclRecord(2, binding(rtTopic, "orders", ptLiteral, "User:alice", opRead, pmAllow)),
		aclRecord(3, binding(rtTopic, "ord", ptPrefix, "User:alice", opRead, pmAllow)),
		aclRecord(4, binding(rtGroup, "g", ptLiteral, "User:alice", opRead, pmAllow)),
		aclRecord(5, binding(rtTopic, "*", ptLiteral, "User:*", opAll, pmAllow)),
	})
	req := func(version int16, change func(*kmsg.DescribeACLsRequest)) *kmsg.DescribeACLsRequest {
		r := kmsg.NewPtrDescribeACLsRequest()
		r.Version = version
		r.ResourceType, r.ResourcePatternType, r.Operation, r.PermissionType = rtAny, ptAny, opAny, pmAny
		change(r)
		return r
	}
	for _, tc := range []struct {
		name string
		req  *kmsg.DescribeACLsRequest
		want string
	}{
		{"everything, grouped by resource and sorted", req(3, func(*kmsg.DescribeACLsRequest) {}),
			"TOPIC:*:LITERAL[User:* * ALL ALLOW]; TOPIC:ord:PREFIXED[User:alice * READ ALLOW]; TOPIC:orders:LITERAL[User:alice * READ ALLOW, User:bob * WRITE DENY]; GROUP:g:LITERAL[User:alice * READ ALLOW]"},
		{"MATCH orders", req(1, func(r *kmsg.DescribeACLsRequest) {
			r.ResourceType, r.ResourceName, r.ResourcePatternType = rtTopic, kmsg.StringPtr("orders"), ptMatch
		}), "TOPIC:*:LITERAL[User:* * ALL ALLOW]; TOPIC:ord:PREFIXED[User:alice * READ ALLOW]; TOPIC:orders:LITERAL[User:alice * READ ALLOW, User:bob * WRITE DENY]"},
		{"a principal", req(2, func(r *kmsg.DescribeACLsRequest) { r.Principal = kmsg.StringPtr("User:bob") }),
			"TOPIC:orders:LITERAL[User:bob * WRITE DENY]"},
		{"nothing matches", req(3, func(r *kmsg.DescribeACLsRequest) { r.ResourceType = kmsg.ACLResourceTypeUser }), ""},
		{"an UNKNOWN operation", req(3, func(r *kmsg.DescribeACLsRequest) { r.Operation = 0 }),
			fmt.Sprintf("error %d: Unknown entryFilter: its operation is UNKNOWN (code 0).", kerr.InvalidRequest.Code)},
	} {
		if got := describedACLs(t, tc.req, img.DescribeACLsResponse(tc.req)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}

	// v0 has no pattern type: the request means LITERAL, and the answer's resources carry none.
	v0 := kmsg.NewPtrDescribeACLsRequest()
	v0.ResourceType, v0.Operation, v0.PermissionType = rtTopic, opAny, pmAny
	back := kmsg.NewPtrDescribeACLsRequest()
	back.Version = 0
	if err := back.ReadFrom(v0.AppendTo(nil)); err != nil {
		t.Fatal(err)
	}
	resp := img.DescribeACLsResponse(back)
	if len(resp.Resources) != 2 || resp.Resources[0].ResourceName != "*" || resp.Resources[1].ResourceName != "orders" {
		t.Errorf("v0 answered %+v, want the two literal topics", resp.Resources)
	}

	// Below level 3 there are no ACLs to describe: UNSUPPORTED_VERSION with the level needed.
	at2 := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 2)})
	r := req(3, func(*kmsg.DescribeACLsRequest) {})
	if got := describedACLs(t, r, at2.DescribeACLsResponse(r)); got != fmt.Sprintf("error %d: %s", kerr.UnsupportedVersion.Code, ACLsRefusal(2)) {
		t.Errorf("at level 2: %s", got)
	}
}
