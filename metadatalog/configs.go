package metadatalog

// Configs: the topic configs and the dynamic broker configs this cluster knows, with Kafka's defaults
// and validation, and how the effective value of a resource's config is resolved from an image. The
// controller validates CreateTopics and IncrementalAlterConfigs with them; both roles answer
// DescribeConfigs from DescribeConfigs below and only turn its answer into Kafka's wire form.
//
// A config this cluster does not know is refused rather than stored unchecked, so every value in the
// image parses as its type.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
)

// ConfigType is the type of a config's value; the values are Kafka's DescribeConfigs ConfigType ids.
type ConfigType int8

const (
	ConfigTypeUnknown ConfigType = 0
	ConfigTypeBoolean ConfigType = 1
	ConfigTypeString  ConfigType = 2
	ConfigTypeInt     ConfigType = 3
	ConfigTypeLong    ConfigType = 5
	ConfigTypeDouble  ConfigType = 6
	// ConfigTypeList is a comma-separated list; only lists take IncrementalAlterConfigs' APPEND and
	// SUBTRACT.
	ConfigTypeList ConfigType = 7
)

// ConfigSource says where a config's value comes from; the values are Kafka's DescribeConfigs
// ConfigSource ids. Kafka's STATIC_BROKER_CONFIG (4) never appears: a node's configuration file holds
// none of these configs.
type ConfigSource int8

const (
	// ConfigSourceTopic is a topic's own setting (DYNAMIC_TOPIC_CONFIG).
	ConfigSourceTopic ConfigSource = 1
	// ConfigSourceBroker is one broker's own dynamic setting (DYNAMIC_BROKER_CONFIG).
	ConfigSourceBroker ConfigSource = 2
	// ConfigSourceClusterDefault is the cluster-wide broker default (DYNAMIC_DEFAULT_BROKER_CONFIG).
	ConfigSourceClusterDefault ConfigSource = 3
	// ConfigSourceDefault is Kafka's built-in default (DEFAULT_CONFIG).
	ConfigSourceDefault ConfigSource = 5
)

// ConfigResourceBrokerLogger is Kafka's BROKER_LOGGER resource type (log levels). It is never stored:
// the ConfigRecord types are TOPIC and BROKER only.
const ConfigResourceBrokerLogger = metadatapb.ConfigResourceType(8)

// ClusterDefaultBroker is the BROKER resource name of the cluster-wide broker defaults.
const ClusterDefaultBroker = ""

// ConfigResourceTypeName is Kafka's name of a config resource type, for messages.
func ConfigResourceTypeName(t metadatapb.ConfigResourceType) string {
	switch t {
	case metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC:
		return "TOPIC"
	case metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER:
		return "BROKER"
	case ConfigResourceBrokerLogger:
		return "BROKER_LOGGER"
	case 16:
		return "CLIENT_METRICS"
	case 32:
		return "GROUP"
	}
	return "UNKNOWN"
}

// ConfigDef is a config this cluster knows.
type ConfigDef struct {
	Name    string
	Default string
	Type    ConfigType
	// Check returns why a value is invalid, in the words of Kafka's ConfigException, or "".
	Check func(value string) string
	// Doc is a line of documentation, for DescribeConfigs' IncludeDocumentation.
	Doc string
	// Synonym pairs topic and broker configs: for a topic config, the broker config whose cluster-wide
	// (or per-broker) setting is its default (log.retention.ms for retention.ms); for a broker config,
	// the topic config it is the default for, or "" if none.
	Synonym string
}

// Invalid returns Kafka's message refusing value for this config, or "" if value is valid.
func (d ConfigDef) Invalid(value string) string {
	if reason := d.Check(value); reason != "" {
		return fmt.Sprintf("Invalid value %s for configuration %s: %s", value, d.Name, reason)
	}
	return ""
}

// TopicConfig returns a topic config this cluster knows.
func TopicConfig(name string) (ConfigDef, bool) { return findConfig(topicConfigs, name) }

// TopicConfigs lists the topic configs this cluster knows, by name.
func TopicConfigs() []ConfigDef { return slices.Clone(topicConfigs) }

// BrokerConfig returns a dynamic broker config this cluster knows.
func BrokerConfig(name string) (ConfigDef, bool) { return findConfig(brokerConfigs, name) }

// BrokerConfigs lists the dynamic broker configs this cluster knows, by name.
func BrokerConfigs() []ConfigDef { return slices.Clone(brokerConfigs) }

