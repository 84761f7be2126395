package controller

// UpdateFeatures (key 57), versions 0–2. v0 says "downgrade" with AllowDowngrade; v1 replaced it with
// UpgradeType (1 upgrade, 2 safe downgrade, 3 unsafe downgrade); v2 drops the per-feature results and
// answers with the top-level error only.

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleUpdateFeatures(ctx context.Context, req *kmsg.UpdateFeaturesRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	updates := updatesFromRequest(req)
	var voters []controllerSupport
	if raises(c.Image(), updates) {
		voters = c.voterSupport(ctx)
	}
	unsafe := false
	for _, u := range updates {
		unsafe = unsafe || u.upgradeType == upgradeTypeUnsafeDowngrade
	}
	var code *kerr.Error
	var msg string
	o := c.runWrite(ctx, func(img *metadatalog.Image, _ uint64) []*metadatapb.Record {
		res := c.features.updateFeatures(img, updates, voters)
		code, msg = res.code, res.msg
		if res.code != nil {
			return nil
		}
		msg = res.dropped(req.ValidateOnly, unsafe && lowers(img, updates))
		if req.ValidateOnly {
			return nil
		}
		return res.records
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
	}
	if msg != "" {
		resp.ErrorCode, resp.ErrorMessage = ec, &msg
	}
	if req.Version < 2 {
		for _, u := range req.FeatureUpdates {
			r := kmsg.NewUpdateFeaturesResponseResult()
			r.Feature, r.ErrorCode = u.Feature, ec
			if msg != "" {
				r.ErrorMessage = &msg
			}
			resp.Results = append(resp.Results, r)
		}
	}
	return resp, nil
}

// raises reports whether any update asks for a level above img's: only then must every voter confirm
// it supports the target.
func raises(img *metadatalog.Image, updates []featureUpdate) bool {
	for _, u := range updates {
		if u.name == metadatalog.MetadataVersionFeature && u.level > img.MetadataVersion() {
			return true
		}
	}
	return false
}

// lowers reports whether any update asks for a level below img's.
func lowers(img *metadatalog.Image, updates []featureUpdate) bool {
	for _, u := range updates {
		if u.name == metadatalog.MetadataVersionFeature && u.level < img.MetadataVersion() {
			return true
		}
	}
	return false
}

// voterSupportTimeout bounds how long an upgrade waits for a voter to report its range.
const voterSupportTimeout = 3 * time.Second

// voterSupport asks every other voter, over its controller port, which metadata.version levels it
// supports (ApiVersions' SupportedFeatures, as every node reports them); this controller answers for
// itself. A voter that does not answer has an unknown range, which refuses an upgrade: Kafka's rule
// is that every controller must support the target.
func (c *Controller) voterSupport(ctx context.Context) []controllerSupport {
	ids := slices.Sorted(maps.Keys(c.cfg.Voters))
	out := make([]controllerSupport, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		out[i].id = id
		if id == c.cfg.NodeID {
			out[i].lo, out[i].hi = metadatalog.MinMetadataVersion.Level, c.features.localMax()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, voterSupportTimeout)
			defer cancel()
			req := kmsg.NewPtrApiVersionsRequest()
			req.Version = 3 // the first with SupportedFeatures
			req.ClientSoftwareName, req.ClientSoftwareVersion = "kraft-controller", "1"
			r, err := c.fwd.forward(rctx, c.cfg.Voters[id], req)
			if err != nil {
				out[i].err = err
				return
			}
			// Software that reports no range is taken to support level 1 only, as Kafka takes brokers.
			out[i].lo, out[i].hi = 1, 1
			for _, f := range r.(*kmsg.ApiVersionsResponse).SupportedFeatures {
				if f.Name == metadatalog.MetadataVersionFeature {
					out[i].lo, out[i].hi = f.MinVersion, f.MaxVersion
				}
			}
		}()
	}
	wg.Wait()
	return out
}
