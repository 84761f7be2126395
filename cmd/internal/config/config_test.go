package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// clearEnv blanks every KRAFT_* variable the loader reads, so a developer's
// shell cannot change test outcomes (empty counts as unset).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range KnownKeys() {
		t.Setenv(envName(k), "")
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// clusterFile describes three controllers on one host, in the style an
// operator would share between all nodes.
const clusterFile = `# Three-controller test cluster; start each node with --node-id.
process.roles = controller
controller.quorum.voters=1@127.0.0.1:19091,\
                         2@127.0.0.1:19092,\
                         3@127.0.0.1:19093
metadata.log.dir: ./data/${node.id}
! per-node listeners
node.1.listeners=CONTROLLER://127.0.0.1:19091
node.2.listeners=CONTROLLER://127.0.0.1:19092
node.3.listeners  CONTROLLER://127.0.0.1:19093
`

func TestClusterFileEachNode(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "cluster.properties", clusterFile)
	wantVoters := []Voter{{1, "127.0.0.1", 19091}, {2, "127.0.0.1", 19092}, {3, "127.0.0.1", 19093}}
	for _, tc := range []struct {
		id     int32
		port   int
		logDir string
	}{
		{1, 19091, "./data/1"},
		{2, 19092, "./data/2"},
		{3, 19093, "./data/3"},
	} {
		c, err := Load(path, tc.id, nil)
		if err != nil {
			t.Fatalf("node %d: %v", tc.id, err)
		}
		want := []Listener{{"CONTROLLER", "127.0.0.1", tc.port}}
		if c.NodeID != tc.id || !reflect.DeepEqual(c.Listeners, want) || !reflect.DeepEqual(c.AdvertisedListeners, want) {
			t.Errorf("node %d: got id %d listeners %v advertised %v", tc.id, c.NodeID, c.Listeners, c.AdvertisedListeners)
		}
		if !reflect.DeepEqual(c.Voters, wantVoters) {
			t.Errorf("node %d: voters %v", tc.id, c.Voters)
		}
		if c.MetadataLogDir != tc.logDir {
			t.Errorf("node %d: metadata log dir %q, want %q", tc.id, c.MetadataLogDir, tc.logDir)
		}
		if !c.IsController() || c.IsBroker() || !reflect.DeepEqual(c.Roles, []string{"controller"}) {
			t.Errorf("node %d: roles %v", tc.id, c.Roles)
		}
		if l, ok := c.ControllerListener(); !ok || l.Addr() != want[0].Addr() {
			t.Errorf("node %d: controller listener %v %v", tc.id, l, ok)
		}
		if len(c.BrokerListeners()) != 0 {
			t.Errorf("node %d: broker listeners %v", tc.id, c.BrokerListeners())
		}
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	c, err := FromProperties(EmbeddedDefault(), -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		NodeID:                  1,
		Roles:                   []string{"broker", "controller"},
		Voters:                  []Voter{{1, "127.0.0.1", 9093}},
		Listeners:               []Listener{{"PLAINTEXT", "127.0.0.1", 9092}, {"CONTROLLER", "127.0.0.1", 9093}},
		AdvertisedListeners:     []Listener{{"PLAINTEXT", "127.0.0.1", 9092}, {"CONTROLLER", "127.0.0.1", 9093}},
		SecurityProtocolMap:     map[string]string{"CONTROLLER": "PLAINTEXT", "PLAINTEXT": "PLAINTEXT"},
		ControllerListenerNames: []string{"CONTROLLER"},
		InterBrokerListenerName: "PLAINTEXT",
		MetadataLogDir:          "./kraft-data",
		BrokerHeartbeatInterval: 2 * time.Second,
		BrokerSessionTimeout:    9 * time.Second,
		ElectionTimeout:         time.Second,
		FetchTimeout:            2 * time.Second,
		SnapshotMaxBytes:        20971520,
		SnapshotInterval:        time.Hour,
		RetentionBytes:          104857600,
		RetentionTime:           7 * 24 * time.Hour,
		SocketRequestMaxBytes:   104857600,
		MaxPartitionsPerRequest: 100000,
		SnapshotCatchUpEntries:  5000,
		SegmentBytes:            64 << 20,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("embedded default:\n got %+v\nwant %+v", c, want)
	}
	// The map is the caller's to extend.
	m := EmbeddedDefault()
	m["broker.rack"] = "r1"
	if _, ok := EmbeddedDefault()["broker.rack"]; ok {
		t.Error("EmbeddedDefault returned a shared map")
	}
}

