package controller

// IncrementalAlterConfigs (key 44), versions 0–1: set, delete, append to or subtract from configs of
// topics and brokers (KIP-339). v1 is the first flexible version and changes nothing else.
//
// The decisions are configControl.incrementalAlterConfigs'. Every resource that passes goes into one
// batch; the answer leaves when that batch commits. ValidateOnly answers the same without writing.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleIncrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resources := make([]configResource, len(req.Resources))
	for i, r := range req.Resources {
		cr := configResource{typ: metadatapb.ConfigResourceType(r.ResourceType), name: r.ResourceName}
		for _, cfg := range r.Configs {
			cr.changes = append(cr.changes, configChange{name: cfg.Name, op: cfg.Op, value: cfg.Value})
		}
		resources[i] = cr
	}
	cc := configControl{}
	for id := range c.cfg.Voters {
		cc.controllers = append(cc.controllers, id)
	}
	outcomes, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, []configOutcome) {
		records, outcomes := cc.incrementalAlterConfigs(img, resources)
		c.logConfigOutcomes(req, offset, outcomes, len(records))
		if req.ValidateOnly {
			return nil, outcomes
		}
		return records, outcomes
	}, alwaysAfterPending)
	code, msg := c.topicWriteFailure(o)
	return incrementalAlterConfigsResponse(req, outcomes, code, msg), nil
}

// incrementalAlterConfigsResponse answers every resource of req with its outcome, or with code and
// msg when the write itself did not complete.
func incrementalAlterConfigsResponse(req *kmsg.IncrementalAlterConfigsRequest, outcomes []configOutcome, code *kerr.Error, msg string) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for i, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		switch {
		case code != nil:
			rr.ErrorCode, rr.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			rr.ErrorCode, rr.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// logConfigOutcomes logs what an IncrementalAlterConfigs request decided.
func (c *Controller) logConfigOutcomes(req *kmsg.IncrementalAlterConfigsRequest, offset uint64, outcomes []configOutcome, records int) {
	failed := 0
	for i, o := range outcomes {
		if o.code != nil {
			failed++
			r := req.Resources[i]
			c.log.Debug("IncrementalAlterConfigs refused a resource", "type", r.ResourceType.String(), "resource", r.ResourceName, "error", o.code.Message, "reason", o.msg)
		}
	}
	c.log.Info("IncrementalAlterConfigs", "resources", len(outcomes), "failed", failed, "records", records, "validate_only", req.ValidateOnly, "offset", offset)
}
