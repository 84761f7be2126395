package main

// The metadata shell's virtual file tree and the commands over it (`kraftctl shell`, after Kafka's
// kafka-metadata-shell). Everything here is pure: a tree over one immutable metadatalog.Image and the
// commands that walk it, writing to an io.Writer; shell.go loads the image and reads the commands.
//
// The tree is lazy: a directory lists its children from the image when asked, and a file renders its
// contents when read, so opening a shell on a million partitions costs nothing until someone lists
// them. Layout, after Kafka's shell:
//
//	/image/features/<name>                    a finalized feature's level; metadata.version adds the
//	                                          level's name: "4 (1.1-IV1)"
//	/image/cluster/brokers/<id>/registration  the broker's registration, as indented JSON
//	/image/topics/byName/<topic>/id           the topic id in Kafka's form, as `topics describe` prints it
//	/image/topics/byName/<topic>/name         the topic's name
//	/image/topics/byName/<topic>/<partition>  the partition (replicas, ISR, leader, epochs), as JSON
//	/image/topics/byId/<id>/                  the same directories, named by topic id
//	/image/configs/topic/<topic>/<name>       a config's value, one per file
//	/image/configs/broker/<id>/<name>
//	/image/configs/broker/<default>/<name>    the cluster-wide broker defaults (the resource named "")
//	/image/provenance                         where the image came from, and its offset and epoch
//
// Only resources that hold at least one config appear under /image/configs. In every directory, names
// that are not numbers come first in byte order, then numbers in numeric order (partitions, broker
// ids), so `ls`, `tree` and `find` print the same thing every time.

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultBrokerDir names the BROKER config resource "" (the cluster-wide defaults), as ZooKeeper-era
// Kafka named it in its config paths.
const defaultBrokerDir = "<default>"

// shellImage is what the shell browses: an image and what is known about where it came from.
type shellImage struct {
	img *metadatalog.Image
	// provenance is the content of /image/provenance, its source first, without the image's own
	// offset and epoch, which the tree adds after the source.
	provenance []jsonField
}

// ---------------------------------------------------------------------------
// Nodes

// entry is one node of the tree: a directory when dir is set, else a file that read renders.
type entry struct {
	dir  *dirNode
	read func() string
}

func (e entry) isDir() bool { return e.dir != nil }

// dirNode is a directory whose children come from the image on demand.
type dirNode struct {
	// list returns the children's names in display order (shellCompare).
	list func() ([]string, error)
	// child looks one child up by name, without listing the others.
	child func(name string) (entry, bool)
	// size, when set, counts the children without listing them (for ls -l).
	size func() int
}

func (d *dirNode) count() (int, error) {
	if d.size != nil {
		return d.size(), nil
	}
	names, err := d.list()
	return len(names), err
}

// textFile is a file holding one line.
func textFile(s string) entry { return entry{read: func() string { return s + "\n" }} }

// staticDir is a directory with a fixed set of children.
func staticDir(children map[string]entry) entry {
	names := slices.Collect(maps.Keys(children))
	slices.SortFunc(names, shellCompare)
	return entry{dir: &dirNode{
		list:  func() ([]string, error) { return names, nil },
		child: func(name string) (entry, bool) { e, ok := children[name]; return e, ok },
	}}
}

// shellCompare orders names within a directory: names that are not numbers first, in byte order, then
// numbers in numeric order.
func shellCompare(a, b string) int {
	na, aNum := shellNumber(a)
	nb, bNum := shellNumber(b)
	switch {
	case aNum && bNum:
		return cmp.Compare(na, nb)
	case aNum:
		return 1
	case bNum:
		return -1
	}
	return strings.Compare(a, b)
}

