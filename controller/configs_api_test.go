package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func caAlter(typ kmsg.ConfigResourceType, name string, ops ...any) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = typ, name
	for i := 0; i+2 < len(ops)+1; i += 3 {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name = ops[i].(kmsg.IncrementalAlterConfigOp), ops[i+1].(string)
		if v, ok := ops[i+2].(string); ok {
			c.Value = &v
		}
		r.Configs = append(r.Configs, c)
	}
	return r
}

func caDescribe(version int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsRequest {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms, req.IncludeDocumentation, req.Resources = version, synonyms, docs, resources
	return req
}

func caResource(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, keys
	return r
}

// caConfig renders a described config as name=value@source, with [synonyms] when there are any.
func caConfig(c kmsg.DescribeConfigsResponseResourceConfig) string {
	s := fmt.Sprintf("%s=%s@%d", c.Name, taMsg(c.Value), c.Source)
	if len(c.ConfigSynonyms) > 0 {
		var syn []string
		for _, s := range c.ConfigSynonyms {
			syn = append(syn, fmt.Sprintf("%s=%s@%d", s.Name, taMsg(s.Value), s.Source))
		}
		s += " [" + strings.Join(syn, " ") + "]"
	}
	return s
}

func caConfigs(r kmsg.DescribeConfigsResponseResource) string {
	if r.ErrorCode != 0 {
		return fmt.Sprintf("error %d: %s", r.ErrorCode, taMsg(r.ErrorMessage))
	}
	var out []string
	for _, c := range r.Configs {
		out = append(out, caConfig(c))
	}
	return strings.Join(out, "; ")
}

// TestConfigsAPI drives IncrementalAlterConfigs and DescribeConfigs through a real controller.
func TestConfigsAPI(t *testing.T) {
	c := taCluster(t)
	apis := c.APIs()
	for key, want := range map[int16]int16{44: 1, 32: 4} {
		if r, ok := apis[key]; !ok || r.Min != 0 || r.Max != want {
			t.Fatalf("APIs()[%d] = %+v, want 0–%d", key, r, want)
		}
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version, ct.Topics = 7, []kmsg.CreateTopicsRequestTopic{taCreateTopic("orders", 1, 1, "retention.ms", "3600000")}
	if r := taDo(t, c, ct).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("creating orders: %s", taMsg(r.Topics[0].ErrorMessage))
	}

	// One request: what passes commits in one batch, what fails is answered and writes nothing.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = 1
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		caAlter(kmsg.ConfigResourceTypeTopic, "orders", opSet, "retention.ms", "60000", opAppend, "cleanup.policy", "compact"),
		caAlter(kmsg.ConfigResourceTypeBroker, "", opSet, "log.segment.bytes", "536870912", opSet, "log.retention.ms", "86400000"),
		caAlter(kmsg.ConfigResourceTypeBroker, "2", opSet, "num.io.threads", "4"),
		caAlter(kmsg.ConfigResourceTypeTopic, "ghost", opSet, "retention.ms", "1"),
		caAlter(kmsg.ConfigResourceTypeBroker, "9", opSet, "num.io.threads", "4"),
		caAlter(kmsg.ConfigResourceTypeTopic, "orders2", opSet, "retention.ms", "1"),
	}
	resp := taDo(t, c, req).(*kmsg.IncrementalAlterConfigsResponse)
	want := []string{"0 <nil>", "0 <nil>", "0 <nil>",
		"3 The topic 'ghost' does not exist.",
		"102 No node with id 9 found.",
		"3 The topic 'orders2' does not exist."}
	for i, rr := range resp.Resources {
		if rr.ResourceName != req.Resources[i].ResourceName || rr.ResourceType != req.Resources[i].ResourceType {
			t.Fatalf("answer %d is for %s %q", i, rr.ResourceType, rr.ResourceName)
		}
		if got := fmt.Sprintf("%d %s", rr.ErrorCode, taMsg(rr.ErrorMessage)); got != want[i] {
			t.Fatalf("resource %d: %s, want %s", i, got, want[i])
		}
	}
	mtWait(t, "the configs in the committed image", func() bool {
		v, _ := c.Image().Config(brokerResource, "2", "num.io.threads")
		return v == "4"
	})
	img := c.Image()
	for _, tc := range []struct {
		typ              metadatapb.ConfigResourceType
		resource, config string
		want             string
	}{
		{topicResource, "orders", "retention.ms", "60000"},
		{topicResource, "orders", "cleanup.policy", "delete,compact"},
		{brokerResource, "", "log.segment.bytes", "536870912"},
		{topicResource, "ghost", "retention.ms", ""},
		{brokerResource, "9", "num.io.threads", ""},
	} {
		if v, _ := img.Config(tc.typ, tc.resource, tc.config); v != tc.want {
			t.Fatalf("%s/%s %s = %q, want %q", tc.typ, tc.resource, tc.config, v, tc.want)
		}
	}

	// validateOnly answers the same and writes nothing; v0 is served too.
	req = kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version, req.ValidateOnly = 0, true
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		caAlter(kmsg.ConfigResourceTypeTopic, "orders", opDelete, "retention.ms", nil),
		caAlter(kmsg.ConfigResourceTypeTopic, "orders", opSet, "segment.ms", "1"),
		caAlter(kmsg.ConfigResourceTypeBroker, "", opSet, "num.io.threads", "0"),
	}
	before := c.Image().Offset
	resp = taDo(t, c, req).(*kmsg.IncrementalAlterConfigsResponse)
	for i, code := range []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidConfig.Code} {
		if resp.Resources[i].ErrorCode != code {
			t.Fatalf("validateOnly resource %d: error %d %s, want %d", i, resp.Resources[i].ErrorCode, taMsg(resp.Resources[i].ErrorMessage), code)
		}
	}
	req.Resources = req.Resources[:1]
	if r := taDo(t, c, req).(*kmsg.IncrementalAlterConfigsResponse); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("validateOnly delete: %s", taMsg(r.Resources[0].ErrorMessage))
	}
	if v, _ := c.Image().Config(topicResource, "orders", "retention.ms"); v != "60000" || c.Image().Offset != before {
		t.Fatalf("validateOnly wrote: retention.ms %q, offset %d → %d", v, before, c.Image().Offset)
	}

	// DescribeConfigs v4 with synonyms and documentation, as node 1 (a controller and a broker here).
	d := taDo(t, c, caDescribe(4, true, true,
		caResource(kmsg.ConfigResourceTypeTopic, "orders", "retention.ms", "segment.bytes", "cleanup.policy", "max.message.bytes", "no.such.config"),
		caResource(kmsg.ConfigResourceTypeBroker, ""),
		caResource(kmsg.ConfigResourceTypeBroker, "1", "num.io.threads", "log.retention.ms"),
		caResource(kmsg.ConfigResourceTypeBroker, "2"),
		caResource(kmsg.ConfigResourceTypeTopic, "ghost"),
		caResource(kmsg.ConfigResourceTypeBrokerLogger, "1"),
	)).(*kmsg.DescribeConfigsResponse)
	wantDescribed := []string{
		"cleanup.policy=delete,compact@1 [cleanup.policy=delete,compact@1 log.cleanup.policy=delete@5]; " +
			"max.message.bytes=1048588@5 [message.max.bytes=1048588@5]; " +
			"retention.ms=60000@1 [retention.ms=60000@1 log.retention.ms=86400000@3 log.retention.ms=604800000@5]; " +
			"segment.bytes=536870912@3 [log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]",
		"log.retention.ms=86400000@3 [log.retention.ms=86400000@3]; log.segment.bytes=536870912@3 [log.segment.bytes=536870912@3]",
		"log.retention.ms=86400000@3 [log.retention.ms=86400000@3 log.retention.ms=604800000@5]; num.io.threads=8@5 [num.io.threads=8@5]",
		"error 42: Unexpected broker id, expected 1 or empty string, but received 2",
		"error 3: The topic 'ghost' does not exist.",
		"",
	}
	for i, r := range d.Resources {
		if got := caConfigs(r); got != wantDescribed[i] {
			t.Errorf("resource %d:\n got %s\nwant %s", i, got, wantDescribed[i])
		}
	}
	for _, cfg := range d.Resources[0].Configs {
		if cfg.ReadOnly || cfg.IsSensitive || cfg.Documentation == nil || *cfg.Documentation == "" {
			t.Errorf("%s: read-only %v, sensitive %v, doc %v", cfg.Name, cfg.ReadOnly, cfg.IsSensitive, cfg.Documentation)
		}
	}
	types := map[string]kmsg.ConfigType{}
	for _, cfg := range d.Resources[0].Configs {
		types[cfg.Name] = cfg.ConfigType
	}
	if types["cleanup.policy"] != kmsg.ConfigTypeList || types["retention.ms"] != kmsg.ConfigTypeLong || types["segment.bytes"] != kmsg.ConfigTypeInt {
		t.Errorf("config types = %v", types)
	}

	// v3 without synonyms or documentation; v0 says IsDefault instead of a source.
	d = taDo(t, c, caDescribe(3, false, false, caResource(kmsg.ConfigResourceTypeTopic, "orders", "retention.ms"))).(*kmsg.DescribeConfigsResponse)
	if cfg := d.Resources[0].Configs[0]; len(cfg.ConfigSynonyms) != 0 || cfg.Documentation != nil || cfg.Source != 1 || cfg.ConfigType != kmsg.ConfigTypeLong {
		t.Fatalf("v3 retention.ms = %+v", cfg)
	}
	d = taDo(t, c, caDescribe(0, false, false, caResource(kmsg.ConfigResourceTypeTopic, "orders"))).(*kmsg.DescribeConfigsResponse)
	defaults := map[string]bool{}
	for _, cfg := range d.Resources[0].Configs {
		defaults[cfg.Name] = cfg.IsDefault
	}
	if len(defaults) != len(metadatalog.TopicConfigs()) || defaults["retention.ms"] || defaults["segment.bytes"] || !defaults["max.message.bytes"] {
		t.Fatalf("v0 IsDefault = %v", defaults)
	}
}
