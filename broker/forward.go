package broker

// Admin requests on the broker port are forwarded to the active controller, and its answer is relayed:
// CreateTopics (19, v0–7), DeleteTopics (20, v0–6), CreatePartitions (37, v0–3), ElectLeaders (43,
// v0–2), IncrementalAlterConfigs (44, v0–1) and UpdateFeatures (57, v0–2), the ranges the controller
// serves. Clients send them to the "controller" Metadata names, which is a live broker (see
// clientControllerID). CreateAcls (30, v0–3) and DeleteAcls (31, v0–3) are forwarded the same way,
// and so is AlterClientQuotas (49, v0–1).
//
// Versions. A request is sent at exactly the version the client chose, so it means what the client
// meant (a v0 CreateTopics has no ValidateOnly; DeleteTopics v0–5 name topics in TopicNames, v6 in
// Topics, by name or id), and the answer is re-encoded at that version. franz-go would otherwise send
// the newest version both sides know, overwriting the client's; the forwarding client pins the key's
// min and max version to the client's, so franz-go can neither raise nor lower it. A controller that
// cannot read that version is never sent it: if no controller can, every item answers
// UNSUPPORTED_VERSION naming what each serves. The one exception is ElectLeaders v0, sent as v1 (the
// same request with the preferred election type) because only v1+ has a top-level error, the only
// place a controller can say NOT_CONTROLLER to a request for every partition (null topics).
//
// Retries. The broker starts at the controller it last saw active (heartbeats keep b.active current)
// and goes round the voters: a controller that is unreachable, or that refuses every item with
// NOT_CONTROLLER, is passed over, with a short pause between full rounds so an election can finish.
// New attempts start until the request's own TimeoutMillis (the broker's RequestTimeout for requests
// without one) runs out, and one already written may take RequestTimeout more to be answered; then
// every item answers NOT_CONTROLLER, which clients retry, with a message naming what each controller
// said. A request that was written to a controller and got no answer is never sent again: it may have
// been applied, so every item answers REQUEST_TIMED_OUT saying the outcome is unknown.
//
// NOT_CONTROLLER is taken to mean nothing was applied, as Kafka's forwarding does. That holds for a
// standby, but a controller that loses leadership also answers its parked writes NOT_CONTROLLER, and
// those may still commit under the next leader; the two answers look alike, so such a write can be
// sent again (a retried CreateTopics then says TOPIC_ALREADY_EXISTS).
//
// Each attempt uses a connection of its own (a fresh franz-go client, closed after the answer). It
// starts with an ApiVersions exchange, which proves the controller is up before anything is written
// and says which versions it reads, and a write hook tells "never written" (safe to try elsewhere)
// from "written, fate unknown" exactly, without guessing from error text. A private connection also
// keeps one slow or cancelled request from stalling or killing the others in flight: a controller
// serves one request per connection at a time, and franz-go closes a connection whose long request is
// cancelled.

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// forwardedAPI is what the forwarding needs to know about one admin API.
type forwardedAPI struct {
	versions kafkaserver.VersionRange
	// refused reports whether a controller turned the whole request down as a standby, every item
	// (or the top level) answering NOT_CONTROLLER, with one of its messages.
	refused func(kmsg.Response) (bool, string)
	// failed answers every item of req, at req's version, with code and msg.
	failed func(req kmsg.Request, code int16, msg string) kmsg.Response
	// lift, if set, returns the request to send in place of req (see ElectLeaders).
	lift func(req kmsg.Request) kmsg.Request
}

