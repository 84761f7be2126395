package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// adminController is a controller's admin side as the forwarding broker sees it: it serves the
// forwarded keys (every version kmsg knows unless apis says otherwise), records what it receives, and
// answers as behave says.
type adminController struct {
	id     int32
	addr   string
	behave func(ctx context.Context, req kmsg.Request) (kmsg.Response, error)

	mu struct {
		sync.Mutex
		got []received
	}
}

type received struct {
	req      kmsg.Request
	clientID string
}

func newAdminController(t *testing.T, id int32, apis map[int16]kafkaserver.VersionRange, behave func(context.Context, kmsg.Request) (kmsg.Response, error)) *adminController {
	t.Helper()
	if apis == nil {
		apis = map[int16]kafkaserver.VersionRange{}
		for key := range forwardedAPIs {
			apis[key] = kafkaserver.VersionRange{Min: 0, Max: kmsg.RequestForKey(key).MaxVersion()}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &adminController{id: id, addr: ln.Addr().String(), behave: behave}
	srv := kafkaserver.Serve(kafkaserver.Options{Listener: ln, Handler: c, APIs: apis, Logger: quietLogger()})
	t.Cleanup(func() { srv.Close() })
	return c
}

func (c *adminController) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	c.mu.Lock()
	c.mu.got = append(c.mu.got, received{req: req, clientID: kafkaserver.ClientID(ctx)})
	c.mu.Unlock()
	return c.behave(ctx, req)
}

// received lists what reached this controller with the given key.
func (c *adminController) receivedKey(key int16) []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []received
	for _, r := range c.mu.got {
		if r.req.Key() == key {
			out = append(out, r)
		}
	}
	return out
}

// answerAll answers every item of req with code: the answer shape of a controller that accepts (code
// 0) or of a standby (NOT_CONTROLLER). A created topic gets a topic id, so a test can see it relayed.
func answerAll(code int16, msg string) func(context.Context, kmsg.Request) (kmsg.Response, error) {
	return func(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
		resp := forwardedAPIs[req.Key()].failed(req, code, msg)
		if ct, ok := resp.(*kmsg.CreateTopicsResponse); ok && code == 0 {
			for i := range ct.Topics {
				ct.Topics[i].TopicID = createdID
				ct.Topics[i].ErrorMessage = nil
			}
		}
		return resp, nil
	}
}

var (
	createdID      = [16]byte{7, 7, 7}
	accept         = answerAll(0, "")
	standbyMessage = "This controller is not the active controller; node 2 is."
	standby        = answerAll(kerr.NotController.Code, standbyMessage)
)

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// forwardingBroker serves a broker port for a broker that is not started: its image lists it as a live
// broker (so clients send it their admin requests), and it last saw active as the active controller.
func forwardingBroker(t *testing.T, controllers map[int32]string, active int32, tweak func(*Config)) (*Broker, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	cfg := Config{
		NodeID:         101,
		ClusterID:      testClusterID,
		Controllers:    controllers,
		Listeners:      []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: port}},
		RequestTimeout: 5 * time.Second,
		Logger:         quietLogger(),
		Knobs:          Knobs{BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	b := New(cfg)
	img, err := metadatalog.EmptyImage().Apply(2, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		mvRecord(fakeMV),
		rec(&metadatapb.RegisterBrokerRecord{BrokerId: cfg.NodeID, BrokerEpoch: 2, Endpoints: []*metadatapb.Endpoint{ep("PLAINTEXT", "127.0.0.1", port)}}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.image.Store(img)
	b.active.Store(active)
	srv := kafkaserver.Serve(kafkaserver.Options{
		Listener: ln, Handler: b.HandlerFor("PLAINTEXT"), APIs: b.APIs(),
		DecorateApiVersions: b.DecorateApiVersions, Logger: quietLogger(),
	})
	t.Cleanup(func() {
		srv.Close()
		b.Close()
	})
	return b, ln.Addr().String()
}

// adminClient is a franz-go client of the broker port that does not retry, so each test sees exactly
// the broker's answer. pins caps keys at a version, as an older client would send.
func adminClient(t *testing.T, addr string, pins map[int16]int16) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.ClientID("forward-test")}
	if len(pins) > 0 {
		vs := kversion.Stable()
		for key, v := range pins {
			vs.SetMaxKeyVersion(key, v)
		}
		opts = append(opts, kgo.MaxVersions(vs))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// itemError is one item of an answer: its code and message (nil when the version has no message).
type itemError struct {
	code int16
	msg  *string
}

// itemErrors lists every error field of an answer a client would show: top level and per item.
func itemErrors(resp kmsg.Response) []itemError {
	var out []itemError
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		for _, t := range r.Topics {
			out = append(out, itemError{t.ErrorCode, t.ErrorMessage})
		}
	case *kmsg.DeleteTopicsResponse:
		for _, t := range r.Topics {
			out = append(out, itemError{t.ErrorCode, t.ErrorMessage})
		}
	case *kmsg.CreatePartitionsResponse:
		for _, t := range r.Topics {
			out = append(out, itemError{t.ErrorCode, t.ErrorMessage})
		}
	case *kmsg.ElectLeadersResponse:
		if r.Version >= 1 {
			out = append(out, itemError{r.ErrorCode, nil})
		}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				out = append(out, itemError{p.ErrorCode, p.ErrorMessage})
			}
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for _, res := range r.Resources {
			out = append(out, itemError{res.ErrorCode, res.ErrorMessage})
		}
	case *kmsg.UpdateFeaturesResponse:
		out = append(out, itemError{r.ErrorCode, r.ErrorMessage})
		for _, res := range r.Results {
			out = append(out, itemError{res.ErrorCode, res.ErrorMessage})
		}
	case *kmsg.AlterClientQuotasResponse:
		for _, e := range r.Entries {
			out = append(out, itemError{e.ErrorCode, e.ErrorMessage})
		}
	case *kmsg.CreateACLsResponse:
		for _, res := range r.Results {
			out = append(out, itemError{res.ErrorCode, res.ErrorMessage})
		}
	case *kmsg.DeleteACLsResponse:
		for _, res := range r.Results {
			out = append(out, itemError{res.ErrorCode, res.ErrorMessage})
		}
	}
	return out
}

