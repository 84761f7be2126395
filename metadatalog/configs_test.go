package metadatalog

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
)

func TestConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		config, value, want string
	}{
		{"cleanup.policy", "forever", "Invalid value forever for configuration cleanup.policy: String must be one of: compact, delete"},
		{"cleanup.policy", "compact,forever", "Invalid value compact,forever for configuration cleanup.policy: String must be one of: compact, delete"},
		{"cleanup.policy", "", "Invalid value  for configuration cleanup.policy: The list must name at least one of: compact, delete"},
		{"cleanup.policy", "compact, delete", ""},
		{"retention.ms", "-2", "Invalid value -2 for configuration retention.ms: Value must be at least -1"},
		{"retention.ms", "1w", "Invalid value 1w for configuration retention.ms: Not a number of type LONG"},
		{"retention.ms", " -1 ", ""},
		{"retention.bytes", "-5", "Invalid value -5 for configuration retention.bytes: Value must be at least -1"},
		{"segment.bytes", "13", "Invalid value 13 for configuration segment.bytes: Value must be at least 14"},
		{"segment.bytes", "4294967296", "Invalid value 4294967296 for configuration segment.bytes: Not a number of type INT"},
		{"min.insync.replicas", "0", "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"},
		{"max.message.bytes", "-1", "Invalid value -1 for configuration max.message.bytes: Value must be at least 0"},
		{"compression.type", "brotli", "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"},
		{"compression.type", "zstd", ""},
		{"min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"},
		{"min.cleanable.dirty.ratio", "-0.1", "Invalid value -0.1 for configuration min.cleanable.dirty.ratio: Value must be at least 0"},
		{"min.cleanable.dirty.ratio", "NaN", "Invalid value NaN for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE"},
		{"min.cleanable.dirty.ratio", "0.25", ""},
		{"preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false"},
		{"preallocate", "TRUE", ""},
		{"message.timestamp.type", "LogAppendTime", ""},
	} {
		def, ok := TopicConfig(tc.config)
		if !ok {
			t.Fatalf("%s is not a known topic config", tc.config)
		}
		if got := def.Invalid(tc.value); got != tc.want {
			t.Errorf("%s=%q: %q, want %q", tc.config, tc.value, got, tc.want)
		}
	}
	for _, tc := range []struct {
		config, value, want string
	}{
		{"log.retention.ms", "-2", "Invalid value -2 for configuration log.retention.ms: Value must be at least -1"},
		{"log.cleanup.policy", "compact", ""},
		{"num.io.threads", "0", "Invalid value 0 for configuration num.io.threads: Value must be at least 1"},
		{"log.cleaner.threads", "0", ""},
		{"log.cleaner.io.max.bytes.per.second", "fast", "Invalid value fast for configuration log.cleaner.io.max.bytes.per.second: Not a number of type DOUBLE"},
		{"log.cleaner.io.max.bytes.per.second", "1e6", ""},
		{"log.cleaner.dedupe.buffer.size", "-9223372036854775808", ""},
		{"unclean.leader.election.enable", "maybe", "Invalid value maybe for configuration unclean.leader.election.enable: Expected value to be either true or false"},
	} {
		def, ok := BrokerConfig(tc.config)
		if !ok {
			t.Fatalf("%s is not a known broker config", tc.config)
		}
		if got := def.Invalid(tc.value); got != tc.want {
			t.Errorf("%s=%q: %q, want %q", tc.config, tc.value, got, tc.want)
		}
	}
	for _, name := range []string{"retention.hours", "log.retention.ms", ""} {
		if _, ok := TopicConfig(name); ok {
			t.Errorf("%q is taken for a topic config", name)
		}
	}
	for _, name := range []string{"retention.ms", "log.retention.hours", "broker.id", "listeners"} {
		if _, ok := BrokerConfig(name); ok {
			t.Errorf("%q is taken for a dynamic broker config", name)
		}
	}
}

