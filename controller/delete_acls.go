package controller

// DeleteAcls (key 31), versions 0–3. v1 added each filter's ResourcePatternType (KIP-290; v0 means
// LITERAL, which kmsg fills in) and each matching binding's; v2 is flexible; v3 adds the USER resource
// type (KIP-554), which needs nothing here.
//
// The decisions are aclControl.deleteACLs'. Every removal of the request goes into one batch; the
// answer, each filter with the bindings it removed, leaves when that batch commits.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleDeleteACLs(ctx context.Context, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	filters := make([]metadatalog.ACLFilter, len(req.Filters))
	for i, f := range req.Filters {
		filters[i] = metadatalog.ACLFilter{
			ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType,
		}
	}
	outcomes, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, []aclOutcome) {
		records, outcomes := aclControl{}.deleteACLs(img, filters)
		c.logACLOutcomes("DeleteAcls", offset, outcomes, len(records))
		return records, outcomes
	}, alwaysAfterPending)
	code, msg := c.aclWriteFailure(o)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	for i := range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		switch {
		case code != nil:
			r.ErrorCode, r.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			r.ErrorCode, r.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		default:
			for _, a := range outcomes[i].matched {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName = kmsg.ACLResourceType(a.ResourceType), a.ResourceName
				m.ResourcePatternType = kmsg.ACLResourcePatternType(a.PatternType)
				m.Principal, m.Host = a.Principal, a.Host
				m.Operation, m.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
				r.MatchingACLs = append(r.MatchingACLs, m)
			}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