// shellNumber parses a name that is a number written the one way strconv writes it ("7", not "07" or
// "+7"), so that each partition and broker has exactly one path.
func shellNumber(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

func shellInt32(s string) (int32, bool) {
	n, ok := shellNumber(s)
	if !ok || n > 1<<31-1 {
		return 0, false
	}
	return int32(n), true
}

// ---------------------------------------------------------------------------
// The tree over an image

func newImageTree(si *shellImage) entry {
	img := si.img
	// The source first, then the image's offset and epoch, then the rest.
	var prov []jsonField
	if len(si.provenance) > 0 {
		prov = append(prov, si.provenance[0])
	}
	prov = append(prov, jsonField{"offset", img.Offset}, jsonField{"epoch", img.Epoch})
	if len(si.provenance) > 1 {
		prov = append(prov, si.provenance[1:]...)
	}
	return staticDir(map[string]entry{
		"image": staticDir(map[string]entry{
			"features": featuresDir(img),
			"cluster":  staticDir(map[string]entry{"brokers": brokersDir(img)}),
			"topics": staticDir(map[string]entry{
				"byName": topicsByNameDir(img),
				"byId":   topicsByIDDir(img),
			}),
			"configs": staticDir(map[string]entry{
				"topic":  configTypeDir(img, metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC),
				"broker": configTypeDir(img, metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER),
			}),
			"acls":         staticDir(map[string]entry{"byId": aclsDir(img)}),
			"clientQuotas": clientQuotasDir(img),
			"provenance":   {read: func() string { return renderJSON(prov) }},
		}),
	})
}

// namedDir is a directory whose children are the values of items (read afresh on each listing and
// lookup, as the image is), each shown by child.
func namedDir[T any](items func() map[string]T, child func(T) entry) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			names := slices.Collect(maps.Keys(items()))
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			v, ok := items()[name]
			if !ok {
				return entry{}, false
			}
			return child(v), true
		},
	}}
}

// aclsDir holds one file per ACL, named by its id in Kafka's base64 form, holding the binding with
// Kafka's enum names.
func aclsDir(img *metadatalog.Image) entry {
	byID := func() map[string]*metadatalog.ACL {
		out := map[string]*metadatalog.ACL{}
		for _, a := range img.ACLs() {
			out[kafkaUUID(kadm.TopicID(a.ID))] = a
		}
		return out
	}
	return namedDir(byID, func(a *metadatalog.ACL) entry {
		return entry{read: func() string {
			return renderJSON([]jsonField{
				{"resourceType", kmsg.ACLResourceType(a.ResourceType).String()},
				{"resourceName", a.ResourceName},
				{"patternType", kmsg.ACLResourcePatternType(a.PatternType).String()},
				{"principal", a.Principal},
				{"host", a.Host},
				{"operation", kmsg.ACLOperation(a.Operation).String()},
				{"permissionType", kmsg.ACLPermissionType(a.Permission).String()},
			})
		}}
	})
}

// clientQuotasDir holds one directory per client-quota entity, named as messages show it
// ({user=alice, client-id=app}, a default part as <default>), with one file per quota key.
func clientQuotasDir(img *metadatalog.Image) entry {
	byEntity := func() map[string]metadatalog.ClientQuota {
		out := map[string]metadatalog.ClientQuota{}
		for _, q := range img.ClientQuotas() {
			out[metadatalog.QuotaEntityString(q.Entity)] = q
		}
		return out
	}
	return namedDir(byEntity, func(q metadatalog.ClientQuota) entry {
		files := map[string]entry{}
		for k, v := range q.Values {
			files[k] = textFile(strconv.FormatFloat(v, 'g', -1, 64))
		}
		return staticDir(files)
	})
}

func featuresDir(img *metadatalog.Image) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			names := slices.Collect(maps.Keys(img.Features()))
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			level, ok := img.Features()[name]
			if !ok {
				return entry{}, false
			}
			s := strconv.Itoa(int(level))
			if mv, known := metadatalog.MetadataVersionByLevel(level); known && name == metadatalog.MetadataVersionFeature {
				s += " (" + mv.Name + ")"
			}
			return textFile(s), true
		},
	}}
}

func brokersDir(img *metadatalog.Image) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			var names []string
			for _, b := range img.Brokers() {
				names = append(names, strconv.Itoa(int(b.ID)))
			}
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			id, ok := shellInt32(name)
			if !ok {
				return entry{}, false
			}
			b, ok := img.Broker(id)
			if !ok {
				return entry{}, false
			}
			return staticDir(map[string]entry{"registration": {read: func() string { return brokerJSON(b) }}}), true
		},
	}}
}

