package metadatalog

import (
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quotaImage holds one quota (producer_byte_rate) on each of these entities, at level 4.
func dqImage(t *testing.T) *Image {
	t.Helper()
	var recs []*metadatapb.Record
	for i, e := range [][]QuotaEntityPart{
		{{Type: "user", Name: name("alice")}},
		{{Type: "user", Name: name("bob")}},
		{{Type: "user"}},
		{{Type: "client-id", Name: name("app")}},
		{{Type: "client-id"}},
		{{Type: "user", Name: name("alice")}, {Type: "client-id", Name: name("app")}},
		{{Type: "user", Name: name("alice")}, {Type: "client-id"}},
		{{Type: "user"}, {Type: "client-id", Name: name("app")}},
		{{Type: "user"}, {Type: "client-id"}},
		{{Type: "ip", Name: name("10.0.0.1")}},
		{{Type: "ip"}},
	} {
		recs = append(recs, QuotaRecord(e, "producer_byte_rate", float64(i+1), false))
	}
	return applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 4)}, recs)
}

func dqExact(typ, n string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeExact, Match: &n}
}

func dqDefault(typ string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeDefault}
}

func dqAny(typ string) kmsg.DescribeClientQuotasRequestComponent {
	return kmsg.DescribeClientQuotasRequestComponent{EntityType: typ, MatchType: kmsg.QuotasMatchTypeAny}
}

// entityNames shows entities as "client-id=app,user=<default>", sorted, for comparison.
func dqNames(qs []ClientQuota) []string {
	var out []string
	for _, q := range qs {
		s := QuotaEntityString(q.Entity)
		out = append(out, strings.NewReplacer("{", "", "}", "", " ", "").Replace(s))
	}
	slices.Sort(out)
	return out
}

func TestDescribeClientQuotasFilter(t *testing.T) {
	img := dqImage(t)
	for _, tc := range []struct {
		name       string
		components []kmsg.DescribeClientQuotasRequestComponent
		strict     bool
		want       []string
	}{
		{"no components: everything", nil, false, []string{
			"client-id=<default>", "client-id=<default>,user=<default>", "client-id=<default>,user=alice", "client-id=app",
			"client-id=app,user=<default>", "client-id=app,user=alice", "ip=10.0.0.1", "ip=<default>",
			"user=<default>", "user=alice", "user=bob"}},
		{"strict with no components: nothing", nil, true, nil},
		{"exact user", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "alice")}, false,
			[]string{"client-id=<default>,user=alice", "client-id=app,user=alice", "user=alice"}},
		{"exact user, strict", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "alice")}, true, []string{"user=alice"}},
		{"exact unknown user", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "carol")}, false, nil},
		{"exact empty name matches no default", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "")}, true, nil},
		{"default user", []kmsg.DescribeClientQuotasRequestComponent{dqDefault("user")}, false,
			[]string{"client-id=<default>,user=<default>", "client-id=app,user=<default>", "user=<default>"}},
		{"default user, strict", []kmsg.DescribeClientQuotasRequestComponent{dqDefault("user")}, true, []string{"user=<default>"}},
		{"any user includes the default", []kmsg.DescribeClientQuotasRequestComponent{dqAny("user")}, true,
			[]string{"user=<default>", "user=alice", "user=bob"}},
		{"any user, not strict", []kmsg.DescribeClientQuotasRequestComponent{dqAny("user")}, false, []string{
			"client-id=<default>,user=<default>", "client-id=<default>,user=alice", "client-id=app,user=<default>",
			"client-id=app,user=alice", "user=<default>", "user=alice", "user=bob"}},
		{"user and client-id exact, strict", []kmsg.DescribeClientQuotasRequestComponent{dqExact("client-id", "app"), dqExact("user", "alice")}, true,
			[]string{"client-id=app,user=alice"}},
		{"user exact and client-id default, strict", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "alice"), dqDefault("client-id")}, true,
			[]string{"client-id=<default>,user=alice"}},
		{"both defaults, strict", []kmsg.DescribeClientQuotasRequestComponent{dqDefault("user"), dqDefault("client-id")}, true,
			[]string{"client-id=<default>,user=<default>"}},
		{"exact pair not held", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "bob"), dqExact("client-id", "app")}, true, nil},
		{"any client-id with user alice", []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "alice"), dqAny("client-id")}, true,
			[]string{"client-id=<default>,user=alice", "client-id=app,user=alice"}},
		{"any user, any client-id, strict", []kmsg.DescribeClientQuotasRequestComponent{dqAny("user"), dqAny("client-id")}, true, []string{
			"client-id=<default>,user=<default>", "client-id=<default>,user=alice", "client-id=app,user=<default>", "client-id=app,user=alice"}},
		{"client-id app, not strict", []kmsg.DescribeClientQuotasRequestComponent{dqExact("client-id", "app")}, false,
			[]string{"client-id=app", "client-id=app,user=<default>", "client-id=app,user=alice"}},
		{"exact ip", []kmsg.DescribeClientQuotasRequestComponent{dqExact("ip", "10.0.0.1")}, true, []string{"ip=10.0.0.1"}},
		{"default ip", []kmsg.DescribeClientQuotasRequestComponent{dqDefault("ip")}, false, []string{"ip=<default>"}},
		{"any ip", []kmsg.DescribeClientQuotasRequestComponent{dqAny("ip")}, false, []string{"ip=10.0.0.1", "ip=<default>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, code, msg := img.DescribeClientQuotas(tc.components, tc.strict)
			if code != nil {
				t.Fatalf("refused: %v %s", code, msg)
			}
			if names := dqNames(got); !slices.Equal(names, tc.want) {
				t.Fatalf("matched %q, want %q", names, tc.want)
			}
			for _, q := range got {
				if len(q.Values) != 1 || q.Values["producer_byte_rate"] == 0 {
					t.Errorf("%s: values %v", QuotaEntityString(q.Entity), q.Values)
				}
			}
		})
	}
}