// adminRequests builds one request of every forwarded API, at version v (or its newest, if v is -1),
// each naming two items, with timeoutMillis where the API has a timeout.
func adminRequests(v int16, timeoutMillis int32) []kmsg.Request {
	at := func(r kmsg.Request) kmsg.Request {
		if v < 0 || v > r.MaxVersion() {
			r.SetVersion(r.MaxVersion())
		} else {
			r.SetVersion(v)
		}
		if tr, ok := r.(kmsg.SetTimeoutRequest); ok {
			tr.SetTimeout(timeoutMillis)
		}
		return r
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"a", "b"} {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, 1, 1
		ct.Topics = append(ct.Topics, t)
	}
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"a", "b"}
	for _, name := range dt.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		dt.Topics = append(dt.Topics, t)
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	for _, name := range []string{"a", "b"} {
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = name, 3
		cp.Topics = append(cp.Topics, t)
	}
	el := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "a", []int32{0, 1}
	el.Topics = append(el.Topics, et)
	ac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, name := range []string{"a", "b"} {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("1000")
		r.Configs = append(r.Configs, c)
		ac.Resources = append(ac.Resources, r)
	}
	uf := kmsg.NewPtrUpdateFeaturesRequest()
	for _, name := range []string{"metadata.version", "other.feature"} {
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel = name, 1
		uf.FeatureUpdates = append(uf.FeatureUpdates, u)
	}
	cq := kmsg.NewPtrAlterClientQuotasRequest()
	for _, name := range []*string{kmsg.StringPtr("alice"), nil} {
		e := kmsg.NewAlterClientQuotasRequestEntry()
		ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ent.Type, ent.Name = "user", name
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = "producer_byte_rate", 1024
		e.Entity, e.Ops = append(e.Entity, ent), append(e.Ops, op)
		cq.Entries = append(cq.Entries, e)
	}
	ca := kmsg.NewPtrCreateACLsRequest()
	da := kmsg.NewPtrDeleteACLsRequest()
	for _, name := range []string{"a", "b"} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.Principal, c.Host = kmsg.ACLResourceTypeTopic, name, "User:alice", "*"
		c.Operation, c.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		ca.Creations = append(ca.Creations, c)
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName = kmsg.ACLResourceTypeTopic, kmsg.StringPtr(name)
		f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		da.Filters = append(da.Filters, f)
	}
	return []kmsg.Request{at(ct), at(dt), at(cp), at(el), at(ac), at(uf), at(cq), at(ca), at(da)}
}

