package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kraftgo/kraft/api/kafkaserver"
	"github.com/kraftgo/kraft/api/logfetch"
	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/cmd/internal/config"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/protobuf/proto"
)

// The shell's test image: two brokers, three topics (big has 12 partitions, so that 10 and 11 sort
// after 9), configs on a topic, a broker and the cluster default, configs that are gone again (a
// deleted one, and those of a deleted topic), an ACL and a client quota.
var (
	shellOrdersID = [16]byte{0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	shellAuditID  = [16]byte{0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	shellBigID    = [16]byte{0x30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	shellGoneID   = [16]byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	shellACLID    = [16]byte{0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
)

const shellClusterID = "MkU3OEVBNTcwNTJENDM2Qk"

func shellRecords() [][]*metadatapb.Record {
	str := func(s string) *string { return &s }
	broker := func(id int32, epoch int64, rack string, fenced bool) *metadatapb.Record {
		return &metadatapb.Record{Record: &metadatapb.Record_RegisterBroker{RegisterBroker: &metadatapb.RegisterBrokerRecord{
			BrokerId: id, BrokerEpoch: epoch, IncarnationId: []byte("0123456789abcdef"),
			Endpoints: []*metadatapb.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9090 + id}},
			Features:  []*metadatapb.FeatureRange{{Name: metadatalog.MetadataVersionFeature, MinSupportedVersion: 1, MaxSupportedVersion: 4}},
			Rack:      rack, Fenced: fenced,
		}}}
	}
	topic := func(name string, id [16]byte) *metadatapb.Record {
		return &metadatapb.Record{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: name, TopicId: id[:]}}}
	}
	part := func(id [16]byte, p int32, replicas []int32, leader int32) *metadatapb.Record {
		return &metadatapb.Record{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{
			PartitionId: p, TopicId: id[:], Replicas: replicas, Isr: slices.Clone(replicas), Leader: leader, LeaderEpoch: 3, PartitionEpoch: 5,
		}}}
	}
	cfg := func(t metadatapb.ConfigResourceType, resource, name string, value *string) *metadatapb.Record {
		return &metadatapb.Record{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{ResourceType: t, ResourceName: resource, Name: name, Value: value}}}
	}
	const topicT, brokerT = metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, metadatapb.ConfigResourceType_CONFIG_RESOURCE_BROKER
	first := []*metadatapb.Record{
		{Record: &metadatapb.Record_FeatureLevel{FeatureLevel: &metadatapb.FeatureLevelRecord{Name: metadatalog.MetadataVersionFeature, FeatureLevel: 4}}},
		broker(1, 10, "rack-a", false),
		broker(2, 11, "", true),
		topic("orders", shellOrdersID),
		part(shellOrdersID, 0, []int32{1, 2}, 1),
		part(shellOrdersID, 1, []int32{2, 1}, 2),
		topic("audit", shellAuditID),
		part(shellAuditID, 0, []int32{2}, 2),
		topic("big", shellBigID),
	}
	for p := range int32(12) {
		first = append(first, part(shellBigID, p, []int32{1}, 1))
	}
	first = append(first,
		topic("gone", shellGoneID),
		part(shellGoneID, 0, []int32{1}, 1),
		cfg(topicT, "orders", "retention.ms", str("3600000")),
		cfg(topicT, "orders", "cleanup.policy", str("compact")),
		cfg(topicT, "gone", "retention.ms", str("1")),
		cfg(brokerT, "1", "log.retention.ms", str("1000")),
		cfg(brokerT, "2", "log.retention.ms", str("2000")),
		cfg(brokerT, "", "log.retention.ms", str("5000")),
		&metadatapb.Record{Record: &metadatapb.Record_AccessControlEntry{AccessControlEntry: &metadatapb.AccessControlEntryRecord{
			Id: shellACLID[:], ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, PermissionType: 3}}},
		metadatalog.QuotaRecord([]metadatalog.QuotaEntityPart{{Type: "user", Name: str("alice")}}, "producer_byte_rate", 1024, false),
	)
	// A second batch: the deleted config and topic must leave no directory behind.
	second := []*metadatapb.Record{
		cfg(brokerT, "2", "log.retention.ms", nil),
		{Record: &metadatapb.Record_RemoveTopic{RemoveTopic: &metadatapb.RemoveTopicRecord{TopicId: shellGoneID[:]}}},
		{Record: &metadatapb.Record_PartitionChange{PartitionChange: &metadatapb.PartitionChangeRecord{
			TopicId: shellOrdersID[:], PartitionId: 1, Isr: &metadatapb.Int32List{Values: []int32{2}}, AddingReplicas: &metadatapb.Int32List{Values: []int32{3}},
		}}},
	}
	return [][]*metadatapb.Record{first, second}
}