func TestDescribeClientQuotasRefusals(t *testing.T) {
	img := dqImage(t)
	s := "x"
	for _, tc := range []struct {
		name       string
		components []kmsg.DescribeClientQuotasRequestComponent
		code       *kerr.Error
		msg        string
	}{
		{"empty type", []kmsg.DescribeClientQuotasRequestComponent{dqAny("")}, kerr.InvalidRequest, "Invalid empty entity type."},
		{"duplicate type", []kmsg.DescribeClientQuotasRequestComponent{dqAny("user"), dqExact("user", "a")}, kerr.InvalidRequest,
			"Entity type user cannot appear more than once in the filter."},
		{"unknown type", []kmsg.DescribeClientQuotasRequestComponent{dqAny("group")}, kerr.UnsupportedVersion, "Unsupported entity type group"},
		{"exact without a name", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: kmsg.QuotasMatchTypeExact}}, kerr.InvalidRequest,
			"Request specified MATCH_TYPE_EXACT, but set match string to null."},
		{"default with a name", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: kmsg.QuotasMatchTypeDefault, Match: &s}}, kerr.InvalidRequest,
			"Request specified MATCH_TYPE_DEFAULT, but also specified a match string."},
		{"any with a name", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: kmsg.QuotasMatchTypeAny, Match: &s}}, kerr.InvalidRequest,
			"Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."},
		{"unknown match type", []kmsg.DescribeClientQuotasRequestComponent{{EntityType: "user", MatchType: 3}}, kerr.InvalidRequest, "Unknown match type 3"},
		{"ip with user", []kmsg.DescribeClientQuotasRequestComponent{dqAny("ip"), dqDefault("user")}, kerr.InvalidRequest,
			"Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."},
		{"client-id with ip", []kmsg.DescribeClientQuotasRequestComponent{dqAny("client-id"), dqDefault("ip")}, kerr.InvalidRequest,
			"Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, code, msg := img.DescribeClientQuotas(tc.components, false)
			if code != tc.code || msg != tc.msg || got != nil {
				t.Fatalf("got %v %q (%d entities), want %v %q", code, msg, len(got), tc.code, tc.msg)
			}
		})
	}
}