func findConfig(defs []ConfigDef, name string) (ConfigDef, bool) {
	i, ok := slices.BinarySearchFunc(defs, name, func(d ConfigDef, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return ConfigDef{}, false
	}
	return defs[i], true
}

// topicConfigs is sorted by name, the order answers list configs in. The checks are those of Kafka's
// LogConfig.
var topicConfigs = []ConfigDef{
	{"cleanup.policy", "delete", ConfigTypeList, ListOfCheck("compact", "delete"),
		"How old log segments go: delete them (by retention.ms and retention.bytes), compact them to the latest value per key, or both.", "log.cleanup.policy"},
	{"compression.type", "producer", ConfigTypeString, OneOfCheck("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		"The codec batches are stored with; producer keeps the producer's own.", "compression.type"},
	{"delete.retention.ms", "86400000", ConfigTypeLong, LongCheck(0),
		"How long a compacted topic keeps delete markers (tombstones), in milliseconds.", "log.cleaner.delete.retention.ms"},
	{"file.delete.delay.ms", "60000", ConfigTypeLong, LongCheck(0),
		"How long a deleted segment file waits on disk before it is removed, in milliseconds.", "log.segment.delete.delay.ms"},
	{"flush.messages", "9223372036854775807", ConfigTypeLong, LongCheck(1),
		"Force an fsync after this many messages; the default leaves flushing to the operating system.", "log.flush.interval.messages"},
	{"flush.ms", "9223372036854775807", ConfigTypeLong, LongCheck(0),
		"Force an fsync after this many milliseconds; the default leaves flushing to the operating system.", "log.flush.interval.ms"},
	{"index.interval.bytes", "4096", ConfigTypeInt, IntCheck(0),
		"Bytes of log between two entries of the offset index.", "log.index.interval.bytes"},
	{"max.compaction.lag.ms", "9223372036854775807", ConfigTypeLong, LongCheck(1),
		"The longest a message may stay ineligible for compaction, in milliseconds.", "log.cleaner.max.compaction.lag.ms"},
	{"max.message.bytes", "1048588", ConfigTypeInt, IntCheck(0),
		"The largest record batch the topic accepts, in bytes.", "message.max.bytes"},
	{"message.timestamp.type", "CreateTime", ConfigTypeString, OneOfCheck("CreateTime", "LogAppendTime"),
		"Whether a message's timestamp is the producer's (CreateTime) or the broker's on append (LogAppendTime).", "log.message.timestamp.type"},
	{"min.cleanable.dirty.ratio", "0.5", ConfigTypeDouble, RatioCheck,
		"The share of uncompacted log above which a compacted topic becomes due for cleaning.", "log.cleaner.min.cleanable.ratio"},
	{"min.compaction.lag.ms", "0", ConfigTypeLong, LongCheck(0),
		"The shortest a message stays uncompacted, in milliseconds.", "log.cleaner.min.compaction.lag.ms"},
	{"min.insync.replicas", "1", ConfigTypeInt, IntCheck(1),
		"How many in-sync replicas an acks=all write needs before it succeeds.", "min.insync.replicas"},
	{"preallocate", "false", ConfigTypeBoolean, BoolCheck,
		"Whether a new segment file is allocated at full size up front.", "log.preallocate"},
	{"retention.bytes", "-1", ConfigTypeLong, LongCheck(-1),
		"The size a partition may grow to before old segments are deleted; -1 means no limit.", "log.retention.bytes"},
	{"retention.ms", "604800000", ConfigTypeLong, LongCheck(-1),
		"How long segments are kept before they are deleted, in milliseconds; -1 means forever.", "log.retention.ms"},
	{"segment.bytes", "1073741824", ConfigTypeInt, IntCheck(14),
		"The size at which a new log segment is started, in bytes.", "log.segment.bytes"},
	{"segment.index.bytes", "10485760", ConfigTypeInt, IntCheck(4),
		"The size of each segment's offset index, in bytes.", "log.index.size.max.bytes"},
	{"segment.jitter.ms", "0", ConfigTypeLong, LongCheck(0),
		"The most a segment's roll time is randomly brought forward, so segments do not all roll at once.", "log.roll.jitter.ms"},
	{"segment.ms", "604800000", ConfigTypeLong, LongCheck(1),
		"The age at which a segment is rolled even if it is not full, in milliseconds.", "log.roll.ms"},
	{"unclean.leader.election.enable", "false", ConfigTypeBoolean, BoolCheck,
		"Whether a replica outside the ISR may become leader as a last resort, at the risk of losing data.", "unclean.leader.election.enable"},
}

// brokerConfigs are Kafka's dynamic broker configs that may be set cluster-wide (kafka-configs.sh
// --entity-type brokers --entity-default) or for one broker, sorted by name. Those that are a topic
// config's default take that config's default and check, so no cluster default can be a value the
// topic config itself would refuse. Kafka leaves a few of them (log.retention.ms, log.roll.ms,
// log.roll.jitter.ms, log.flush.interval.ms) without a default and derives it from an hours or
// scheduler form; this cluster has no such forms, so they default to what they resolve to. Per-broker
// only configs (listeners, TLS) are not here: they are set in a node's configuration file.
var brokerConfigs = func() []ConfigDef {
	out := []ConfigDef{
		{"background.threads", "10", ConfigTypeInt, IntCheck(1), "Threads for background work.", ""},
		{"log.cleaner.backoff.ms", "15000", ConfigTypeLong, LongCheck(0), "How long the log cleaner sleeps when there is nothing to clean, in milliseconds.", ""},
		{"log.cleaner.dedupe.buffer.size", "134217728", ConfigTypeLong, LongCheck(math.MinInt64), "Memory for deduplication across all log cleaner threads, in bytes.", ""},
		{"log.cleaner.io.buffer.load.factor", "0.9", ConfigTypeDouble, DoubleCheck, "How full the log cleaner's deduplication buffer may become.", ""},
		{"log.cleaner.io.buffer.size", "524288", ConfigTypeInt, IntCheck(0), "Memory for I/O buffers across all log cleaner threads, in bytes.", ""},
		{"log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", ConfigTypeDouble, DoubleCheck, "The log cleaner's read and write throughput limit, in bytes per second.", ""},
		{"log.cleaner.threads", "1", ConfigTypeInt, IntCheck(0), "Threads that compact logs.", ""},
		{"max.connection.creation.rate", "2147483647", ConfigTypeInt, IntCheck(0), "New connections a broker accepts per second.", ""},
		{"max.connections", "2147483647", ConfigTypeInt, IntCheck(0), "Connections a broker accepts in all.", ""},
		{"num.io.threads", "8", ConfigTypeInt, IntCheck(1), "Threads that process requests.", ""},
		{"num.network.threads", "3", ConfigTypeInt, IntCheck(1), "Threads that read requests from and write answers to the network.", ""},
		{"num.recovery.threads.per.data.dir", "1", ConfigTypeInt, IntCheck(1), "Threads per log directory that recover logs at start and flush them at shutdown.", ""},
		{"num.replica.fetchers", "1", ConfigTypeInt, IntCheck(1), "Threads per source broker that fetch for follower replicas.", ""},
	}
	for _, t := range topicConfigs {
		out = append(out, ConfigDef{
			Name: t.Synonym, Default: t.Default, Type: t.Type, Check: t.Check, Synonym: t.Name,
			Doc: "The brokers' default for the topic config " + t.Name + ": " + t.Doc,
		})
	}
	slices.SortFunc(out, func(a, b ConfigDef) int { return strings.Compare(a.Name, b.Name) })
	return out
}()

// Checks, with the reasons of Kafka's ConfigDef parsers and validators.

// LongCheck accepts a 64-bit integer of at least least.
func LongCheck(least int64) func(string) string { return integerCheck(64, "LONG", least) }

// IntCheck accepts a 32-bit integer of at least least.
func IntCheck(least int64) func(string) string { return integerCheck(32, "INT", least) }

func integerCheck(bits int, typeName string, least int64) func(string) string {
	return func(v string) string {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return "Not a number of type " + typeName
		}
		if n < least {
			return fmt.Sprintf("Value must be at least %d", least)
		}
		return ""
	}
}

// DoubleCheck accepts any number.
func DoubleCheck(v string) string {
	if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || math.IsNaN(f) {
		return "Not a number of type DOUBLE"
	}
	return ""
}

// RatioCheck accepts a number from 0 to 1.
func RatioCheck(v string) string {
	if reason := DoubleCheck(v); reason != "" {
		return reason
	}
	switch f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64); {
	case f < 0:
		return "Value must be at least 0"
	case f > 1:
		return "Value must be no more than 1"
	}
	return ""
}

// BoolCheck accepts true or false, in any case.
func BoolCheck(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "false":
		return ""
	}
	return "Expected value to be either true or false"
}

