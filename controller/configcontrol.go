package controller

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// configControl is the config manager, Kafka's ConfigurationControlManager together with the checks
// Kafka's brokers make before they forward: it decides IncrementalAlterConfigs requests. It is pure:
// (image, request) in, (records, per-resource answers) out, with Kafka's error codes and, where Kafka
// has one, its message. The configs it knows, with their checks, are metadatalog's.
//
// A request is one batch: every resource that passes goes into it, every resource that fails is
// answered with its error and writes nothing, whatever its position in the request.
type configControl struct {
	// controllers are the controllers' node ids. Like a registered broker's id, each may hold BROKER
	// configs (Kafka lets an operator set a controller's dynamic configs).
	controllers []int32
}

// configResource is one resource of an IncrementalAlterConfigs request.
type configResource struct {
	typ     metadatapb.ConfigResourceType // Kafka's resource type id, which need not be a stored type
	name    string
	changes []configChange
}

// configChange is one config operation on a resource.
type configChange struct {
	name  string
	op    kmsg.IncrementalAlterConfigOp
	value *string
}

// configOutcome is the answer for one resource.
type configOutcome struct {
	code *kerr.Error
	msg  string
}

func (o *configOutcome) fail(code *kerr.Error, format string, args ...any) {
	o.code, o.msg = code, fmt.Sprintf(format, args...)
}

const (
	topicResource  = metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC
	brokerResource = metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER
)

// incrementalAlterConfigs decides an IncrementalAlterConfigs request, resource by resource in request
// order. Within a resource the operations apply in request order and the first that fails refuses the
// whole resource. Only changes write: setting a config to the value it holds, or deleting one that is
// not set, writes nothing for it.
func (cc configControl) incrementalAlterConfigs(img *metadatalog.Image, resources []configResource) ([]*metadatapb.Record, []configOutcome) {
	type key struct {
		typ  metadatapb.ConfigResourceType
		name string
	}
	times := make(map[key]int, len(resources))
	for _, r := range resources {
		times[key{r.typ, r.name}]++
	}
	out := make([]configOutcome, len(resources))
	var records []*metadatapb.Record
	for i, r := range resources {
		if times[key{r.typ, r.name}] > 1 {
			// Every copy, as Kafka's brokers answer, so that nothing depends on which copy came first.
			out[i].fail(kerr.InvalidRequest, "Each resource must appear at most once.")
			continue
		}
		var recs []*metadatapb.Record
		recs, out[i] = cc.alterResource(img, r)
		records = append(records, recs...)
	}
	return records, out
}

