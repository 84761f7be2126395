package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var testTopicID = []byte("0123456789abcdef")

func testRecords() []*metadatapb.Record {
	value := "3600000"
	return []*metadatapb.Record{
		{Record: &metadatapb.Record_Topic{Topic: &metadatapb.TopicRecord{Name: "orders", TopicId: testTopicID}}},
		{Record: &metadatapb.Record_Partition{Partition: &metadatapb.PartitionRecord{PartitionId: 0, TopicId: testTopicID, Replicas: []int32{1, 2}, Isr: []int32{1, 2}, Leader: 1}}},
		{Record: &metadatapb.Record_Config{Config: &metadatapb.ConfigRecord{ResourceName: "orders", Name: "retention.ms", Value: &value}}},
	}
}

func batchEntry(t *testing.T, index, term uint64, recs ...*metadatapb.Record) *raftpb.Entry {
	t.Helper()
	data, err := proto.Marshal(&metadatapb.RecordBatch{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: new(raftpb.EntryNormal), Data: data}
}

// runDump runs `log dump path` as kraftctl would and returns its output lines, parsed.
func runDump(t *testing.T, path string) ([]map[string]any, error) {
	t.Helper()
	cmd := logCommand()
	// As under kraftctl's root: main prints the error, not cobra.
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"dump", path})
	err := cmd.Execute()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if jerr := json.Unmarshal([]byte(l), &m); jerr != nil {
			t.Fatalf("line %q is not JSON: %v", l, jerr)
		}
		lines = append(lines, m)
	}
	return lines, err
}

type wantLine struct {
	offset, epoch float64
	typ           string
	committed     bool
}

func checkLines(t *testing.T, got []map[string]any, want []wantLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		_, hasCommitted := g["committed"]
		if g["offset"] != w.offset || g["epoch"] != w.epoch || g["type"] != w.typ || hasCommitted == w.committed {
			t.Errorf("line %d = %v, want offset %v epoch %v type %s committed %v", i, g, w.offset, w.epoch, w.typ, w.committed)
		}
	}
}

func TestLogDumpWAL(t *testing.T) {
	logDir := t.TempDir()
	d, _, err := metadatalog.OpenWAL(metadatalog.WALDir(logDir))
	if err != nil {
		t.Fatal(err)
	}
	// The writer stays open, holding the WAL's lock, as a running node does.
	defer d.Close()
	recs := testRecords()
	ents := []*raftpb.Entry{
		{Index: new(uint64(1)), Term: new(uint64(1)), Type: new(raftpb.EntryNormal)}, // a new leader's empty entry
		batchEntry(t, 2, 1, recs[0], recs[1]),
		batchEntry(t, 3, 2, recs[2]),
	}
	if err := d.Save(&raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(2))}, ents, true); err != nil {
		t.Fatal(err)
	}

	want := []wantLine{
		{1, 1, "RaftEntry", true},
		{2, 1, "TopicRecord", true},
		{2, 1, "PartitionRecord", true},
		{3, 2, "ConfigRecord", false},
	}
	// Both the metadata.log.dir and the WAL directory itself are accepted.
	for _, path := range []string{logDir, metadatalog.WALDir(logDir)} {
		lines, err := runDump(t, path)
		if err != nil {
			t.Fatalf("dump %s: %v", path, err)
		}
		checkLines(t, lines, want)
		if lines[0]["entryType"] != "Empty" {
			t.Errorf("empty entry: %v", lines[0])
		}
		topic := lines[1]["data"].(map[string]any)
		if topic["name"] != "orders" || topic["topic_id"] != base64.StdEncoding.EncodeToString(testTopicID) {
			t.Errorf("topic data = %v", topic)
		}
		part := lines[2]["data"].(map[string]any)
		if part["partition_id"] != 0.0 || part["leader"] != 1.0 {
			t.Errorf("partition data = %v (partition 0 must be printed)", part)
		}
		if cfg := lines[3]["data"].(map[string]any); cfg["name"] != "retention.ms" || cfg["value"] != "3600000" {
			t.Errorf("config data = %v", cfg)
		}
	}
}

func TestLogDumpSnapshot(t *testing.T) {
	path, err := snapshot.Write(t.TempDir(), snapshot.Header{Offset: 42, Epoch: 3, Voters: []uint64{1, 2, 3}, MetadataVersion: 21, ClusterID: "MkU3OEVBNTcwNTJENDM2Qk"}, testRecords())
	if err != nil {
		t.Fatal(err)
	}
	lines, err := runDump(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("no output")
	}
	h := lines[0]
	if h["type"] != "SnapshotHeader" || h["offset"] != 42.0 || h["epoch"] != 3.0 || h["recordCount"] != 3.0 || h["metadataVersion"] != 21.0 || h["clusterId"] != "MkU3OEVBNTcwNTJENDM2Qk" {
		t.Errorf("header line = %v", h)
	}
	checkLines(t, lines[1:], []wantLine{{42, 3, "TopicRecord", true}, {42, 3, "PartitionRecord", true}, {42, 3, "ConfigRecord", true}})
	if got := lines[1]["data"].(map[string]any)["name"]; got != "orders" {
		t.Errorf("topic name = %v", got)
	}
}

func TestLogDumpErrors(t *testing.T) {
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, snapshot.FileName(5, 1))
	path, err := snapshot.Write(tmp, snapshot.Header{Offset: 5, Epoch: 1}, testRecords())
	if err != nil || path != corrupt {
		t.Fatalf("snapshot.Write = %s, %v", path, err)
	}
	data, err := os.ReadFile(corrupt)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(corrupt, data, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()

	for _, tc := range []struct{ name, path, says string }{
		{"missing path", filepath.Join(tmp, "nope"), "does not exist"},
		{"empty directory", empty, "no metadata log"},
		{"corrupt snapshot", corrupt, "snapshot " + corrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := runDump(t, tc.path)
			if err == nil {
				t.Fatalf("dump succeeded with %d lines", len(lines))
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.says) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, tc.path, tc.says)
			}
		})
	}
}

func TestLogDumpBootstrap(t *testing.T) {
	dir := t.TempDir()
	mp := metadatalog.MetaProperties{ClusterID: metadatalog.RandomUUID(), NodeID: 1}
	if err := metadatalog.Format(dir, mp, metadatalog.BootstrapRecords(metadatalog.LatestMetadataVersion), false); err != nil {
		t.Fatal(err)
	}
	lines, err := runDump(t, filepath.Join(dir, bootstrapFileName))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0]["type"] != "Bootstrap" || lines[1]["type"] != "FeatureLevelRecord" {
		t.Fatalf("lines = %v", lines)
	}
	if got := lines[1]["data"].(map[string]any)["name"]; got != metadatalog.MetadataVersionFeature {
		t.Errorf("feature = %v", got)
	}
}