// TestConfigDefs checks the tables: sorted (answers list configs in that order), every default valid,
// and the synonyms paired both ways, as Kafka's ServerTopicConfigSynonyms pairs them.
func TestConfigDefs(t *testing.T) {
	wantSynonyms := map[string]string{
		"cleanup.policy": "log.cleanup.policy", "compression.type": "compression.type",
		"delete.retention.ms": "log.cleaner.delete.retention.ms", "file.delete.delay.ms": "log.segment.delete.delay.ms",
		"flush.messages": "log.flush.interval.messages", "flush.ms": "log.flush.interval.ms",
		"index.interval.bytes": "log.index.interval.bytes", "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
		"max.message.bytes": "message.max.bytes", "message.timestamp.type": "log.message.timestamp.type",
		"min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio", "min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms",
		"min.insync.replicas": "min.insync.replicas", "preallocate": "log.preallocate",
		"retention.bytes": "log.retention.bytes", "retention.ms": "log.retention.ms",
		"segment.bytes": "log.segment.bytes", "segment.index.bytes": "log.index.size.max.bytes",
		"segment.jitter.ms": "log.roll.jitter.ms", "segment.ms": "log.roll.ms",
		"unclean.leader.election.enable": "unclean.leader.election.enable",
	}
	topics, brokers := TopicConfigs(), BrokerConfigs()
	for _, defs := range [][]ConfigDef{topics, brokers} {
		if !slices.IsSortedFunc(defs, func(a, b ConfigDef) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatal("a config table is not sorted by name")
		}
		for _, d := range defs {
			if msg := d.Invalid(d.Default); msg != "" {
				t.Errorf("the default of %s is invalid: %s", d.Name, msg)
			}
			if d.Type == ConfigTypeUnknown || d.Doc == "" {
				t.Errorf("%s has no type or no documentation", d.Name)
			}
		}
	}
	if len(topics) != len(wantSynonyms) {
		t.Fatalf("%d topic configs, want %d", len(topics), len(wantSynonyms))
	}
	for _, d := range topics {
		if d.Synonym != wantSynonyms[d.Name] {
			t.Errorf("%s's broker synonym = %q, want %q", d.Name, d.Synonym, wantSynonyms[d.Name])
		}
		b, ok := BrokerConfig(d.Synonym)
		if !ok || b.Synonym != d.Name || b.Default != d.Default || b.Type != d.Type {
			t.Errorf("broker config %s = %+v, want the default of %s", d.Synonym, b, d.Name)
		}
	}
	if d, _ := TopicConfig("cleanup.policy"); d.Type != ConfigTypeList {
		t.Error("cleanup.policy is not a list")
	}
	// A copy: callers cannot change the table.
	topics[0].Name = "changed"
	if TopicConfigs()[0].Name == "changed" {
		t.Fatal("TopicConfigs returns the table itself")
	}
}

func cfgStr(s string) *string { return &s }

// configImage: topic "orders" with retention.ms and cleanup.policy set; cluster-wide defaults for
// log.retention.ms, log.segment.bytes and num.io.threads; broker 4's own log.segment.bytes and
// num.io.threads.
func configImage(t *testing.T) *Image {
	t.Helper()
	id := imgTopicID(1)
	return mustApply(t, EmptyImage(), 1, 1,
		recTopic("orders", id[:]),
		recConfig(cfgTopic, "orders", "retention.ms", cfgStr("3600000")),
		recConfig(cfgTopic, "orders", "cleanup.policy", cfgStr("compact")),
		recConfig(cfgBroker, "", "log.retention.ms", cfgStr("86400000")),
		recConfig(cfgBroker, "", "log.segment.bytes", cfgStr("536870912")),
		recConfig(cfgBroker, "", "num.io.threads", cfgStr("16")),
		recConfig(cfgBroker, "4", "log.segment.bytes", cfgStr("268435456")),
		recConfig(cfgBroker, "4", "num.io.threads", cfgStr("4")),
	)
}

func fmtValue(v ConfigValue) string {
	var syn []string
	for _, s := range v.Synonyms {
		syn = append(syn, fmt.Sprintf("%s=%s@%d", s.Name, s.Value, s.Source))
	}
	return fmt.Sprintf("%s=%s@%d [%s]", v.Name, v.Value, v.Source, strings.Join(syn, " "))
}

