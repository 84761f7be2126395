package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/viper"
)

// entry is one key=value as written, with where it was written, so that an
// error can send the operator to the exact line, variable or flag.
type entry struct {
	key, val, origin string
}

// value is a resolved setting. origin is empty for defaults and for maps
// passed to FromProperties, where there is nothing useful to point at.
type value struct {
	val, origin string
}

// describe quotes a value together with its origin, for error reasons.
func (v value) describe() string {
	if v.origin == "" {
		return strconv.Quote(v.val)
	}
	return strconv.Quote(v.val) + " from " + v.origin
}

// Load reads a .properties (or .yaml/.yml, by extension) file and returns the
// validated configuration of one node. nodeID < 0 means "not given on the
// command line".
//
// Precedence, lowest first: the file's plain keys, the file's
// node.<id>.<key> keys for the selected node, KRAFT_* environment variables,
// overrides (plain, then node-scoped), and finally nodeID itself, which sets
// node.id. The selected node is nodeID if >= 0, else the node.id resolved
// from overrides, environment and file. After that, ${node.id} is expanded in
// every value and the result is parsed and validated.
func Load(path string, nodeID int32, overrides []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Reason: "cannot read config file: " + oneLine(err.Error())}
	}
	var entries []entry
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		entries, err = parseYAML(data, path)
	default:
		entries, err = parseProperties(data, path)
	}
	if err != nil {
		return nil, err
	}
	return load(entries, nodeID, overrides, path)
}

// FromProperties is Load for an in-memory set of properties, such as
// EmbeddedDefault or a test fixture. Environment variables and overrides
// apply exactly as they do for a file.
func FromProperties(props map[string]string, nodeID int32, overrides []string) (*Config, error) {
	// Map order is random; sorting keeps "first error wins" deterministic.
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	entries := make([]entry, 0, len(keys))
	for _, k := range keys {
		entries = append(entries, entry{key: k, val: props[k]})
	}
	return load(entries, nodeID, overrides, "")
}

// EmbeddedDefault is the configuration of a node started with no flags: one combined node (broker
// and controller) that is its own one-member quorum, with the broker where every Kafka client looks
// first (127.0.0.1:9092) and the controller beside it (127.0.0.1:9093), listening on loopback only so
// that an accidental start exposes nothing. It returns a fresh map, so callers may add to it.
func EmbeddedDefault() map[string]string {
	return map[string]string{
		KeyProcessRoles:   roleBroker + "," + roleController,
		KeyNodeID:         "1",
		KeyQuorumVoters:   "1@127.0.0.1:9093",
		KeyListeners:      "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
		KeyMetadataLogDir: "./kraft-data",
	}
}

// envName is the environment variable that sets key: KRAFT_ plus the key
// upper-cased with dots turned into underscores (node.id -> KRAFT_NODE_ID).
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// load is the pipeline shared by Load and FromProperties. src is the file
// path, or "" for in-memory properties.
func load(fileEntries []entry, nodeID int32, overrides []string, src string) (*Config, error) {
	// Every key is checked, including node-scoped keys of other nodes: a typo
	// in node 3's section should be caught when node 1 starts, not when node
	// 3 does.
	for _, e := range fileEntries {
		if err := checkKey(e.key, e.origin); err != nil {
			return nil, err
		}
	}
	overrideEntries, err := parseOverrides(overrides)
	if err != nil {
		return nil, err
	}

	// Only known plain keys are looked up: the environment is shared with
	// other programs, so unrelated KRAFT_* variables are not our business.
	// Empty variables are treated as unset (as viper does by default), since
	// "export KRAFT_X=" is more often an accident than an intent.
	var envEntries []entry
	for _, k := range KnownKeys() {
		name := envName(k)
		if v, ok := os.LookupEnv(name); ok && v != "" {
			envEntries = append(envEntries, entry{key: k, val: v, origin: "$" + name})
		}
	}

	layers := [][]entry{fileEntries, envEntries, overrideEntries}
	selected := nodeID
	if selected < 0 {
		selected = selectedNode(layers)
	}

	vals := map[string]value{}
	var sections []int32
	for _, layer := range layers {
		plain, scoped := map[string]value{}, map[string]value{}
		for _, e := range layer {
			id, inner, ok := nodeScope(e.key)
			if !ok {
				plain[e.key] = value{e.val, e.origin}
				continue
			}
			if !slices.Contains(sections, id) {
				sections = append(sections, id)
			}
			if id == selected {
				scoped[inner] = value{e.val, e.origin}
			}
		}
		// Within a layer the node-specific setting is the more specific one,
		// so it wins over the same layer's plain key.
		for k, v := range plain {
			vals[k] = v
		}
		for k, v := range scoped {
			vals[k] = v
		}
	}
	if nodeID >= 0 {
		vals[KeyNodeID] = value{strconv.Itoa(int(nodeID)), "--node-id"}
	}
	slices.Sort(sections)
	return build(vals, sections, src)
}

