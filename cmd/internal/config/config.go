// Package config turns a node's configuration file, environment and
// command-line overrides into one validated Config.
//
// It exists so that every other part of the node can trust its settings: all
// the parsing, defaulting and cross-checking (is this controller really a
// voter? does its listener port match its voter entry?) happens here, once,
// before anything binds a socket or touches the metadata log. A mistake is
// reported as a single-line *Error that names the offending key, so an
// operator can fix the file without reading a stack trace.
//
// Key names and defaults follow Apache Kafka's KRaft settings, so existing
// server.properties habits carry over. One file may describe a whole cluster:
// keys written as node.<id>.<key> apply only to the node selected with
// --node-id (or by the file's own node.id), and ${node.id} in any value is
// replaced by the selected id.
package config

import (
	"net"
	"slices"
	"strconv"
	"time"
)

// Kafka key names. They are constants so that callers and tests refer to
// keys without retyping strings that must match the file format exactly.
const (
	KeyProcessRoles              = "process.roles"
	KeyNodeID                    = "node.id"
	KeyQuorumVoters              = "controller.quorum.voters"
	KeyListeners                 = "listeners"
	KeyAdvertisedListeners       = "advertised.listeners"
	KeySecurityProtocolMap       = "listener.security.protocol.map"
	KeyControllerListenerNames   = "controller.listener.names"
	KeyInterBrokerListenerName   = "inter.broker.listener.name"
	KeyMetadataLogDir            = "metadata.log.dir"
	KeyLogDirs                   = "log.dirs"
	KeyBrokerHeartbeatIntervalMs = "broker.heartbeat.interval.ms"
	KeyBrokerSessionTimeoutMs    = "broker.session.timeout.ms"
	KeyElectionTimeoutMs         = "controller.quorum.election.timeout.ms"
	KeyFetchTimeoutMs            = "controller.quorum.fetch.timeout.ms"
	KeySnapshotMaxBytes          = "metadata.log.max.record.bytes.between.snapshots"
	KeySnapshotIntervalMs        = "metadata.log.max.snapshot.interval.ms"
	KeyRetentionBytes            = "metadata.max.retention.bytes"
	KeyRetentionMs               = "metadata.max.retention.ms"
	KeySocketRequestMaxBytes     = "socket.request.max.bytes"
	KeyBrokerRack                = "broker.rack"
	// KeyMaxPartitionsPerRequest is ours: Kafka has no such setting (its controller bounds a batch at
	// 10,000 records and refuses the rest). It bounds the partitions one CreateTopics or
	// CreatePartitions request may create, so one request cannot grow the image without limit.
	KeyMaxPartitionsPerRequest = "max.partitions.per.request"
	// KeySnapshotCatchUpEntries is ours (etcd's snapshot-catchup-entries): how many entries before a
	// snapshot a controller keeps in its log, so a follower a little behind catches up from the log.
	KeySnapshotCatchUpEntries = "metadata.log.snapshot.catchup.entries"
	// KeySegmentBytes is Kafka's key for the size of one log segment. Ours is etcd's WAL segment,
	// preallocated, so the default is 64 MiB, not Kafka's 1 GiB; the log is released in whole segments.
	KeySegmentBytes = "metadata.log.segment.bytes"
	// KeyMetadataVersionSupportedMax is ours: the newest metadata.version this node supports (a name
	// such as 1.0-IV1 or a level), so a node can act like older software to rehearse a rolling upgrade.
	KeyMetadataVersionSupportedMax = "metadata.version.supported.max"
)

const (
	nodeScopePrefix                = "node." // node.<id>.<key>
	nodeIDPlaceholder              = "${node.id}"
	envPrefix                      = "KRAFT_"
	protocolPlaintext              = "PLAINTEXT"
	roleBroker                     = "broker"
	roleController                 = "controller"
	defaultControllerListenerName  = "CONTROLLER"
	defaultInterBrokerListenerName = "PLAINTEXT"
)

// keySpec describes one known key. required keys have no default: the node
// cannot guess an identity or an address, so their absence is an error rather
// than a silent fallback.
type keySpec struct {
	def      string
	required bool
}

