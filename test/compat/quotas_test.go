package compat

// Client quotas through franz-go's kadm: AlterClientQuotas goes to a broker, which forwards it to the
// active controller; DescribeClientQuotas is answered by each broker from its own image, so every
// broker is asked in turn. (kafka-python 2.0.2, Debian's python3-kafka, has no client-quota API.)
// This is the only test that touches client quotas, so it may expect to see exactly its own.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quotaLines renders described quotas as "{client-id=app, user=alice} k=v,k=v" lines, the parts and
// values sorted, the lines sorted.
func quotaLines(qs []kmsg.DescribeClientQuotasResponseEntry) []string {
	var out []string
	for _, q := range qs {
		var parts, values []string
		for _, e := range q.Entity {
			name := "<default>"
			if e.Name != nil {
				name = *e.Name
			}
			parts = append(parts, e.Type+"="+name)
		}
		for _, v := range q.Values {
			values = append(values, fmt.Sprintf("%s=%g", v.Key, v.Value))
		}
		slices.Sort(parts)
		slices.Sort(values)
		out = append(out, "{"+strings.Join(parts, ", ")+"} "+strings.Join(values, ","))
	}
	slices.Sort(out)
	return out
}

func kadmQuotaLines(qs kadm.DescribedClientQuotas) []string {
	var entries []kmsg.DescribeClientQuotasResponseEntry
	for _, q := range qs {
		var e kmsg.DescribeClientQuotasResponseEntry
		for _, p := range q.Entity {
			e.Entity = append(e.Entity, kmsg.DescribeClientQuotasResponseEntryEntity{Type: p.Type, Name: p.Name})
		}
		for _, v := range q.Values {
			e.Values = append(e.Values, kmsg.DescribeClientQuotasResponseEntryValue{Key: v.Key, Value: v.Value})
		}
		entries = append(entries, e)
	}
	return quotaLines(entries)
}

// describeOn asks one broker, and only that one, for the quotas a filter matches.
func describeOn(ctx context.Context, cl *kgo.Client, broker int32, strict bool, components ...kmsg.DescribeClientQuotasRequestComponent) ([]string, error) {
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Strict, req.Components = strict, components
	resp, err := req.RequestWith(ctx, cl.Broker(int(broker)))
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("%w: %s", err, quotaMsg(resp.ErrorMessage))
	}
	return quotaLines(resp.Entries), nil
}

func quotaMsg(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// waitQuotasOnEveryBroker polls every broker until the filter matches exactly want there.
func waitQuotasOnEveryBroker(t *testing.T, ctx context.Context, c *cluster, cl *kgo.Client, want []string, strict bool, components ...kmsg.DescribeClientQuotasRequestComponent) {
	t.Helper()
	for _, id := range c.brokers {
		poll(t, fmt.Sprintf("broker %d to describe %q", id, want), func() (bool, string) {
			got, err := describeOn(ctx, cl, id, strict, components...)
			if err != nil {
				return false, err.Error()
			}
			return slices.Equal(got, want), fmt.Sprintf("%q", got)
		})
	}
}

func componentExact(typ, name string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeExact, Match: &name}
}

func componentDefault(typ string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeDefault}
}

func componentAny(typ string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeAny}
}