// TestDescribeClientQuotasResponse checks the wire answer at both versions: entities in type order,
// values by key, the default as a null name, and a refusal with null entries.
func TestDescribeClientQuotasResponse(t *testing.T) {
	img := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 4)}, []*metadatapb.Record{
		QuotaRecord([]QuotaEntityPart{{Type: "user", Name: name("alice")}, {Type: "client-id"}}, "producer_byte_rate", 1024, false),
		QuotaRecord([]QuotaEntityPart{{Type: "user", Name: name("alice")}, {Type: "client-id"}}, "consumer_byte_rate", 2048, false),
	})
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeClientQuotasRequest()
		req.Version = v
		req.Components = []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "alice")}
		resp := dqRoundTrip(t, req, img.DescribeClientQuotasResponse(req))
		if resp.ErrorCode != 0 || len(resp.Entries) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		e := resp.Entries[0]
		if len(e.Entity) != 2 || e.Entity[0].Type != "client-id" || e.Entity[0].Name != nil || e.Entity[1].Type != "user" || *e.Entity[1].Name != "alice" {
			t.Errorf("v%d entity %+v", v, e.Entity)
		}
		if len(e.Values) != 2 || e.Values[0].Key != "consumer_byte_rate" || e.Values[0].Value != 2048 || e.Values[1].Key != "producer_byte_rate" || e.Values[1].Value != 1024 {
			t.Errorf("v%d values %+v", v, e.Values)
		}

		req.Components = []kmsg.DescribeClientQuotasRequestComponent{dqAny("user"), dqAny("user")}
		bad := dqRoundTrip(t, req, img.DescribeClientQuotasResponse(req))
		if bad.ErrorCode != kerr.InvalidRequest.Code || bad.ErrorMessage == nil || bad.Entries != nil {
			t.Errorf("v%d refusal %+v", v, bad)
		}

		// Nothing matches: an empty list, not a null one.
		req.Components = []kmsg.DescribeClientQuotasRequestComponent{dqExact("user", "nobody")}
		if none := dqRoundTrip(t, req, img.DescribeClientQuotasResponse(req)); none.ErrorCode != 0 || none.Entries == nil || len(none.Entries) != 0 {
			t.Errorf("v%d no match %+v", v, none)
		}
	}
}

func dqRoundTrip(t *testing.T, req *kmsg.DescribeClientQuotasRequest, resp *kmsg.DescribeClientQuotasResponse) *kmsg.DescribeClientQuotasResponse {
	t.Helper()
	back := kmsg.NewPtrDescribeClientQuotasResponse()
	back.Version = req.Version
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("v%d answer does not decode: %v", req.Version, err)
	}
	return back
}

// Below level 4 client quotas do not exist: every filter, valid or not, is answered
// UNSUPPORTED_VERSION naming the level needed and the command that raises it.
func TestDescribeClientQuotasLevelGate(t *testing.T) {
	at3 := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 3)})
	const want = "client quotas need metadata.version 1.1-IV1 (level 4) or later; the cluster is at 1.1-IV0 (level 3): raise it with `kraftctl features upgrade --metadata 1.1-IV1`"
	for _, components := range [][]kmsg.DescribeClientQuotasRequestComponent{nil, {dqAny("")}} {
		got, code, msg := at3.DescribeClientQuotas(components, false)
		if code != kerr.UnsupportedVersion || msg != want || got != nil {
			t.Errorf("at level 3: %v %q", code, msg)
		}
	}
	if msg := ClientQuotasRefusal(0); !strings.Contains(msg, "the cluster is at level 0:") {
		t.Errorf("an image without a level: %q", msg)
	}
	if msg := ClientQuotasRefusal(4); msg != "" {
		t.Errorf("level 4 refused: %q", msg)
	}
	at4 := applyBatches(t, EmptyImage(), []*metadatapb.Record{recFeature(MetadataVersionFeature, 4)})
	if got, code, _ := at4.DescribeClientQuotas(nil, false); code != nil || len(got) != 0 {
		t.Errorf("an empty image at level 4: %v %v", got, code)
	}
}