// keySpecs is the single list of accepted keys; anything else is rejected so a
// typo cannot silently leave a setting at its default.
var keySpecs = map[string]keySpec{
	KeyProcessRoles:              {required: true},
	KeyNodeID:                    {required: true},
	KeyQuorumVoters:              {required: true},
	KeyListeners:                 {required: true},
	KeyAdvertisedListeners:       {},
	KeySecurityProtocolMap:       {def: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"},
	KeyControllerListenerNames:   {def: defaultControllerListenerName},
	KeyInterBrokerListenerName:   {def: defaultInterBrokerListenerName},
	KeyMetadataLogDir:            {},
	KeyLogDirs:                   {},
	KeyBrokerHeartbeatIntervalMs: {def: "2000"},
	KeyBrokerSessionTimeoutMs:    {def: "9000"},
	KeyElectionTimeoutMs:         {def: "1000"},
	KeyFetchTimeoutMs:            {def: "2000"},
	KeySnapshotMaxBytes:          {def: "20971520"},
	KeySnapshotIntervalMs:        {def: "3600000"},
	KeyRetentionBytes:            {def: "104857600"},
	KeyRetentionMs:               {def: "604800000"},
	KeySocketRequestMaxBytes:     {def: "104857600"},
	KeyBrokerRack:                {},
	KeyMaxPartitionsPerRequest:   {def: "100000"},
	KeySnapshotCatchUpEntries:    {def: "5000"},
	KeySegmentBytes:              {def: "67108864"},
	// Empty: the latest level this software knows.
	KeyMetadataVersionSupportedMax: {},
}

// KnownKeys returns every accepted key, sorted. The slice is a fresh copy.
func KnownKeys() []string {
	keys := make([]string, 0, len(keySpecs))
	for k := range keySpecs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Voter is one entry of controller.quorum.voters.
type Voter struct {
	ID   int32
	Host string
	Port int
}

// Addr returns host:port, bracketing IPv6 hosts so the result dials.
func (v Voter) Addr() string { return net.JoinHostPort(v.Host, strconv.Itoa(v.Port)) }

// Listener is one entry of listeners or advertised.listeners. Name is
// upper-cased, as Kafka normalises listener names. Host may be empty, meaning
// all interfaces; Port may be 0 (listeners only), meaning any free port.
type Listener struct {
	Name string
	Host string
	Port int
}

// Addr returns host:port, bracketing IPv6 hosts so the result can be passed
// to net.Listen or net.Dial.
func (l Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// Config is a fully parsed and validated node configuration.
type Config struct {
	NodeID int32
	// Roles is a subset of "broker", "controller", in file order, deduplicated.
	Roles  []string
	Voters []Voter
	// AdvertisedListeners equals Listeners when advertised.listeners is unset.
	Listeners, AdvertisedListeners []Listener
	// SecurityProtocolMap maps upper-cased listener name to protocol.
	SecurityProtocolMap     map[string]string
	ControllerListenerNames []string
	InterBrokerListenerName string
	// MetadataLogDir is metadata.log.dir, or the first of log.dirs.
	MetadataLogDir                                string
	Rack                                          string
	BrokerHeartbeatInterval, BrokerSessionTimeout time.Duration
	ElectionTimeout, FetchTimeout                 time.Duration
	SnapshotMaxBytes                              int64
	SnapshotInterval                              time.Duration
	RetentionBytes                                int64
	RetentionTime                                 time.Duration
	SocketRequestMaxBytes                         int32
	MaxPartitionsPerRequest                       int32
	SnapshotCatchUpEntries                        int64
	SegmentBytes                                  int64
	// MetadataVersionSupportedMax is metadata.version.supported.max as written (a name or a level);
	// empty for the latest. kraftd resolves it against the version table.
	MetadataVersionSupportedMax string
}

// IsController reports whether process.roles includes controller.
func (c *Config) IsController() bool { return slices.Contains(c.Roles, roleController) }

// IsBroker reports whether process.roles includes broker.
func (c *Config) IsBroker() bool { return slices.Contains(c.Roles, roleBroker) }

// isControllerListenerName reports whether name is one of
// controller.listener.names.
func (c *Config) isControllerListenerName(name string) bool {
	return slices.Contains(c.ControllerListenerNames, name)
}

// ControllerListener returns this node's listener for the controller quorum:
// the listener named by the first entry of controller.listener.names that
// this node actually listens on (Kafka gives the first name priority).
func (c *Config) ControllerListener() (Listener, bool) {
	for _, name := range c.ControllerListenerNames {
		for _, l := range c.Listeners {
			if l.Name == name {
				return l, true
			}
		}
	}
	return Listener{}, false
}

// BrokerListeners returns the listeners not named in
// controller.listener.names, in file order.
func (c *Config) BrokerListeners() []Listener {
	var out []Listener
	for _, l := range c.Listeners {
		if !c.isControllerListenerName(l.Name) {
			out = append(out, l)
		}
	}
	return out
}

// Error is a configuration error: one line naming the key and the reason.
// Callers print it and exit 2.
type Error struct {
	Key, Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return "invalid config " + e.Key + ": " + e.Reason
}