// securityProtocols are Kafka's security protocol ids.
var securityProtocols = map[int32]string{0: "PLAINTEXT", 1: "SSL", 2: "SASL_PLAINTEXT", 3: "SASL_SSL"}

func brokerJSON(b *metadatalog.Broker) string {
	type listener struct {
		Name             string `json:"name"`
		Host             string `json:"host"`
		Port             int32  `json:"port"`
		SecurityProtocol string `json:"securityProtocol"`
	}
	type feature struct {
		Name                string `json:"name"`
		MinSupportedVersion int32  `json:"minSupportedVersion"`
		MaxSupportedVersion int32  `json:"maxSupportedVersion"`
	}
	listeners := []listener{}
	for _, e := range b.Endpoints {
		sp, ok := securityProtocols[e.GetSecurityProtocol()]
		if !ok {
			sp = strconv.Itoa(int(e.GetSecurityProtocol()))
		}
		listeners = append(listeners, listener{e.GetName(), e.GetHost(), e.GetPort(), sp})
	}
	features := []feature{}
	for _, f := range b.Features {
		features = append(features, feature{f.GetName(), f.GetMinSupportedVersion(), f.GetMaxSupportedVersion()})
	}
	var rack *string // null when none, as Kafka shows an empty Optional
	if b.Rack != "" {
		rack = &b.Rack
	}
	return renderJSON([]jsonField{
		{"id", b.ID},
		{"epoch", b.Epoch},
		{"incarnationId", base64.RawURLEncoding.EncodeToString(b.IncarnationID)},
		{"listeners", listeners},
		{"rack", rack},
		{"fenced", b.Fenced},
		{"inControlledShutdown", b.InControlledShutdown},
		{"features", features},
	})
}

// topicIDName is a topic id as kraftctl prints it everywhere: Kafka's URL-safe base64.
func topicIDName(id [16]byte) string { return kafkaUUID(kadm.TopicID(id)) }

func parseTopicIDName(s string) ([16]byte, bool) {
	var id [16]byte
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) || topicIDName([16]byte(b)) != s {
		return id, false
	}
	return [16]byte(b), true
}

func topicsByNameDir(img *metadatalog.Image) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			topics := img.Topics()
			names := make([]string, len(topics))
			for i, t := range topics {
				names[i] = t.Name
			}
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			t, ok := img.TopicByName(name)
			if !ok {
				return entry{}, false
			}
			return topicDir(img, t), true
		},
	}}
}

func topicsByIDDir(img *metadatalog.Image) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			topics := img.Topics()
			names := make([]string, len(topics))
			for i, t := range topics {
				names[i] = topicIDName(t.ID)
			}
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			id, ok := parseTopicIDName(name)
			if !ok {
				return entry{}, false
			}
			t, ok := img.TopicByID(id)
			if !ok {
				return entry{}, false
			}
			return topicDir(img, t), true
		},
	}}
}

// topicDir holds a topic's id, its name and one file per partition. Partitions are numbered from 0
// without gaps (CreateTopics and CreatePartitions number them so); a partition outside 0..n-1 would
// still open by its number, but would not be listed.
func topicDir(img *metadatalog.Image, t *metadatalog.Topic) entry {
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			names := make([]string, 0, int(t.Partitions)+2)
			names = append(names, "id", "name")
			for p := int32(0); p < t.Partitions; p++ {
				if _, ok := img.Partition(t.ID, p); ok {
					names = append(names, strconv.Itoa(int(p)))
				}
			}
			return names, nil
		},
		size: func() int { return int(t.Partitions) + 2 },
		child: func(name string) (entry, bool) {
			switch name {
			case "id":
				return textFile(topicIDName(t.ID)), true
			case "name":
				return textFile(t.Name), true
			}
			p, ok := shellInt32(name)
			if !ok {
				return entry{}, false
			}
			part, ok := img.Partition(t.ID, p)
			if !ok {
				return entry{}, false
			}
			return entry{read: func() string { return partitionJSON(part) }}, true
		},
	}}
}