// OneOfCheck accepts one of the choices.
func OneOfCheck(choices ...string) func(string) string {
	return func(v string) string {
		if slices.Contains(choices, strings.TrimSpace(v)) {
			return ""
		}
		return "String must be one of: " + strings.Join(choices, ", ")
	}
}

// ListOfCheck is Kafka's ValidList: a comma-separated list of the choices. An empty list is refused:
// cleanup.policy must say how old data goes.
func ListOfCheck(choices ...string) func(string) string {
	return func(v string) string {
		v = strings.TrimSpace(v)
		if v == "" {
			return "The list must name at least one of: " + strings.Join(choices, ", ")
		}
		for _, item := range strings.Split(v, ",") {
			if !slices.Contains(choices, strings.TrimSpace(item)) {
				return "String must be one of: " + strings.Join(choices, ", ")
			}
		}
		return ""
	}
}

// Effective values.

// ConfigValue is one config of a resource as DescribeConfigs shows it: the value in effect, where it
// comes from, and every place that sets it, in order of precedence.
type ConfigValue struct {
	Name   string
	Value  string
	Source ConfigSource
	Type   ConfigType
	Doc    string
	// Synonyms lists the settings that apply, most specific first; the first is the one in effect and
	// the last is always the built-in default. Broker-level settings carry the broker config's name.
	Synonyms []ConfigSynonym
}

