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

const (
	opSet      = kmsg.IncrementalAlterConfigOpSet
	opDelete   = kmsg.IncrementalAlterConfigOpDelete
	opAppend   = kmsg.IncrementalAlterConfigOpAppend
	opSubtract = kmsg.IncrementalAlterConfigOpSubtract
)

// ccfgImage: brokers 1–3; topic "orders" with retention.ms=3600000 and cleanup.policy=compact; topic
// "plain" with nothing set; cluster-wide log.cleanup.policy=compact,delete and num.io.threads=16; broker 2's
// own num.io.threads=4.
func ccfgImage(t *testing.T) *metadatalog.Image {
	t.Helper()
	img := tpImage(t, tpBrokers(3)...)
	img = tcCreate(t, img, newTopicControl(0),
		newTopic{name: "orders", numPartitions: 1, replicationFactor: 1, configs: []requestedConfig{
			{"retention.ms", tcStr("3600000")}, {"cleanup.policy", tcStr("compact")}}},
		newTopic{name: "plain", numPartitions: 1, replicationFactor: 1})
	return tcApply(t, img, []*metadatapb.Record{
		ccfgRecord(brokerResource, "", "log.cleanup.policy", tcStr("compact,delete")),
		ccfgRecord(brokerResource, "", "num.io.threads", tcStr("16")),
		ccfgRecord(brokerResource, "2", "num.io.threads", tcStr("4")),
	})
}

func ccfgRecord(typ metadatapb.ConfigResourceType, resource, name string, value *string) *metadatapb.Record {
	return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{ResourceType: typ, ResourceName: resource, Name: name, Value: value}}}
}

func ccfgSet(name, value string) configChange {
	return configChange{name: name, op: opSet, value: &value}
}
func ccfgOp(op kmsg.IncrementalAlterConfigOp, name, value string) configChange {
	return configChange{name: name, op: op, value: &value}
}
func ccfgDelete(name string) configChange { return configChange{name: name, op: opDelete} }

func ccfgTopic(name string, changes ...configChange) configResource {
	return configResource{typ: topicResource, name: name, changes: changes}
}

func ccfgBroker(name string, changes ...configChange) configResource {
	return configResource{typ: brokerResource, name: name, changes: changes}
}

// ccfgRecords renders config records as "TYPE/resource name=value" (or "name deleted").
func ccfgRecords(records []*metadatapb.Record) []string {
	var out []string
	for _, r := range records {
		c := r.GetConfig()
		if c == nil {
			out = append(out, fmt.Sprintf("not a config record: %v", r))
			continue
		}
		v := "deleted"
		if c.Value != nil {
			v = "=" + c.GetValue()
		}
		out = append(out, fmt.Sprintf("%s/%s %s%s", metadatalog.ConfigResourceTypeName(c.GetResourceType()), c.GetResourceName(), c.GetName(), strings.Replace(" "+v, " =", "=", 1)))
	}
	return out
}

func ccfgOutcome(o configOutcome) string {
	if o.code == nil {
		return "NONE"
	}
	return o.code.Message + ": " + o.msg
}