func TestTopicConfigValue(t *testing.T) {
	img := configImage(t)
	for _, tc := range []struct {
		topic string
		node  int32
		name  string
		want  string
	}{
		// The topic's own setting wins, and its synonyms show what it overrides.
		{"orders", 4, "retention.ms", "retention.ms=3600000@1 [retention.ms=3600000@1 log.retention.ms=86400000@3 log.retention.ms=604800000@5]"},
		{"orders", -1, "cleanup.policy", "cleanup.policy=compact@1 [cleanup.policy=compact@1 log.cleanup.policy=delete@5]"},
		// Not set on the topic: the node's own setting, then the cluster-wide default.
		{"orders", 4, "segment.bytes", "segment.bytes=268435456@2 [log.segment.bytes=268435456@2 log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]"},
		{"orders", 1, "segment.bytes", "segment.bytes=536870912@3 [log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]"},
		{"orders", -1, "segment.bytes", "segment.bytes=536870912@3 [log.segment.bytes=536870912@3 log.segment.bytes=1073741824@5]"},
		// Set nowhere: the built-in default, named after the broker synonym.
		{"orders", 4, "max.message.bytes", "max.message.bytes=1048588@5 [message.max.bytes=1048588@5]"},
		// A topic that does not exist resolves like one with nothing set.
		{"ghost", -1, "retention.ms", "retention.ms=86400000@3 [log.retention.ms=86400000@3 log.retention.ms=604800000@5]"},
	} {
		v, ok := img.TopicConfigValue(tc.topic, tc.node, tc.name)
		if !ok || fmtValue(v) != tc.want {
			t.Errorf("%s %s on node %d = %s, want %s", tc.topic, tc.name, tc.node, fmtValue(v), tc.want)
		}
	}
	v, _ := img.TopicConfigValue("orders", -1, "retention.ms")
	if v.Type != ConfigTypeLong || v.Doc == "" {
		t.Errorf("retention.ms: type %d, doc %q", v.Type, v.Doc)
	}
	if got := v.Inherited(ConfigSourceTopic); got != "86400000" {
		t.Errorf("retention.ms without the topic's setting = %s", got)
	}
	if _, ok := img.TopicConfigValue("orders", -1, "retention.hours"); ok {
		t.Error("an unknown topic config resolved")
	}
}

func TestBrokerConfigValue(t *testing.T) {
	img := configImage(t)
	for _, tc := range []struct {
		broker, name, want string
	}{
		{"4", "num.io.threads", "num.io.threads=4@2 [num.io.threads=4@2 num.io.threads=16@3 num.io.threads=8@5]"},
		{"1", "num.io.threads", "num.io.threads=16@3 [num.io.threads=16@3 num.io.threads=8@5]"},
		{"", "num.io.threads", "num.io.threads=16@3 [num.io.threads=16@3 num.io.threads=8@5]"},
		{"", "background.threads", "background.threads=10@5 [background.threads=10@5]"},
		{"4", "log.retention.ms", "log.retention.ms=86400000@3 [log.retention.ms=86400000@3 log.retention.ms=604800000@5]"},
	} {
		v, ok := img.BrokerConfigValue(tc.broker, tc.name)
		if !ok || fmtValue(v) != tc.want {
			t.Errorf("broker %q %s = %s, want %s", tc.broker, tc.name, fmtValue(v), tc.want)
		}
	}
	v, _ := img.BrokerConfigValue("4", "num.io.threads")
	if got := v.Inherited(ConfigSourceBroker); got != "16" {
		t.Errorf("broker 4's num.io.threads without its own setting = %s", got)
	}
	for _, tc := range [][2]string{{"4", "retention.ms"}, {"four", "num.io.threads"}} {
		if _, ok := img.BrokerConfigValue(tc[0], tc[1]); ok {
			t.Errorf("broker %q %s resolved", tc[0], tc[1])
		}
	}
}

