package metadatalog

// The ACL core both roles share: Kafka's binding filters (AclBindingFilter) and what they match, the
// checks a new binding must pass (Kafka's AclControlManager.validateNewAcl and the broker-side checks
// of its AclApis), the metadata.version gate of the ACL APIs, and the DescribeAcls answer (Kafka API
// key 29, versions 0–3) built from an image. Controllers and brokers both answer DescribeAcls from
// their own image, and the controller decides CreateAcls and DeleteAcls with the same matching and
// checks, so they live here, beside the image, once.
//
// The codes are Kafka's (kmsg names them): resource type UNKNOWN 0, ANY 1, TOPIC 2, GROUP 3, CLUSTER
// 4, TRANSACTIONAL_ID 5, DELEGATION_TOKEN 6, USER 7; pattern type UNKNOWN 0, ANY 1, MATCH 2, LITERAL
// 3, PREFIXED 4; operation UNKNOWN 0, ANY 1, ALL 2 … DESCRIBE_TOKENS 14; permission UNKNOWN 0, ANY 1,
// DENY 2, ALLOW 3. As in Kafka, a code it does not know counts as UNKNOWN.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLClusterName is the only name a CLUSTER resource may have (Kafka's Resource.CLUSTER_NAME).
const ACLClusterName = "kafka-cluster"

// aclWildcard is the literal resource name, principal name and host that stand for "every one".
const aclWildcard = "*"

// ACLFilter is a binding filter, Kafka's AclBindingFilter: the resource type ANY, the pattern type
// ANY, the operation ANY and the permission ANY match every value; a nil name, principal or host
// matches every one. The pattern type MATCH matches the bindings that apply to the named resource.
type ACLFilter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Matches reports whether the filter matches the binding a, with Kafka's semantics
// (ResourcePatternFilter.matches and AccessControlEntryFilter.matches).
func (f ACLFilter) Matches(a *ACL) bool {
	return f.matchesPattern(a) && f.matchesEntry(a)
}

func (f ACLFilter) matchesPattern(a *ACL) bool {
	bindingType := kmsg.ACLResourcePatternType(a.PatternType)
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != kmsg.ACLResourceType(a.ResourceType) {
		return false
	}
	if f.PatternType != kmsg.ACLResourcePatternTypeAny && f.PatternType != kmsg.ACLResourcePatternTypeMatch && f.PatternType != bindingType {
		return false
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		// ANY or the binding's own pattern type: the same name, so "*" finds only the wildcard binding
		// and "ord" only the prefix "ord".
		return name == a.ResourceName
	}
	// MATCH: the bindings that would apply to the resource named.
	switch bindingType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return name == a.ResourceName || a.ResourceName == aclWildcard
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, a.ResourceName)
	}
	return false
}

func (f ACLFilter) matchesEntry(a *ACL) bool {
	if f.Principal != nil && *f.Principal != a.Principal {
		return false
	}
	if f.Host != nil && *f.Host != a.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != kmsg.ACLOperation(a.Operation) {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == kmsg.ACLPermissionType(a.Permission)
}

// Invalid says why Kafka refuses the filter — one of its fields is UNKNOWN — or "" when it may be
// used. Kafka's controller says "Unknown patternFilter." or "Unknown entryFilter."; the field and its
// code are added here so the sender can tell which.
func (f ACLFilter) Invalid() string {
	switch {
	case !knownResourceType(f.ResourceType):
		return fmt.Sprintf("Unknown patternFilter: its resource type is UNKNOWN (code %d).", f.ResourceType)
	case !knownPatternType(f.PatternType):
		return fmt.Sprintf("Unknown patternFilter: its pattern type is UNKNOWN (code %d).", f.PatternType)
	case !knownOperation(f.Operation):
		return fmt.Sprintf("Unknown entryFilter: its operation is UNKNOWN (code %d).", f.Operation)
	case !knownPermission(f.Permission):
		return fmt.Sprintf("Unknown entryFilter: its permission type is UNKNOWN (code %d).", f.Permission)
	}
	return ""
}

func knownResourceType(t kmsg.ACLResourceType) bool {
	return t >= kmsg.ACLResourceTypeAny && t <= kmsg.ACLResourceTypeUser
}

func knownPatternType(t kmsg.ACLResourcePatternType) bool {
	return t >= kmsg.ACLResourcePatternTypeAny && t <= kmsg.ACLResourcePatternTypePrefixed
}

func knownOperation(o kmsg.ACLOperation) bool {
	return o >= kmsg.ACLOperationAny && o <= kmsg.ACLOperationDescribeTokens
}

func knownPermission(p kmsg.ACLPermissionType) bool {
	return p >= kmsg.ACLPermissionTypeAny && p <= kmsg.ACLPermissionTypeAllow
}

// MatchingACLs returns the image's ACLs that f matches, in CompareACLs order.
func (img *Image) MatchingACLs(f ACLFilter) []*ACL {
	var out []*ACL
	for _, a := range img.ACLs() {
		if f.Matches(a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, CompareACLs)
	return out
}

// SameBinding reports whether a and b are the same binding: equal in everything but their ids.
func SameBinding(a, b *ACL) bool {
	x, y := *a, *b
	x.ID, y.ID = [16]byte{}, [16]byte{}
	return x == y
}

// CompareACLs orders bindings by resource (type, name, pattern type), then by principal, host,
// operation and permission, and last by id: the order the ACL answers list them in.
func CompareACLs(a, b *ACL) int {
	return cmp.Or(
		compareACLResource(a, b),
		cmp.Compare(a.Principal, b.Principal),
		cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation),
		cmp.Compare(a.Permission, b.Permission),
		slices.Compare(a.ID[:], b.ID[:]),
	)
}

func compareACLResource(a, b *ACL) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceName, b.ResourceName), cmp.Compare(a.PatternType, b.PatternType))
}

