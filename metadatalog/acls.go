package metadatalog

// ACLs in the image: the bindings AccessControlEntryRecords add and RemoveAccessControlEntryRecords
// take away, keyed by their ids. They exist from metadata.version 3 (1.1-IV0). The image only stores
// them; matching filters and answering the ACL APIs is the controller's and broker's business.

import (
	"fmt"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
	"github.com/kraftgo/kraft/api/metadatapb"
)

// ACL is one access-control binding, with Kafka's enum codes.
type ACL struct {
	ID           [16]byte
	ResourceType int8
	ResourceName string
	PatternType  int8
	Principal    string
	Host         string
	Operation    int8
	Permission   int8
}

// ACLs returns every ACL, ordered by id.
func (img *Image) ACLs() []*ACL {
	out := make([]*ACL, 0, img.aclCount)
	img.acls.Root().Walk(func(_ []byte, a *ACL) bool {
		out = append(out, a)
		return false
	})
	return out
}

// ACLCount is how many ACLs the image holds.
func (img *Image) ACLCount() int { return img.aclCount }

func (d *delta) aclTxn() *iradix.Txn[*ACL] {
	if d.acls == nil {
		d.acls = d.base.acls.Txn()
	}
	return d.acls
}

func (d *delta) addACL(r *metadatapb.AccessControlEntryRecord) string {
	if len(r.GetId()) != 16 {
		return fmt.Sprintf("an ACL with a %d-byte id", len(r.GetId()))
	}
	a := &ACL{
		ResourceType: int8(r.GetResourceType()), ResourceName: r.GetResourceName(), PatternType: int8(r.GetPatternType()),
		Principal: r.GetPrincipal(), Host: r.GetHost(), Operation: int8(r.GetOperation()), Permission: int8(r.GetPermissionType()),
	}
	copy(a.ID[:], r.GetId())
	if _, existed := d.aclTxn().Insert(a.ID[:], a); existed {
		return fmt.Sprintf("a second ACL with id %x", a.ID)
	}
	d.aclCount++
	return ""
}

func (d *delta) removeACL(r *metadatapb.RemoveAccessControlEntryRecord) string {
	if _, ok := d.aclTxn().Delete(r.GetId()); !ok {
		return fmt.Sprintf("removal of unknown ACL %x", r.GetId())
	}
	d.aclCount--
	return ""
}

func (a *ACL) record() *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
		Id: a.ID[:], ResourceType: int32(a.ResourceType), ResourceName: a.ResourceName, PatternType: int32(a.PatternType),
		Principal: a.Principal, Host: a.Host, Operation: int32(a.Operation), PermissionType: int32(a.Permission),
	}}}
}