func fmtAnswer(a ConfigAnswer) string {
	if a.Refusal != ConfigRefusalNone {
		return fmt.Sprintf("refused %d: %s", a.Refusal, a.Message)
	}
	var out []string
	for _, v := range a.Configs {
		out = append(out, fmt.Sprintf("%s=%s@%d", v.Name, v.Value, v.Source))
	}
	return strings.Join(out, " ")
}

func TestDescribeConfigs(t *testing.T) {
	img := configImage(t)
	const self = 4
	q := func(typ metadatapb.ConfigResourceType, name string, keys ...string) ConfigQuery {
		return ConfigQuery{Type: typ, Name: name, Keys: keys}
	}
	for _, tc := range []struct {
		name  string
		query ConfigQuery
		want  string
	}{
		{"topic keys", q(cfgTopic, "orders", "segment.bytes", "retention.ms", "no.such.key", "retention.ms"),
			"retention.ms=3600000@1 segment.bytes=268435456@2"},
		{"unknown topic", q(cfgTopic, "ghost"), "refused 1: The topic 'ghost' does not exist."},
		{"cluster default lists what is set", q(cfgBroker, ""),
			"log.retention.ms=86400000@3 log.segment.bytes=536870912@3 num.io.threads=16@3"},
		{"cluster default keys", q(cfgBroker, "", "num.io.threads", "background.threads"), "num.io.threads=16@3"},
		{"this broker", q(cfgBroker, "4", "num.io.threads", "background.threads", "log.segment.bytes", "log.retention.ms"),
			"background.threads=10@5 log.retention.ms=86400000@3 log.segment.bytes=268435456@2 num.io.threads=4@2"},
		{"another broker", q(cfgBroker, "1"), "refused 2: Unexpected broker id, expected 4 or empty string, but received 1"},
		{"not a broker id", q(cfgBroker, "four"), "refused 2: Broker id must be an integer, but it is: four"},
		{"loggers of this broker", q(ConfigResourceBrokerLogger, "4"), ""},
		{"loggers without a broker", q(ConfigResourceBrokerLogger, ""), "refused 2: Broker id must not be empty"},
		{"loggers of another broker", q(ConfigResourceBrokerLogger, "1"), "refused 2: Unexpected broker id, expected 4 but received 1"},
		{"loggers of no id", q(ConfigResourceBrokerLogger, "x"), "refused 2: Broker id must be an integer, but it is: x"},
		{"groups", q(32, "g"), "refused 2: Unsupported resource type: GROUP (32); this cluster keeps configs for topics (2) and brokers (4)."},
		{"unknown type", q(0, "g"), "refused 2: Unsupported resource type: UNKNOWN (0); this cluster keeps configs for topics (2) and brokers (4)."},
	} {
		if got := fmtAnswer(img.DescribeConfigs(self, tc.query)); got != tc.want {
			t.Errorf("%s: %s\nwant %s", tc.name, got, tc.want)
		}
	}

	// Every key: every known config, by name, each resolved.
	all := img.DescribeConfigs(self, q(cfgTopic, "orders"))
	if len(all.Configs) != len(TopicConfigs()) {
		t.Fatalf("a topic lists %d configs, want %d", len(all.Configs), len(TopicConfigs()))
	}
	for i, d := range TopicConfigs() {
		if v := all.Configs[i]; v.Name != d.Name || v.Type != d.Type || len(v.Synonyms) == 0 || v.Synonyms[0].Value != v.Value {
			t.Fatalf("config %d = %s, want %s", i, fmtValue(v), d.Name)
		}
	}
	if n := len(img.DescribeConfigs(self, q(cfgBroker, "4")).Configs); n != len(BrokerConfigs()) {
		t.Fatalf("this broker lists %d configs, want %d", n, len(BrokerConfigs()))
	}
	// The cluster-wide level alone: no per-broker or built-in synonyms.
	def := img.DescribeConfigs(self, q(cfgBroker, "", "log.segment.bytes")).Configs[0]
	if fmtValue(def) != "log.segment.bytes=536870912@3 [log.segment.bytes=536870912@3]" || def.Type != ConfigTypeInt {
		t.Fatalf("cluster-wide log.segment.bytes = %s, type %d", fmtValue(def), def.Type)
	}
}