// forwardedAPIs are the admin APIs the broker port forwards, keyed by API key, with the versions the
// controller serves (controller.Controller.APIs).
var forwardedAPIs = map[int16]forwardedAPI{
	(&kmsg.CreateTopicsRequest{}).Key():            {versions: kafkaserver.VersionRange{Min: 0, Max: 7}, refused: createTopicsRefused, failed: createTopicsFailed},
	(&kmsg.DeleteTopicsRequest{}).Key():            {versions: kafkaserver.VersionRange{Min: 0, Max: 6}, refused: deleteTopicsRefused, failed: deleteTopicsFailed},
	(&kmsg.CreatePartitionsRequest{}).Key():        {versions: kafkaserver.VersionRange{Min: 0, Max: 3}, refused: createPartitionsRefused, failed: createPartitionsFailed},
	(&kmsg.ElectLeadersRequest{}).Key():            {versions: kafkaserver.VersionRange{Min: 0, Max: 2}, refused: electLeadersRefused, failed: electLeadersFailed, lift: liftElectLeaders},
	(&kmsg.IncrementalAlterConfigsRequest{}).Key(): {versions: kafkaserver.VersionRange{Min: 0, Max: 1}, refused: alterConfigsRefused, failed: alterConfigsFailed},
	(&kmsg.UpdateFeaturesRequest{}).Key():          {versions: kafkaserver.VersionRange{Min: 0, Max: 2}, refused: updateFeaturesRefused, failed: updateFeaturesFailed},
	(&kmsg.CreateACLsRequest{}).Key():              {versions: kafkaserver.VersionRange{Min: 0, Max: 3}, refused: createACLsRefused, failed: createACLsFailed},
	(&kmsg.DeleteACLsRequest{}).Key():              {versions: kafkaserver.VersionRange{Min: 0, Max: 3}, refused: deleteACLsRefused, failed: deleteACLsFailed},
	(&kmsg.AlterClientQuotasRequest{}).Key():       {versions: kafkaserver.VersionRange{Min: 0, Max: 1}, refused: alterClientQuotasRefused, failed: alterClientQuotasFailed},
}

// forwardApiVersionsVersion is the ApiVersions each attempt opens with: the newest our controllers
// answer, so franz-go need not first try a newer one and be told to step down.
const forwardApiVersionsVersion = 4

// forwardMaxPause caps the pause between rounds of the controllers.
const forwardMaxPause = 250 * time.Millisecond

// maxRequestTimeoutOverhead is the most franz-go accepts.
const maxRequestTimeoutOverhead = 15 * time.Minute

// attemptKind is how one try at one controller ended.
type attemptKind int

const (
	attemptAnswered    attemptKind = iota // an answer to relay
	attemptRefused                        // NOT_CONTROLLER for the whole request: try another
	attemptUnreachable                    // nothing was written: try another
	attemptUnsupported                    // the controller cannot read this version; nothing was written
	attemptUnknown                        // written, and no answer: the outcome is unknown
)

type attempt struct {
	kind attemptKind
	resp kmsg.Response
	note string // what happened, for the message a failed request answers with
}

