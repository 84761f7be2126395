package controller

// UnregisterBroker (key 64), version 0: an operator removes a broker that is gone for good. Its
// leadership moves away and an UnregisterBrokerRecord at its current epoch removes the registration;
// an id that is not registered answers BROKER_ID_NOT_REGISTERED, as Kafka does.

import (
	"context"
	"time"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (c *Controller) handleUnregisterBroker(ctx context.Context, req *kmsg.UnregisterBrokerRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	type answer struct {
		code *kerr.Error
		msg  string
	}
	id := req.BrokerID
	a, o := runMembership(ctx, c, id, func(img *metadatalog.Image, _ uint64, _ time.Time) ([]*metadatapb.Record, answer) {
		records, code, msg := c.cluster.unregister(img, id)
		if code == nil {
			c.sessions.remove(id)
			c.log.Info("unregistering broker", "broker", id)
		}
		return records, answer{code, msg}
	})
	switch {
	case o.notController:
		a = answer{kerr.NotController, "this controller is not the active controller: send the request to the leader shown by `kraftctl quorum describe --status`"}
	case o.err != nil:
		a = answer{kerr.RequestTimedOut, "the unregistration did not complete: " + o.err.Error()}
	}
	if a.code != nil {
		resp.ErrorCode = a.code.Code
		resp.ErrorMessage = &a.msg
	}
	return resp, nil
}