func shellTestImage(t *testing.T) *metadatalog.Image {
	t.Helper()
	img := metadatalog.EmptyImage()
	for i, recs := range shellRecords() {
		var err error
		if img, err = img.Apply(uint64(41+i), 3, &metadatapb.RecordBatch{Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// shellSnapshot writes the test image as a snapshot file and returns its path.
func shellSnapshot(t *testing.T) string {
	t.Helper()
	_, path, err := metadatalog.WriteSnapshot(t.TempDir(), shellTestImage(t), shellClusterID, []uint64{1, 2, 3}, 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// runShell runs `shell args...` as kraftctl would and returns what it printed.
func runShell(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := shellCommand()
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// shellOK runs commands against the snapshot and requires success.
func shellOK(t *testing.T, snap, commands string) string {
	t.Helper()
	out, errOut, err := runShell(t, "", "--snapshot", snap, "-c", commands)
	if err != nil || errOut != "" {
		t.Fatalf("shell -c %q: err %v, stderr %q, stdout %q", commands, err, errOut, out)
	}
	return out
}

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }

func TestShellLs(t *testing.T) {
	snap := shellSnapshot(t)
	orders, audit, big := kafkaUUID(shellOrdersID), kafkaUUID(shellAuditID), kafkaUUID(shellBigID)
	byID := []string{orders, audit, big}
	slices.Sort(byID)
	bigList := []string{"id", "name"}
	for p := range 12 {
		bigList = append(bigList, strconv.Itoa(p))
	}
	for _, tc := range []struct{ commands, want string }{
		{"ls", lines("image")},
		{"ls /", lines("image")},
		{"ls /image", lines("acls", "clientQuotas", "cluster", "configs", "features", "provenance", "topics")},
		{"ls /image/acls/byId", lines(kafkaUUID(shellACLID))},
		{"cat /image/acls/byId/" + kafkaUUID(shellACLID), "{\n  \"resourceType\": \"TOPIC\",\n  \"resourceName\": \"orders\",\n  \"patternType\": \"LITERAL\",\n  \"principal\": \"User:alice\",\n  \"host\": \"*\",\n  \"operation\": \"READ\",\n  \"permissionType\": \"ALLOW\"\n}\n"},
		{"ls /image/clientQuotas", lines("{user=alice}")},
		{"cat /image/clientQuotas/{user=alice}/producer_byte_rate", lines("1024")},
		{"ls /image/features", lines("metadata.version")},
		{"ls /image/cluster", lines("brokers")},
		{"ls /image/cluster/brokers", lines("1", "2")},
		{"ls /image/cluster/brokers/2", lines("registration")},
		{"ls /image/topics", lines("byId", "byName")},
		{"ls /image/topics/byName", lines("audit", "big", "orders")},
		{"ls /image/topics/byId", lines(byID...)},
		{"ls /image/topics/byName/orders", lines("id", "name", "0", "1")},
		{"ls /image/topics/byId/" + orders, lines("id", "name", "0", "1")},
		{"ls /image/topics/byName/big", lines(bigList...)},
		{"ls /image/configs", lines("broker", "topic")},
		{"ls /image/configs/topic", lines("orders")},
		{"ls /image/configs/broker", lines("<default>", "1")},
		{"ls /image/configs/topic/orders", lines("cleanup.policy", "retention.ms")},
		{"ls /image/configs/broker/<default>", lines("log.retention.ms")},
		// A file lists as itself; several paths list under headers.
		{"ls /image/provenance", lines("/image/provenance")},
		{"ls /image/cluster /image/topics", lines("/image/cluster:", "brokers", "", "/image/topics:", "byId", "byName")},
		{"ls -l /image/topics/byName", lines("d  3 audit", "d 14 big", "d  4 orders")},
		{"ls -l /image/topics/byName/orders/name", lines("- 7 /image/topics/byName/orders/name")},
		{"ls -l /image/configs/broker/1", lines("- 5 log.retention.ms")},
	} {
		if got := shellOK(t, snap, tc.commands); got != tc.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.commands, got, tc.want)
		}
	}
}

func TestShellPaths(t *testing.T) {
	snap := shellSnapshot(t)
	for _, tc := range []struct{ commands, want string }{
		{"pwd", lines("/")},
		{"cd /image/topics; pwd", lines("/image/topics")},
		{"cd image; cd topics/byName/; pwd; ls", lines("/image/topics/byName", "audit", "big", "orders")},
		{"cd /image/topics/byName/orders; cd ..; pwd", lines("/image/topics/byName")},
		{"cd /image/topics/byName/orders; cd ../../../cluster/./brokers; pwd; ls", lines("/image/cluster/brokers", "1", "2")},
		{"cd /image/topics; cd; pwd", lines("/")},
		{"cd /..; pwd", lines("/")},
		{"cd //image//features/; pwd", lines("/image/features")},
		{"cd /image/topics/byName/orders; cat name id", lines("orders", kafkaUUID(shellOrdersID))},
		{"cd /image/configs/topic; cat orders/retention.ms ../broker/<default>/log.retention.ms", lines("3600000", "5000")},
		{"cat /image/features/metadata.version", lines("4 (1.1-IV1)")},
		{"cat /image/topics/byId/" + kafkaUUID(shellAuditID) + "/name", lines("audit")},
		{"exit; pwd", ""},
		{"", ""},
		{" ; ;pwd;", lines("/")},
	} {
		if got := shellOK(t, snap, tc.commands); got != tc.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tc.commands, got, tc.want)
		}
	}
}

func TestShellCatJSON(t *testing.T) {
	snap := shellSnapshot(t)
	var p struct {
		Replicas, ISR, RemovingReplicas, AddingReplicas []int32
		Leader, LeaderEpoch, PartitionEpoch             int32
	}
	out := shellOK(t, snap, "cat /image/topics/byName/orders/1")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("partition file is not JSON: %v\n%s", err, out)
	}
	// The PartitionChange of the second batch: ISR shrunk, a replica being added, the epoch bumped.
	if !slices.Equal(p.Replicas, []int32{2, 1}) || !slices.Equal(p.ISR, []int32{2}) || !slices.Equal(p.AddingReplicas, []int32{3}) ||
		p.RemovingReplicas == nil || len(p.RemovingReplicas) != 0 || p.Leader != 2 || p.LeaderEpoch != 3 || p.PartitionEpoch != 6 {
		t.Errorf("partition orders-1: %+v\n%s", p, out)
	}
	wantRaw := lines(`{`,
		`  "replicas": [1,2],`,
		`  "isr": [1,2],`,
		`  "removingReplicas": [],`,
		`  "addingReplicas": [],`,
		`  "leader": 1,`,
		`  "leaderEpoch": 3,`,
		`  "partitionEpoch": 5`,
		`}`)
	if got := shellOK(t, snap, "cat /image/topics/byId/"+kafkaUUID(shellOrdersID)+"/0"); got != wantRaw {
		t.Errorf("partition orders-0 by id:\n%s\nwant\n%s", got, wantRaw)
	}

	var b map[string]any
	out = shellOK(t, snap, "cat /image/cluster/brokers/1/registration")
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatalf("registration is not JSON: %v\n%s", err, out)
	}
	listeners, _ := b["listeners"].([]any)
	features, _ := b["features"].([]any)
	if b["id"] != 1.0 || b["epoch"] != 10.0 || b["incarnationId"] != "MDEyMzQ1Njc4OWFiY2RlZg" || b["rack"] != "rack-a" ||
		b["fenced"] != false || b["inControlledShutdown"] != false || len(listeners) != 1 || len(features) != 1 {
		t.Errorf("broker 1 registration: %v", b)
	}
	if l, _ := listeners[0].(map[string]any); l["name"] != "PLAINTEXT" || l["host"] != "127.0.0.1" || l["port"] != 9091.0 || l["securityProtocol"] != "PLAINTEXT" {
		t.Errorf("broker 1 listener: %v", l)
	}
	if f, _ := features[0].(map[string]any); f["name"] != "metadata.version" || f["minSupportedVersion"] != 1.0 || f["maxSupportedVersion"] != 4.0 {
		t.Errorf("broker 1 feature: %v", f)
	}
	out = shellOK(t, snap, "cat /image/cluster/brokers/2/registration")
	if !strings.Contains(out, `"rack": null,`) || !strings.Contains(out, `"fenced": true,`) {
		t.Errorf("broker 2 (no rack, fenced):\n%s", out)
	}

	var prov struct {
		Source        string
		Offset, Epoch uint64
		Snapshot      struct {
			Path, ClusterID            string
			Offset, Epoch, RecordCount uint64
			MetadataVersion            int32
			CreateTimeMs               int64
			Voters                     []uint64
		}
	}
	out = shellOK(t, snap, "cat /image/provenance")
	if err := json.Unmarshal([]byte(out), &prov); err != nil {
		t.Fatalf("provenance is not JSON: %v\n%s", err, out)
	}
	if s := prov.Snapshot; prov.Source != "snapshot" || prov.Offset != 42 || prov.Epoch != 3 || s.Path != snap || s.ClusterID != shellClusterID ||
		s.Offset != 42 || s.MetadataVersion != 4 || s.RecordCount == 0 || s.CreateTimeMs != 1700000000000 || !slices.Equal(s.Voters, []uint64{1, 2, 3}) {
		t.Errorf("provenance: %+v\n%s", prov, out)
	}
}

