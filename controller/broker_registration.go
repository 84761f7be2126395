package controller

// BrokerRegistration (key 62), versions 0–4. v1 added IsMigratingZkBroker (ZooKeeper migration, which
// we refuse as Kafka 4 does), v2 LogDirs, v3 PreviousBrokerEpoch (Kafka's clean-shutdown detection for
// eligible leader replicas; we read it and have no use for it yet), v4 lets a feature range start at
// level 0. The response has no error message at any version, so a refusal carries only its code; the
// message goes to this controller's log.
//
// A new incarnation's broker epoch is the offset of its RegisterBrokerRecord, answered once that
// commits; the same incarnation again amends its registration and keeps its epoch.

import (
	"context"
	"log/slog"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleBrokerRegistration(ctx context.Context, req *kmsg.BrokerRegistrationRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	r := registrationFromRequest(req)
	// The decision and its session bookkeeping live in membership (simcore.go), shared with test/sim.
	out, o := runMembership(ctx, c, r.id, func(img *metadatalog.Image, offset uint64, now time.Time) ([]*metadatapb.Record, registerOutcome) {
		return c.membership().register(img, r, offset, now)
	})
	code, msg := out.code, out.msg
	switch {
	case o.notController:
		code, msg = kerr.NotController, "this controller is not the active controller"
	case o.err != nil:
		code, msg = kerr.RequestTimedOut, "the registration did not complete: "+o.err.Error()
	}
	if code != nil {
		// NOT_CONTROLLER is routine (a starting broker asks a random voter first); the rest need an operator.
		lvl := slog.LevelWarn
		if code == kerr.NotController {
			lvl = slog.LevelDebug
		}
		c.log.Log(ctx, lvl, "refused a broker registration", "broker", r.id, "error", code.Message, "reason", msg)
		resp.ErrorCode = code.Code
		return resp, nil
	}
	resp.BrokerEpoch = out.epoch
	if len(out.records) > 0 {
		c.log.Info("registered broker", "broker", r.id, "epoch", out.epoch, "new_incarnation", out.newIncarnation)
	}
	return resp, nil
}

func registrationFromRequest(req *kmsg.BrokerRegistrationRequest) brokerRegistration {
	r := brokerRegistration{
		id: req.BrokerID, clusterID: req.ClusterID, incarnation: req.IncarnationID,
		migratingZK: req.Version >= 1 && req.IsMigratingZkBroker,
	}
	if req.Rack != nil {
		r.rack = *req.Rack
	}
	for _, l := range req.Listeners {
		r.endpoints = append(r.endpoints, &metadatapb.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: int32(l.SecurityProtocol)})
	}
	for _, f := range req.Features {
		r.features = append(r.features, &metadatapb.FeatureRange{Name: f.Name, MinSupportedVersion: int32(f.MinSupportedVersion), MaxSupportedVersion: int32(f.MaxSupportedVersion)})
	}
	if req.Version >= 2 {
		r.logDirs = req.LogDirs
	}
	return r
}
