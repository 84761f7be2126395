package config

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxMillis is the largest millisecond count that still fits a
// time.Duration; anything bigger would silently wrap negative.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// resolved gives validation access to the merged settings, falling back to
// key defaults.
type resolved struct {
	vals     map[string]value
	sections []int32 // node ids that have node.<id>.* keys, for hints
	nodeID   int32
	src      string // config file path, or "" when there is none
}

// inSrc is " in <file>" when a file was loaded, so messages about absent
// keys say where they were looked for.
func (r *resolved) inSrc() string {
	if r.src == "" {
		return ""
	}
	return " in " + r.src
}

// get returns the value of key, or its default (with no origin).
func (r *resolved) get(key string) value {
	if v, ok := r.vals[key]; ok {
		return v
	}
	return value{val: keySpecs[key].def}
}

// str returns the trimmed value of key.
func (r *resolved) str(key string) string { return strings.TrimSpace(r.get(key).val) }

// errf builds an Error for key.
func errf(key, format string, args ...any) error {
	return &Error{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// missing explains a required key that is unset. When the file has
// per-node sections but none for this node, that is almost certainly the
// real mistake (wrong --node-id), so the reason says so.
func (r *resolved) missing(key string) error {
	reason := fmt.Sprintf("not set%s; add %s=... to the config file or pass --override %s=...", r.inSrc(), key, key)
	if len(r.sections) > 0 && !slices.Contains(r.sections, r.nodeID) {
		reason = fmt.Sprintf("not set for node %d%s, which has node.<id>.* settings only for nodes %s; check --node-id",
			r.nodeID, r.inSrc(), joinIDs(r.sections))
	}
	return &Error{Key: key, Reason: reason}
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ", ")
}

// csv splits a comma-separated value, trimming entries and dropping empty
// ones, so a trailing comma is harmless (as in Kafka).
func csv(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// build parses and validates the merged settings. Checks run in a fixed
// order and the first failure is returned, so the operator fixes one thing at
// a time and the same file always yields the same message.
func build(vals map[string]value, sections []int32, src string) (*Config, error) {
	r := &resolved{vals: vals, sections: sections, nodeID: -1, src: src}
	c := &Config{}

	// node.id comes first: placeholders and hints depend on it.
	idv := r.get(KeyNodeID)
	idStr := strings.TrimSpace(idv.val)
	if idStr == "" {
		reason := fmt.Sprintf("not set%s; pass --node-id or set node.id", r.inSrc())
		if len(sections) > 0 {
			reason += fmt.Sprintf(" (node.<id>.* settings exist for nodes %s)", joinIDs(sections))
		}
		return nil, &Error{Key: KeyNodeID, Reason: reason}
	}
	id, err := strconv.ParseInt(idStr, 10, 32)
	if err != nil || id < 0 {
		return nil, errf(KeyNodeID, "%s is not a non-negative 32-bit integer", idv.describe())
	}
	c.NodeID = int32(id)
	r.nodeID = c.NodeID

	if err := expandPlaceholders(vals, c.NodeID); err != nil {
		return nil, err
	}

	steps := []func(*resolved, *Config) error{
		parseRoles,
		parseVoters,
		parseListenerKeys,
		parseSecurityProtocolMap,
		parseListenerNames,
		parseLogDir,
		parseNumbers,
		checkRoles,
		checkListenersForRoles,
	}
	for _, step := range steps {
		if err := step(r, c); err != nil {
			return nil, err
		}
	}
	c.Rack = r.str(KeyBrokerRack)
	return c, nil
}

func parseRoles(r *resolved, c *Config) error {
	v := r.get(KeyProcessRoles)
	roles := csv(v.val)
	if len(roles) == 0 {
		if _, set := r.vals[KeyProcessRoles]; set {
			return errf(KeyProcessRoles, "is empty (%s); set it to broker, controller or broker,controller", v.describe())
		}
		return r.missing(KeyProcessRoles)
	}
	for _, role := range roles {
		role = strings.ToLower(role)
		if role != roleBroker && role != roleController {
			return errf(KeyProcessRoles, "role %q in %s is not recognised; use broker, controller or both", role, v.describe())
		}
		if !slices.Contains(c.Roles, role) {
			c.Roles = append(c.Roles, role)
		}
	}
	return nil
}

func parseVoters(r *resolved, c *Config) error {
	v := r.get(KeyQuorumVoters)
	entries := csv(v.val)
	if len(entries) == 0 {
		return r.missing(KeyQuorumVoters)
	}
	for _, ent := range entries {
		idStr, hostPort, ok := strings.Cut(ent, "@")
		if !ok {
			return errf(KeyQuorumVoters, "entry %q is not id@host:port", ent)
		}
		id, err := strconv.ParseInt(strings.TrimSpace(idStr), 10, 32)
		if err != nil || id < 0 {
			return errf(KeyQuorumVoters, "entry %q: id %q is not a non-negative 32-bit integer", ent, idStr)
		}
		host, port, err := splitHostPort(hostPort, 1)
		if err != nil {
			return errf(KeyQuorumVoters, "entry %q: %v", ent, err)
		}
		if host == "" {
			return errf(KeyQuorumVoters, "entry %q has an empty host; other nodes must be able to dial it", ent)
		}
		voter := Voter{ID: int32(id), Host: host, Port: port}
		for _, prev := range c.Voters {
			if prev.ID == voter.ID {
				return errf(KeyQuorumVoters, "node id %d is listed twice (%q and %q); each voter needs its own id",
					voter.ID, voterString(prev), ent)
			}
			if prev.Addr() == voter.Addr() {
				return errf(KeyQuorumVoters, "voters %d and %d share the address %s; each needs its own host:port",
					prev.ID, voter.ID, voter.Addr())
			}
		}
		c.Voters = append(c.Voters, voter)
	}
	return nil
}

func voterString(v Voter) string { return fmt.Sprintf("%d@%s", v.ID, v.Addr()) }

func listenerString(l Listener) string { return l.Name + "://" + l.Addr() }

// splitHostPort parses host:port (IPv6 hosts bracketed) with a port in
// minPort..65535.
func splitHostPort(s string, minPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(strings.TrimSpace(s))
	if err != nil {
		return "", 0, fmt.Errorf("want host:port")
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < minPort || port > 65535 {
		return "", 0, fmt.Errorf("port %q must be a number from %d to 65535", portStr, minPort)
	}
	return host, port, nil
}

// parseListeners parses NAME://host:port,... Names are upper-cased, as Kafka
// normalises them, so "controller://" and CONTROLLER match.
func parseListeners(key string, v value, minPort int) ([]Listener, error) {
	var out []Listener
	for _, ent := range csv(v.val) {
		name, hostPort, ok := strings.Cut(ent, "://")
		if !ok {
			return nil, errf(key, "entry %q is not NAME://host:port", ent)
		}
		name = strings.ToUpper(strings.TrimSpace(name))
		if !validListenerName(name) {
			return nil, errf(key, "entry %q: listener name %q must be non-empty letters, digits, '_' or '-'", ent, name)
		}
		host, port, err := splitHostPort(hostPort, minPort)
		if err != nil {
			return nil, errf(key, "entry %q: %v", ent, err)
		}
		l := Listener{Name: name, Host: host, Port: port}
		for _, prev := range out {
			if prev.Name == l.Name {
				return nil, errf(key, "listener name %s is used twice (%q and %q); names must be unique",
					l.Name, listenerString(prev), ent)
			}
			if l.Port != 0 && prev.Addr() == l.Addr() {
				return nil, errf(key, "listeners %s and %s both use %s; each needs its own host:port",
					prev.Name, l.Name, l.Addr())
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func validListenerName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func parseListenerKeys(r *resolved, c *Config) error {
	var err error
	if c.Listeners, err = parseListeners(KeyListeners, r.get(KeyListeners), 0); err != nil {
		return err
	}
	if len(c.Listeners) == 0 {
		return r.missing(KeyListeners)
	}
	adv := r.get(KeyAdvertisedListeners)
	if strings.TrimSpace(adv.val) == "" {
		c.AdvertisedListeners = slices.Clone(c.Listeners)
		return nil
	}
	// Port 0 means "any free port" when binding; advertising it tells peers
	// nothing they can dial.
	if c.AdvertisedListeners, err = parseListeners(KeyAdvertisedListeners, adv, 1); err != nil {
		return err
	}
	for _, a := range c.AdvertisedListeners {
		if !slices.ContainsFunc(c.Listeners, func(l Listener) bool { return l.Name == a.Name }) {
			return errf(KeyAdvertisedListeners, "advertises listener %s, which is not in listeners; advertise only listeners this node binds", a.Name)
		}
	}
	return nil
}

func parseSecurityProtocolMap(r *resolved, c *Config) error {
	v := r.get(KeySecurityProtocolMap)
	c.SecurityProtocolMap = map[string]string{}
	for _, ent := range csv(v.val) {
		name, proto, ok := strings.Cut(ent, ":")
		name = strings.ToUpper(strings.TrimSpace(name))
		proto = strings.ToUpper(strings.TrimSpace(proto))
		if !ok || !validListenerName(name) || proto == "" {
			return errf(KeySecurityProtocolMap, "entry %q is not NAME:PROTOCOL", ent)
		}
		if proto != protocolPlaintext {
			return errf(KeySecurityProtocolMap, "entry %q: protocol %s is not supported; only PLAINTEXT is supported", ent, proto)
		}
		if _, dup := c.SecurityProtocolMap[name]; dup {
			return errf(KeySecurityProtocolMap, "listener %s is mapped twice (in %s)", name, v.describe())
		}
		c.SecurityProtocolMap[name] = proto
	}
	for _, l := range slices.Concat(c.Listeners, c.AdvertisedListeners) {
		if _, ok := c.SecurityProtocolMap[l.Name]; !ok {
			return errf(KeySecurityProtocolMap, "no protocol for listener %s (map is %s); add %s:PLAINTEXT",
				l.Name, v.describe(), l.Name)
		}
	}
	return nil
}

func parseListenerNames(r *resolved, c *Config) error {
	for _, n := range csv(r.get(KeyControllerListenerNames).val) {
		n = strings.ToUpper(n)
		if !validListenerName(n) {
			return errf(KeyControllerListenerNames, "listener name %q must be letters, digits, '_' or '-'", n)
		}
		if !slices.Contains(c.ControllerListenerNames, n) {
			c.ControllerListenerNames = append(c.ControllerListenerNames, n)
		}
	}
	// Brokers need it too: it tells them which listener of a controller
	// to dial.
	if len(c.ControllerListenerNames) == 0 {
		return errf(KeyControllerListenerNames, "is empty; name the controller listener, e.g. %s", defaultControllerListenerName)
	}
	c.InterBrokerListenerName = strings.ToUpper(r.str(KeyInterBrokerListenerName))
	if !validListenerName(c.InterBrokerListenerName) {
		return errf(KeyInterBrokerListenerName, "%s is not a listener name, e.g. %s",
			r.get(KeyInterBrokerListenerName).describe(), defaultInterBrokerListenerName)
	}
	return nil
}

func parseLogDir(r *resolved, c *Config) error {
	c.MetadataLogDir = r.str(KeyMetadataLogDir)
	if c.MetadataLogDir == "" {
		if dirs := csv(r.get(KeyLogDirs).val); len(dirs) > 0 {
			c.MetadataLogDir = dirs[0]
		}
	}
	if c.MetadataLogDir == "" {
		return errf(KeyMetadataLogDir, "neither metadata.log.dir nor log.dirs is set%s; the node needs a directory for its metadata log", r.inSrc())
	}
	return nil
}

// positive parses key as an integer in 1..max.
func (r *resolved) positive(key string, max int64, unit string) (int64, error) {
	v := r.get(key)
	n, err := strconv.ParseInt(strings.TrimSpace(v.val), 10, 64)
	if err != nil {
		return 0, errf(key, "%s is not a whole number of %s", v.describe(), unit)
	}
	if n <= 0 || n > max {
		return 0, errf(key, "%s is out of range; use 1 to %d %s", v.describe(), max, unit)
	}
	return n, nil
}

// minSegmentBytes keeps a WAL segment larger than any one batch of ours is likely to be.
const minSegmentBytes = 1 << 20

func parseNumbers(r *resolved, c *Config) error {
	durations := []struct {
		key string
		dst *time.Duration
	}{
		{KeyBrokerHeartbeatIntervalMs, &c.BrokerHeartbeatInterval},
		{KeyBrokerSessionTimeoutMs, &c.BrokerSessionTimeout},
		{KeyElectionTimeoutMs, &c.ElectionTimeout},
		{KeyFetchTimeoutMs, &c.FetchTimeout},
		{KeySnapshotIntervalMs, &c.SnapshotInterval},
		{KeyRetentionMs, &c.RetentionTime},
	}
	for _, d := range durations {
		ms, err := r.positive(d.key, maxMillis, "milliseconds")
		if err != nil {
			return err
		}
		*d.dst = time.Duration(ms) * time.Millisecond
	}
	sizes := []struct {
		key string
		dst *int64
	}{
		{KeySnapshotMaxBytes, &c.SnapshotMaxBytes},
		{KeyRetentionBytes, &c.RetentionBytes},
	}
	for _, s := range sizes {
		n, err := r.positive(s.key, math.MaxInt64, "bytes")
		if err != nil {
			return err
		}
		*s.dst = n
	}
	n, err := r.positive(KeySocketRequestMaxBytes, math.MaxInt32, "bytes")
	if err != nil {
		return err
	}
	c.SocketRequestMaxBytes = int32(n)
	if n, err = r.positive(KeyMaxPartitionsPerRequest, math.MaxInt32, "partitions"); err != nil {
		return err
	}
	c.MaxPartitionsPerRequest = int32(n)
	if c.SnapshotCatchUpEntries, err = r.positive(KeySnapshotCatchUpEntries, math.MaxInt32, "entries"); err != nil {
		return err
	}
	if c.SegmentBytes, err = r.positive(KeySegmentBytes, 1<<30, "bytes"); err != nil {
		return err
	}
	c.MetadataVersionSupportedMax = strings.TrimSpace(r.get(KeyMetadataVersionSupportedMax).val)
	if c.SegmentBytes < minSegmentBytes {
		return errf(KeySegmentBytes, "%s is below the minimum of %d bytes (1 MiB)", r.get(KeySegmentBytes).describe(), minSegmentBytes)
	}

	// A session that expires before the next heartbeat is due would fence
	// every healthy broker.
	if c.BrokerSessionTimeout <= c.BrokerHeartbeatInterval {
		return errf(KeyBrokerSessionTimeoutMs, "%s must be greater than %s=%d",
			r.get(KeyBrokerSessionTimeoutMs).describe(), KeyBrokerHeartbeatIntervalMs, c.BrokerHeartbeatInterval.Milliseconds())
	}
	return nil
}

func (c *Config) voter(id int32) (Voter, bool) {
	for _, v := range c.Voters {
		if v.ID == id {
			return v, true
		}
	}
	return Voter{}, false
}

// checkRoles ties process.roles to the voter set, as Kafka does: every
// controller votes, and nothing else may.
func checkRoles(r *resolved, c *Config) error {
	roles := strings.Join(c.Roles, ",")
	v, isVoter := c.voter(c.NodeID)
	switch {
	case c.IsController() && !isVoter:
		return errf(KeyQuorumVoters, "node %d has process.roles=%s but is not listed in controller.quorum.voters; add %d@host:port",
			c.NodeID, roles, c.NodeID)
	case !c.IsController() && isVoter:
		return errf(KeyQuorumVoters, "node %d has process.roles=%s but is listed in controller.quorum.voters as %s; only controllers may be voters, so add controller to process.roles or remove the entry",
			c.NodeID, roles, voterString(v))
	}
	return nil
}

// checkListenersForRoles makes sure the node listens where the rest of the
// cluster will try to reach it.
func checkListenersForRoles(r *resolved, c *Config) error {
	names := strings.Join(c.ControllerListenerNames, ",")
	if c.IsController() {
		l, ok := c.ControllerListener()
		if !ok {
			return errf(KeyListeners, "node %d is a controller but none of its listeners %s is named in controller.listener.names=%s; add e.g. %s://host:port",
				c.NodeID, r.get(KeyListeners).describe(), names, c.ControllerListenerNames[0])
		}
		// Peers dial the voter entry, so a different port means the quorum
		// can never reach this node. Hosts are not compared: binding 0.0.0.0
		// while voters name a hostname is normal.
		v, _ := c.voter(c.NodeID)
		if l.Port != v.Port {
			return errf(KeyListeners, "controller listener %s has port %d but this node's controller.quorum.voters entry %s has port %d; make them agree",
				listenerString(l), l.Port, voterString(v), v.Port)
		}
	} else {
		// Kafka's rule: a broker-only node must not serve the controller
		// listener, or clients would take it for a controller.
		for _, l := range c.Listeners {
			if c.isControllerListenerName(l.Name) {
				return errf(KeyListeners, "node %d has process.roles=broker but listens on controller listener %s (controller.listener.names=%s); remove it or use a broker listener name",
					c.NodeID, listenerString(l), names)
			}
		}
	}
	if c.IsBroker() {
		ib := c.InterBrokerListenerName
		if c.isControllerListenerName(ib) {
			return errf(KeyInterBrokerListenerName, "%s is also a controller listener name; brokers must talk to each other on a broker listener", ib)
		}
		if !slices.ContainsFunc(c.AdvertisedListeners, func(l Listener) bool { return l.Name == ib }) {
			return errf(KeyInterBrokerListenerName, "%s is not among this broker's advertised listeners; add e.g. %s://host:port to listeners", ib, ib)
		}
	}
	return nil
}

// suggestion returns ` (did you mean "X"?)` for the known key nearest to
// key, or "" when nothing is close enough to be a plausible typo. prefix is
// prepended to the suggestion, for node.<id>.<key> keys.
func suggestion(key, prefix string) string {
	best, bestDist := "", math.MaxInt
	for _, k := range KnownKeys() {
		if k == KeyNodeID && prefix != "" {
			continue
		}
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	// Up to two edits, or a quarter of the key for long keys: enough for
	// typos and singular/plural slips, without suggesting unrelated keys.
	if best == "" || bestDist > max(2, len(best)/4) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", prefix+best)
}

// editDistance is the Levenshtein distance between a and b, over bytes
// (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
