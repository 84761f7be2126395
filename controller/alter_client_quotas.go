package controller

// AlterClientQuotas (key 49), versions 0–1: set and remove client quotas of users, client ids, both,
// and IP addresses (KIP-546). v1 is the first flexible version and changes nothing else.
//
// The decisions are quotaControl.alterClientQuotas'. Every entry that passes goes into one batch; the
// answer leaves when that batch commits. ValidateOnly answers the same without writing. Below
// metadata.version 1.1-IV1 (level 4) every entry answers UNSUPPORTED_VERSION saying so. The quotas
// are stored and described; nothing here enforces them.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleAlterClientQuotas(ctx context.Context, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
	entries := make([]quotaAlteration, len(req.Entries))
	for i, e := range req.Entries {
		var qa quotaAlteration
		for _, p := range e.Entity {
			qa.entity = append(qa.entity, metadatalog.QuotaEntityPart{Type: p.Type, Name: p.Name})
		}
		for _, op := range e.Ops {
			qa.ops = append(qa.ops, quotaOp{key: op.Key, value: op.Value, remove: op.Remove})
		}
		entries[i] = qa
	}
	outcomes, o := runOp(ctx, c, func(img *metadatalog.Image, offset uint64, _ time.Time) ([]*metadatapb.Record, []quotaOutcome) {
		records, outcomes := quotaControl{}.alterClientQuotas(img, entries)
		c.logQuotaOutcomes(req, offset, outcomes, len(records))
		if req.ValidateOnly {
			return nil, outcomes
		}
		return records, outcomes
	}, alwaysAfterPending)
	code, msg := c.topicWriteFailure(o)
	return alterClientQuotasResponse(req, outcomes, code, msg), nil
}

// alterClientQuotasResponse answers every entry of req, naming its entity as the request did, with its
// outcome, or with code and msg when the write itself did not complete.
func alterClientQuotasResponse(req *kmsg.AlterClientQuotasRequest, outcomes []quotaOutcome, code *kerr.Error, msg string) *kmsg.AlterClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for i, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, p := range e.Entity {
			rp := kmsg.NewAlterClientQuotasResponseEntryEntity()
			rp.Type, rp.Name = p.Type, p.Name
			re.Entity = append(re.Entity, rp)
		}
		switch {
		case code != nil:
			re.ErrorCode, re.ErrorMessage = code.Code, &msg
		case outcomes[i].code != nil:
			re.ErrorCode, re.ErrorMessage = outcomes[i].code.Code, &outcomes[i].msg
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp
}

// logQuotaOutcomes logs what an AlterClientQuotas request decided.
func (c *Controller) logQuotaOutcomes(req *kmsg.AlterClientQuotasRequest, offset uint64, outcomes []quotaOutcome, records int) {
	failed := 0
	for i, o := range outcomes {
		if o.code != nil {
			failed++
			var entity []metadatalog.QuotaEntityPart
			for _, p := range req.Entries[i].Entity {
				entity = append(entity, metadatalog.QuotaEntityPart{Type: p.Type, Name: p.Name})
			}
			c.log.Debug("AlterClientQuotas refused an entity", "entity", metadatalog.QuotaEntityString(entity), "error", o.code.Message, "reason", o.msg)
		}
	}
	c.log.Info("AlterClientQuotas", "entries", len(outcomes), "failed", failed, "records", records, "validate_only", req.ValidateOnly, "offset", offset)
}