// selectedNode returns the node.id with the highest precedence among the
// layers, or -1 if it is absent or unparsable (validation reports that).
// Overrides and environment count, not just the file, so that
// --override node.id=2 selects node 2's section as one would expect.
func selectedNode(layers [][]entry) int32 {
	raw := ""
	for _, layer := range layers {
		for _, e := range layer {
			if e.key == KeyNodeID {
				raw = e.val
			}
		}
	}
	id, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
	if err != nil || id < 0 {
		return -1
	}
	return int32(id)
}

// nodeScope splits node.<id>.<key> into id and key. ok is false for
// anything else, including node.id itself and ids that are not
// non-negative int32s (those then fail as unknown keys).
func nodeScope(key string) (id int32, inner string, ok bool) {
	rest, found := strings.CutPrefix(key, nodeScopePrefix)
	if !found {
		return 0, "", false
	}
	idStr, inner, found := strings.Cut(rest, ".")
	if !found || idStr == "" || strings.TrimLeft(idStr, "0123456789") != "" {
		return 0, "", false
	}
	n, err := strconv.ParseInt(idStr, 10, 32)
	if err != nil {
		return 0, "", false
	}
	return int32(n), inner, true
}

// checkKey rejects keys that are neither known nor node.<id>.<known>.
func checkKey(key, origin string) error {
	if _, ok := keySpecs[key]; ok {
		return nil
	}
	at := ""
	if origin != "" {
		at = " at " + origin
	}
	if id, inner, ok := nodeScope(key); ok {
		if inner == KeyNodeID {
			// The id selects the section, so a per-node node.id could only
			// contradict it.
			return &Error{Key: key, Reason: fmt.Sprintf("node.id cannot be set per node%s; select the node with --node-id or a plain node.id", at)}
		}
		if _, known := keySpecs[inner]; known {
			return nil
		}
		prefix := fmt.Sprintf("%s%d.", nodeScopePrefix, id)
		return &Error{Key: key, Reason: fmt.Sprintf("unknown key %q%s%s", key, at, suggestion(inner, prefix))}
	}
	return &Error{Key: key, Reason: fmt.Sprintf("unknown key %q%s%s", key, at, suggestion(key, ""))}
}

// parseOverrides turns --override "key=value" strings into entries. They go
// through the same key check as the file, so a typo in a flag is caught too.
func parseOverrides(overrides []string) ([]entry, error) {
	var out []entry
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, &Error{Reason: fmt.Sprintf("malformed --override %q: want key=value, e.g. --override node.id=2", o)}
		}
		origin := fmt.Sprintf("--override %q", o)
		if err := checkKey(k, origin); err != nil {
			return nil, err
		}
		out = append(out, entry{key: k, val: strings.TrimSpace(v), origin: origin})
	}
	return out, nil
}

// expandPlaceholders replaces ${node.id} in every value. Any other ${...} is
// an error rather than being left alone, because a literal "${broker.rack}"
// reaching a listener address or directory name would fail much later and
// far less clearly.
func expandPlaceholders(vals map[string]value, id int32) error {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	idStr := strconv.Itoa(int(id))
	for _, k := range keys {
		v := vals[k]
		s := v.val
		var b strings.Builder
		for {
			i := strings.Index(s, "${")
			if i < 0 {
				b.WriteString(s)
				break
			}
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return &Error{Key: k, Reason: fmt.Sprintf("unterminated placeholder in %s; only ${node.id} is supported", v.describe())}
			}
			if ph := s[i : i+j+1]; ph != nodeIDPlaceholder {
				return &Error{Key: k, Reason: fmt.Sprintf("unsupported placeholder %s in %s; only ${node.id} is expanded", ph, v.describe())}
			}
			b.WriteString(s[:i])
			b.WriteString(idStr)
			s = s[i+j+1:]
		}
		v.val = b.String()
		vals[k] = v
	}
	return nil
}