func TestIncrementalAlterConfigsRefused(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resource configResource
		code     *kerr.Error
		msg      string
	}{
		// Resources.
		{"unknown topic", ccfgTopic("ghost", ccfgSet("retention.ms", "1")), kerr.UnknownTopicOrPartition, "The topic 'ghost' does not exist."},
		{"default topic", ccfgTopic("", ccfgSet("retention.ms", "1")), kerr.InvalidRequest, "Default topic resources are not allowed."},
		{"invalid topic name", ccfgTopic("a/b", ccfgSet("retention.ms", "1")), kerr.InvalidTopicException,
			"Topic name is invalid: 'a/b' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"},
		{"broker name not a number", ccfgBroker("one", ccfgSet("num.io.threads", "2")), kerr.InvalidRequest, "Unable to parse broker name as a base 10 number."},
		{"negative broker", ccfgBroker("-1", ccfgSet("num.io.threads", "2")), kerr.InvalidRequest, "Invalid negative broker ID."},
		{"unregistered broker", ccfgBroker("9", ccfgSet("num.io.threads", "2")), kerr.BrokerIDNotRegistered, "No node with id 9 found."},
		{"unknown resource type", configResource{typ: 0, name: "x", changes: []configChange{ccfgSet("a", "b")}}, kerr.UnsupportedVersion, "Unknown resource type 0."},
		{"unnamed resource type", configResource{typ: 7, name: "x"}, kerr.UnsupportedVersion, "Unknown resource type 7."},
		{"groups", configResource{typ: 32, name: "g", changes: []configChange{ccfgSet("a", "b")}}, kerr.InvalidRequest,
			"Unsupported resource type GROUP (32): this cluster keeps configs for topics (2) and brokers (4)."},
		{"client metrics", configResource{typ: 16, name: "m"}, kerr.InvalidRequest,
			"Unsupported resource type CLIENT_METRICS (16): this cluster keeps configs for topics (2) and brokers (4)."},

		// BROKER_LOGGER: no logger can be changed at run time.
		{"logger", configResource{typ: metadatalog.ConfigResourceBrokerLogger, name: "1", changes: []configChange{ccfgSet("kafka.server", "DEBUG")}}, kerr.InvalidConfig,
			"Logger kafka.server does not exist! This cluster's log levels are set when a node starts and cannot be changed over the Kafka protocol."},
		{"logger delete", configResource{typ: metadatalog.ConfigResourceBrokerLogger, name: "1", changes: []configChange{ccfgDelete("root")}}, kerr.InvalidConfig,
			"Logger root does not exist! This cluster's log levels are set when a node starts and cannot be changed over the Kafka protocol."},
		{"logger append", configResource{typ: metadatalog.ConfigResourceBrokerLogger, name: "1", changes: []configChange{ccfgOp(opAppend, "root", "x")}}, kerr.InvalidRequest,
			"APPEND operation is not allowed for the BROKER_LOGGER resource"},
		{"logger of no node", configResource{typ: metadatalog.ConfigResourceBrokerLogger, name: "", changes: []configChange{ccfgSet("root", "INFO")}}, kerr.InvalidRequest,
			"Node id must be an integer, but it is: "},

		// The request's shape.
		{"key twice", ccfgTopic("orders", ccfgSet("retention.ms", "1"), ccfgDelete("retention.ms")), kerr.InvalidRequest, "Error due to duplicate config keys"},
		{"null values", ccfgTopic("orders", configChange{name: "retention.ms", op: opSet}, ccfgDelete("segment.ms"), configChange{name: "cleanup.policy", op: opAppend}),
			kerr.InvalidRequest, "Null value not supported for : retention.ms, cleanup.policy"},
		{"unknown operation", ccfgTopic("orders", configChange{name: "retention.ms", op: 4, value: tcStr("1")}), kerr.InvalidRequest, "Unknown operations type 4"},

		// Keys and values.
		{"unknown topic config", ccfgTopic("orders", ccfgSet("retention.ms", "1"), ccfgSet("retention.hours", "1")), kerr.InvalidConfig, "Unknown topic config name: retention.hours"},
		{"unknown broker config", ccfgBroker("", ccfgSet("log.dirs", "/tmp")), kerr.InvalidConfig,
			"Unknown broker config name: log.dirs (describe a broker's configs for the dynamic ones this cluster knows)"},
		{"topic config on a broker", ccfgBroker("1", ccfgSet("retention.ms", "1")), kerr.InvalidConfig,
			"Unknown broker config name: retention.ms (describe a broker's configs for the dynamic ones this cluster knows)"},
		{"invalid topic value", ccfgTopic("orders", ccfgSet("retention.ms", "-2")), kerr.InvalidConfig, "Invalid value -2 for configuration retention.ms: Value must be at least -1"},
		{"invalid broker value", ccfgBroker("", ccfgSet("log.segment.bytes", "big")), kerr.InvalidConfig, "Invalid value big for configuration log.segment.bytes: Not a number of type INT"},
		{"append to a non-list", ccfgTopic("orders", ccfgOp(opAppend, "retention.ms", "1")), kerr.InvalidConfig, "Can't APPEND to key retention.ms because its type is not LIST."},
		{"subtract from a non-list", ccfgBroker("", ccfgOp(opSubtract, "num.io.threads", "1")), kerr.InvalidConfig, "Can't SUBTRACT to key num.io.threads because its type is not LIST."},
		{"append an invalid item", ccfgTopic("orders", ccfgOp(opAppend, "cleanup.policy", "forever")), kerr.InvalidConfig,
			"Invalid value compact,forever for configuration cleanup.policy: String must be one of: compact, delete"},
		{"subtract the last item", ccfgTopic("orders", ccfgOp(opSubtract, "cleanup.policy", "compact")), kerr.InvalidConfig,
			"Invalid value  for configuration cleanup.policy: The list must name at least one of: compact, delete"},
		{"compaction lags crossed", ccfgTopic("plain", ccfgSet("min.compaction.lag.ms", "10"), ccfgSet("max.compaction.lag.ms", "5")), kerr.InvalidConfig,
			"conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := ccfgImage(t)
			records, outs := configControl{controllers: []int32{1000}}.incrementalAlterConfigs(img, []configResource{tc.resource})
			if len(outs) != 1 || outs[0].code != tc.code || outs[0].msg != tc.msg {
				t.Fatalf("outcome = %s\nwant %s: %s", ccfgOutcome(outs[0]), tc.code.Message, tc.msg)
			}
			if len(records) != 0 {
				t.Fatalf("a refused resource wrote %v", ccfgRecords(records))
			}
		})
	}
}