func TestShellTreeAndFind(t *testing.T) {
	snap := shellSnapshot(t)
	wantTree := lines(
		"/image/cluster",
		"└── brokers/",
		"    ├── 1/",
		"    │   └── registration",
		"    └── 2/",
		"        └── registration",
	)
	if got := shellOK(t, snap, "tree /image/cluster"); got != wantTree {
		t.Errorf("tree /image/cluster:\n%s\nwant\n%s", got, wantTree)
	}
	wantTree = lines(
		"/image/configs",
		"├── broker/",
		"│   ├── <default>/",
		"│   │   └── log.retention.ms",
		"│   └── 1/",
		"│       └── log.retention.ms",
		"└── topic/",
		"    └── orders/",
		"        ├── cleanup.policy",
		"        └── retention.ms",
	)
	if got := shellOK(t, snap, "cd /image/configs; tree"); got != wantTree {
		t.Errorf("tree of /image/configs:\n%s\nwant\n%s", got, wantTree)
	}
	if got := shellOK(t, snap, "tree /image/provenance"); got != lines("/image/provenance") {
		t.Errorf("tree of a file: %q", got)
	}

	wantFind := lines(
		"/image/topics/byName/orders",
		"/image/topics/byName/orders/id",
		"/image/topics/byName/orders/name",
		"/image/topics/byName/orders/0",
		"/image/topics/byName/orders/1",
	)
	if got := shellOK(t, snap, "cd /image/topics/byName; find orders"); got != wantFind {
		t.Errorf("find orders:\n%s\nwant\n%s", got, wantFind)
	}
	// The whole tree: every path once, every directory before what it holds, and the same every time.
	all := shellOK(t, snap, "find /")
	paths := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			t.Errorf("find / printed %s twice", p)
		}
		if p != "/" && !seen[filepath.Dir(p)] {
			t.Errorf("find / printed %s before its directory", p)
		}
		seen[p] = true
	}
	for _, want := range []string{"/image/topics/byName/big/11", "/image/topics/byId/" + kafkaUUID(shellBigID) + "/11", "/image/features/metadata.version", "/image/provenance"} {
		if !seen[want] {
			t.Errorf("find / does not print %s", want)
		}
	}
	if i, j := slices.Index(paths, "/image/topics/byName/big/9"), slices.Index(paths, "/image/topics/byName/big/10"); i < 0 || j != i+1 {
		t.Errorf("find / prints big/9 at %d and big/10 at %d: partitions are not in numeric order", i, j)
	}
	if again := shellOK(t, snap, "find /"); again != all {
		t.Error("find / printed something else the second time")
	}
	// Each tree line is one path of find.
	if tree := shellOK(t, snap, "tree /"); strings.Count(tree, "\n") != len(paths) {
		t.Errorf("tree / has %d lines, find / %d paths", strings.Count(tree, "\n"), len(paths))
	}
}