// forwardToController sends req to the active controller and returns its answer at req's version, or
// an answer that fails every item of req with a message saying why.
func (b *Broker) forwardToController(ctx context.Context, req kmsg.Request, api forwardedAPI) kmsg.Response {
	budget := b.cfg.RequestTimeout
	if t, ok := req.(kmsg.TimeoutRequest); ok && t.Timeout() > 0 {
		budget = time.Duration(t.Timeout()) * time.Millisecond
	}
	// New attempts start only within the budget (window). A request already written may take
	// RequestTimeout longer to be answered (sendCtx): giving up on it at the budget's very end would
	// turn a prompt answer into an unknown outcome for want of a round trip.
	deadline := time.Now().Add(budget)
	window, cancelWindow := context.WithDeadline(ctx, deadline)
	defer cancelWindow()
	sendCtx, cancelSend := context.WithDeadline(ctx, deadline.Add(b.cfg.RequestTimeout))
	defer cancelSend()

	// The deadline, not just window.Err: a dial cut by it can return a moment before the context
	// records its end.
	windowOver := func() bool { return window.Err() != nil || !time.Now().Before(deadline) }

	name := kmsg.NameForKey(req.Key())
	if len(b.q.ids) == 0 {
		return api.failed(req, kerr.NotController.Code, "this broker knows no controllers (controller.quorum.voters is empty)")
	}
	notes := map[int32]string{} // the latest outcome at each controller
	// Short pauses: an election takes about one election timeout, and a pause that has doubled past
	// that only delays the first write of the new leader.
	bo := b.newBackoff()
	bo.max = max(bo.min, min(bo.max, forwardMaxPause))
	for round := 1; ; round++ {
		id := b.active.Load()
		if !b.q.known(id) {
			id = b.q.at(0)
		}
		var unreachable, unsupported bool
		tried := 0
		for range b.q.ids {
			tried++
			a := b.forwardOnce(window, sendCtx, id, req, api)
			over := windowOver()
			switch a.kind {
			case attemptAnswered:
				a.resp.SetVersion(req.GetVersion())
				return a.resp
			case attemptUnknown:
				msg := fmt.Sprintf("controller %d at %s was sent the %s request but gave no answer (%s); the outcome is unknown, so check the result before retrying",
					id, b.cfg.Controllers[id], name, a.note)
				b.log.Warn("forwarded request has an unknown outcome", "api", name, "controller", id, "err", a.note)
				return api.failed(req, kerr.RequestTimedOut.Code, msg)
			case attemptUnreachable:
				unreachable = true
			case attemptUnsupported:
				unsupported = true
			}
			b.log.Debug("controller did not take a forwarded request", "api", name, "controller", id, "round", round, "reason", a.note)
			if over {
				// Perhaps cut short by the budget: that says nothing about the controller, so an earlier
				// outcome there is the better report.
				if _, ok := notes[id]; !ok || a.kind != attemptUnreachable {
					notes[id] = a.note
				}
				break
			}
			notes[id] = a.note
			id = b.q.next(id)
		}
		// Every controller answered, and those that could read the request said they are not active:
		// the active one, if any, is among those that cannot read it.
		if unsupported && !unreachable && tried == len(b.q.ids) {
			msg := fmt.Sprintf("no controller can take %s v%d: %s", name, req.GetVersion(), b.forwardTrail(notes))
			return api.failed(req, kerr.UnsupportedVersion.Code, msg)
		}
		if windowOver() || !sleep(window, bo.next()) {
			msg := fmt.Sprintf("no controller answered %s as the active controller within %v (%d rounds): %s",
				name, budget, round, b.forwardTrail(notes))
			b.log.Info("no controller took a forwarded request", "api", name, "rounds", round, "reason", msg)
			return api.failed(req, kerr.NotController.Code, msg)
		}
	}
}

// forwardTrail lists the latest outcome at each controller tried, in voter order.
func (b *Broker) forwardTrail(notes map[int32]string) string {
	var parts []string
	for _, id := range b.q.ids {
		if note, ok := notes[id]; ok {
			parts = append(parts, fmt.Sprintf("controller %d at %s: %s", id, b.cfg.Controllers[id], note))
		}
	}
	return strings.Join(parts, "; ")
}

