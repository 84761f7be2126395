package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// dcImage is testImage with configs: orders' retention.ms; cluster-wide log.retention.ms and
// log.segment.bytes; broker 1's own log.segment.bytes and num.io.threads; broker 3's num.io.threads.
func dcImage(t *testing.T) *metadatalog.Image {
	t.Helper()
	cfg := func(typ metadatapb.ConfigResourceType, resource, name, value string) *metadatapb.Record {
		return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{ResourceType: typ, ResourceName: resource, Name: name, Value: &value}}}
	}
	topic, broker := metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER
	img := testImage(t)
	next, err := img.Apply(img.Offset+1, 1, &metadatapb.RecordBatch{Records: []*metadatapb.Record{
		cfg(topic, "orders", "retention.ms", "3600000"),
		cfg(broker, "", "log.retention.ms", "86400000"),
		cfg(broker, "", "log.segment.bytes", "536870912"),
		cfg(broker, "1", "log.segment.bytes", "268435456"),
		cfg(broker, "1", "num.io.threads", "4"),
		cfg(broker, "3", "num.io.threads", "2"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// dcDescribe answers req as broker self and round-trips the answer through its wire form.
func dcDescribe(t *testing.T, img *metadatalog.Image, self int32, req *kmsg.DescribeConfigsRequest) *kmsg.DescribeConfigsResponse {
	t.Helper()
	resp := img.DescribeConfigsResponse(self, req)
	back := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		t.Fatalf("the answer does not decode at v%d: %v", req.Version, err)
	}
	return back
}

func dcRequest(version int16, synonyms, docs bool, resources ...kmsg.DescribeConfigsRequestResource) *kmsg.DescribeConfigsRequest {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version, req.IncludeSynonyms, req.IncludeDocumentation, req.Resources = version, synonyms, docs, resources
	return req
}

func dcResource(typ kmsg.ConfigResourceType, name string, keys ...string) kmsg.DescribeConfigsRequestResource {
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, keys
	return r
}

func dcStr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func dcRender(r kmsg.DescribeConfigsResponseResource) string {
	if r.ErrorCode != 0 {
		return fmt.Sprintf("error %d: %s", r.ErrorCode, dcStr(r.ErrorMessage))
	}
	var out []string
	for _, c := range r.Configs {
		s := fmt.Sprintf("%s=%s@%d", c.Name, dcStr(c.Value), c.Source)
		if len(c.ConfigSynonyms) > 0 {
			var syn []string
			for _, y := range c.ConfigSynonyms {
				syn = append(syn, fmt.Sprintf("%s=%s@%d", y.Name, dcStr(y.Value), y.Source))
			}
			s += " [" + strings.Join(syn, " ") + "]"
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// TestDescribeConfigs: a broker answers from its own image, with its own dynamic settings.
func TestDescribeConfigs(t *testing.T) {
	img := dcImage(t)
	req := dcRequest(4, true, false,
		dcResource(kmsg.ConfigResourceTypeTopic, "orders", "retention.ms", "segment.bytes", "min.insync.replicas", "retention.hours"),
		dcResource(kmsg.ConfigResourceTypeBroker, "1", "num.io.threads", "log.segment.bytes", "background.threads"),
		dcResource(kmsg.ConfigResourceTypeBroker, ""),
		dcResource(kmsg.ConfigResourceTypeBroker, "3"),
		dcResource(kmsg.ConfigResourceTypeBroker, "one"),
		dcResource(kmsg.ConfigResourceTypeTopic, "ghost"),
		dcResource(kmsg.ConfigResourceTypeBrokerLogger, "1"),
		dcResource(kmsg.ConfigResourceTypeBrokerLogger, ""),
		dcResource(kmsg.ConfigResourceTypeGroupConfig, "g"),
	)
	resp := dcDescribe(t, img, 1, req)
	want := []string{
		"min.insync.replicas=1@5 [min.insync.replicas=1@5]; " +
			"retention.ms=3600000@1 [retention.ms=3600000@1 log.retention.ms=86400000@3 log.retention.ms=604800000@5]; " +
			"segment.bytes=268435456@2 [log.segment.bytes=268435456@2 log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]",
		"background.threads=10@5 [background.threads=10@5]; " +
			"log.segment.bytes=268435456@2 [log.segment.bytes=268435456@2 log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]; " +
			"num.io.threads=4@2 [num.io.threads=4@2 num.io.threads=8@5]",
		"log.retention.ms=86400000@3 [log.retention.ms=86400000@3]; log.segment.bytes=536870912@3 [log.segment.bytes=536870912@3]",
		fmt.Sprintf("error %d: Unexpected broker id, expected 1 or empty string, but received 3", kerr.InvalidRequest.Code),
		fmt.Sprintf("error %d: Broker id must be an integer, but it is: one", kerr.InvalidRequest.Code),
		fmt.Sprintf("error %d: The topic 'ghost' does not exist.", kerr.UnknownTopicOrPartition.Code),
		"",
		fmt.Sprintf("error %d: Broker id must not be empty", kerr.InvalidRequest.Code),
		fmt.Sprintf("error %d: Unsupported resource type: GROUP (32); this cluster keeps configs for topics (2) and brokers (4).", kerr.InvalidRequest.Code),
	}
	if len(resp.Resources) != len(want) {
		t.Fatalf("%d answers for %d resources", len(resp.Resources), len(want))
	}
	for i, r := range resp.Resources {
		if r.ResourceType != req.Resources[i].ResourceType || r.ResourceName != req.Resources[i].ResourceName {
			t.Fatalf("answer %d is for %s %q", i, r.ResourceType, r.ResourceName)
		}
		if got := dcRender(r); got != want[i] {
			t.Errorf("resource %d (%s %q):\n got %s\nwant %s", i, r.ResourceType, r.ResourceName, got, want[i])
		}
	}

	// The same topic seen from broker 3, which sets nothing of its own for it: the cluster default.
	resp = dcDescribe(t, img, 3, dcRequest(1, false, false, dcResource(kmsg.ConfigResourceTypeTopic, "orders", "segment.bytes")))
	if got := dcRender(resp.Resources[0]); got != "segment.bytes=536870912@3" {
		t.Fatalf("orders from broker 3: %s", got)
	}

	// No keys: every known config. v3 carries types, and documentation only when asked for.
	resp = dcDescribe(t, img, 1, dcRequest(3, false, true, dcResource(kmsg.ConfigResourceTypeBroker, "1")))
	if n := len(resp.Resources[0].Configs); n != len(metadatalog.BrokerConfigs()) {
		t.Fatalf("broker 1 lists %d configs, want %d", n, len(metadatalog.BrokerConfigs()))
	}
	for _, c := range resp.Resources[0].Configs {
		if c.ConfigType == kmsg.ConfigTypeUnknown || c.Documentation == nil || c.ReadOnly || c.IsSensitive {
			t.Fatalf("%s: type %d, doc %v, read-only %v, sensitive %v", c.Name, c.ConfigType, c.Documentation, c.ReadOnly, c.IsSensitive)
		}
	}
	resp = dcDescribe(t, img, 1, dcRequest(3, false, false, dcResource(kmsg.ConfigResourceTypeTopic, "orders", "cleanup.policy")))
	if c := resp.Resources[0].Configs[0]; c.Documentation != nil || c.ConfigType != kmsg.ConfigTypeList {
		t.Fatalf("cleanup.policy at v3 without documentation: %+v", c)
	}

	// v0: IsDefault says whether anything sets the config.
	resp = dcDescribe(t, img, 1, dcRequest(0, false, false, dcResource(kmsg.ConfigResourceTypeTopic, "orders", "retention.ms", "min.insync.replicas")))
	if c := resp.Resources[0].Configs; len(c) != 2 || c[0].Name != "min.insync.replicas" || !c[0].IsDefault || c[1].IsDefault {
		t.Fatalf("v0 = %+v", c)
	}
}

// TestDescribeConfigsThroughHandler: the broker port serves DescribeConfigs from the broker's image.
func TestDescribeConfigsThroughHandler(t *testing.T) {
	b := &Broker{cfg: Config{NodeID: 1}}
	b.image.Store(dcImage(t))
	if r, ok := b.APIs()[(&kmsg.DescribeConfigsRequest{}).Key()]; !ok || r.Min != 0 || r.Max != 4 {
		t.Fatalf("APIs() DescribeConfigs = %+v, %v", r, ok)
	}
	resp, err := listenerHandler{b: b}.Handle(context.Background(), dcRequest(4, false, false, dcResource(kmsg.ConfigResourceTypeBroker, "1", "num.io.threads")))
	if err != nil {
		t.Fatal(err)
	}
	if got := dcRender(resp.(*kmsg.DescribeConfigsResponse).Resources[0]); got != "num.io.threads=4@2" {
		t.Fatalf("broker 1's num.io.threads: %s", got)
	}
}