// parseProperties implements the parts of java.util.Properties.load that
// Kafka configuration files use: key=value, key: value and "key value";
// # and ! comments; line continuation with a trailing backslash; and the
// escapes \t \n \r \f \uXXXX, with any other \c meaning c. Unlike Java,
// trailing whitespace of a value is dropped, since it is invisible in an
// editor and never intended in this file format.
func parseProperties(data []byte, src string) ([]entry, error) {
	text := strings.TrimPrefix(string(data), "\uFEFF")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	lines := strings.Split(text, "\n")
	var out []entry
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		// Comments are recognised only at the start of a logical line; a
		// continuation line starting with # is part of the value, as in Java.
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		for continues(line) {
			line = line[:len(line)-1]
			if i+1 >= len(lines) {
				break
			}
			i++
			line += strings.TrimLeft(lines[i], " \t\f")
		}
		origin := fmt.Sprintf("%s:%d", src, lineNo)
		rawKey, rawVal := splitProperty(line)
		key, err := unescape(rawKey)
		if err != nil {
			return nil, &Error{Reason: fmt.Sprintf("%s: %v", origin, err)}
		}
		if key == "" {
			return nil, &Error{Reason: fmt.Sprintf("%s: line %q has no key before its separator", origin, line)}
		}
		val, err := unescape(rawVal)
		if err != nil {
			return nil, &Error{Key: key, Reason: fmt.Sprintf("%v at %s", err, origin)}
		}
		out = append(out, entry{key: key, val: val, origin: origin})
	}
	return out, nil
}

// continues reports whether line ends in an odd number of backslashes,
// i.e. an unescaped one that joins the next line.
func continues(line string) bool {
	n := len(line) - len(strings.TrimRight(line, `\`))
	return n%2 == 1
}

// splitProperty splits a logical line into raw (still escaped) key and
// value. The key ends at the first unescaped '=', ':' or whitespace; then
// whitespace, at most one '=' or ':', and more whitespace are skipped.
func splitProperty(line string) (key, val string) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		i++
	}
	i = min(i, len(line))
	key = line[:i]
	rest := strings.TrimLeft(line[i:], " \t\f")
	if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	trimmed := strings.TrimRight(rest, " \t\f")
	// Keep one trailing whitespace character if it was escaped ("a\ ").
	if continues(trimmed) && len(trimmed) < len(rest) {
		trimmed = rest[:len(trimmed)+1]
	}
	return key, trimmed
}

// unescape resolves .properties backslash escapes.
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf("malformed \\uXXXX escape in %q", s)
			}
			n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("malformed \\uXXXX escape in %q", s)
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			// \\, \=, \:, \#, \! and \<space> all mean the character itself.
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r)
			i += size - 1
		}
	}
	return b.String(), nil
}

// parseYAML reads a YAML file into flat dotted keys. Both spellings work:
// "process.roles: broker" and nested "process: {roles: broker}", as do
// per-node sections written as "node: {1: {listeners: ...}}". Lists become
// comma-separated strings, so "process.roles: [broker, controller]" works.
//
// viper's key delimiter is set to "::" so that a dotted YAML key stays one
// key instead of being split into a nested path.
func parseYAML(data []byte, src string) ([]entry, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter("::"))
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(string(data))); err != nil {
		return nil, &Error{Reason: fmt.Sprintf("cannot parse YAML config file %s: %s", src, oneLine(err.Error()))}
	}
	keys := v.AllKeys()
	slices.Sort(keys)
	seen := map[string]bool{}
	var out []entry
	for _, k := range keys {
		flat := strings.ReplaceAll(k, "::", ".")
		if seen[flat] {
			return nil, &Error{Key: flat, Reason: fmt.Sprintf("set twice in %s (once nested, once with dots); keep one", src)}
		}
		seen[flat] = true
		out = append(out, entry{key: flat, val: yamlString(v.Get(k)), origin: src})
	}
	return out, nil
}

// yamlString renders a YAML scalar or list the way it would be written in a
// .properties file.
func yamlString(x any) string {
	switch t := x.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = yamlString(e)
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(t)
	}
}

// oneLine keeps wrapped library errors to a single line, as Error promises.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