// ValidateNewACL says why a is not a binding that may be created, or "" if it is. Every refusal is
// Kafka's INVALID_REQUEST. The checks run in Kafka's order: the codes (its controller's messages),
// then the CLUSTER resource's name and the empty name (its broker's messages), then two Kafka leaves
// to the authorizer and which we refuse up front, since such a binding could never apply to anyone:
// a principal that is not "Type:name", and an empty host.
func ValidateNewACL(a ACL) string {
	rt, pt := kmsg.ACLResourceType(a.ResourceType), kmsg.ACLResourcePatternType(a.PatternType)
	op, perm := kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
	switch {
	case !knownResourceType(rt) || rt == kmsg.ACLResourceTypeAny:
		return "Invalid resourceType " + rt.String()
	case pt != kmsg.ACLResourcePatternTypeLiteral && pt != kmsg.ACLResourcePatternTypePrefixed:
		return "Invalid patternType " + pt.String()
	case !knownOperation(op) || op == kmsg.ACLOperationAny:
		return "Invalid operation " + op.String()
	case perm != kmsg.ACLPermissionTypeAllow && perm != kmsg.ACLPermissionTypeDeny:
		return "Invalid permissionType " + perm.String()
	case rt == kmsg.ACLResourceTypeCluster && a.ResourceName != ACLClusterName:
		return "The only valid name for the CLUSTER resource is " + ACLClusterName
	case a.ResourceName == "":
		return "Invalid empty resource name"
	}
	if typ, name, ok := strings.Cut(a.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Sprintf("Invalid principal %q: expected a string in format principalType:principalName, such as User:alice, or User:* for every user", a.Principal)
	}
	if a.Host == "" {
		return "Invalid empty host: give a host's IP address, or * for every host"
	}
	return ""
}

// ACLsRefusal says why an image at metadata.version level cannot hold ACLs, naming the level they
// need and how to reach it, or "" if it can. The ACL APIs answer UNSUPPORTED_VERSION with it.
func ACLsRefusal(level int16) string {
	if level >= ACLsLevel {
		return ""
	}
	need, _ := MetadataVersionByLevel(ACLsLevel)
	at := fmt.Sprintf("level %d", level)
	if v, ok := MetadataVersionByLevel(level); ok {
		at = fmt.Sprintf("%s (level %d)", v.Name, level)
	}
	return fmt.Sprintf("ACLs need metadata.version %s (level %d) or later; the cluster is at %s: raise it with `kraftctl features upgrade --metadata %s`",
		need.Name, need.Level, at, need.Name)
}

// DescribeACLsFilter reads the filter of a DescribeAcls request. Before v1 the request has no pattern
// type and means LITERAL, which kmsg fills in.
func DescribeACLsFilter(req *kmsg.DescribeACLsRequest) ACLFilter {
	return ACLFilter{
		ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType,
	}
}

// DescribeACLsResponse answers req from img: the bindings its filter matches, grouped by resource
// pattern, in CompareACLs order. Below the metadata.version that ACLs need it answers
// UNSUPPORTED_VERSION; a filter with an UNKNOWN field, INVALID_REQUEST.
func (img *Image) DescribeACLsResponse(req *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if msg := ACLsRefusal(img.MetadataVersion()); msg != "" {
		resp.ErrorCode, resp.ErrorMessage = kerr.UnsupportedVersion.Code, &msg
		return resp
	}
	f := DescribeACLsFilter(req)
	if msg := f.Invalid(); msg != "" {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
		return resp
	}
	var last *ACL
	for _, a := range img.MatchingACLs(f) {
		if last == nil || compareACLResource(last, a) != 0 {
			rr := kmsg.NewDescribeACLsResponseResource()
			rr.ResourceType, rr.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
			rr.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
			resp.Resources = append(resp.Resources, rr)
		}
		last = a
		ra := kmsg.NewDescribeACLsResponseResourceACL()
		ra.Principal, ra.Host = a.Principal, a.Host
		ra.Operation, ra.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		rr := &resp.Resources[len(resp.Resources)-1]
		rr.ACLs = append(rr.ACLs, ra)
	}
	return resp
}