func TestIncrementalAlterConfigsOps(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resource configResource
		want     []string
	}{
		{"set", ccfgTopic("plain", ccfgSet("retention.ms", "1000"), ccfgSet("preallocate", "true")),
			[]string{"TOPIC/plain retention.ms=1000", "TOPIC/plain preallocate=true"}},
		{"set the value held writes nothing", ccfgTopic("orders", ccfgSet("retention.ms", "3600000")), nil},
		{"set overrides", ccfgTopic("orders", ccfgSet("retention.ms", "60000")), []string{"TOPIC/orders retention.ms=60000"}},
		{"delete", ccfgTopic("orders", ccfgDelete("retention.ms")), []string{"TOPIC/orders retention.ms deleted"}},
		{"delete what is not set writes nothing", ccfgTopic("orders", ccfgDelete("segment.ms")), nil},
		{"delete ignores a value", ccfgTopic("orders", ccfgOp(opDelete, "retention.ms", "junk")), []string{"TOPIC/orders retention.ms deleted"}},
		{"no operations", ccfgTopic("orders"), nil},

		// APPEND and SUBTRACT work on the value in effect, the resource's own else what it inherits,
		// and write the result as the resource's own.
		{"append to the topic's list", ccfgTopic("orders", ccfgOp(opAppend, "cleanup.policy", "delete")), []string{"TOPIC/orders cleanup.policy=compact,delete"}},
		{"append what is there", ccfgTopic("orders", ccfgOp(opAppend, "cleanup.policy", "compact")), nil},
		{"append several, spaces and empties", ccfgTopic("orders", ccfgOp(opAppend, "cleanup.policy", " delete,,compact ")), []string{"TOPIC/orders cleanup.policy=compact,delete"}},
		{"subtract from what the topic inherits", ccfgTopic("plain", ccfgOp(opSubtract, "cleanup.policy", "compact")), []string{"TOPIC/plain cleanup.policy=delete"}},
		{"subtract what is absent", ccfgTopic("orders", ccfgOp(opSubtract, "cleanup.policy", "delete")), nil},
		{"subtract from the cluster default", ccfgBroker("", ccfgOp(opSubtract, "log.cleanup.policy", "delete")), []string{"BROKER/ log.cleanup.policy=compact"}},
		{"a broker's list inherits the cluster default", ccfgBroker("3", ccfgOp(opSubtract, "log.cleanup.policy", "compact")), []string{"BROKER/3 log.cleanup.policy=delete"}},

		// Brokers: the cluster-wide default, a registered broker, a controller; an id in plain form.
		{"cluster default", ccfgBroker("", ccfgSet("log.retention.ms", "1000"), ccfgDelete("num.io.threads")),
			[]string{"BROKER/ log.retention.ms=1000", "BROKER/ num.io.threads deleted"}},
		{"one broker", ccfgBroker("2", ccfgSet("num.io.threads", "6")), []string{"BROKER/2 num.io.threads=6"}},
		{"a controller", ccfgBroker("1000", ccfgSet("num.io.threads", "6")), []string{"BROKER/1000 num.io.threads=6"}},
		{"an id with a leading zero", ccfgBroker("02", ccfgDelete("num.io.threads")), []string{"BROKER/2 num.io.threads deleted"}},

		// Compaction lags: checked against what is in effect.
		{"compaction lags in order", ccfgTopic("plain", ccfgSet("min.compaction.lag.ms", "5"), ccfgSet("max.compaction.lag.ms", "5")),
			[]string{"TOPIC/plain min.compaction.lag.ms=5", "TOPIC/plain max.compaction.lag.ms=5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := ccfgImage(t)
			records, outs := configControl{controllers: []int32{1000}}.incrementalAlterConfigs(img, []configResource{tc.resource})
			if outs[0].code != nil {
				t.Fatalf("refused: %s", ccfgOutcome(outs[0]))
			}
			if got := ccfgRecords(records); strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Fatalf("records = %q\nwant %q", got, tc.want)
			}
			tcApply(t, img, records) // they apply
		})
	}
}