func TestForwardedAPIsAdvertised(t *testing.T) {
	apis := New(Config{Logger: quietLogger()}).APIs()
	want := map[int16]int16{19: 7, 20: 6, 37: 3, 43: 2, 44: 1, 57: 2, 48: 1, 49: 1}
	for key, max := range want {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != max {
			t.Errorf("%s advertised %v (present %v), want 0..%d as the controller serves", kmsg.NameForKey(key), r, ok, max)
		}
	}
}

func TestForwardToActiveController(t *testing.T) {
	ctl := newAdminController(t, 1, nil, accept)
	other := newAdminController(t, 2, nil, accept)
	_, addr := forwardingBroker(t, map[int32]string{1: ctl.addr, 2: other.addr}, 1, nil)
	ctx := testCtx(t)
	adm := kadm.NewClient(adminClient(t, addr, nil))

	created, err := adm.CreateTopics(ctx, 1, 1, nil, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if c := created["orders"]; c.Err != nil || c.ID != createdID {
		t.Fatalf("created %+v, want no error and the controller's topic id", c)
	}
	if _, err := adm.DeleteTopics(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdatePartitions(ctx, 2, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"orders": {0: {}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.UpdateFeatures(ctx, false, kadm.FeatureUpdate{Feature: "metadata.version", MaxVersionLevel: 4, UpgradeType: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead)); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").Allow().AllowHosts().Operations()); err != nil {
		t.Fatal(err)
	}

	for key := range forwardedAPIs {
		got := ctl.receivedKey(key)
		if len(got) != 1 {
			t.Fatalf("the active controller received %d %s requests, want 1", len(got), kmsg.NameForKey(key))
		}
		if id := got[0].clientID; id != "kraft-broker-101-forward/forward-test" {
			t.Errorf("%s came with client id %q, want the broker's forwarding id with the client's after it", kmsg.NameForKey(key), id)
		}
		if n := len(other.receivedKey(key)); n != 0 {
			t.Errorf("controller 2 received %d %s requests; the broker should go to the one it saw active", n, kmsg.NameForKey(key))
		}
	}
}

func TestForwardPassesStandbyAndUnreachable(t *testing.T) {
	for _, first := range []string{"standby", "unreachable"} {
		t.Run(first, func(t *testing.T) {
			active := newAdminController(t, 3, nil, accept)
			controllers := map[int32]string{2: active.addr}
			var sb *adminController
			if first == "standby" {
				sb = newAdminController(t, 1, nil, standby)
				controllers[1] = sb.addr
			} else {
				controllers[1] = closedAddr(t)
			}
			_, addr := forwardingBroker(t, controllers, 1, nil)
			cl := adminClient(t, addr, nil)
			for _, req := range adminRequests(-1, 10000) {
				name := kmsg.NameForKey(req.Key())
				resp, err := cl.Request(testCtx(t), req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, e := range itemErrors(resp) {
					if e.code != 0 {
						t.Fatalf("%s answered %v: %s", name, kerr.ErrorForCode(e.code), deref(e.msg))
					}
				}
				if n := len(active.receivedKey(req.Key())); n != 1 {
					t.Errorf("%s reached the active controller %d times, want 1", name, n)
				}
				if sb != nil {
					if n := len(sb.receivedKey(req.Key())); n != 1 {
						t.Errorf("%s reached the standby %d times, want 1 (it was the last one seen active)", name, n)
					}
				}
			}
		})
	}
}

func TestForwardNoControllerAnswersEveryItem(t *testing.T) {
	cases := map[string]struct {
		controllers func(t *testing.T) map[int32]string
		wantInMsg   []string
	}{
		"unreachable": {
			controllers: func(t *testing.T) map[int32]string {
				return map[int32]string{1: closedAddr(t), 2: closedAddr(t)}
			},
			wantInMsg: []string{"no controller answered", "controller 1 at 127.0.0.1:", "controller 2 at 127.0.0.1:", "unreachable"},
		},
		"standbys": {
			controllers: func(t *testing.T) map[int32]string {
				return map[int32]string{
					1: newAdminController(t, 1, nil, standby).addr,
					2: newAdminController(t, 2, nil, standby).addr,
				}
			},
			wantInMsg: []string{"no controller answered", "controller 1 at", "controller 2 at", "NOT_CONTROLLER: " + standbyMessage},
		},
	}
	// The budget only bounds how long each request takes to fail; every request runs in parallel.
	const budget = 500 * time.Millisecond
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, addr := forwardingBroker(t, tc.controllers(t), 1, func(cfg *Config) { cfg.RequestTimeout = budget })
			var reqs []kmsg.Request
			var clients []*kgo.Client
			var pins []int16
			for _, v := range []int16{0, -1} {
				for _, req := range adminRequests(-1, int32(budget.Milliseconds())) {
					reqs, clients, pins = append(reqs, req), append(clients, adminClientAt(t, addr, v)), append(pins, v)
				}
			}
			answers := sendAll(t, clients, reqs)
			for i, req := range reqs {
				api, v := kmsg.NameForKey(req.Key()), pins[i]
				t.Run(fmt.Sprintf("%s/v%d", api, pinned(req.Key(), v)), func(t *testing.T) {
					resp, err := answers[i].resp, answers[i].err
					if err != nil {
						t.Fatal(err)
					}
					// franz-go sends a copy of IncrementalAlterConfigs (it is split by broker), so
					// the answer's version is the one the client sent.
					version := resp.GetVersion()
					if want := pinned(req.Key(), v); version != want {
						t.Fatalf("the client read v%d, want v%d", version, want)
					}
					req.SetVersion(version)
					errs := itemErrors(resp)
					if len(errs) != wantItems(req) {
						t.Fatalf("%d items answered, want %d", len(errs), wantItems(req))
					}
					for _, e := range errs {
						if e.code != kerr.NotController.Code {
							t.Errorf("an item answered %v, want NOT_CONTROLLER", kerr.ErrorForCode(e.code))
						}
						if e.msg == nil {
							continue // this version has no message field here
						}
						for _, want := range tc.wantInMsg {
							if !strings.Contains(*e.msg, want) {
								t.Errorf("message %q lacks %q", *e.msg, want)
							}
						}
					}
				})
			}
		})
	}
}

type answer struct {
	resp kmsg.Response
	err  error
}

// sendAll sends reqs[i] with clients[i], all at once, since each may take a whole budget to fail,
// and returns the answers in the same order. A client per request: the broker port, like Kafka, serves
// one request per connection at a time.
func sendAll(t *testing.T, clients []*kgo.Client, reqs []kmsg.Request) []answer {
	ctx := testCtx(t)
	answers := make([]answer, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			answers[i].resp, answers[i].err = clients[i].Request(ctx, req)
		})
	}
	wg.Wait()
	return answers
}

