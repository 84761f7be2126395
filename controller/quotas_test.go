package controller

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// qcImage is an image at metadata.version level holding extra records.
func qcImage(t *testing.T, level int16, extra ...*metadatapb.Record) *metadatalog.Image {
	t.Helper()
	img := tcApply(t, metadatalog.EmptyImage(), []*metadatapb.Record{{Record: &metadatapb.Record_FeatureLevel{
		FeatureLevel: &metadatapb.FeatureLevelRecord{Name: metadatalog.MetadataVersionFeature, FeatureLevel: int32(level)}}}})
	if len(extra) > 0 {
		img = tcApply(t, img, extra)
	}
	return img
}

func qcName(s string) *string { return &s }

// qcEntity builds an entity from "type=name" parts; "type" alone is the type's default.
func qcEntity(parts ...string) []metadatalog.QuotaEntityPart {
	var out []metadatalog.QuotaEntityPart
	for _, p := range parts {
		typ, name, named := strings.Cut(p, "=")
		part := metadatalog.QuotaEntityPart{Type: typ}
		if named {
			part.Name = qcName(name)
		}
		out = append(out, part)
	}
	return out
}

func qcSet(key string, value float64) quotaOp { return quotaOp{key: key, value: value} }
func qcRemove(key string) quotaOp             { return quotaOp{key: key, remove: true} }

func qcAlter(entity []metadatalog.QuotaEntityPart, ops ...quotaOp) quotaAlteration {
	return quotaAlteration{entity: entity, ops: ops}
}

// qcRecords renders quota records as "{entity} key=value" or "{entity} key removed".
func qcRecords(records []*metadatapb.Record) []string {
	var out []string
	for _, r := range records {
		q := r.GetClientQuota()
		var entity []metadatalog.QuotaEntityPart
		for _, e := range q.GetEntity() {
			entity = append(entity, metadatalog.QuotaEntityPart{Type: e.GetEntityType(), Name: e.EntityName})
		}
		if q.GetRemove() {
			out = append(out, fmt.Sprintf("%s %s removed", metadatalog.QuotaEntityString(entity), q.GetKey()))
		} else {
			out = append(out, fmt.Sprintf("%s %s=%g", metadatalog.QuotaEntityString(entity), q.GetKey(), q.GetValue()))
		}
	}
	return out
}

func qcOutcome(o quotaOutcome) string {
	if o.code == nil {
		return "ok"
	}
	return o.code.Message + ": " + o.msg
}