// ConfigSynonym is one setting that applies to a config.
type ConfigSynonym struct {
	Name   string
	Value  string
	Source ConfigSource
}

// Inherited is the value the config would take if the resource's own setting were deleted: the first
// synonym from another source than own.
func (v ConfigValue) Inherited(own ConfigSource) string {
	for _, s := range v.Synonyms {
		if s.Source != own {
			return s.Value
		}
	}
	return ""
}

// TopicConfigValue resolves a known config of a topic as node sees it: the topic's own setting, else
// node's own setting of the broker synonym, else the cluster-wide default of it, else the built-in
// default. A node below 0 skips the per-broker level (the controller deciding for the whole cluster).
// The topic need not exist.
func (img *Image) TopicConfigValue(topic string, node int32, name string) (ConfigValue, bool) {
	def, ok := TopicConfig(name)
	if !ok {
		return ConfigValue{}, false
	}
	v := ConfigValue{Name: name, Type: def.Type, Doc: def.Doc}
	if s, ok := img.Config(metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, topic, name); ok {
		v.Synonyms = append(v.Synonyms, ConfigSynonym{name, s, ConfigSourceTopic})
	}
	v.Synonyms = img.appendBrokerSynonyms(v.Synonyms, node, def.Synonym, def.Default)
	v.Value, v.Source = v.Synonyms[0].Value, v.Synonyms[0].Source
	return v, true
}

// BrokerConfigValue resolves a known dynamic broker config of one broker, or of the cluster-wide
// default when broker is ClusterDefaultBroker: the broker's own setting, else the cluster-wide one,
// else the built-in default. The broker need not be registered.
func (img *Image) BrokerConfigValue(broker string, name string) (ConfigValue, bool) {
	def, ok := BrokerConfig(name)
	if !ok {
		return ConfigValue{}, false
	}
	node := int32(-1)
	if broker != ClusterDefaultBroker {
		id, err := strconv.ParseInt(broker, 10, 32)
		if err != nil {
			return ConfigValue{}, false
		}
		node = int32(id)
	}
	v := ConfigValue{Name: name, Type: def.Type, Doc: def.Doc}
	v.Synonyms = img.appendBrokerSynonyms(nil, node, name, def.Default)
	v.Value, v.Source = v.Synonyms[0].Value, v.Synonyms[0].Source
	return v, true
}

func (img *Image) appendBrokerSynonyms(out []ConfigSynonym, node int32, name, def string) []ConfigSynonym {
	broker := metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER
	if node >= 0 {
		if s, ok := img.Config(broker, strconv.Itoa(int(node)), name); ok {
			out = append(out, ConfigSynonym{name, s, ConfigSourceBroker})
		}
	}
	if s, ok := img.Config(broker, ClusterDefaultBroker, name); ok {
		out = append(out, ConfigSynonym{name, s, ConfigSourceClusterDefault})
	}
	return append(out, ConfigSynonym{name, def, ConfigSourceDefault})
}

// DescribeConfigs.