// pinned is the version a client pinned at v (-1: its newest) sends of key.
func pinned(key int16, v int16) int16 {
	max := kmsg.RequestForKey(key).MaxVersion()
	if v < 0 || v > max {
		return max
	}
	return v
}

// adminClientAt is adminClient pinning every forwarded key at v (or its newest, if lower).
func adminClientAt(t *testing.T, addr string, v int16) *kgo.Client {
	pins := map[int16]int16{}
	for key := range forwardedAPIs {
		pins[key] = pinned(key, v)
	}
	return adminClient(t, addr, pins)
}

// wantItems is how many error fields the answer to req has (see adminRequests and itemErrors).
func wantItems(req kmsg.Request) int {
	switch r := req.(type) {
	case *kmsg.ElectLeadersRequest:
		if r.Version >= 1 {
			return 3
		}
	case *kmsg.UpdateFeaturesRequest:
		if r.Version >= 2 {
			return 1
		}
		return 3
	}
	return 2
}

func TestForwardRelaysAtTheClientsVersion(t *testing.T) {
	ctl := newAdminController(t, 1, nil, accept)
	_, addr := forwardingBroker(t, map[int32]string{1: ctl.addr}, 1, nil)
	ctx := testCtx(t)

	// Older clients: v0 CreateTopics (no ValidateOnly), v5 DeleteTopics (by name), v0 ElectLeaders.
	cl := adminClient(t, addr, map[int16]int16{19: 0, 20: 5, 43: 0})
	ct := adminRequests(-1, 10000)[0].(*kmsg.CreateTopicsRequest)
	resp, err := cl.Request(ctx, ct)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Version != 0 || resp.GetVersion() != 0 {
		t.Fatalf("the client sent v%d and read v%d, want v0", ct.Version, resp.GetVersion())
	}
	if got := ctl.receivedKey(19); len(got) != 1 || got[0].req.GetVersion() != 0 {
		t.Fatalf("the controller received %d CreateTopics, first at v%d; want one at the client's v0", len(got), got[0].req.GetVersion())
	}
	if r := resp.(*kmsg.CreateTopicsResponse); len(r.Topics) != 2 || r.Topics[0].Topic != "a" || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("the v0 answer reads %+v", r.Topics)
	}

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"a"}
	if _, err := cl.Request(ctx, dt); err != nil {
		t.Fatal(err)
	}
	got := ctl.receivedKey(20)[0].req.(*kmsg.DeleteTopicsRequest)
	if got.Version != 5 || !slices.Equal(got.TopicNames, []string{"a"}) {
		t.Fatalf("the controller received DeleteTopics v%d naming %v, want v5 naming [a]", got.Version, got.TopicNames)
	}

	el := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "a", []int32{0}
	el.Topics = append(el.Topics, et)
	eresp, err := cl.Request(ctx, el)
	if err != nil {
		t.Fatal(err)
	}
	if eresp.GetVersion() != 0 {
		t.Fatalf("ElectLeaders answered at v%d, want the client's v0", eresp.GetVersion())
	}
	if got := ctl.receivedKey(43)[0].req.(*kmsg.ElectLeadersRequest); got.Version != 1 || got.ElectionType != 0 {
		t.Fatalf("ElectLeaders v0 reached the controller as v%d type %d, want v1 preferred", got.Version, got.ElectionType)
	}

	// The newest client by id: DeleteTopics v6 naming a topic only by id reaches the controller so.
	id := [16]byte{4, 2}
	dt6 := kmsg.NewPtrDeleteTopicsRequest()
	t6 := kmsg.NewDeleteTopicsRequestTopic()
	t6.TopicID = id
	dt6.Topics = append(dt6.Topics, t6)
	dresp, err := adminClient(t, addr, nil).Request(ctx, dt6)
	if err != nil {
		t.Fatal(err)
	}
	if r := dresp.(*kmsg.DeleteTopicsResponse); r.Version != 6 || len(r.Topics) != 1 || r.Topics[0].TopicID != id {
		t.Fatalf("DeleteTopics v6 by id answered %+v", r)
	}
	if got := ctl.receivedKey(20)[1].req.(*kmsg.DeleteTopicsRequest); got.Version != 6 || len(got.Topics) != 1 || got.Topics[0].TopicID != id {
		t.Fatalf("the controller received DeleteTopics v%d with %+v, want v6 by id", got.Version, got.Topics)
	}
}

