package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/kraftgo/kraft/snapshot"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func logCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "log", Short: "Inspect metadata logs and snapshots (like kafka-dump-log.sh)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "dump PATH",
		Short: "Print every record of a metadata log directory, its WAL directory or a .checkpoint snapshot, one JSON object per line",
		Long: `Print every record of a metadata log or snapshot, one JSON object per line, as
kafka-dump-log.sh --cluster-metadata-decoder does:

  {"offset":12,"epoch":3,"type":"TopicRecord","data":{"name":"orders","topic_id":"..."}}

PATH is a node's metadata.log.dir, the WAL directory inside it, a snapshot file (*.checkpoint), or
the bootstrap.checkpoint that storage format writes (a {"type":"Bootstrap"} line, then its records
at offset 0, as they are not in the log yet).
data is the record in protobuf's JSON mapping with the .proto field names: bytes (topic ids) are
base64, and 64-bit integers are strings. A log entry that carries no records (Raft's own empty or
configuration entries) prints as {"offset":N,"epoch":E,"type":"RaftEntry","entryType":"Empty"}, so
no offset is skipped; entries past the commit offset, which Raft may still replace, carry
"committed":false. A snapshot first prints a {"type":"SnapshotHeader",...} line; its records carry
the snapshot's offset and epoch.

The log is only read: this works on the directory of a running node, and never repairs it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return dumpLog(cmd.OutOrStdout(), args[0])
		},
	})
	return cmd
}

// dumpLine is one line of output. Field order is the order people read them in.
type dumpLine struct {
	Offset    uint64          `json:"offset"`
	Epoch     uint64          `json:"epoch"`
	Committed *bool           `json:"committed,omitempty"` // set (false) only past the commit offset
	Type      string          `json:"type"`
	EntryType string          `json:"entryType,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

type snapshotHeaderLine struct {
	Type            string   `json:"type"`
	Path            string   `json:"path"`
	Offset          uint64   `json:"offset"`
	Epoch           uint64   `json:"epoch"`
	Voters          []uint64 `json:"voters"`
	Learners        []uint64 `json:"learners"`
	VotersOutgoing  []uint64 `json:"votersOutgoing,omitempty"`
	LearnersNext    []uint64 `json:"learnersNext,omitempty"`
	AutoLeave       bool     `json:"autoLeave,omitempty"`
	MetadataVersion int32    `json:"metadataVersion"`
	RecordCount     uint64   `json:"recordCount"`
	CreateTimeMs    int64    `json:"createTimeMs"`
	ClusterID       string   `json:"clusterId"`
}

func dumpLog(out io.Writer, path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist", path)
	}
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	switch {
	case fi.IsDir():
		return dumpWAL(enc, path)
	case strings.HasSuffix(path, ".wal"):
		return dumpWAL(enc, filepath.Dir(path))
	case filepath.Base(path) == bootstrapFileName:
		return dumpBootstrap(enc, path)
	default:
		return dumpSnapshot(enc, path)
	}
}

// dumpWAL accepts a metadata.log.dir (holding a wal/ directory) or the WAL directory itself.
func dumpWAL(enc *json.Encoder, dir string) error {
	walDir := metadatalog.WALDir(dir)
	if !hasWALSegments(walDir) {
		if !hasWALSegments(dir) {
			return fmt.Errorf("%s holds no metadata log: neither it nor %s has WAL segments (*.wal); give a metadata.log.dir, its wal directory or a .checkpoint file", dir, walDir)
		}
		walDir = dir
	}
	wc, err := metadatalog.ReadWAL(walDir)
	if err != nil {
		return err
	}
	notCommitted := false
	for _, e := range wc.Entries {
		line := dumpLine{Offset: e.Offset, Epoch: e.Epoch}
		if e.Offset > wc.Commit {
			line.Committed = &notCommitted
		}
		switch {
		case e.ConfChange:
			line.Type, line.EntryType = "RaftEntry", "EntryConfChange"
		case len(e.Data) == 0:
			line.Type, line.EntryType = "RaftEntry", "Empty"
		}
		if line.Type != "" {
			if err := enc.Encode(line); err != nil {
				return err
			}
			continue
		}
		var batch metadatapb.RecordBatch
		if err := proto.Unmarshal(e.Data, &batch); err != nil {
			return fmt.Errorf("%w: %s: the batch at offset %d does not decode: %v", metadatalog.ErrCorruptLog, walDir, e.Offset, err)
		}
		for _, r := range batch.GetRecords() {
			if err := encodeRecord(enc, line, r); err != nil {
				return fmt.Errorf("%s: offset %d: %w", walDir, e.Offset, err)
			}
		}
	}
	return nil
}

func hasWALSegments(dir string) bool {
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	return err == nil && len(segs) > 0
}

func dumpSnapshot(enc *json.Encoder, path string) error {
	h, records, err := snapshot.Read(path)
	if err != nil {
		return err
	}
	err = enc.Encode(snapshotHeaderLine{
		Type: "SnapshotHeader", Path: path, Offset: h.Offset, Epoch: h.Epoch,
		Voters: nonNil(h.Voters), Learners: nonNil(h.Learners), VotersOutgoing: h.VotersOutgoing, LearnersNext: h.LearnersNext,
		AutoLeave: h.AutoLeave, MetadataVersion: h.MetadataVersion, RecordCount: h.RecordCount,
		CreateTimeMs: h.CreateTimeMs, ClusterID: h.ClusterID,
	})
	if err != nil {
		return err
	}
	for _, r := range records {
		if err := encodeRecord(enc, dumpLine{Offset: h.Offset, Epoch: h.Epoch}, r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// bootstrapFileName is the file `kraftctl storage format` writes into a metadata.log.dir: the records a
// new cluster's first leader writes. It is no snapshot, and its records have no offset yet.
const bootstrapFileName = "bootstrap.checkpoint"

func dumpBootstrap(enc *json.Encoder, path string) error {
	batch, err := metadatalog.ReadBootstrap(filepath.Dir(path))
	if err != nil {
		return err
	}
	if err := enc.Encode(struct {
		Type string `json:"type"`
		Path string `json:"path"`
	}{"Bootstrap", path}); err != nil {
		return err
	}
	for _, r := range batch.GetRecords() {
		if err := encodeRecord(enc, dumpLine{}, r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

func nonNil(ids []uint64) []uint64 {
	if ids == nil {
		return []uint64{}
	}
	return ids
}

// encodeRecord prints r with line's offset and epoch. The type is the name of the message the record
// holds (TopicRecord, PartitionRecord, ...), as Kafka names its record types.
func encodeRecord(enc *json.Encoder, line dumpLine, r *metadatapb.Record) error {
	m := r.ProtoReflect()
	oneof := m.Descriptor().Oneofs().ByName("record")
	fd := m.WhichOneof(oneof)
	if fd == nil {
		return errors.New("a record with no type set")
	}
	inner := m.Get(fd).Message()
	// EmitUnpopulated keeps zeros that mean something, such as partition 0 or leader 0.
	data, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(inner.Interface())
	if err != nil {
		return fmt.Errorf("render %s: %w", fd.Message().Name(), err)
	}
	// protojson varies its whitespace on purpose; compact it so the output is stable.
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return err
	}
	line.Type, line.Data = string(fd.Message().Name()), buf.Bytes()
	return enc.Encode(line)
}