func TestKnownKeys(t *testing.T) {
	keys := KnownKeys()
	if len(keys) != 24 || keys[0] != "advertised.listeners" || !slices.Contains(keys, "max.partitions.per.request") {
		t.Errorf("KnownKeys() = %v", keys)
	}
}

// TestPrecedence walks the layers: file < file node section < env <
// override < override node section < --node-id.
func TestPrecedence(t *testing.T) {
	path := writeFile(t, "cluster.properties", clusterFile+"node.id=2\nbroker.rack=file\nnode.2.broker.rack=file-node\n")
	for _, tc := range []struct {
		name      string
		env       map[string]string
		nodeID    int32
		overrides []string
		check     func(*Config) string
	}{
		{"file node.id selects section", nil, -1, nil, func(c *Config) string {
			return expect(c.NodeID == 2 && c.Listeners[0].Port == 19092 && c.Rack == "file-node", c)
		}},
		{"flag wins over file node.id", nil, 3, nil, func(c *Config) string {
			return expect(c.NodeID == 3 && c.Listeners[0].Port == 19093 && c.MetadataLogDir == "./data/3" && c.Rack == "file", c)
		}},
		{"override node.id selects section", nil, -1, []string{"node.id=1"}, func(c *Config) string {
			return expect(c.NodeID == 1 && c.Listeners[0].Port == 19091 && c.MetadataLogDir == "./data/1", c)
		}},
		{"flag wins over override node.id", nil, 3, []string{"node.id=1"}, func(c *Config) string {
			return expect(c.NodeID == 3 && c.Listeners[0].Port == 19093, c)
		}},
		{"override wins over file node section", nil, -1, []string{"broker.rack=cli", "controller.quorum.election.timeout.ms = 2500"}, func(c *Config) string {
			return expect(c.Rack == "cli" && c.ElectionTimeout == 2500*time.Millisecond, c)
		}},
		{"override node section wins over plain override", nil, -1, []string{"node.2.broker.rack=cli-node", "broker.rack=cli"}, func(c *Config) string {
			return expect(c.Rack == "cli-node", c)
		}},
		{"override of another node is ignored", nil, -1, []string{"node.3.broker.rack=other"}, func(c *Config) string {
			return expect(c.Rack == "file-node", c)
		}},
		{"override expands placeholder", nil, 1, []string{"metadata.log.dir=/var/kraft/n${node.id}/meta"}, func(c *Config) string {
			return expect(c.MetadataLogDir == "/var/kraft/n1/meta", c)
		}},
		{"env wins over file node section", map[string]string{"KRAFT_BROKER_RACK": "env"}, -1, nil, func(c *Config) string {
			return expect(c.Rack == "env", c)
		}},
		{"override wins over env", map[string]string{"KRAFT_BROKER_RACK": "env"}, -1, []string{"broker.rack=cli"}, func(c *Config) string {
			return expect(c.Rack == "cli", c)
		}},
		{"env node id selects section", map[string]string{"KRAFT_NODE_ID": "3"}, -1, nil, func(c *Config) string {
			return expect(c.NodeID == 3 && c.Listeners[0].Port == 19093, c)
		}},
		{"env numeric", map[string]string{"KRAFT_CONTROLLER_QUORUM_FETCH_TIMEOUT_MS": "4000"}, -1, nil, func(c *Config) string {
			return expect(c.FetchTimeout == 4*time.Second, c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load(path, tc.nodeID, tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func expect(ok bool, c *Config) string {
	if ok {
		return ""
	}
	return fmt.Sprintf("unexpected config: %+v", *c)
}

func TestYAML(t *testing.T) {
	clearEnv(t)
	body := `
process.roles: [broker, controller, broker]
controller:
  quorum:
    voters: "1@localhost:9093,2@localhost:9094"
listeners: PLAINTEXT://:9092,CONTROLLER://:9093
log.dirs: /data/a/${node.id}, /data/b
broker.session.timeout.ms: 12000
broker:
  rack: rack-a
node:
  2:
    listeners: PLAINTEXT://:9192,CONTROLLER://:9094
`
	for _, ext := range []string{"node.yaml", "node.YML"} {
		path := writeFile(t, ext, body)
		c, err := Load(path, 2, nil)
		if err != nil {
			t.Fatalf("%s: %v", ext, err)
		}
		if !reflect.DeepEqual(c.Roles, []string{"broker", "controller"}) ||
			len(c.Voters) != 2 || c.Voters[1] != (Voter{2, "localhost", 9094}) ||
			c.MetadataLogDir != "/data/a/2" || c.Rack != "rack-a" ||
			c.BrokerSessionTimeout != 12*time.Second {
			t.Errorf("%s: got %+v", ext, c)
		}
		if l, ok := c.ControllerListener(); !ok || l != (Listener{"CONTROLLER", "", 9094}) {
			t.Errorf("%s: controller listener %v", ext, l)
		}
		if bl := c.BrokerListeners(); !reflect.DeepEqual(bl, []Listener{{"PLAINTEXT", "", 9192}}) {
			t.Errorf("%s: broker listeners %v", ext, bl)
		}
	}
}

func TestCombinedAndBrokerNodes(t *testing.T) {
	clearEnv(t)
	base := map[string]string{
		"process.roles":            "broker,controller",
		"node.id":                  "1",
		"controller.quorum.voters": "1@ctl1:9093",
		"listeners":                "plaintext://0.0.0.0:9092,controller://[::1]:9093",
		"advertised.listeners":     "PLAINTEXT://broker1.example:9092",
		"log.dirs":                 "/kafka/logs",
	}
	c, err := FromProperties(base, -1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsBroker() || !c.IsController() || c.MetadataLogDir != "/kafka/logs" {
		t.Errorf("combined: %+v", c)
	}
	if l, _ := c.ControllerListener(); l.Addr() != "[::1]:9093" {
		t.Errorf("controller listener addr %q", l.Addr())
	}
	if got := c.AdvertisedListeners; !reflect.DeepEqual(got, []Listener{{"PLAINTEXT", "broker1.example", 9092}}) {
		t.Errorf("advertised %v", got)
	}

	c, err = FromProperties(base, 5, []string{"process.roles=broker", "listeners=PLAINTEXT://:9092", "advertised.listeners="})
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsBroker() || c.IsController() {
		t.Errorf("broker-only roles %v", c.Roles)
	}
	if _, ok := c.ControllerListener(); ok {
		t.Error("broker-only node has a controller listener")
	}
	if c.Voters[0].Addr() != "ctl1:9093" {
		t.Errorf("voter addr %q", c.Voters[0].Addr())
	}
}

func TestParseProperties(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"separators", "a=1\nb: 2\nc 3\nd\t=\t4\ne:=5\n", map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "=5"}},
		{"comments and blanks", "# x=1\n  ! y=2\n\n   \nz = 3  \n", map[string]string{"z": "3"}},
		{"continuation", "a = one,\\\n    two,\\\n  three\nb=x\\\\\nc=y\n", map[string]string{"a": "one,two,three", "b": `x\`, "c": "y"}},
		{"continuation keeps # lines", "a=1\\\n# not a comment\n", map[string]string{"a": "1# not a comment"}},
		{"escapes", `k\=ey\:x\ y=a\tb\nc\\d\=e\:f\u0041\ ` + "\n", map[string]string{"k=ey:x y": "a\tb\nc\\d=e:fA "}},
		{"empty value", "a=\nb\n", map[string]string{"a": "", "b": ""}},
		{"crlf and last wins", "a=1\r\na=2\r\n", map[string]string{"a": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parseProperties([]byte(tc.in), "f")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range entries {
				got[e.key] = e.val
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestErrors has one case per validation rule. Each asserts the key the
// Error names and that the one-line message mentions the offending value.
func TestErrors(t *testing.T) {
	type tc struct {
		name      string
		set       map[string]string // applied to EmbeddedDefault; "" deletes
		nodeID    int32             // 0 means "no --node-id" (-1); no case needs node 0
		overrides []string
		file      string // if set, Load this .properties text instead
		fileName  string
		wantKey   string
		want      []string
	}
	cluster := map[string]string{
		"listeners":                "",
		"controller.quorum.voters": "1@h:19091,2@h:19092",
		"node.1.listeners":         "CONTROLLER://h:19091",
		"node.2.listeners":         "CONTROLLER://h:19092",
	}
	cases := []tc{
		// Unknown keys.
		{name: "unknown key suggests", set: map[string]string{"proccess.roles": "controller"},
			wantKey: "proccess.roles", want: []string{`unknown key "proccess.roles" (did you mean "process.roles"?)`}},
		{name: "unknown key without close match", set: map[string]string{"zookeeper.connect": "zk:2181"},
			wantKey: "zookeeper.connect", want: []string{`unknown key "zookeeper.connect"`}},
		{name: "unknown node-scoped key", set: map[string]string{"node.2.listners": "x"},
			wantKey: "node.2.listners", want: []string{`did you mean "node.2.listeners"?`}},
		{name: "unknown key in file names line", file: "node.id=1\nnode.3.brokr.rack=r\n",
			wantKey: "node.3.brokr.rack", want: []string{"node.3.brokr.rack", "f.properties:2", `"node.3.broker.rack"`}},
		{name: "node id not numeric in scope", set: map[string]string{"node.x.listeners": "x"},
			wantKey: "node.x.listeners", want: []string{`unknown key "node.x.listeners"`}},
		{name: "per-node node.id", set: map[string]string{"node.1.node.id": "2"},
			wantKey: "node.1.node.id", want: []string{"cannot be set per node"}},
		{name: "unknown override key", overrides: []string{"listener=PLAINTEXT://:1"},
			wantKey: "listener", want: []string{`"listener"`, `did you mean "listeners"?`, "--override"}},
		{name: "malformed override", overrides: []string{"broker.rack"},
			wantKey: "", want: []string{`malformed --override "broker.rack"`}},
		{name: "override with empty key", overrides: []string{"=5"},
			wantKey: "", want: []string{`"=5"`}},

		// node.id.
		{name: "missing node.id", set: map[string]string{"node.id": ""},
			wantKey: "node.id", want: []string{"not set", "--node-id"}},
		{name: "missing node.id names cluster nodes", set: mergeSet(cluster, map[string]string{"node.id": ""}),
			wantKey: "node.id", want: []string{"nodes 1, 2"}},
		{name: "node.id not int", set: map[string]string{"node.id": "one"},
			wantKey: "node.id", want: []string{`"one"`}},
		{name: "node.id negative", set: map[string]string{"node.id": "-1"},
			wantKey: "node.id", want: []string{`"-1"`}},
		{name: "node.id overflows int32", set: map[string]string{"node.id": "4294967296"},
			wantKey: "node.id", want: []string{`"4294967296"`}},
		{name: "node.id from override", overrides: []string{"node.id=x1"},
			wantKey: "node.id", want: []string{`"x1" from --override "node.id=x1"`}},

		// process.roles.
		{name: "roles missing", set: map[string]string{"process.roles": ""},
			wantKey: "process.roles", want: []string{"not set"}},
		{name: "roles empty", overrides: []string{"process.roles= , "},
			wantKey: "process.roles", want: []string{"is empty", `","`}},
		{name: "roles unknown", set: map[string]string{"process.roles": "controller,brokr"},
			wantKey: "process.roles", want: []string{`"brokr"`}},

		// controller.quorum.voters.
		{name: "voters missing", set: map[string]string{"controller.quorum.voters": ""},
			wantKey: "controller.quorum.voters", want: []string{"not set"}},
		{name: "voter without @", set: map[string]string{"controller.quorum.voters": "1-127.0.0.1:9093"},
			wantKey: "controller.quorum.voters", want: []string{`"1-127.0.0.1:9093"`, "id@host:port"}},
		{name: "voter id not int", set: map[string]string{"controller.quorum.voters": "1@h:9093,x@h:9094"},
			wantKey: "controller.quorum.voters", want: []string{`"x@h:9094"`}},
		{name: "voter empty host", set: map[string]string{"controller.quorum.voters": "1@:9093"},
			wantKey: "controller.quorum.voters", want: []string{`"1@:9093"`, "empty host"}},
		{name: "voter missing port", set: map[string]string{"controller.quorum.voters": "1@h"},
			wantKey: "controller.quorum.voters", want: []string{`"1@h"`, "host:port"}},
		{name: "voter port zero", set: map[string]string{"controller.quorum.voters": "1@h:0"},
			wantKey: "controller.quorum.voters", want: []string{`"1@h:0"`, "1 to 65535"}},
		{name: "voter port too big", set: map[string]string{"controller.quorum.voters": "1@h:70000"},
			wantKey: "controller.quorum.voters", want: []string{`"1@h:70000"`}},
		{name: "voter duplicate id", set: map[string]string{"controller.quorum.voters": "1@127.0.0.1:9093,1@other:9093"},
			wantKey: "controller.quorum.voters", want: []string{"node id 1 is listed twice", `"1@other:9093"`}},
		{name: "voter duplicate address", set: map[string]string{"controller.quorum.voters": "1@127.0.0.1:9093,2@127.0.0.1:9093"},
			wantKey: "controller.quorum.voters", want: []string{"127.0.0.1:9093"}},
		{name: "controller not a voter", nodeID: 4, set: map[string]string{"process.roles": "controller", "listeners": "CONTROLLER://127.0.0.1:9093"},
			overrides: []string{"controller.quorum.voters=1@h:9093"},
			wantKey:   "controller.quorum.voters", want: []string{"node 4 has process.roles=controller but is not listed in controller.quorum.voters"}},
		{name: "broker-only node is a voter", set: map[string]string{"process.roles": "broker", "listeners": "PLAINTEXT://:9092"},
			wantKey: "controller.quorum.voters", want: []string{"node 1 has process.roles=broker but is listed", "1@127.0.0.1:9093"}},

		// Listeners against roles.
		{name: "controller without controller listener", set: map[string]string{"listeners": "PLAINTEXT://127.0.0.1:9093"},
			wantKey: "listeners", want: []string{`"PLAINTEXT://127.0.0.1:9093"`, "controller.listener.names=CONTROLLER"}},
		{name: "controller listener port differs from voter", set: map[string]string{"listeners": "CONTROLLER://127.0.0.1:9094"},
			wantKey: "listeners", want: []string{"CONTROLLER://127.0.0.1:9094", "1@127.0.0.1:9093"}},
		{name: "broker-only node on controller listener", set: map[string]string{"process.roles": "broker", "controller.quorum.voters": "2@h:9093",
			"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"},
			wantKey: "listeners", want: []string{"CONTROLLER://:9093"}},
		{name: "inter-broker listener missing", set: map[string]string{"process.roles": "broker,controller", "listeners": "CONTROLLER://127.0.0.1:9093"},
			wantKey: "inter.broker.listener.name", want: []string{"PLAINTEXT"}},
		{name: "inter-broker listener is controller listener", set: map[string]string{"process.roles": "broker,controller",
			"inter.broker.listener.name": "controller"},
			wantKey: "inter.broker.listener.name", want: []string{"CONTROLLER"}},

		// Listener syntax.
		{name: "listeners missing", set: map[string]string{"listeners": ""},
			wantKey: "listeners", want: []string{"not set"}},
		{name: "listeners missing for unknown cluster node", set: cluster, nodeID: 3,
			wantKey: "listeners", want: []string{"node 3", "nodes 1, 2"}},
		{name: "listener without scheme", set: map[string]string{"listeners": "CONTROLLER:/127.0.0.1:9093"},
			wantKey: "listeners", want: []string{`"CONTROLLER:/127.0.0.1:9093"`}},
		{name: "listener bad port", set: map[string]string{"listeners": "CONTROLLER://127.0.0.1:99999"},
			wantKey: "listeners", want: []string{`"CONTROLLER://127.0.0.1:99999"`, `"99999"`}},
		{name: "listener empty name", set: map[string]string{"listeners": "://127.0.0.1:9093"},
			wantKey: "listeners", want: []string{`"://127.0.0.1:9093"`}},
		{name: "listener duplicate name", set: map[string]string{"listeners": "CONTROLLER://127.0.0.1:9093,controller://127.0.0.1:9094"},
			wantKey: "listeners", want: []string{"CONTROLLER", `"controller://127.0.0.1:9094"`}},
		{name: "listener duplicate address", set: map[string]string{"listeners": "CONTROLLER://127.0.0.1:9093,PLAINTEXT://127.0.0.1:9093"},
			wantKey: "listeners", want: []string{"127.0.0.1:9093"}},
		{name: "advertised not a listener", set: map[string]string{"advertised.listeners": "EXTERNAL://h:1"},
			wantKey: "advertised.listeners", want: []string{"EXTERNAL"}},
		{name: "advertised port zero", set: map[string]string{"advertised.listeners": "CONTROLLER://h:0"},
			wantKey: "advertised.listeners", want: []string{`"CONTROLLER://h:0"`}},

		// Protocols and names.
		{name: "non-plaintext protocol", set: map[string]string{"listener.security.protocol.map": "CONTROLLER:SSL"},
			wantKey: "listener.security.protocol.map", want: []string{"SSL", "only PLAINTEXT is supported"}},
		{name: "malformed protocol entry", set: map[string]string{"listener.security.protocol.map": "CONTROLLER"},
			wantKey: "listener.security.protocol.map", want: []string{`"CONTROLLER"`, "NAME:PROTOCOL"}},
		{name: "listener without protocol", set: map[string]string{"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT"},
			wantKey: "listener.security.protocol.map", want: []string{"CONTROLLER", `"PLAINTEXT:PLAINTEXT"`}},
		{name: "protocol mapped twice", set: map[string]string{"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,controller:plaintext"},
			wantKey: "listener.security.protocol.map", want: []string{"CONTROLLER", `"CONTROLLER:PLAINTEXT,controller:plaintext"`}},
		{name: "listener name with space", set: map[string]string{"listeners": "CONTR OLLER://h:9093"},
			wantKey: "listeners", want: []string{`"CONTR OLLER"`}},
		{name: "controller listener names empty", set: map[string]string{"controller.listener.names": " "},
			wantKey: "controller.listener.names", want: []string{"is empty"}},

		// Directories.
		{name: "no log dir", set: map[string]string{"metadata.log.dir": "", "log.dirs": " , "},
			wantKey: "metadata.log.dir", want: []string{"log.dirs"}},

		// Numbers.
		{name: "ms not a number", set: map[string]string{"controller.quorum.election.timeout.ms": "1s"},
			wantKey: "controller.quorum.election.timeout.ms", want: []string{`"1s"`}},
		{name: "ms zero", set: map[string]string{"controller.quorum.fetch.timeout.ms": "0"},
			wantKey: "controller.quorum.fetch.timeout.ms", want: []string{`"0"`, "out of range"}},
		{name: "ms negative", set: map[string]string{"metadata.max.retention.ms": "-5"},
			wantKey: "metadata.max.retention.ms", want: []string{`"-5"`}},
		{name: "ms overflows duration", set: map[string]string{"metadata.log.max.snapshot.interval.ms": "9223372036854775"},
			wantKey: "metadata.log.max.snapshot.interval.ms", want: []string{`"9223372036854775"`}},
		{name: "bytes not a number", set: map[string]string{"metadata.max.retention.bytes": "100MB"},
			wantKey: "metadata.max.retention.bytes", want: []string{`"100MB"`}},
		{name: "bytes zero", set: map[string]string{"metadata.log.max.record.bytes.between.snapshots": "0"},
			wantKey: "metadata.log.max.record.bytes.between.snapshots", want: []string{`"0"`}},
		{name: "socket bytes over int32", set: map[string]string{"socket.request.max.bytes": "2147483648"},
			wantKey: "socket.request.max.bytes", want: []string{`"2147483648"`}},
		{name: "partitions per request zero", set: map[string]string{"max.partitions.per.request": "0"},
			wantKey: "max.partitions.per.request", want: []string{`"0"`, "out of range"}},
		{name: "partitions per request not a number", set: map[string]string{"max.partitions.per.request": "lots"},
			wantKey: "max.partitions.per.request", want: []string{`"lots"`, "whole number of partitions"}},
		{name: "catch-up entries zero", set: map[string]string{"metadata.log.snapshot.catchup.entries": "0"},
			wantKey: "metadata.log.snapshot.catchup.entries", want: []string{`"0"`, "out of range"}},
		{name: "segment below 1 MiB", set: map[string]string{"metadata.log.segment.bytes": "65536"},
			wantKey: "metadata.log.segment.bytes", want: []string{`"65536"`, "minimum of 1048576"}},
		{name: "segment over 1 GiB", set: map[string]string{"metadata.log.segment.bytes": "2147483648"},
			wantKey: "metadata.log.segment.bytes", want: []string{`"2147483648"`, "out of range"}},
		{name: "session not above heartbeat", set: map[string]string{"broker.session.timeout.ms": "2000"},
			wantKey: "broker.session.timeout.ms", want: []string{`"2000"`, "broker.heartbeat.interval.ms=2000"}},

		// Placeholders.
		{name: "unsupported placeholder", set: map[string]string{"metadata.log.dir": "/data/${broker.rack}"},
			wantKey: "metadata.log.dir", want: []string{"${broker.rack}", `"/data/${broker.rack}"`}},
		{name: "unterminated placeholder", set: map[string]string{"broker.rack": "r${node.id"},
			wantKey: "broker.rack", want: []string{`"r${node.id"`}},

		// Files.
		{name: "cluster file without --node-id", file: clusterFile,
			wantKey: "node.id", want: []string{"f.properties", "nodes 1, 2, 3"}},
		{name: "cluster file with unknown --node-id", file: clusterFile, nodeID: 4,
			wantKey: "listeners", want: []string{"node 4", "f.properties", "nodes 1, 2, 3"}},
		{name: "missing file", fileName: "absent.properties",
			wantKey: "", want: []string{"absent.properties"}},
		{name: "bad yaml", fileName: "bad.yaml", file: "a: [1\n",
			wantKey: "", want: []string{"bad.yaml"}},
		{name: "yaml key both nested and dotted", fileName: "dup.yaml", file: "broker.rack: a\nbroker:\n  rack: b\n",
			wantKey: "broker.rack", want: []string{"dup.yaml"}},
		{name: "bad unicode escape", file: "broker.rack=\\u12\n",
			wantKey: "broker.rack", want: []string{`\u12`, "f.properties:1"}},
		{name: "properties line without key", file: "=x\n",
			wantKey: "", want: []string{`"=x"`, "f.properties:1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			nodeID := c.nodeID
			if nodeID == 0 {
				nodeID = -1
			}
			var err error
			switch {
			case c.fileName == "absent.properties":
				_, err = Load(filepath.Join(t.TempDir(), c.fileName), nodeID, c.overrides)
			case c.file != "":
				name := c.fileName
				if name == "" {
					name = "f.properties"
				}
				_, err = Load(writeFile(t, name, c.file), nodeID, c.overrides)
			default:
				props := EmbeddedDefault()
				for k, v := range c.set {
					if v == "" {
						delete(props, k)
					} else {
						props[k] = v
					}
				}
				_, err = FromProperties(props, nodeID, c.overrides)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v (%T), want *Error", err, err)
			}
			msg := err.Error()
			t.Log(msg)
			if ce.Key != c.wantKey {
				t.Errorf("Key = %q, want %q", ce.Key, c.wantKey)
			}
			if c.wantKey != "" && !strings.HasPrefix(msg, "invalid config "+c.wantKey+": ") {
				t.Errorf("message %q does not start with the key", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message is not one line: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
		})
	}
}

// TestEnvErrorOrigin checks that a bad environment variable is named, so
// the operator knows the value did not come from the file.
func TestEnvErrorOrigin(t *testing.T) {
	clearEnv(t)
	t.Setenv("KRAFT_BROKER_HEARTBEAT_INTERVAL_MS", "soon")
	_, err := FromProperties(EmbeddedDefault(), -1, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != KeyBrokerHeartbeatIntervalMs || !strings.Contains(err.Error(), "$KRAFT_BROKER_HEARTBEAT_INTERVAL_MS") {
		t.Fatalf("got %v", err)
	}
}

func mergeSet(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"proccess.roles", "process.roles", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}