func TestShellCommandErrors(t *testing.T) {
	snap := shellSnapshot(t)
	for _, tc := range []struct{ commands, stdout, err string }{
		{"ls /image/nope", "", "shell: ls: /image/nope: no such file or directory"},
		{"ls nope/..", lines("image"), ""}, // lexical, as Kafka's shell and Go's path.Clean are
		{"cat /image/topics/byName/orders", "", "shell: cat: /image/topics/byName/orders: is a directory"},
		{"cat /image/topics/byName/orders/7", "", "shell: cat: /image/topics/byName/orders/7: no such file or directory"},
		{"cat /image/topics/byName/orders/01", "", "shell: cat: /image/topics/byName/orders/01: no such file or directory"},
		{"cat /image/topics/byId/nope/name", "", "shell: cat: /image/topics/byId/nope/name: no such file or directory"},
		{"cat /image/cluster/brokers/3/registration", "", "shell: cat: /image/cluster/brokers/3/registration: no such file or directory"},
		{"cat /image/configs/broker/2/log.retention.ms", "", "shell: cat: /image/configs/broker/2/log.retention.ms: no such file or directory"},
		{"cat /image/configs/topic/gone/retention.ms", "", "shell: cat: /image/configs/topic/gone/retention.ms: no such file or directory"},
		{"cat /image/provenance/", "", "shell: cat: /image/provenance/: not a directory"},
		{"cat /image/provenance/x", "", "shell: cat: /image/provenance/x: not a directory"},
		{"cat", "", "shell: cat: give the path of a file"},
		{"cd /image/features/metadata.version", "", "shell: cd: /image/features/metadata.version: not a directory"},
		{"cd /image/nope", "", "shell: cd: /image/nope: no such file or directory"},
		{"cd a b", "", "shell: cd: too many arguments"},
		{"pwd x", "", "shell: pwd: takes no arguments"},
		{"tree a b", "", "shell: tree: takes at most one path"},
		{"find /image/nope", "", "shell: find: /image/nope: no such file or directory"},
		{"ls -a", "", "shell: ls: unknown option -a (only -l is known)"},
		{"frobnicate /", "", "shell: frobnicate: unknown command (help lists the commands)"},
		// The first failure stops the commands, after what came before printed.
		{"pwd; cd /image/nope; pwd", lines("/"), "shell: cd: /image/nope: no such file or directory"},
		// cat prints what it could before the failure.
		{"cat /image/topics/byName/orders/name /nope /image/topics/byName/audit/name", lines("orders"), "shell: cat: /nope: no such file or directory"},
	} {
		out, errOut, err := runShell(t, "", "--snapshot", snap, "-c", tc.commands)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if out != tc.stdout || gotErr != tc.err || errOut != "" {
			t.Errorf("%s: stdout %q, error %q, stderr %q; want stdout %q, error %q", tc.commands, out, gotErr, errOut, tc.stdout, tc.err)
		}
		var cerr *config.Error
		if errors.As(err, &cerr) {
			t.Errorf("%s: a failed shell command is not a usage error (exit 2): %v", tc.commands, err)
		}
	}
}