// alterResource decides one resource: its records, or why it writes nothing.
func (cc configControl) alterResource(img *metadatalog.Image, r configResource) ([]*metadatapb.Record, configOutcome) {
	var o configOutcome
	seen := make(map[string]bool, len(r.changes))
	var nulls []string
	for _, ch := range r.changes {
		if seen[ch.name] {
			o.fail(kerr.InvalidRequest, "Error due to duplicate config keys")
			return nil, o
		}
		seen[ch.name] = true
		if ch.op != kmsg.IncrementalAlterConfigOpDelete && ch.value == nil {
			nulls = append(nulls, ch.name)
		}
	}
	if len(nulls) > 0 {
		o.fail(kerr.InvalidRequest, "Null value not supported for : %s", strings.Join(nulls, ", "))
		return nil, o
	}
	for _, ch := range r.changes {
		if ch.op < kmsg.IncrementalAlterConfigOpSet || ch.op > kmsg.IncrementalAlterConfigOpSubtract {
			o.fail(kerr.InvalidRequest, "Unknown operations type %d", int8(ch.op))
			return nil, o
		}
	}

	var target resolvedResource
	switch r.typ {
	case topicResource:
		target, o = cc.topicTarget(img, r.name)
	case brokerResource:
		target, o = cc.brokerTarget(img, r.name)
	case metadatalog.ConfigResourceBrokerLogger:
		return nil, brokerLoggerOutcome(r)
	case 16, 32: // CLIENT_METRICS, GROUP
		o.fail(kerr.InvalidRequest, "Unsupported resource type %s (%d): this cluster keeps configs for topics (2) and brokers (4).",
			metadatalog.ConfigResourceTypeName(r.typ), int32(r.typ))
	default:
		// Kafka's controller answers a type it cannot name so.
		o.fail(kerr.UnsupportedVersion, "Unknown resource type %d.", int32(r.typ))
	}
	if o.code != nil {
		return nil, o
	}

	var records []*metadatapb.Record
	pending := make(map[string]*string, len(r.changes))
	for _, ch := range r.changes {
		def, ok := target.def(ch.name)
		if !ok {
			o.fail(kerr.InvalidConfig, "%s", target.unknown(ch.name))
			return nil, o
		}
		current := target.value(ch.name)
		var next *string
		switch ch.op {
		case kmsg.IncrementalAlterConfigOpSet:
			next = ch.value
		case kmsg.IncrementalAlterConfigOpDelete:
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if def.Type != metadatalog.ConfigTypeList {
				o.fail(kerr.InvalidConfig, "Can't %s to key %s because its type is not LIST.", opName(ch.op), ch.name)
				return nil, o
			}
			list := alterList(current.Value, *ch.value, ch.op == kmsg.IncrementalAlterConfigOpAppend)
			next = &list
		}
		if next != nil {
			if msg := def.Invalid(*next); msg != "" {
				o.fail(kerr.InvalidConfig, "%s", msg)
				return nil, o
			}
		}
		pending[ch.name] = next
		stored, set := img.Config(r.typ, target.name, ch.name)
		if (next == nil && !set) || (next != nil && set && stored == *next) {
			continue
		}
		records = append(records, &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{
			ResourceType: r.typ, ResourceName: target.name, Name: ch.name, Value: next}}})
	}
	if r.typ == topicResource {
		if msg := compactionLagConflict(target, pending); msg != "" {
			o.fail(kerr.InvalidConfig, "%s", msg)
			return nil, o
		}
	}
	return records, o
}

// resolvedResource is a TOPIC or BROKER resource that exists and may hold configs.
type resolvedResource struct {
	// name is the resource name the records carry: a broker id in its plain decimal form.
	name string
	// own is the source of the resource's own settings.
	own     metadatalog.ConfigSource
	def     func(name string) (metadatalog.ConfigDef, bool)
	unknown func(name string) string
	// value is a config's effective value before this request: the resource's own setting, else what
	// it inherits. APPEND and SUBTRACT work on it, so they extend what DescribeConfigs shows.
	value func(name string) metadatalog.ConfigValue
}

func (cc configControl) topicTarget(img *metadatalog.Image, topic string) (resolvedResource, configOutcome) {
	var o configOutcome
	if topic == "" {
		o.fail(kerr.InvalidRequest, "Default topic resources are not allowed.")
		return resolvedResource{}, o
	}
	if reason := invalidTopicName(topic); reason != "" {
		o.fail(kerr.InvalidTopicException, "Topic name is invalid: %s", reason)
		return resolvedResource{}, o
	}
	if _, ok := img.TopicByName(topic); !ok {
		o.fail(kerr.UnknownTopicOrPartition, "The topic '%s' does not exist.", topic)
		return resolvedResource{}, o
	}
	return resolvedResource{
		name: topic, own: metadatalog.ConfigSourceTopic, def: metadatalog.TopicConfig,
		unknown: func(name string) string { return "Unknown topic config name: " + name },
		value: func(name string) metadatalog.ConfigValue {
			// The cluster's view, not one broker's: no per-broker level.
			v, _ := img.TopicConfigValue(topic, -1, name)
			return v
		},
	}, o
}