// TestAlterClientQuotasRecords sets, updates, keeps and removes quotas of every kind of entity and
// checks the records, then that they apply to what was asked.
func TestAlterClientQuotasRecords(t *testing.T) {
	alice, defUser := qcEntity("user=alice"), qcEntity("user")
	img := qcImage(t, 4,
		metadatalog.QuotaRecord(alice, "producer_byte_rate", 1000, false),
		metadatalog.QuotaRecord(alice, "consumer_byte_rate", 2000, false),
		metadatalog.QuotaRecord(defUser, "request_percentage", 50, false),
	)
	records, outcomes := quotaControl{}.alterClientQuotas(img, []quotaAlteration{
		// Update one, keep one at its value, remove one not held, add one.
		qcAlter(alice, qcSet("producer_byte_rate", 1024), qcSet("consumer_byte_rate", 2000), qcRemove("request_percentage"), qcSet("controller_mutation_rate", 0.5)),
		qcAlter(defUser, qcRemove("request_percentage")),
		qcAlter(qcEntity("client-id=app", "user=alice"), qcSet("request_percentage", 12.5)), // parts in any order
		qcAlter(qcEntity("user", "client-id"), qcSet("consumer_byte_rate", 1e12)),
		qcAlter(qcEntity("client-id"), qcSet("producer_byte_rate", 1)),
		qcAlter(qcEntity("ip=10.0.0.1"), qcSet("connection_creation_rate", math.MaxInt32)),
		qcAlter(qcEntity("ip=2001:db8::1"), qcSet("connection_creation_rate", 5)),
		qcAlter(qcEntity("ip"), qcSet("connection_creation_rate", 100)),
		qcAlter(qcEntity("user=bob")), // no operations: nothing to do
		qcAlter(qcEntity("user=carol"), qcRemove("producer_byte_rate"), qcRemove("no.such.key")),
	})
	for i, o := range outcomes {
		if o.code != nil {
			t.Fatalf("entry %d refused: %s", i, qcOutcome(o))
		}
	}
	want := []string{
		"{user=alice} producer_byte_rate=1024",
		"{user=alice} controller_mutation_rate=0.5",
		"{user=<default>} request_percentage removed",
		"{client-id=app, user=alice} request_percentage=12.5",
		"{client-id=<default>, user=<default>} consumer_byte_rate=1e+12",
		"{client-id=<default>} producer_byte_rate=1",
		"{ip=10.0.0.1} connection_creation_rate=2.147483647e+09",
		"{ip=2001:db8::1} connection_creation_rate=5",
		"{ip=<default>} connection_creation_rate=100",
	}
	if got := qcRecords(records); !slices.Equal(got, want) {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	after := tcApply(t, img, records)
	if v := after.ClientQuotaValues(alice); len(v) != 3 || v["producer_byte_rate"] != 1024 || v["consumer_byte_rate"] != 2000 || v["controller_mutation_rate"] != 0.5 {
		t.Errorf("alice holds %v", v)
	}
	if v := after.ClientQuotaValues(defUser); v != nil {
		t.Errorf("the default user still holds %v", v)
	}
	if v := after.ClientQuotaValues(qcEntity("user=alice", "client-id=app")); v["request_percentage"] != 12.5 {
		t.Errorf("alice/app holds %v", v)
	}
	if n := after.ClientQuotaCount(); n != 9 {
		t.Errorf("%d quotas after the request, want 9", n)
	}

	// The same request again changes nothing.
	again, outcomes := quotaControl{}.alterClientQuotas(after, []quotaAlteration{
		qcAlter(alice, qcSet("producer_byte_rate", 1024)), qcAlter(defUser, qcRemove("request_percentage")),
	})
	if len(again) != 0 || outcomes[0].code != nil || outcomes[1].code != nil {
		t.Errorf("repeating the request wrote %v (%s, %s)", qcRecords(again), qcOutcome(outcomes[0]), qcOutcome(outcomes[1]))
	}
}

// TestAlterClientQuotasRefused checks every refusal, each beside an entry that passes: the refused
// entry writes nothing, the other is unaffected.
func TestAlterClientQuotasRefused(t *testing.T) {
	img := qcImage(t, 4, metadatalog.QuotaRecord(qcEntity("user=alice"), "producer_byte_rate", 1000, false))
	good := qcAlter(qcEntity("user=ok"), qcSet("producer_byte_rate", 10))
	for _, tc := range []struct {
		name  string
		entry quotaAlteration
		want  string
	}{
		{"empty entity", qcAlter(nil, qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Invalid empty client quota entity"},
		{"duplicate entity type", qcAlter(qcEntity("user=a", "user=b"), qcSet("producer_byte_rate", 1)),
			"INVALID_REQUEST: Invalid client quota entity, duplicate entity entry user"},
		{"unknown entity type", qcAlter(qcEntity("group=g"), qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Unhandled client quota entity type: group"},
		{"empty type", qcAlter(qcEntity("=g"), qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Unhandled client quota entity type: "},
		{"empty user name", qcAlter(qcEntity("user="), qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Empty user not supported"},
		{"empty client id", qcAlter(qcEntity("user=a", "client-id="), qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Empty client-id not supported"},
		{"empty ip", qcAlter(qcEntity("ip="), qcSet("connection_creation_rate", 1)), "INVALID_REQUEST: Empty ip not supported"},
		{"ip with user", qcAlter(qcEntity("ip=10.0.0.1", "user=a"), qcSet("connection_creation_rate", 1)),
			"INVALID_REQUEST: Invalid quota entity combination, IP entity should not be combined with User or ClientId"},
		{"ip default with client-id default", qcAlter(qcEntity("client-id", "ip"), qcSet("connection_creation_rate", 1)),
			"INVALID_REQUEST: Invalid quota entity combination, IP entity should not be combined with User or ClientId"},
		{"not an ip", qcAlter(qcEntity("ip=example.com"), qcSet("connection_creation_rate", 1)), "INVALID_REQUEST: example.com is not a valid IP address."},
		{"not an ipv4", qcAlter(qcEntity("ip=10.0.0.256"), qcSet("connection_creation_rate", 1)), "INVALID_REQUEST: 10.0.0.256 is not a valid IP address."},
		{"unknown key", qcAlter(qcEntity("user=a"), qcSet("producer.byte.rate", 1)), "INVALID_REQUEST: Invalid configuration key producer.byte.rate"},
		{"ip key on a user", qcAlter(qcEntity("user=a"), qcSet("connection_creation_rate", 1)), "INVALID_REQUEST: Invalid configuration key connection_creation_rate"},
		{"user key on an ip", qcAlter(qcEntity("ip"), qcSet("producer_byte_rate", 1)), "INVALID_REQUEST: Invalid configuration key producer_byte_rate"},
		{"zero", qcAlter(qcEntity("user=a"), qcSet("request_percentage", 0)), "INVALID_REQUEST: Quota request_percentage must be greater than 0"},
		{"negative", qcAlter(qcEntity("client-id=c"), qcSet("producer_byte_rate", -1)), "INVALID_REQUEST: Quota producer_byte_rate must be greater than 0"},
		{"NaN", qcAlter(qcEntity("user=a"), qcSet("request_percentage", math.NaN())),
			"INVALID_REQUEST: Quota request_percentage must be a finite number; remove the quota to lift the limit"},
		{"infinite", qcAlter(qcEntity("user=a"), qcSet("controller_mutation_rate", math.Inf(1))),
			"INVALID_REQUEST: Quota controller_mutation_rate must be a finite number; remove the quota to lift the limit"},
		{"fractional long", qcAlter(qcEntity("user=a"), qcSet("consumer_byte_rate", 1.5)), "INVALID_REQUEST: consumer_byte_rate cannot be a fractional value."},
		{"fractional int", qcAlter(qcEntity("ip"), qcSet("connection_creation_rate", 10.25)), "INVALID_REQUEST: connection_creation_rate cannot be a fractional value."},
		{"too large for an int", qcAlter(qcEntity("ip"), qcSet("connection_creation_rate", math.MaxInt32+1)),
			"INVALID_REQUEST: Proposed value for connection_creation_rate is too large for an INT."},
		{"too large for a long", qcAlter(qcEntity("user=a"), qcSet("producer_byte_rate", math.Pow(2, 63))),
			"INVALID_REQUEST: Proposed value for producer_byte_rate is too large for a LONG."},
		{"duplicate key", qcAlter(qcEntity("user=a"), qcSet("producer_byte_rate", 1), qcRemove("producer_byte_rate")),
			"INVALID_REQUEST: Duplicate quota key producer_byte_rate not updating quota for this entity {user=a}"},
		// A good operation before the bad one does not get through either.
		{"one bad operation refuses the entry", qcAlter(qcEntity("user=alice"), qcRemove("producer_byte_rate"), qcSet("consumer_byte_rate", -5)),
			"INVALID_REQUEST: Quota consumer_byte_rate must be greater than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records, outcomes := quotaControl{}.alterClientQuotas(img, []quotaAlteration{tc.entry, good})
			if got := qcOutcome(outcomes[0]); got != tc.want {
				t.Errorf("answered %q, want %q", got, tc.want)
			}
			if outcomes[1].code != nil {
				t.Errorf("the good entry beside it: %s", qcOutcome(outcomes[1]))
			}
			if got := qcRecords(records); !slices.Equal(got, []string{"{user=ok} producer_byte_rate=10"}) {
				t.Errorf("records %v, want only the good entry's", got)
			}
		})
	}

	// An entity twice, whatever the order of its parts: every copy is refused and none writes.
	records, outcomes := quotaControl{}.alterClientQuotas(img, []quotaAlteration{
		qcAlter(qcEntity("user=a", "client-id=c"), qcSet("producer_byte_rate", 1)),
		good,
		qcAlter(qcEntity("client-id=c", "user=a"), qcSet("consumer_byte_rate", 1)),
	})
	const dup = "INVALID_REQUEST: Ignoring duplicate entity {client-id=c, user=a}"
	if qcOutcome(outcomes[0]) != dup || qcOutcome(outcomes[2]) != dup || outcomes[1].code != nil {
		t.Errorf("duplicates answered %q, %q, %q", qcOutcome(outcomes[0]), qcOutcome(outcomes[1]), qcOutcome(outcomes[2]))
	}
	if got := qcRecords(records); len(got) != 1 {
		t.Errorf("duplicates wrote %v", got)
	}
	// The default and a named entity of one type are different entities.
	if _, outcomes := (quotaControl{}).alterClientQuotas(img, []quotaAlteration{
		qcAlter(qcEntity("user"), qcSet("producer_byte_rate", 1)), qcAlter(qcEntity("user=<default>"), qcSet("producer_byte_rate", 1)),
	}); outcomes[0].code != nil || outcomes[1].code != nil {
		t.Errorf("the default and a named user: %s, %s", qcOutcome(outcomes[0]), qcOutcome(outcomes[1]))
	}
}

// TestAlterClientQuotasLevelGate: below level 4 every entry, valid or not, is refused with the level
// needed and the command that raises it, and nothing is written.
func TestAlterClientQuotasLevelGate(t *testing.T) {
	const want = "UNSUPPORTED_VERSION: client quotas need metadata.version 1.1-IV1 (level 4) or later; the cluster is at 1.1-IV0 (level 3): raise it with `kraftctl features upgrade --metadata 1.1-IV1`"
	entries := []quotaAlteration{qcAlter(qcEntity("user=alice"), qcSet("producer_byte_rate", 1024)), qcAlter(nil)}
	records, outcomes := quotaControl{}.alterClientQuotas(qcImage(t, 3), entries)
	if len(records) != 0 || qcOutcome(outcomes[0]) != want || qcOutcome(outcomes[1]) != want {
		t.Fatalf("at level 3: records %v, answers %q, %q", qcRecords(records), qcOutcome(outcomes[0]), qcOutcome(outcomes[1]))
	}
	_, outcomes = quotaControl{}.alterClientQuotas(qcImage(t, 1), entries[:1])
	if got := qcOutcome(outcomes[0]); !strings.Contains(got, "the cluster is at 1.0-IV0 (level 1)") {
		t.Errorf("at level 1: %q", got)
	}
	records, outcomes = quotaControl{}.alterClientQuotas(qcImage(t, 4), entries[:1])
	if len(records) != 1 || outcomes[0].code != nil {
		t.Errorf("at level 4: records %v, answer %q", qcRecords(records), qcOutcome(outcomes[0]))
	}
}

func qcAlterRequest(version int16, validateOnly bool, entries ...quotaAlteration) *kmsg.AlterClientQuotasRequest {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Version, req.ValidateOnly = version, validateOnly
	for _, e := range entries {
		re := kmsg.NewAlterClientQuotasRequestEntry()
		for _, p := range e.entity {
			rp := kmsg.NewAlterClientQuotasRequestEntryEntity()
			rp.Type, rp.Name = p.Type, p.Name
			re.Entity = append(re.Entity, rp)
		}
		for _, op := range e.ops {
			ro := kmsg.NewAlterClientQuotasRequestEntryOp()
			ro.Key, ro.Value, ro.Remove = op.key, op.value, op.remove
			re.Ops = append(re.Ops, ro)
		}
		req.Entries = append(req.Entries, re)
	}
	return req
}

func qcDescribeRequest(version int16, strict bool, components ...kmsg.DescribeClientQuotasRequestComponent) *kmsg.DescribeClientQuotasRequest {
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Version, req.Strict, req.Components = version, strict, components
	return req
}

func qcAnswers(resp *kmsg.AlterClientQuotasResponse) []string {
	var out []string
	for _, e := range resp.Entries {
		if e.ErrorCode == 0 {
			out = append(out, "ok")
		} else {
			out = append(out, kerr.ErrorForCode(e.ErrorCode).(*kerr.Error).Message+": "+taMsg(e.ErrorMessage))
		}
	}
	return out
}

// qcDescribed renders a DescribeClientQuotas answer as "{entity} k=v,k=v" lines, sorted.
func qcDescribed(resp *kmsg.DescribeClientQuotasResponse) []string {
	var out []string
	for _, e := range resp.Entries {
		var entity []metadatalog.QuotaEntityPart
		for _, p := range e.Entity {
			entity = append(entity, metadatalog.QuotaEntityPart{Type: p.Type, Name: p.Name})
		}
		var values []string
		for _, v := range e.Values {
			values = append(values, fmt.Sprintf("%s=%g", v.Key, v.Value))
		}
		out = append(out, metadatalog.QuotaEntityString(entity)+" "+strings.Join(values, ","))
	}
	slices.Sort(out)
	return out
}

// TestClientQuotasAPI drives both APIs through a real controller: refused at level 3 with the level
// named, then, once UpdateFeatures raises the cluster to 4, validateOnly, set, describe, update and
// remove, at both versions of each API.
func TestClientQuotasAPI(t *testing.T) {
	c := startControllerAt(t, 3)
	apis := c.APIs()
	for _, key := range []int16{48, 49} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != 1 {
			t.Fatalf("APIs()[%s] = %+v, %v; want 0–1", kmsg.NameForKey(key), r, ok)
		}
	}
	const gate = "client quotas need metadata.version 1.1-IV1 (level 4) or later; the cluster is at 1.1-IV0 (level 3): raise it with `kraftctl features upgrade --metadata 1.1-IV1`"
	alice := qcEntity("user=alice")

	// Level 3: both refused, per entry and at the top.
	for v := int16(0); v <= 1; v++ {
		resp := taDo(t, c, qcAlterRequest(v, false, qcAlter(alice, qcSet("producer_byte_rate", 1024)), qcAlter(qcEntity("user")))).(*kmsg.AlterClientQuotasResponse)
		if got := qcAnswers(resp); !slices.Equal(got, []string{"UNSUPPORTED_VERSION: " + gate, "UNSUPPORTED_VERSION: " + gate}) {
			t.Fatalf("v%d alter at level 3: %q", v, got)
		}
		if e := resp.Entries[0].Entity; len(e) != 1 || e[0].Type != "user" || *e[0].Name != "alice" || resp.Entries[1].Entity[0].Name != nil {
			t.Errorf("v%d: the answer names the entities %+v, %+v", v, e, resp.Entries[1].Entity)
		}
		d := taDo(t, c, qcDescribeRequest(v, false)).(*kmsg.DescribeClientQuotasResponse)
		if d.ErrorCode != kerr.UnsupportedVersion.Code || taMsg(d.ErrorMessage) != gate || d.Entries != nil {
			t.Fatalf("v%d describe at level 3: %d %q %v", v, d.ErrorCode, taMsg(d.ErrorMessage), d.Entries)
		}
	}
	if n := c.Image().ClientQuotaCount(); n != 0 {
		t.Fatalf("%d quotas at level 3", n)
	}

	// Raise the level; now they work.
	uf := kmsg.NewPtrUpdateFeaturesRequest()
	uf.Version = 1
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = metadatalog.MetadataVersionFeature, 4, 1
	uf.FeatureUpdates = append(uf.FeatureUpdates, u)
	if r := taDo(t, c, uf).(*kmsg.UpdateFeaturesResponse); r.ErrorCode != 0 || r.Results[0].ErrorCode != 0 {
		t.Fatalf("upgrading to level 4: %+v", r)
	}
	mtWait(t, "metadata.version 4", func() bool { return c.Image().MetadataVersion() == 4 })

	aliceApp, defUser := qcEntity("user=alice", "client-id=app"), qcEntity("user")
	entries := []quotaAlteration{
		qcAlter(alice, qcSet("producer_byte_rate", 1024)),
		qcAlter(defUser, qcSet("producer_byte_rate", 512), qcSet("request_percentage", 25)),
		qcAlter(aliceApp, qcSet("consumer_byte_rate", 4096)),
		qcAlter(qcEntity("ip=127.0.0.1"), qcSet("connection_creation_rate", 10)),
		qcAlter(qcEntity("user=bad"), qcSet("producer_byte_rate", 0.5)),
	}
	wantAnswers := []string{"ok", "ok", "ok", "ok", "INVALID_REQUEST: producer_byte_rate cannot be a fractional value."}

	// validateOnly answers the same and writes nothing.
	resp := taDo(t, c, qcAlterRequest(0, true, entries...)).(*kmsg.AlterClientQuotasResponse)
	if got := qcAnswers(resp); !slices.Equal(got, wantAnswers) {
		t.Fatalf("validateOnly answered %q", got)
	}
	if n := c.Image().ClientQuotaCount(); n != 0 {
		t.Fatalf("validateOnly wrote %d quotas", n)
	}

	resp = taDo(t, c, qcAlterRequest(1, false, entries...)).(*kmsg.AlterClientQuotasResponse)
	if got := qcAnswers(resp); !slices.Equal(got, wantAnswers) {
		t.Fatalf("alter answered %q", got)
	}
	all := []string{
		"{client-id=app, user=alice} consumer_byte_rate=4096",
		"{ip=127.0.0.1} connection_creation_rate=10",
		"{user=<default>} producer_byte_rate=512,request_percentage=25",
		"{user=alice} producer_byte_rate=1024",
	}
	// The answer left when the batch committed; the committed image the describe reads is published a
	// moment later.
	mtWait(t, "the quotas in the committed image", func() bool { return c.Image().ClientQuotaCount() == 5 })
	for v := int16(0); v <= 1; v++ {
		if got := qcDescribed(taDo(t, c, qcDescribeRequest(v, false)).(*kmsg.DescribeClientQuotasResponse)); !slices.Equal(got, all) {
			t.Fatalf("v%d describe all:\n%s", v, strings.Join(got, "\n"))
		}
	}
	name := "alice"
	exactAlice := kmsg.DescribeClientQuotasRequestComponent{EntityType: "user", MatchType: kmsg.QuotasMatchTypeExact, Match: &name}
	if got := qcDescribed(taDo(t, c, qcDescribeRequest(1, true, exactAlice)).(*kmsg.DescribeClientQuotasResponse)); !slices.Equal(got, []string{all[3]}) {
		t.Errorf("strict user=alice: %q", got)
	}
	if got := qcDescribed(taDo(t, c, qcDescribeRequest(1, false, exactAlice)).(*kmsg.DescribeClientQuotasResponse)); !slices.Equal(got, []string{all[0], all[3]}) {
		t.Errorf("user=alice: %q", got)
	}
	bad := taDo(t, c, qcDescribeRequest(1, false, kmsg.DescribeClientQuotasRequestComponent{EntityType: "group", MatchType: kmsg.QuotasMatchTypeAny})).(*kmsg.DescribeClientQuotasResponse)
	if bad.ErrorCode != kerr.UnsupportedVersion.Code || taMsg(bad.ErrorMessage) != "Unsupported entity type group" {
		t.Errorf("an unknown entity type: %d %q", bad.ErrorCode, taMsg(bad.ErrorMessage))
	}

	// Update one, remove others; the default user loses both its quotas and so leaves the image.
	resp = taDo(t, c, qcAlterRequest(1, false,
		qcAlter(alice, qcSet("producer_byte_rate", 2048)),
		qcAlter(defUser, qcRemove("producer_byte_rate"), qcRemove("request_percentage")),
		qcAlter(aliceApp, qcRemove("consumer_byte_rate")),
	)).(*kmsg.AlterClientQuotasResponse)
	if got := qcAnswers(resp); !slices.Equal(got, []string{"ok", "ok", "ok"}) {
		t.Fatalf("update and remove answered %q", got)
	}
	mtWait(t, "the removals in the committed image", func() bool { return c.Image().ClientQuotaCount() == 2 })
	want := []string{"{ip=127.0.0.1} connection_creation_rate=10", "{user=alice} producer_byte_rate=2048"}
	if got := qcDescribed(taDo(t, c, qcDescribeRequest(0, false)).(*kmsg.DescribeClientQuotasResponse)); !slices.Equal(got, want) {
		t.Errorf("after update and removal:\n%s", strings.Join(got, "\n"))
	}
}

// A write that did not complete (a standby, a lost leadership) answers every entry with the same code
// and message, which the brokers' forwarding reads as "try another controller".
func TestAlterClientQuotasWriteFailure(t *testing.T) {
	req := qcAlterRequest(1, false, qcAlter(qcEntity("user=alice"), qcSet("producer_byte_rate", 1)), qcAlter(qcEntity("user")))
	resp := alterClientQuotasResponse(req, nil, kerr.NotController, "not active")
	if len(resp.Entries) != 2 {
		t.Fatalf("%d entries answered", len(resp.Entries))
	}
	for _, e := range resp.Entries {
		if e.ErrorCode != kerr.NotController.Code || taMsg(e.ErrorMessage) != "not active" || len(e.Entity) != 1 {
			t.Fatalf("entry %+v", e)
		}
	}
}