// ConfigQuery is one resource of a DescribeConfigs request.
type ConfigQuery struct {
	Type metadatapb.ConfigResourceType // Kafka's resource type id, which need not be a stored type
	Name string
	// Keys are the configs asked for; none asks for all. A key this cluster does not know is left out
	// of the answer, as Kafka leaves it out.
	Keys []string
}

// ConfigRefusal says why a resource cannot be described. Each role turns it into a Kafka error code.
type ConfigRefusal int8

const (
	ConfigRefusalNone ConfigRefusal = iota
	// ConfigRefusalUnknownTopic is UNKNOWN_TOPIC_OR_PARTITION.
	ConfigRefusalUnknownTopic
	// ConfigRefusalInvalidRequest is INVALID_REQUEST.
	ConfigRefusalInvalidRequest
)

// ConfigAnswer answers one resource of a DescribeConfigs request: its configs, or a refusal with a
// message.
type ConfigAnswer struct {
	Refusal ConfigRefusal
	Message string
	Configs []ConfigValue
}

func refuse(r ConfigRefusal, format string, args ...any) ConfigAnswer {
	return ConfigAnswer{Refusal: r, Message: fmt.Sprintf(format, args...)}
}

// DescribeConfigs answers one resource of a DescribeConfigs request as node self does, with Kafka's
// rules:
//   - a topic lists every known topic config with its effective value (TopicConfigValue, with self's
//     per-broker settings);
//   - the cluster-wide broker default (BROKER "") lists only what is set there;
//   - BROKER self lists every known dynamic broker config with its effective value; another broker's
//     id is refused (a client asks each broker about itself), as is a name that is not an id;
//   - BROKER_LOGGER self lists nothing: this node has no log levels that can be changed at run time;
//   - other resource types are refused.
func (img *Image) DescribeConfigs(self int32, q ConfigQuery) ConfigAnswer {
	wanted := func(name string) bool { return len(q.Keys) == 0 || slices.Contains(q.Keys, name) }
	var out ConfigAnswer
	switch q.Type {
	case metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC:
		if _, ok := img.TopicByName(q.Name); !ok {
			return refuse(ConfigRefusalUnknownTopic, "The topic '%s' does not exist.", q.Name)
		}
		for _, d := range topicConfigs {
			if wanted(d.Name) {
				v, _ := img.TopicConfigValue(q.Name, self, d.Name)
				out.Configs = append(out.Configs, v)
			}
		}
	case metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER:
		if q.Name == ClusterDefaultBroker {
			for _, e := range img.Configs(metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER, ClusterDefaultBroker) {
				if !wanted(e.Name) {
					continue
				}
				// Kafka shows the cluster-wide level alone here: no per-broker or built-in synonyms.
				v := ConfigValue{Name: e.Name, Value: e.Value, Source: ConfigSourceClusterDefault,
					Synonyms: []ConfigSynonym{{e.Name, e.Value, ConfigSourceClusterDefault}}}
				if d, ok := BrokerConfig(e.Name); ok {
					v.Type, v.Doc = d.Type, d.Doc
				}
				out.Configs = append(out.Configs, v)
			}
			return out
		}
		if a, ok := checkSelf(self, q.Name, "Unexpected broker id, expected %d or empty string, but received %s"); !ok {
			return a
		}
		for _, d := range brokerConfigs {
			if wanted(d.Name) {
				v, _ := img.BrokerConfigValue(q.Name, d.Name)
				out.Configs = append(out.Configs, v)
			}
		}
	case ConfigResourceBrokerLogger:
		if q.Name == "" {
			return refuse(ConfigRefusalInvalidRequest, "Broker id must not be empty")
		}
		if a, ok := checkSelf(self, q.Name, "Unexpected broker id, expected %d but received %s"); !ok {
			return a
		}
	default:
		return refuse(ConfigRefusalInvalidRequest, "Unsupported resource type: %s (%d); this cluster keeps configs for topics (2) and brokers (4).",
			ConfigResourceTypeName(q.Type), q.Type)
	}
	return out
}

// checkSelf refuses a resource name that is not self's id; mismatch formats the refusal of another id.
func checkSelf(self int32, name, mismatch string) (ConfigAnswer, bool) {
	id, err := strconv.ParseInt(name, 10, 32)
	switch {
	case err != nil:
		return refuse(ConfigRefusalInvalidRequest, "Broker id must be an integer, but it is: %s", name), false
	case int32(id) != self:
		return refuse(ConfigRefusalInvalidRequest, mismatch, self, name), false
	}
	return ConfigAnswer{}, true
}
