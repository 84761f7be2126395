package broker

// BrokerRegistration (key 62), sent to the active controller; the version is the newest both kmsg and
// the controller speak (franz-go negotiates it from the controller's ApiVersions). v1 added
// IsMigratingZkBroker, v2 LogDirs, v3 PreviousBrokerEpoch, v4 lets a feature range start at level 0. We send no log dirs
// (this broker stores no partitions) and PreviousBrokerEpoch -1 (no clean-shutdown memory across
// processes). The answer's BrokerEpoch is the offset of the registration record, and the token of this
// session.

import (
	"context"
	"errors"
	"fmt"

	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// register registers this incarnation with the active controller and returns the broker epoch. It
// retries until it succeeds or ctx ends; a refusal the broker cannot outlast (another cluster, an
// unsupported metadata.version) stops the broker through fail.
func (b *Broker) register(ctx context.Context) (int64, error) {
	bo := b.newBackoff()
	duplicates := 0
	for {
		resp, id, err := b.callActive(ctx, "BrokerRegistration", b.registrationRequest)
		if err != nil {
			return -1, err
		}
		r := resp.(*kmsg.BrokerRegistrationResponse)
		switch err := kerr.ErrorForCode(r.ErrorCode); {
		case err == nil && r.BrokerEpoch >= 0:
			return r.BrokerEpoch, nil
		case err == nil:
			b.log.Warn("the controller accepted the registration but gave no broker epoch; retrying", "controller", id, "broker_epoch", r.BrokerEpoch)
		case errors.Is(err, kerr.DuplicateBrokerRegistration):
			// Another process holds this id with a live session. It may be this broker's previous
			// run, still dying; its session expires within the session timeout.
			duplicates++
			if duplicates == 1 {
				b.log.Warn("broker id already registered by another live process (another incarnation); retrying until its session expires",
					"controller", id, "err", err)
			}
		case errors.Is(err, kerr.InconsistentClusterID):
			err := fmt.Errorf("registration refused by controller %d: this broker is configured for cluster %q, which the quorum is not (%w)",
				id, b.cfg.ClusterID, err)
			b.fail(err)
			return -1, err
		case errors.Is(err, kerr.UnsupportedVersion):
			err := fmt.Errorf("registration refused by controller %d: the cluster's finalized metadata.version is %s, outside the range this broker supports (%d-%d); run software that supports it (%w)",
				id, b.finalizedLevel(ctx, id), b.cfg.SupportedMetadataVersion[0], b.cfg.SupportedMetadataVersion[1], err)
			b.fail(err)
			return -1, err
		default:
			b.log.Warn("registration refused; retrying", "controller", id, "err", err)
		}
		if !sleep(ctx, bo.next()) {
			return -1, ctx.Err()
		}
	}
}

func (b *Broker) registrationRequest() kmsg.Request {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = b.cfg.NodeID
	req.ClusterID = b.cfg.ClusterID
	req.IncarnationID = b.incarnation
	for _, l := range b.cfg.Listeners {
		rl := kmsg.NewBrokerRegistrationRequestListener()
		rl.Name, rl.Host, rl.Port = l.Name, l.Host, uint16(l.Port)
		rl.SecurityProtocol, _ = securityProtocolID(l.SecurityProtocol) // checked by Validate
		req.Listeners = append(req.Listeners, rl)
	}
	f := kmsg.NewBrokerRegistrationRequestFeature()
	f.Name = metadatalog.MetadataVersionFeature
	f.MinSupportedVersion, f.MaxSupportedVersion = b.cfg.SupportedMetadataVersion[0], b.cfg.SupportedMetadataVersion[1]
	req.Features = append(req.Features, f)
	if b.cfg.Rack != "" {
		rack := b.cfg.Rack
		req.Rack = &rack
	}
	return req
}

// finalizedLevel describes the cluster's metadata.version for an error message: from the refusing
// controller's ApiVersions if it answers, else from this broker's image.
func (b *Broker) finalizedLevel(ctx context.Context, id int32) string {
	level := int16(0)
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "kraft-broker", "1"
	reqCtx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	defer cancel()
	if resp, err := b.q.request(reqCtx, id, req); err == nil {
		for _, f := range resp.(*kmsg.ApiVersionsResponse).FinalizedFeatures {
			if f.Name == metadatalog.MetadataVersionFeature {
				level = f.MaxVersionLevel
			}
		}
	}
	if level == 0 {
		level = b.image.Load().MetadataVersion()
	}
	return describeLevel(level)
}

// describeLevel names a metadata.version level for people: "4 (1.1-IV1)", or just the number when this
// software does not know it.
func describeLevel(level int16) string {
	if level == 0 {
		return "unknown (the controller did not say)"
	}
	if v, ok := metadatalog.MetadataVersionByLevel(level); ok {
		return fmt.Sprintf("%d (%s)", level, v.Name)
	}
	return fmt.Sprintf("%d", level)
}