// TestKadmClientQuotas sets quotas for a user, the default user and a user with a client id through
// kadm, checks validateOnly writes nothing and a bad entry is refused with Kafka's message, describes
// them with strict and non-strict filters on every broker, updates and removes them.
func TestKadmClientQuotas(t *testing.T) {
	t.Parallel()
	c := sharedCluster(t)
	adm := newAdmin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[c.brokers[0]]), kgo.ClientID("kraft-compat-quotas"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).BrokerMetadata(ctx); err != nil { // so cl knows every broker
		t.Fatal(err)
	}

	alice := kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}}
	defaultUser := kadm.ClientQuotaEntity{{Type: "user"}}
	aliceApp := kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}, {Type: "client-id", Name: kmsg.StringPtr("app")}}
	entries := []kadm.AlterClientQuotaEntry{
		{Entity: alice, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}},
		{Entity: defaultUser, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 512}, {Key: "request_percentage", Value: 50}}},
		{Entity: aliceApp, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 2048}}},
	}

	// validateOnly: accepted, and nothing appears.
	validated, err := adm.ValidateAlterClientQuotas(ctx, entries)
	if err != nil {
		t.Fatalf("kadm ValidateAlterClientQuotas: %v", err)
	}
	for _, a := range validated {
		if a.Err != nil {
			t.Fatalf("validating %s: %v (%s)", a.Entity, a.Err, a.ErrMessage)
		}
	}

	// A bad entry is refused with Kafka's error and message; the good ones beside it go through.
	bad := kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("mallory")}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 10.5}}}
	altered, err := adm.AlterClientQuotas(ctx, append(slices.Clone(entries), bad))
	if err != nil {
		t.Fatalf("kadm AlterClientQuotas: %v", err)
	}
	if len(altered) != 4 {
		t.Fatalf("AlterClientQuotas answered %d entries, want 4: %+v", len(altered), altered)
	}
	for _, a := range altered[:3] {
		if a.Err != nil {
			t.Errorf("altering %s: %v (%s)", a.Entity, a.Err, a.ErrMessage)
		}
	}
	if a := altered[3]; !errors.Is(a.Err, kerr.InvalidRequest) || a.ErrMessage != "producer_byte_rate cannot be a fractional value." || a.Entity.String() != "{user=mallory}" {
		t.Errorf("the bad entry answered %s %v (%q), want INVALID_REQUEST", a.Entity, a.Err, a.ErrMessage)
	}

	all := []string{
		"{client-id=app, user=alice} consumer_byte_rate=2048",
		"{user=<default>} producer_byte_rate=512,request_percentage=50",
		"{user=alice} producer_byte_rate=1024",
	}
	waitQuotasOnEveryBroker(t, ctx, c, cl, all, false)

	// kadm's own DescribeClientQuotas, to whichever broker it picks: strict and not.
	for _, tc := range []struct {
		strict     bool
		components []kadm.DescribeClientQuotaComponent
		want       []string
	}{
		{false, nil, all},
		{true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: kmsg.StringPtr("alice")}}, all[2:]},
		{false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: kmsg.StringPtr("alice")}}, []string{all[0], all[2]}},
		{true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeDefault}}, all[1:2]},
		{true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeAny}}, all[1:]},
		{true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeAny}, {Type: "client-id", MatchType: kmsg.QuotasMatchTypeAny}}, all[:1]},
		{false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: kmsg.StringPtr("other")}}, nil},
	} {
		got, err := adm.DescribeClientQuotas(ctx, tc.strict, tc.components)
		if err != nil {
			t.Fatalf("kadm DescribeClientQuotas strict=%v %+v: %v", tc.strict, tc.components, err)
		}
		if lines := kadmQuotaLines(got); !slices.Equal(lines, tc.want) {
			t.Errorf("kadm DescribeClientQuotas strict=%v %+v = %q, want %q", tc.strict, tc.components, lines, tc.want)
		}
	}
	// Strict filters on every broker.
	waitQuotasOnEveryBroker(t, ctx, c, cl, all[2:], true, componentExact("user", "alice"))
	waitQuotasOnEveryBroker(t, ctx, c, cl, all[:1], true, componentExact("user", "alice"), componentExact("client-id", "app"))
	waitQuotasOnEveryBroker(t, ctx, c, cl, all[1:2], true, componentDefault("user"))

	// A filter Kafka refuses, with its message.
	_, err = adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: kmsg.QuotasMatchTypeAny}, {Type: "user", MatchType: kmsg.QuotasMatchTypeAny}})
	var em *kadm.ErrAndMessage
	if !errors.As(err, &em) || !errors.Is(em.Err, kerr.InvalidRequest) || em.ErrMessage != "Entity type user cannot appear more than once in the filter." {
		t.Errorf("a filter naming user twice: %v", err)
	}

	// Update one, remove others: the default user loses both its quotas, alice/app its only one.
	altered, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: alice, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 4096}, {Key: "consumer_byte_rate", Value: 8192}}},
		{Entity: defaultUser, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}, {Key: "request_percentage", Remove: true}}},
		{Entity: aliceApp, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Remove: true}}},
	})
	if err != nil {
		t.Fatalf("kadm AlterClientQuotas (update and remove): %v", err)
	}
	for _, a := range altered {
		if a.Err != nil {
			t.Errorf("altering %s: %v (%s)", a.Entity, a.Err, a.ErrMessage)
		}
	}
	waitQuotasOnEveryBroker(t, ctx, c, cl, []string{"{user=alice} consumer_byte_rate=8192,producer_byte_rate=4096"}, false)
	waitQuotasOnEveryBroker(t, ctx, c, cl, nil, true, componentAny("client-id"), componentAny("user"))

	// Remove the last; nothing is left anywhere.
	altered, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: alice, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}, {Key: "consumer_byte_rate", Remove: true}}},
	})
	if err != nil || altered[0].Err != nil {
		t.Fatalf("removing alice's quotas: %v %+v", err, altered)
	}
	waitQuotasOnEveryBroker(t, ctx, c, cl, nil, false)
}