func (cc configControl) brokerTarget(img *metadatalog.Image, broker string) (resolvedResource, configOutcome) {
	var o configOutcome
	name, own := metadatalog.ClusterDefaultBroker, metadatalog.ConfigSourceClusterDefault
	if broker != metadatalog.ClusterDefaultBroker {
		id, err := strconv.ParseInt(broker, 10, 32)
		switch {
		case err != nil:
			o.fail(kerr.InvalidRequest, "Unable to parse broker name as a base 10 number.")
			return resolvedResource{}, o
		case id < 0:
			o.fail(kerr.InvalidRequest, "Invalid negative broker ID.")
			return resolvedResource{}, o
		}
		if _, registered := img.Broker(int32(id)); !registered && !slices.Contains(cc.controllers, int32(id)) {
			o.fail(kerr.BrokerIDNotRegistered, "No node with id %d found.", id)
			return resolvedResource{}, o
		}
		name, own = strconv.FormatInt(id, 10), metadatalog.ConfigSourceBroker
	}
	return resolvedResource{
		name: name, own: own, def: metadatalog.BrokerConfig,
		unknown: func(key string) string {
			return fmt.Sprintf("Unknown broker config name: %s (describe a broker's configs for the dynamic ones this cluster knows)", key)
		},
		value: func(key string) metadatalog.ConfigValue {
			v, _ := img.BrokerConfigValue(name, key)
			return v
		},
	}, o
}

// brokerLoggerOutcome answers a BROKER_LOGGER resource (Kafka's run-time log levels) as Kafka does for
// a logger that does not exist, which every logger is here: this cluster's nodes log through log/slog,
// at levels set when they start. The node id is not compared with this controller's: a broker
// forwards the resource unchanged.
func brokerLoggerOutcome(r configResource) configOutcome {
	var o configOutcome
	if _, err := strconv.ParseInt(r.name, 10, 32); err != nil {
		o.fail(kerr.InvalidRequest, "Node id must be an integer, but it is: %s", r.name)
		return o
	}
	for _, ch := range r.changes {
		switch ch.op {
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			o.fail(kerr.InvalidRequest, "%s operation is not allowed for the BROKER_LOGGER resource", opName(ch.op))
		default:
			o.fail(kerr.InvalidConfig, "Logger %s does not exist! This cluster's log levels are set when a node starts and cannot be changed over the Kafka protocol.", ch.name)
		}
		return o
	}
	return o
}

func opName(op kmsg.IncrementalAlterConfigOp) string {
	switch op {
	case kmsg.IncrementalAlterConfigOpSet:
		return "SET"
	case kmsg.IncrementalAlterConfigOpDelete:
		return "DELETE"
	case kmsg.IncrementalAlterConfigOpAppend:
		return "APPEND"
	}
	return "SUBTRACT"
}

// alterList appends the items of change to the list current that it lacks, or (subtract) removes
// them from it. Items are compared without surrounding spaces, as Kafka parses a list, and empty
// items are dropped.
func alterList(current, change string, add bool) string {
	items := listItems(current)
	for _, item := range listItems(change) {
		switch {
		case add && !slices.Contains(items, item):
			items = append(items, item)
		case !add:
			items = slices.DeleteFunc(items, func(s string) bool { return s == item })
		}
	}
	return strings.Join(items, ",")
}

func listItems(list string) []string {
	var out []string
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// compactionLagConflict is the check Kafka's LogConfig makes across two topic configs: a topic's
// minimum compaction lag may not exceed its maximum. It is made only when the request changes one of
// them, so a conflict that a later cluster-wide default creates does not block unrelated changes.
func compactionLagConflict(target resolvedResource, pending map[string]*string) string {
	const minLag, maxLag = "min.compaction.lag.ms", "max.compaction.lag.ms"
	_, minChanged := pending[minLag]
	_, maxChanged := pending[maxLag]
	if !minChanged && !maxChanged {
		return ""
	}
	effective := func(name string) int64 {
		v := target.value(name)
		s := v.Value
		if next, ok := pending[name]; ok {
			if next != nil {
				s = *next
			} else if v.Source == target.own {
				s = v.Inherited(target.own)
			}
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64) // every value in play passed its check
		return n
	}
	if lo, hi := effective(minLag), effective(maxLag); lo > hi {
		return fmt.Sprintf("conflict topic config setting %s (%d) > %s (%d)", minLag, lo, maxLag, hi)
	}
	return ""
}