// TestIncrementalAlterConfigsRequest: one batch for the resources that pass, nothing for those that
// fail, duplicates refused in every copy, and resolution against the image after each change.
func TestIncrementalAlterConfigsRequest(t *testing.T) {
	img := ccfgImage(t)
	cc := configControl{}
	records, outs := cc.incrementalAlterConfigs(img, []configResource{
		ccfgTopic("orders", ccfgSet("segment.ms", "1000")),
		ccfgTopic("twice", ccfgSet("segment.ms", "1")),
		ccfgTopic("plain", ccfgSet("retention.ms", "-3")),
		ccfgTopic("twice", ccfgSet("segment.ms", "2")),
		ccfgBroker("", ccfgSet("log.segment.bytes", "1048576")),
	})
	var got []string
	for _, o := range outs {
		got = append(got, ccfgOutcome(o))
	}
	want := []string{"NONE",
		"INVALID_REQUEST: Each resource must appear at most once.",
		"INVALID_CONFIG: Invalid value -3 for configuration retention.ms: Value must be at least -1",
		"INVALID_REQUEST: Each resource must appear at most once.",
		"NONE"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("outcomes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := ccfgRecords(records); strings.Join(r, "; ") != "TOPIC/orders segment.ms=1000; BROKER/ log.segment.bytes=1048576" {
		t.Fatalf("records = %q", r)
	}

	// After the batch: the cluster default reaches a topic that sets nothing, not one that does.
	img = tcApply(t, img, records)
	if v, _ := img.TopicConfigValue("plain", -1, "segment.bytes"); v.Value != "1048576" || v.Source != metadatalog.ConfigSourceClusterDefault {
		t.Fatalf("plain's segment.bytes = %s from %d", v.Value, v.Source)
	}
	// Deleting a topic's own minimum falls back to what it inherits for the lag check.
	img = tcApply(t, img, []*metadatapb.Record{ccfgRecord(topicResource, "plain", "min.compaction.lag.ms", tcStr("100"))})
	_, outs = cc.incrementalAlterConfigs(img, []configResource{ccfgTopic("plain", ccfgSet("max.compaction.lag.ms", "50"))})
	if ccfgOutcome(outs[0]) != "INVALID_CONFIG: conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (50)" {
		t.Fatalf("lags: %s", ccfgOutcome(outs[0]))
	}
	records, outs = cc.incrementalAlterConfigs(img, []configResource{ccfgTopic("plain", ccfgDelete("min.compaction.lag.ms"), ccfgSet("max.compaction.lag.ms", "50"))})
	if outs[0].code != nil || len(records) != 2 {
		t.Fatalf("lags after deleting the minimum: %s, %q", ccfgOutcome(outs[0]), ccfgRecords(records))
	}

	// With nothing set anywhere, APPEND extends the built-in default.
	bare := tcCreate(t, tpImage(t, tpBrokers(1)...), newTopicControl(0), newTopic{name: "bare", numPartitions: 1, replicationFactor: 1})
	records, outs = cc.incrementalAlterConfigs(bare, []configResource{ccfgTopic("bare", ccfgOp(opAppend, "cleanup.policy", "compact"))})
	if r := ccfgRecords(records); outs[0].code != nil || strings.Join(r, "; ") != "TOPIC/bare cleanup.policy=delete,compact" {
		t.Fatalf("append to the built-in default: %s, %q", ccfgOutcome(outs[0]), r)
	}
}

// TestIncrementalAlterConfigsWriteFailure: when the write cannot happen here, every resource answers
// with the same code and message (topicWriteFailure's).
func TestIncrementalAlterConfigsWriteFailure(t *testing.T) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, name := range []string{"a", "b"} {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		req.Resources = append(req.Resources, r)
	}
	resp := incrementalAlterConfigsResponse(req, nil, kerr.NotController, "go elsewhere")
	for i, rr := range resp.Resources {
		if rr.ResourceName != req.Resources[i].ResourceName || rr.ResourceType != kmsg.ConfigResourceTypeTopic ||
			rr.ErrorCode != kerr.NotController.Code || rr.ErrorMessage == nil || *rr.ErrorMessage != "go elsewhere" {
			t.Fatalf("resource %d = %+v", i, rr)
		}
	}
	resp = incrementalAlterConfigsResponse(req, []configOutcome{{}, {code: kerr.InvalidConfig, msg: "no"}}, nil, "")
	if a, b := resp.Resources[0], resp.Resources[1]; a.ErrorCode != 0 || a.ErrorMessage != nil || b.ErrorCode != kerr.InvalidConfig.Code || *b.ErrorMessage != "no" {
		t.Fatalf("answers = %+v", resp.Resources)
	}
}