func TestForwardNewerThanControllerIsUnsupported(t *testing.T) {
	// Controllers that serve CreateTopics only up to v4 and no IncrementalAlterConfigs at all, as
	// older software would; the client speaks the broker's newest.
	old := map[int16]kafkaserver.VersionRange{19: {Min: 0, Max: 4}}
	c1 := newAdminController(t, 1, old, accept)
	c2 := newAdminController(t, 2, old, standby)
	_, addr := forwardingBroker(t, map[int32]string{1: c1.addr, 2: c2.addr}, 1, nil)
	cl := adminClient(t, addr, nil)
	for _, req := range []kmsg.Request{adminRequests(-1, 10000)[0], adminRequests(-1, 10000)[4]} {
		name := kmsg.NameForKey(req.Key())
		resp, err := cl.Request(testCtx(t), req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, e := range itemErrors(resp) {
			if e.code != kerr.UnsupportedVersion.Code || e.msg == nil || !strings.Contains(*e.msg, "no controller can take "+name) {
				t.Fatalf("%s answered %v: %s; want UNSUPPORTED_VERSION naming what the controllers serve", name, kerr.ErrorForCode(e.code), deref(e.msg))
			}
		}
		if n := len(c1.receivedKey(req.Key())) + len(c2.receivedKey(req.Key())); n != 0 {
			t.Fatalf("%s reached a controller that cannot read it %d times", name, n)
		}
	}
	// The same client at a version the controllers read is forwarded.
	ct := adminRequests(4, 10000)[0]
	resp, err := adminClient(t, addr, map[int16]int16{19: 4}).Request(testCtx(t), ct)
	if err != nil {
		t.Fatal(err)
	}
	if e := itemErrors(resp); e[0].code != 0 {
		t.Fatalf("CreateTopics v4 answered %v", kerr.ErrorForCode(e[0].code))
	}
}

func TestForwardUnknownOutcomeIsNotResent(t *testing.T) {
	behaviours := map[string]func(context.Context, kmsg.Request) (kmsg.Response, error){
		// The controller read the request, then the connection died.
		"connection lost": func(context.Context, kmsg.Request) (kmsg.Response, error) {
			return nil, errors.New("dropped by the test")
		},
		// The controller read the request and never answered within its timeout.
		"no answer": func(ctx context.Context, _ kmsg.Request) (kmsg.Response, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	for name, behave := range behaviours {
		t.Run(name, func(t *testing.T) {
			lost := newAdminController(t, 1, nil, behave)
			active := newAdminController(t, 2, nil, accept)
			const budget = 500 * time.Millisecond
			_, addr := forwardingBroker(t, map[int32]string{1: lost.addr, 2: active.addr}, 1, func(cfg *Config) { cfg.RequestTimeout = budget })
			reqs := adminRequests(-1, int32(budget.Milliseconds()))
			var clients []*kgo.Client
			for range reqs {
				clients = append(clients, adminClient(t, addr, nil))
			}
			answers := sendAll(t, clients, reqs)
			for i, req := range reqs {
				api := kmsg.NameForKey(req.Key())
				t.Run(api, func(t *testing.T) {
					resp, err := answers[i].resp, answers[i].err
					if err != nil {
						t.Fatal(err)
					}
					for _, e := range itemErrors(resp) {
						if e.code != kerr.RequestTimedOut.Code {
							t.Errorf("an item answered %v, want REQUEST_TIMED_OUT", kerr.ErrorForCode(e.code))
						}
						if e.msg != nil && !strings.Contains(*e.msg, "outcome is unknown") {
							t.Errorf("message %q does not say the outcome is unknown", *e.msg)
						}
					}
					if n := len(lost.receivedKey(req.Key())); n != 1 {
						t.Errorf("the request reached the silent controller %d times, want once", n)
					}
					if n := len(active.receivedKey(req.Key())); n != 0 {
						t.Errorf("the request was resent to another controller %d times after an unknown outcome", n)
					}
				})
			}
		})
	}
}

// TestForwardFailedAnswersEveryVersion encodes every failure answer at every version the broker
// serves, the way the client reads it, and checks every item carries the error (and the message,
// where that version has a field for it).
func TestForwardFailedAnswersEveryVersion(t *testing.T) {
	const msg = "no controller answered: test"
	for key, api := range forwardedAPIs {
		for v := api.versions.Min; v <= api.versions.Max; v++ {
			for _, req := range adminRequests(v, 1000) {
				if req.Key() != key {
					continue
				}
				resp := api.failed(req, kerr.NotController.Code, msg)
				wire := resp.AppendTo(nil)
				read := req.ResponseKind()
				if err := read.ReadFrom(wire); err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
				}
				errs := itemErrors(read)
				if len(errs) != wantItems(req) {
					t.Fatalf("%s v%d: %d items answered, want %d", kmsg.NameForKey(key), v, len(errs), wantItems(req))
				}
				if refused, _ := api.refused(read); !refused {
					t.Errorf("%s v%d: an all-NOT_CONTROLLER answer is not recognized as a refusal", kmsg.NameForKey(key), v)
				}
				withMsg := 0
				for _, e := range errs {
					if e.code != kerr.NotController.Code {
						t.Errorf("%s v%d: item code %d", kmsg.NameForKey(key), v, e.code)
					}
					if e.msg != nil {
						withMsg++
						if *e.msg != msg {
							t.Errorf("%s v%d: message %q", kmsg.NameForKey(key), v, *e.msg)
						}
					}
				}
				if withMsg == 0 && messageSince[key] <= v {
					t.Errorf("%s v%d: no item carries the message", kmsg.NameForKey(key), v)
				}
			}
		}
	}
}

// messageSince is the first version of each answer with an error message field.
var messageSince = map[int16]int16{19: 1, 20: 5, 37: 0, 43: 0, 44: 0, 57: 0, 49: 0}
