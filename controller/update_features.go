package controller

// UpdateFeatures (key 57), versions 0–2. v0 says "downgrade" with AllowDowngrade; v1 replaced it with
// UpgradeType (1 upgrade, 2 safe downgrade, 3 unsafe downgrade); v2 drops the per-feature results and
// answers with the top-level error only.

import (
	"context"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleUpdateFeatures(ctx context.Context, req *kmsg.UpdateFeaturesRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	updates := updatesFromRequest(req)
	var code *kerr.Error
	var msg string
	o := c.runWrite(ctx, func(img *metadatalog.Image, _ uint64) []*metadatapb.Record {
		records, e, m := c.features.updateFeatures(img, updates)
		code, msg = e, m
		if e != nil || req.ValidateOnly {
			return nil
		}
		return records
	})
	switch {
	case o.notController:
		code, msg = kerr.NotController, "this controller is not the active controller: send the request to the leader shown by `kraftctl quorum describe --status`"
	case o.err != nil:
		code, msg = kerr.RequestTimedOut, "the write did not complete: "+o.err.Error()
	}
	var ec int16
	if code != nil {
		ec = code.Code
		resp.ErrorCode, resp.ErrorMessage = ec, &msg
	}
	if req.Version < 2 {
		for _, u := range req.FeatureUpdates {
			r := kmsg.NewUpdateFeaturesResponseResult()
			r.Feature, r.ErrorCode = u.Feature, ec
			if code != nil {
				r.ErrorMessage = &msg
			}
			resp.Results = append(resp.Results, r)
		}
	}
	return resp, nil
}
