package broker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestACLAPIsAdvertised(t *testing.T) {
	apis := New(Config{Logger: quietLogger()}).APIs()
	for _, key := range []int16{29, 30, 31} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != 3 {
			t.Errorf("%s advertised %v (present %v), want 0..3", kmsg.NameForKey(key), r, ok)
		}
	}
}

// withACLs adds ACL records to the broker's image: alice may read the topic orders, bob may write
// every topic whose name starts with "ord".
func withACLs(t *testing.T, b *Broker) {
	t.Helper()
	acl := func(id byte, name string, pattern kmsg.ACLResourcePatternType, principal string, op kmsg.ACLOperation) *metadatapb.Record {
		uuid := make([]byte, 16)
		uuid[15] = id
		return &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
			Id: uuid, ResourceType: int32(kmsg.ACLResourceTypeTopic), ResourceName: name, PatternType: int32(pattern),
			Principal: principal, Host: "*", Operation: int32(op), PermissionType: int32(kmsg.ACLPermissionTypeAllow)}}}
	}
	img := b.image.Load()
	next, err := img.Apply(img.Offset+1, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		acl(1, "orders", kmsg.ACLResourcePatternTypeLiteral, "User:alice", kmsg.ACLOperationRead),
		acl(2, "ord", kmsg.ACLResourcePatternTypePrefixed, "User:bob", kmsg.ACLOperationWrite),
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.image.Store(next)
}

func describedString(rs kadm.DescribeACLsResults) string {
	var out []string
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, fmt.Sprintf("error %v: %s", r.Err, r.ErrMessage))
			continue
		}
		for _, d := range r.Described {
			out = append(out, fmt.Sprintf("%s:%s:%s %s %s", d.Type, d.Name, d.Pattern, d.Principal, d.Operation))
		}
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// TestDescribeACLsFromTheBrokersImage: kadm's DescribeACLs is answered by the broker from its own image,
// without a controller.
func TestDescribeACLsFromTheBrokersImage(t *testing.T) {
	b, addr := forwardingBroker(t, map[int32]string{1: closedAddr(t)}, 1, nil)
	withACLs(t, b)
	adm := kadm.NewClient(adminClient(t, addr, nil))
	ctx := testCtx(t)

	all, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Deny().DenyHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	if got := describedString(all); got != "TOPIC:ord:PREFIXED User:bob WRITE; TOPIC:orders:LITERAL User:alice READ" {
		t.Fatalf("every ACL: %s", got)
	}
	match, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternMatch).Allow("User:bob").AllowHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	if got := describedString(match); got != "TOPIC:ord:PREFIXED User:bob WRITE" {
		t.Fatalf("bob's ACLs that apply to orders: %s", got)
	}
}

// TestDescribeACLsBelowLevel3: a broker whose image is below metadata.version 3 answers
// UNSUPPORTED_VERSION, naming the level needed.
func TestDescribeACLsBelowLevel3(t *testing.T) {
	b := &Broker{cfg: Config{NodeID: 1}}
	img, err := metadatalog.EmptyImage().Apply(1, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{mvRecord(2)}})
	if err != nil {
		t.Fatal(err)
	}
	b.image.Store(img)
	req := kmsg.NewPtrDescribeACLsRequest()
	req.Version, req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = 3, kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := listenerHandler{b: b}.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.DescribeACLsResponse)
	if r.ErrorCode != kerr.UnsupportedVersion.Code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "ACLs need metadata.version 1.1-IV0 (level 3)") {
		t.Fatalf("answered %d %v", r.ErrorCode, deref(r.ErrorMessage))
	}
}

// TestCreateAndDeleteACLsRelayed: the controller's answers to forwarded CreateAcls and DeleteAcls,
// errors and matched bindings included, reach the client unchanged.
func TestCreateAndDeleteACLsRelayed(t *testing.T) {
	ctl := newAdminController(t, 1, nil, func(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
		switch r := req.(type) {
		case *kmsg.CreateACLsRequest:
			resp := createACLsFailed(r, 0, "").(*kmsg.CreateACLsResponse)
			resp.Results[1].ErrorCode, resp.Results[1].ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("Invalid empty host")
			resp.Results[0].ErrorMessage = nil
			return resp, nil
		case *kmsg.DeleteACLsRequest:
			resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
			res := kmsg.NewDeleteACLsResponseResult()
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceTypeTopic, "orders", kmsg.ACLResourcePatternTypeLiteral
			m.Principal, m.Host, m.Operation, m.PermissionType = "User:alice", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
			res.MatchingACLs = append(res.MatchingACLs, m)
			resp.Results = append(resp.Results, res)
			return resp, nil
		}
		return nil, fmt.Errorf("unexpected %s", kmsg.NameForKey(req.Key()))
	})
	_, addr := forwardingBroker(t, map[int32]string{1: ctl.addr}, 1, nil)
	adm := kadm.NewClient(adminClient(t, addr, nil))
	ctx := testCtx(t)

	created, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("orders").Allow("User:alice").AllowHosts("*", "").Operations(kadm.OpRead))
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0].Err != nil || created[1].Err != kerr.InvalidRequest || created[1].ErrMessage != "Invalid empty host" {
		t.Fatalf("created %+v", created)
	}
	deleted, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").Allow().AllowHosts().Operations())
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].Err != nil || len(deleted[0].Deleted) != 1 || deleted[0].Deleted[0].Principal != "User:alice" || deleted[0].Deleted[0].Name != "orders" {
		t.Fatalf("deleted %+v", deleted)
	}
	if n := len(ctl.receivedKey((&kmsg.CreateACLsRequest{}).Key())); n != 1 {
		t.Fatalf("the controller received %d CreateAcls requests", n)
	}
}
