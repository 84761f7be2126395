package controller

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// aclControl is the ACL manager, Kafka's AclControlManager: it decides CreateAcls and DeleteAcls. It
// is pure: (image, request, a random source for ids) in, (records, per-creation or per-filter answers)
// out, with Kafka's error codes and messages. What a filter matches and what a new binding must be are
// metadatalog's, which brokers share for DescribeAcls.
//
// A request is one batch. Below the metadata.version ACLs need, every item answers
// UNSUPPORTED_VERSION and nothing is written: the image would refuse the records.
type aclControl struct{}

// aclOutcome is the answer for one creation or one filter.
type aclOutcome struct {
	code *kerr.Error
	msg  string
	// matched are the bindings a DeleteAcls filter removed.
	matched []*metadatalog.ACL
}

// aclsRefused answers every one of n items with the level gate's refusal, if img's metadata.version
// cannot hold ACLs.
func aclsRefused(img *metadatalog.Image, n int) ([]aclOutcome, bool) {
	msg := metadatalog.ACLsRefusal(img.MetadataVersion())
	if msg == "" {
		return nil, false
	}
	out := make([]aclOutcome, n)
	for i := range out {
		out[i] = aclOutcome{code: kerr.UnsupportedVersion, msg: msg}
	}
	return out, true
}

// aclBinding is a binding's identity without its id, for finding equal bindings.
type aclBinding struct {
	resourceType, patternType, operation, permission int8
	resourceName, principal, host                    string
}

func bindingOf(a *metadatalog.ACL) aclBinding {
	return aclBinding{
		resourceType: a.ResourceType, patternType: a.PatternType, operation: a.Operation, permission: a.Permission,
		resourceName: a.ResourceName, principal: a.Principal, host: a.Host,
	}
}

// createACLs decides a CreateAcls request, creation by creation. A valid creation gets one
// AccessControlEntryRecord with a fresh random id, unless the same binding already exists (or comes
// earlier in the request): then it succeeds and writes nothing, as Kafka's does.
func (aclControl) createACLs(img *metadatalog.Image, creations []metadatalog.ACL, rng *rand.Rand) ([]*metadatapb.Record, []aclOutcome) {
	if out, refused := aclsRefused(img, len(creations)); refused {
		return nil, out
	}
	existing := img.ACLs()
	bindings := make(map[aclBinding]bool, len(existing))
	ids := make(map[[16]byte]bool, len(existing))
	for _, a := range existing {
		bindings[bindingOf(a)] = true
		ids[a.ID] = true
	}
	out := make([]aclOutcome, len(creations))
	var records []*metadatapb.Record
	for i, c := range creations {
		if msg := metadatalog.ValidateNewACL(c); msg != "" {
			out[i] = aclOutcome{code: kerr.InvalidRequest, msg: msg}
			continue
		}
		b := bindingOf(&c)
		if bindings[b] {
			continue
		}
		bindings[b] = true
		id := newACLID(rng, ids)
		ids[id] = true
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
			Id: id[:], ResourceType: int32(c.ResourceType), ResourceName: c.ResourceName, PatternType: int32(c.PatternType),
			Principal: c.Principal, Host: c.Host, Operation: int32(c.Operation), PermissionType: int32(c.Permission),
		}}})
	}
	return records, out
}

// newACLID draws a random id that is not zero and not in use.
func newACLID(rng *rand.Rand, used map[[16]byte]bool) [16]byte {
	for {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		if id != ([16]byte{}) && !used[id] {
			return id
		}
	}
}

// deleteACLs decides a DeleteAcls request, filter by filter: each valid filter removes every binding
// it matches and answers with them. A binding two filters match is removed once and listed by both; a
// filter that matches nothing answers no error and no bindings. A filter with an UNKNOWN field answers
// INVALID_REQUEST.
func (aclControl) deleteACLs(img *metadatalog.Image, filters []metadatalog.ACLFilter) ([]*metadatapb.Record, []aclOutcome) {
	if out, refused := aclsRefused(img, len(filters)); refused {
		return nil, out
	}
	out := make([]aclOutcome, len(filters))
	removed := map[[16]byte]bool{}
	var records []*metadatapb.Record
	for i, f := range filters {
		if msg := f.Invalid(); msg != "" {
			out[i] = aclOutcome{code: kerr.InvalidRequest, msg: msg}
			continue
		}
		out[i].matched = img.MatchingACLs(f)
		for _, a := range out[i].matched {
			if removed[a.ID] {
				continue
			}
			removed[a.ID] = true
			id := a.ID // the record must not share the image's memory
			records = append(records, &metadatapb.Record{Record: &metadatapb.Record_RemoveAccessControlEntry{
				RemoveAccessControlEntry: &metadatapb.RemoveAccessControlEntryRecord{Id: id[:]}}})
		}
	}
	return records, out
}