func partitionJSON(p *metadatalog.Partition) string {
	ids := func(s []int32) []int32 {
		if s == nil {
			return []int32{}
		}
		return s
	}
	return renderJSON([]jsonField{
		{"replicas", ids(p.Replicas)},
		{"isr", ids(p.ISR)},
		{"removingReplicas", ids(p.Removing)},
		{"addingReplicas", ids(p.Adding)},
		{"leader", p.Leader},
		{"leaderEpoch", p.LeaderEpoch},
		{"partitionEpoch", p.Epoch},
	})
}

// configTypeDir lists the resources of one type that hold configs.
func configTypeDir(img *metadatalog.Image, t metadatapb.ConfigResourceType) entry {
	resource := func(dirName string) string {
		if t == metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER && dirName == defaultBrokerDir {
			return metadatalog.ClusterDefaultBroker
		}
		return dirName
	}
	dirName := func(resource string) string {
		if t == metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER && resource == metadatalog.ClusterDefaultBroker {
			return defaultBrokerDir
		}
		return resource
	}
	return entry{dir: &dirNode{
		list: func() ([]string, error) {
			var names []string
			for _, r := range img.ConfigResources(t) {
				names = append(names, dirName(r))
			}
			slices.SortFunc(names, shellCompare)
			return names, nil
		},
		child: func(name string) (entry, bool) {
			configs := img.Configs(t, resource(name))
			if len(configs) == 0 {
				return entry{}, false
			}
			children := make(map[string]entry, len(configs))
			for _, c := range configs {
				children[c.Name] = textFile(c.Value)
			}
			return staticDir(children), true
		},
	}}
}

// jsonField is one field of a JSON object the shell prints: objects print one field per line, each
// value compact, so that a replica list stays on one line.
type jsonField struct {
	key   string
	value any
}