// forwardOnce tries req at controller id over a connection of its own. window bounds everything up to
// writing the request; sendCtx bounds the wait for its answer.
func (b *Broker) forwardOnce(window, sendCtx context.Context, id int32, req kmsg.Request, api forwardedAPI) attempt {
	send := req
	if api.lift != nil {
		send = api.lift(req)
	}
	key, version := send.Key(), send.GetVersion()
	name := kmsg.NameForKey(key)

	// Pin the key to the one version: franz-go sends min(its own, the controller's, MaxVersions) and
	// refuses, before writing, anything below MinVersions.
	maxV := kversion.Stable()
	maxV.SetMaxKeyVersion((&kmsg.ApiVersionsRequest{}).Key(), forwardApiVersionsVersion)
	maxV.SetMaxKeyVersion(key, version)
	minV := new(kversion.Versions)
	minV.SetMaxKeyVersion(key, version)
	w := &writeWatch{key: key}
	// Our contexts bound the attempt; franz-go's own read deadline (this overhead plus the request's
	// timeout) must not end it sooner.
	overhead := time.Second
	if d, ok := sendCtx.Deadline(); ok {
		overhead = min(overhead+time.Until(d), maxRequestTimeoutOverhead)
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.cfg.Controllers[id]),
		kgo.RequestTimeoutOverhead(overhead),
		kgo.ClientID(forwardClientID(b.cfg.NodeID, kafkaserver.ClientID(window))),
		kgo.MaxVersions(maxV),
		kgo.MinVersions(minV),
		kgo.WithHooks(w),
	)
	if err != nil {
		return attempt{kind: attemptUnreachable, note: err.Error()}
	}
	defer cl.Close()
	ctl := cl.SeedBrokers()[0]

	apiVersions := kmsg.NewPtrApiVersionsRequest()
	apiVersions.ClientSoftwareName, apiVersions.ClientSoftwareVersion = "kraft-broker", "1"
	var probe kmsg.Request = apiVersions
	if _, ok := send.(kmsg.TimeoutRequest); ok {
		// franz-go sends requests with a timeout on a connection of their own; the probe goes there
		// too, so one connection (one dial, one handshake) serves the attempt.
		probe = sameConnAsTimeoutRequests{apiVersions}
	}
	pr, err := ctl.Request(window, probe)
	if err != nil {
		return attempt{kind: attemptUnreachable, note: "unreachable: " + err.Error()}
	}
	av := pr.(*kmsg.ApiVersionsResponse)
	if err := kerr.ErrorForCode(av.ErrorCode); err != nil {
		return attempt{kind: attemptUnreachable, note: "ApiVersions failed: " + err.Error()}
	}
	served := false
	for _, k := range av.ApiKeys {
		if k.ApiKey != key {
			continue
		}
		if version < k.MinVersion || version > k.MaxVersion {
			return attempt{kind: attemptUnsupported, note: fmt.Sprintf("serves %s v%d-%d only", name, k.MinVersion, k.MaxVersion)}
		}
		served = true
	}
	if !served {
		return attempt{kind: attemptUnsupported, note: "does not serve " + name}
	}

	resp, err := ctl.Request(sendCtx, send)
	if err != nil {
		if w.wrote.Load() {
			return attempt{kind: attemptUnknown, note: err.Error()}
		}
		return attempt{kind: attemptUnreachable, note: "not sent: " + err.Error()}
	}
	if refused, msg := api.refused(resp); refused {
		return attempt{kind: attemptRefused, note: "NOT_CONTROLLER: " + msg}
	}
	return attempt{kind: attemptAnswered, resp: resp}
}

// forwardClientID names the broker to the controller and keeps the client's own id after it, for the
// controller's logs. It deliberately lacks the controllers' own forwarding prefix: a standby that gets
// a broker's DescribeQuorum may still forward it to the leader.
func forwardClientID(node int32, client string) string {
	const maxClient = 200
	if client == "" {
		return fmt.Sprintf("kraft-broker-%d-forward", node)
	}
	if len(client) > maxClient {
		client = client[:maxClient]
	}
	return fmt.Sprintf("kraft-broker-%d-forward/%s", node, client)
}

// sameConnAsTimeoutRequests is a request franz-go treats as one with a timeout (of 0), which it sends
// on the connection it keeps for those.
type sameConnAsTimeoutRequests struct{ kmsg.Request }

func (sameConnAsTimeoutRequests) Timeout() int32 { return 0 }

// writeWatch learns whether franz-go wrote any of the request to the connection: until it has, the
// controller cannot have seen it, whatever error comes back.
type writeWatch struct {
	key   int16
	wrote atomic.Bool
}

func (w *writeWatch) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, bytesWritten int, _, _ time.Duration, _ error) {
	if key == w.key && bytesWritten > 0 {
		w.wrote.Store(true)
	}
}

// refusedAsStandby reports whether a per-item answer is a standby's refusal — items is non-empty and
// every item's code is NOT_CONTROLLER — and returns the first item's message.
func refusedAsStandby[T any](items []T, code func(T) int16, msg func(T) *string) (bool, string) {
	if len(items) == 0 {
		return false, ""
	}
	for _, it := range items {
		if code(it) != kerr.NotController.Code {
			return false, ""
		}
	}
	return true, deref(msg(items[0]))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func createTopicsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.CreateTopicsResponse).Topics,
		func(t kmsg.CreateTopicsResponseTopic) int16 { return t.ErrorCode }, func(t kmsg.CreateTopicsResponseTopic) *string { return t.ErrorMessage })
}

func createTopicsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, &msg
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func deleteTopicsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.DeleteTopicsResponse).Topics,
		func(t kmsg.DeleteTopicsResponseTopic) int16 { return t.ErrorCode }, func(t kmsg.DeleteTopicsResponseTopic) *string { return t.ErrorMessage })
}

// deleteTopicsFailed answers each topic as it was named: by name before v6, by name or id from v6.
func deleteTopicsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	add := func(name *string, id [16]byte) {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = name, id, code, &msg
		resp.Topics = append(resp.Topics, rt)
	}
	if req.Version >= 6 {
		for _, t := range req.Topics {
			add(t.Topic, t.TopicID)
		}
	} else {
		for _, name := range req.TopicNames {
			add(kmsg.StringPtr(name), [16]byte{})
		}
	}
	return resp
}

func createPartitionsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.CreatePartitionsResponse).Topics,
		func(t kmsg.CreatePartitionsResponseTopic) int16 { return t.ErrorCode }, func(t kmsg.CreatePartitionsResponseTopic) *string { return t.ErrorMessage })
}

func createPartitionsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, &msg
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// liftElectLeaders sends a v0 request as v1: the same request (v0 only knows preferred elections),
// and the v1 answer has the top-level error a standby uses when the request names no partitions.
func liftElectLeaders(r kmsg.Request) kmsg.Request {
	req := r.(*kmsg.ElectLeadersRequest)
	if req.Version >= 1 {
		return req
	}
	lifted := *req
	lifted.Version, lifted.ElectionType = 1, 0
	return &lifted
}

func electLeadersRefused(r kmsg.Response) (bool, string) {
	resp := r.(*kmsg.ElectLeadersResponse)
	var parts []kmsg.ElectLeadersResponseTopicPartition
	for _, t := range resp.Topics {
		parts = append(parts, t.Partitions...)
	}
	refused, msg := refusedAsStandby(parts,
		func(p kmsg.ElectLeadersResponseTopicPartition) int16 { return p.ErrorCode },
		func(p kmsg.ElectLeadersResponseTopicPartition) *string { return p.ErrorMessage })
	if resp.ErrorCode == kerr.NotController.Code {
		return true, msg
	}
	return refused, msg
}

// electLeadersFailed answers with the top-level error (v1+) and the error on every partition named. A
// v0 request for every partition (null topics) has nowhere to carry it, as in Kafka.
func electLeadersFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.ErrorCode = code
	for _, t := range req.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, code, &msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func alterConfigsRefused(r kmsg.Response) (bool, string) {
	return refusedAsStandby(r.(*kmsg.IncrementalAlterConfigsResponse).Resources,
		func(t kmsg.IncrementalAlterConfigsResponseResource) int16 { return t.ErrorCode }, func(t kmsg.IncrementalAlterConfigsResponseResource) *string { return t.ErrorMessage })
}

func alterConfigsFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, res := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = res.ResourceType, res.ResourceName, code, &msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

func updateFeaturesRefused(r kmsg.Response) (bool, string) {
	resp := r.(*kmsg.UpdateFeaturesResponse)
	if resp.ErrorCode != kerr.NotController.Code {
		return false, ""
	}
	return true, deref(resp.ErrorMessage)
}

// updateFeaturesFailed answers with the top-level error and, before v2, the same on every feature.
func updateFeaturesFailed(r kmsg.Request, code int16, msg string) kmsg.Response {
	req := r.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	resp.ErrorCode, resp.ErrorMessage = code, &msg
	if req.Version < 2 {
		for _, u := range req.FeatureUpdates {
			rr := kmsg.NewUpdateFeaturesResponseResult()
			rr.Feature, rr.ErrorCode, rr.ErrorMessage = u.Feature, code, &msg
			resp.Results = append(resp.Results, rr)
		}
	}
	return resp
}