func TestShellHelp(t *testing.T) {
	out := shellOK(t, shellSnapshot(t), "help")
	for _, c := range []string{"cat PATH...", "cd [PATH]", "exit", "find [PATH]", "help", "ls [-l] [PATH...]", "pwd", "tree [PATH]"} {
		if !strings.Contains(out, "\n"+c+" ") && !strings.HasPrefix(out, c+" ") {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
	if n := strings.Count(out, "\n"); n != len(shellCommandHelp) {
		t.Errorf("help prints %d lines for %d commands:\n%s", n, len(shellCommandHelp), out)
	}
}

func TestShellSourceErrors(t *testing.T) {
	snap := shellSnapshot(t)
	for _, args := range [][]string{
		{"-c", "ls"},
		{"--snapshot", snap, "--bootstrap-server", "127.0.0.1:1"},
		{"--bootstrap-server", "127.0.0.1:1", "--bootstrap-controller", "127.0.0.1:2"},
		{"--snapshot", snap, "--no-such-flag"},
		{"--snapshot", snap, "stray"},
	} {
		_, _, err := runShell(t, "", args...)
		var cerr *config.Error
		if !errors.As(err, &cerr) {
			t.Errorf("shell %v: %v, want a usage error (exit 2)", args, err)
		}
	}
	_, _, err := runShell(t, "", "-c", "ls")
	if err == nil || !strings.Contains(err.Error(), "--snapshot") || !strings.Contains(err.Error(), "--bootstrap-server") || !strings.Contains(err.Error(), "--bootstrap-controller") {
		t.Errorf("no source: %v, want the three flags named", err)
	}

	// A damaged snapshot, and one that is not there: one line naming the file, not a usage error.
	data, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), filepath.Base(snap))
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(damaged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), filepath.Base(snap))
	notSnapshot := filepath.Join(t.TempDir(), filepath.Base(snap))
	if err := os.WriteFile(notSnapshot, []byte(strings.Repeat("not a snapshot\n", 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{damaged, missing, notSnapshot} {
		out, _, err := runShell(t, "", "--snapshot", path, "-c", "ls")
		var cerr *config.Error
		if err == nil || errors.As(err, &cerr) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") || out != "" {
			t.Errorf("shell --snapshot %s: stdout %q, error %v; want one line naming the file", path, out, err)
		}
	}
}

func TestShellInput(t *testing.T) {
	snap := shellSnapshot(t)
	si, err := loadSnapshotImage(snap)
	if err != nil {
		t.Fatal(err)
	}
	session := "cd /image\nls nope; pwd\ncd topics\ncat byName/audit/name\nexit\npwd\n"

	// From a terminal: prompts, errors on stderr, and the session goes on until exit.
	var out bytes.Buffer
	var errOut strings.Builder
	w := bufio.NewWriter(&out)
	err = runShellInput(newShell(si, w), strings.NewReader(session), w, &errOut, true)
	w.Flush()
	want := "kraftctl:/> kraftctl:/image> /image\nkraftctl:/image> kraftctl:/image/topics> audit\nkraftctl:/image/topics> "
	if err != nil || out.String() != want || errOut.String() != "ls: nope: no such file or directory\n" {
		t.Errorf("terminal session: err %v\nstdout %q\nwant   %q\nstderr %q", err, out.String(), want, errOut.String())
	}
	// The end of the input ends the session, on a fresh line.
	out.Reset()
	err = runShellInput(newShell(si, w), strings.NewReader("pwd"), w, &errOut, true)
	w.Flush()
	if err != nil || out.String() != "kraftctl:/> /\nkraftctl:/> \n" {
		t.Errorf("terminal session ended by EOF: err %v, stdout %q", err, out.String())
	}

	// From a pipe, through the command: no prompt, and the first failure ends it as with -c.
	stdout, stderr, err := runShell(t, session, "--snapshot", snap)
	if stdout != "" || stderr != "" || err == nil || err.Error() != "shell: ls: nope: no such file or directory" {
		t.Errorf("piped session: stdout %q, stderr %q, err %v", stdout, stderr, err)
	}
	stdout, _, err = runShell(t, "cd /image/topics/byName\nls\nexit\nls /nope\n", "--snapshot", snap)
	if err != nil || stdout != lines("audit", "big", "orders") {
		t.Errorf("piped session ended by exit: stdout %q, err %v", stdout, err)
	}
}

// The live loader applies what a Fetch answer carries as a broker does.
func TestShellLogLoaderApply(t *testing.T) {
	var entries []logfetch.Entry
	for i, recs := range shellRecords() {
		data, err := proto.Marshal(&metadatapb.RecordBatch{Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, logfetch.Entry{Offset: uint64(1 + i), Epoch: 2, Data: data})
	}
	entries = append(entries, logfetch.Entry{Offset: 3, Epoch: 3}) // a new leader's empty entry
	l := &logLoader{}
	part := &kmsg.FetchResponseTopicPartition{RecordBatches: logfetch.AppendEntries(nil, entries)}
	img, err := l.apply(metadatalog.EmptyImage(), part)
	if err != nil {
		t.Fatal(err)
	}
	if img.Offset != 3 || img.Epoch != 3 || img.PartitionCount() != 15 {
		t.Errorf("image at offset %d epoch %d with %d partitions, want 3, 3, 15", img.Offset, img.Epoch, img.PartitionCount())
	}
	var sb strings.Builder
	sh := newShell(&shellImage{img: img}, &sb)
	if err := sh.exec("ls /image/configs/broker"); err != nil || sb.String() != lines("<default>", "1") {
		t.Errorf("broker config resources from the log: %q, %v", sb.String(), err)
	}
	// Entries already applied are skipped; a gap is refused.
	again, err := l.apply(img, part)
	if err != nil || again.Offset != 3 {
		t.Errorf("re-applying: offset %d, %v", again.Offset, err)
	}
	gap := &kmsg.FetchResponseTopicPartition{RecordBatches: logfetch.AppendEntries(nil, []logfetch.Entry{{Offset: 5, Epoch: 3}})}
	if _, err := l.apply(img, gap); err == nil || !strings.Contains(err.Error(), "skips from offset 3 to 5") {
		t.Errorf("a gap: %v", err)
	}

	req := l.fetchRequest(img)
	if p := req.Topics[0].Partitions[0]; req.ReplicaID != -1 || req.MinBytes != 0 || req.MaxWaitMillis != 0 || req.ClusterID != nil ||
		req.Topics[0].Topic != "__cluster_metadata" || p.Partition != 0 || p.FetchOffset != 4 || p.LastFetchedEpoch != 3 {
		t.Errorf("fetch request: %+v", req)
	}
}

// fakeShellController is a controller as the live shell sees it: the leader serves a snapshot (the
// test image, offset 42) and the log after it; a standby refuses fetches, naming the leader, as at
// metadata.version 1.0-IV0.
type fakeShellController struct {
	id, leader int32
	addrs      map[int32]string // every controller's address, for DescribeQuorum
	snapDir    string
	entries    []logfetch.Entry // after the snapshot, up to the high watermark
	hw         int64

	mu struct {
		sync.Mutex
		fetchVersions []int16
		fetchOffsets  []int64
		snapshotReqs  int
		clusterIDs    []string
	}
}

func (f *fakeShellController) Handle(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		off := r.Topics[0].Partitions[0].FetchOffset
		f.mu.fetchVersions = append(f.mu.fetchVersions, r.Version)
		f.mu.fetchOffsets = append(f.mu.fetchOffsets, off)
		rp := kmsg.NewFetchResponseTopicPartition()
		switch {
		case f.id != f.leader:
			rp.ErrorCode, rp.HighWatermark = kerr.NotLeaderForPartition.Code, -1
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = f.leader, 3
		case off <= 42:
			rp.HighWatermark, rp.LogStartOffset = f.hw, 43
			rp.SnapshotID.EndOffset, rp.SnapshotID.Epoch = 42, 3
		default:
			rp.HighWatermark, rp.LogStartOffset = f.hw, 43
			var send []logfetch.Entry
			for _, e := range f.entries {
				// One entry per answer, so the shell must fetch again until the high watermark.
				if int64(e.Offset) >= off && len(send) == 0 {
					send = append(send, e)
				}
			}
			rp.RecordBatches = logfetch.AppendEntries(nil, send)
		}
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil
	case *kmsg.FetchSnapshotRequest:
		f.mu.snapshotReqs++
		f.mu.clusterIDs = append(f.mu.clusterIDs, *r.ClusterID)
		resp := r.ResponseKind().(*kmsg.FetchSnapshotResponse)
		rt := kmsg.NewFetchSnapshotResponseTopic()
		rt.Topic = "__cluster_metadata"
		// Small chunks, so the download takes several requests.
		rt.Partitions = append(rt.Partitions, snapshot.ServeChunk(f.snapDir, &r.Topics[0].Partitions[0], 512))
		resp.Topics = append(resp.Topics, rt)
		return resp, nil
	case *kmsg.DescribeClusterRequest:
		resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
		resp.ClusterID = shellClusterID
		return resp, nil
	case *kmsg.DescribeQuorumRequest:
		resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
		p := kmsg.NewDescribeQuorumResponseTopicPartition()
		p.LeaderID, p.LeaderEpoch, p.HighWatermark = f.leader, 3, f.hw
		for _, id := range slices.Sorted(maps.Keys(f.addrs)) {
			v := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
			v.ReplicaID = id
			p.CurrentVoters = append(p.CurrentVoters, v)
			host, port, _ := net.SplitHostPort(f.addrs[id])
			pn, _ := strconv.Atoi(port)
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = id
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = "CONTROLLER", host, uint16(pn)
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = "__cluster_metadata"
		rt.Partitions = append(rt.Partitions, p)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected %T", req)
}

func TestShellLiveSnapshotAndRedirect(t *testing.T) {
	snapDir := filepath.Dir(shellSnapshot(t))
	str := func(s string) *string { return &s }
	lateID := [16]byte{0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	data, err := proto.Marshal(&metadatapb.RecordBatch{Records: []*metadatapb.Record{
		{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: "late", TopicId: lateID[:]}}},
		{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{TopicId: lateID[:], Replicas: []int32{1}, Isr: []int32{1}, Leader: 1}}},
		{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{ResourceType: metadatapb.ConfigResourceType_CONFIG_RESOURCE_TOPIC, ResourceName: "late", Name: "retention.ms", Value: str("7")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	entries := []logfetch.Entry{{Offset: 43, Epoch: 4}, {Offset: 44, Epoch: 4, Data: data}}

	addrs := map[int32]string{}
	fakes := map[int32]*fakeShellController{}
	for _, id := range []int32{1, 2} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[id] = ln.Addr().String()
		f := &fakeShellController{id: id, leader: 2, addrs: addrs, snapDir: snapDir, entries: entries, hw: 44}
		fakes[id] = f
		srv := kafkaserver.Serve(kafkaserver.Options{
			Listener: ln,
			Handler:  f,
			APIs: map[int16]kafkaserver.VersionRange{
				// Everything kmsg knows, so the test sees the shell cap Fetch at v12 itself.
				(&kmsg.FetchRequest{}).Key():           {Min: 4, Max: (&kmsg.FetchRequest{}).MaxVersion()},
				(&kmsg.FetchSnapshotRequest{}).Key():   {Min: 0, Max: (&kmsg.FetchSnapshotRequest{}).MaxVersion()},
				(&kmsg.DescribeClusterRequest{}).Key(): {Min: 0, Max: (&kmsg.DescribeClusterRequest{}).MaxVersion()},
				(&kmsg.DescribeQuorumRequest{}).Key():  {Min: 0, Max: 2},
			},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		t.Cleanup(func() { srv.Close() })
	}

	// To the standby: it refuses and names controller 2, whose address DescribeQuorum gives.
	out, errOut, err := runShell(t, "", "--bootstrap-controller", addrs[1], "--timeout", "20s", "-c",
		"ls /image/topics/byName; ls /image/configs/topic; cat /image/configs/topic/late/retention.ms; cat /image/provenance")
	if err != nil || errOut != "" {
		t.Fatalf("shell: %v\nstderr %s\nstdout %s", err, errOut, out)
	}
	head := lines("audit", "big", "late", "orders", "late", "orders", "7")
	if !strings.HasPrefix(out, head) {
		t.Fatalf("shell printed\n%s\nwant it to start with\n%s", out, head)
	}
	var prov struct {
		Source                       string
		Offset, Epoch, HighWatermark int64
		ClusterID                    string
		Snapshot                     struct {
			Path          string
			Offset, Epoch uint64
		}
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(out, head)), &prov); err != nil {
		t.Fatalf("provenance: %v\n%s", err, out)
	}
	if prov.Source != "controller 2 at "+addrs[2] || prov.Offset != 44 || prov.Epoch != 4 || prov.HighWatermark != 44 || prov.ClusterID != shellClusterID ||
		prov.Snapshot.Path != snapshot.FileName(42, 3) || prov.Snapshot.Offset != 42 || prov.Snapshot.Epoch != 3 {
		t.Errorf("provenance: %+v", prov)
	}

	leader := fakes[2]
	leader.mu.Lock()
	defer leader.mu.Unlock()
	if !slices.Equal(leader.mu.fetchOffsets, []int64{1, 43, 44}) {
		t.Errorf("the leader was asked for offsets %v, want 1 (answered with the snapshot), 43, 44", leader.mu.fetchOffsets)
	}
	for _, v := range leader.mu.fetchVersions {
		if v != shellFetchMaxVersion {
			t.Errorf("Fetch v%d, want v%d", v, shellFetchMaxVersion)
		}
	}
	if leader.mu.snapshotReqs < 2 || slices.ContainsFunc(leader.mu.clusterIDs, func(id string) bool { return id != shellClusterID }) {
		t.Errorf("%d FetchSnapshot requests with cluster ids %v, want several, all %s", leader.mu.snapshotReqs, leader.mu.clusterIDs, shellClusterID)
	}
	if f := fakes[1]; len(f.mu.fetchOffsets) != 1 {
		t.Errorf("the standby was asked %d times, want once", len(f.mu.fetchOffsets))
	}
}

// The shell reads the snapshot once: with the file gone, every directory still lists and every file
// still reads, from the image.
func TestShellNeedsTheSnapshotOnlyAtStart(t *testing.T) {
	snap := shellSnapshot(t)
	si, err := loadSnapshotImage(snap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(snap); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sh := newShell(si, &out)
	if err := sh.exec("ls /image/configs/topic"); err != nil || out.String() != "orders\n" {
		t.Errorf("listing after the file went: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := sh.exec("cat /image/configs/topic/orders/retention.ms"); err != nil || out.String() != "3600000\n" {
		t.Errorf("cat after the file went: %q, %v", out.String(), err)
	}
}