func renderJSON(fields []jsonField) string {
	var b strings.Builder
	b.WriteString("{\n")
	for i, f := range fields {
		var v bytes.Buffer
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(f.value); err != nil {
			// Only our own plain types are rendered; one that does not encode is a bug.
			panic(fmt.Sprintf("shell: field %s does not encode as JSON: %v", f.key, err))
		}
		fmt.Fprintf(&b, "  %q: %s", f.key, bytes.TrimSuffix(v.Bytes(), []byte("\n")))
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.String()
}

// ---------------------------------------------------------------------------
// The shell and its commands

// shell is one session: the tree, a working directory, and where output goes.
type shell struct {
	root entry
	cwd  string // absolute and clean
	out  io.Writer
}

func newShell(si *shellImage, out io.Writer) *shell {
	return &shell{root: newImageTree(si), cwd: "/", out: out}
}

// errShellExit is what the exit command returns: the caller stops reading commands.
var errShellExit = errors.New("exit")

// shellCommandHelp is what help prints, in order.
var shellCommandHelp = []struct{ usage, text string }{
	{"cat PATH...", "print the contents of files"},
	{"cd [PATH]", "change the working directory (to / without a path)"},
	{"exit", "leave the shell"},
	{"find [PATH]", "print the path of everything under PATH (the working directory by default), one per line"},
	{"help", "print this list"},
	{"ls [-l] [PATH...]", "list directories (the working directory by default); -l adds each entry's type and size (bytes, or entries)"},
	{"pwd", "print the working directory"},
	{"tree [PATH]", "print the tree under PATH (the working directory by default)"},
}

// splitCommands splits a command text into commands, at ';' and line ends; blank commands are dropped.
func splitCommands(text string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(text, func(r rune) bool { return r == ';' || r == '\n' || r == '\r' }) {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// exec runs one command. Its error reads "cmd: path: reason", or errShellExit for exit.
func (s *shell) exec(command string) error {
	args := strings.Fields(command)
	if len(args) == 0 {
		return nil
	}
	name, args := args[0], args[1:]
	switch name {
	case "ls":
		return s.ls(args)
	case "cd":
		return s.cd(args)
	case "cat":
		return s.cat(args)
	case "tree":
		return s.tree(args)
	case "find":
		return s.find(args)
	case "pwd":
		if len(args) > 0 {
			return errors.New("pwd: takes no arguments")
		}
		fmt.Fprintln(s.out, s.cwd)
		return nil
	case "help":
		s.help()
		return nil
	case "exit":
		return errShellExit
	}
	return fmt.Errorf("%s: unknown command (help lists the commands)", name)
}

func (s *shell) help() {
	width := 0
	for _, c := range shellCommandHelp {
		width = max(width, len(c.usage))
	}
	for _, c := range shellCommandHelp {
		fmt.Fprintf(s.out, "%-*s  %s\n", width, c.usage, c.text)
	}
}

// abs makes a path typed by the user absolute and clean: relative to the working directory, with '.',
// '..' and repeated or trailing slashes resolved (above / is /).
func (s *shell) abs(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = s.cwd + "/" + p
	}
	return path.Clean(p)
}

// pathError is a path a command cannot use, worded as Unix tools word it.
type pathError struct {
	cmd, path, reason string
}

func (e *pathError) Error() string { return e.cmd + ": " + e.path + ": " + e.reason }

const (
	reasonNoSuch    = "no such file or directory"
	reasonNotDir    = "not a directory"
	reasonIsDir     = "is a directory"
	reasonListError = "cannot list: "
)

// lookup finds the node a user's path names; errors name the path as typed.
func (s *shell) lookup(cmd, p string) (string, entry, error) {
	abs := s.abs(p)
	e := s.root
	if abs != "/" {
		for _, name := range strings.Split(abs[1:], "/") {
			if !e.isDir() {
				return abs, entry{}, &pathError{cmd, p, reasonNotDir}
			}
			c, ok := e.dir.child(name)
			if !ok {
				return abs, entry{}, &pathError{cmd, p, reasonNoSuch}
			}
			e = c
		}
	}
	if strings.HasSuffix(p, "/") && !e.isDir() {
		return abs, entry{}, &pathError{cmd, p, reasonNotDir}
	}
	return abs, e, nil
}

func (s *shell) list(cmd, p string, d *dirNode) ([]string, error) {
	names, err := d.list()
	if err != nil {
		return nil, &pathError{cmd, p, reasonListError + err.Error()}
	}
	return names, nil
}

func (s *shell) ls(args []string) error {
	long := false
	var paths []string
	for _, a := range args {
		switch {
		case a == "-l":
			long = true
		case strings.HasPrefix(a, "-") && a != "-":
			return fmt.Errorf("ls: unknown option %s (only -l is known)", a)
		default:
			paths = append(paths, a)
		}
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for i, p := range paths {
		_, e, err := s.lookup("ls", p)
		if err != nil {
			return err
		}
		if !e.isDir() {
			if err := s.lsEntries("ls", p, []string{p}, []entry{e}, long); err != nil {
				return err
			}
			continue
		}
		names, err := s.list("ls", p, e.dir)
		if err != nil {
			return err
		}
		if len(paths) > 1 {
			if i > 0 {
				fmt.Fprintln(s.out)
			}
			fmt.Fprintf(s.out, "%s:\n", p)
		}
		if !long {
			for _, n := range names {
				fmt.Fprintln(s.out, n)
			}
			continue
		}
		entries := make([]entry, len(names))
		for j, n := range names {
			c, ok := e.dir.child(n)
			if !ok {
				return &pathError{"ls", path.Join(p, n), reasonNoSuch}
			}
			entries[j] = c
		}
		if err := s.lsEntries("ls", p, names, entries, long); err != nil {
			return err
		}
	}
	return nil
}

// lsEntries prints entries by name; -l prints "d|-  size  name", the size right-aligned: a file's
// bytes, a directory's entries.
func (s *shell) lsEntries(cmd, dir string, names []string, entries []entry, long bool) error {
	if !long {
		for _, n := range names {
			fmt.Fprintln(s.out, n)
		}
		return nil
	}
	sizes := make([]string, len(entries))
	width := 0
	for i, e := range entries {
		if e.isDir() {
			n, err := e.dir.count()
			if err != nil {
				return &pathError{cmd, path.Join(dir, names[i]), reasonListError + err.Error()}
			}
			sizes[i] = strconv.Itoa(n)
		} else {
			sizes[i] = strconv.Itoa(len(e.read()))
		}
		width = max(width, len(sizes[i]))
	}
	for i, e := range entries {
		kind := "-"
		if e.isDir() {
			kind = "d"
		}
		fmt.Fprintf(s.out, "%s %*s %s\n", kind, width, sizes[i], names[i])
	}
	return nil
}

func (s *shell) cd(args []string) error {
	switch len(args) {
	case 0:
		s.cwd = "/"
		return nil
	case 1:
	default:
		return errors.New("cd: too many arguments")
	}
	abs, e, err := s.lookup("cd", args[0])
	if err != nil {
		return err
	}
	if !e.isDir() {
		return &pathError{"cd", args[0], reasonNotDir}
	}
	s.cwd = abs
	return nil
}

func (s *shell) cat(args []string) error {
	if len(args) == 0 {
		return errors.New("cat: give the path of a file")
	}
	for _, p := range args {
		_, e, err := s.lookup("cat", p)
		if err != nil {
			return err
		}
		if e.isDir() {
			return &pathError{"cat", p, reasonIsDir}
		}
		io.WriteString(s.out, e.read())
	}
	return nil
}

// oneOptionalPath returns a command's single path, the working directory when none is given.
func oneOptionalPath(cmd string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return ".", nil
	case 1:
		return args[0], nil
	}
	return "", fmt.Errorf("%s: takes at most one path", cmd)
}

// find prints the absolute path of the node and of everything under it, depth first, in directory
// order.
func (s *shell) find(args []string) error {
	p, err := oneOptionalPath("find", args)
	if err != nil {
		return err
	}
	abs, e, err := s.lookup("find", p)
	if err != nil {
		return err
	}
	return s.walk("find", abs, e, func(p string, _ entry, _ int, _ []bool) {
		fmt.Fprintln(s.out, p)
	}, 0, nil)
}

// tree prints the node's absolute path, then everything under it drawn as tree(1) draws it, with a
// '/' after each directory's name.
func (s *shell) tree(args []string) error {
	p, err := oneOptionalPath("tree", args)
	if err != nil {
		return err
	}
	abs, e, err := s.lookup("tree", p)
	if err != nil {
		return err
	}
	return s.walk("tree", abs, e, func(p string, e entry, depth int, last []bool) {
		if depth == 0 {
			fmt.Fprintln(s.out, p)
			return
		}
		var b strings.Builder
		for _, l := range last[:depth-1] {
			if l {
				b.WriteString("    ")
			} else {
				b.WriteString("│   ")
			}
		}
		if last[depth-1] {
			b.WriteString("└── ")
		} else {
			b.WriteString("├── ")
		}
		b.WriteString(path.Base(p))
		if e.isDir() {
			b.WriteByte('/')
		}
		fmt.Fprintln(s.out, b.String())
	}, 0, nil)
}

// walk visits the node at p and everything under it, depth first. last[i] says whether the node's
// ancestor at depth i+1 (or the node itself, at depth) is the last child of its directory.
func (s *shell) walk(cmd, p string, e entry, visit func(p string, e entry, depth int, last []bool), depth int, last []bool) error {
	visit(p, e, depth, last)
	if !e.isDir() {
		return nil
	}
	names, err := s.list(cmd, p, e.dir)
	if err != nil {
		return err
	}
	for i, n := range names {
		c, ok := e.dir.child(n)
		if !ok {
			return &pathError{cmd, path.Join(p, n), reasonNoSuch}
		}
		if err := s.walk(cmd, path.Join(p, n), c, visit, depth+1, append(last, i == len(names)-1)); err != nil {
			return err
		}
	}
	return nil
}
