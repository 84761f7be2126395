package controller

// CreateAcls (key 30), versions 0–3. v1 added each creation's ResourcePatternType (KIP-290: PREFIXED
// bindings; v0 means LITERAL, which kmsg fills in); v2 is flexible; v3 adds the USER resource type
// (KIP-554), which needs nothing here.
//
// The decisions are aclControl.createACLs'. Every new binding goes into one batch; the answer leaves
// when that batch commits. ACLs are stored, not enforced: no request is authorized against them.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleCreateACLs(ctx context.Context, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	creations := make([]metadatalog.ACL, len(req.Creations))
	for i, cr := range req.Creations {
		creations[i] = metadatalog.ACL{
			ResourceType: int8(cr.ResourceType), ResourceName: cr.ResourceName, PatternType: int8(cr.ResourcePatternType),
			Principal: cr.Principal, Host: cr.Host, Operation: int8(cr.Operation), Permission: int8(cr.PermissionType),
		}
	}
	rng := requestRand()
	outcomes, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, []aclOutcome) {
		records, outcomes := aclControl{}.createACLs(img, creations, rng)
		c.logACLOutcomes("CreateAcls", offset, outcomes, len(records))
		return records, outcomes
	}, alwaysAfterPending)
	code, msg := c.aclWriteFailure(o)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	for i := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		switch {
		case code != nil:
			r.ErrorCode, r.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			r.ErrorCode, r.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// logACLOutcomes logs what a CreateAcls or DeleteAcls request decided.
func (c *Controller) logACLOutcomes(api string, offset uint64, outcomes []aclOutcome, records int) {
	failed := 0
	for i, o := range outcomes {
		if o.code != nil {
			failed++
			c.log.Debug(api+" refused an item", "item", i, "error", o.code.Message, "reason", o.msg)
		}
	}
	c.log.Info(api, "items", len(outcomes), "failed", failed, "records", records, "offset", offset)
}

// aclWriteFailure is topicWriteFailure in an ACL request's words.
func (c *Controller) aclWriteFailure(o writeOutcome) (*kerr.Error, string) {
	if o.err != nil && !o.notController {
		return kerr.RequestTimedOut, "The request did not complete, and its outcome is unknown; describe the ACLs before retrying: " + o.err.Error()
	}
	return c.topicWriteFailure(o)
}
