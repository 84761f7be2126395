//go:build linux

package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/kraftgo/kraft/api/metadatapb"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// walEntryRecord is the type etcd's WAL gives a record holding one Raft entry.
const walEntryRecord = 2

// walRecords counts, in a node's WAL, the entries with indexes in (from, to] and the metadata records
// they carry: how the controller grouped records into entries. Entries rewritten after a leader change
// are counted once per write, which a run without leader changes does not have.
func walRecords(walDir string, from, to uint64) (entries, records int, err error) {
	segs, err := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if err != nil {
		return 0, 0, err
	}
	slices.Sort(segs)
	for _, seg := range segs {
		b, err := os.ReadFile(seg)
		if err != nil {
			return 0, 0, err
		}
		// Each record is a little-endian 64-bit length (the top byte flags and sizes the padding),
		// then a walpb.Record, then the padding to 8 bytes.
		for off := 0; off+8 <= len(b); {
			lenField := binary.LittleEndian.Uint64(b[off:])
			if lenField == 0 {
				break // the zeroed, preallocated rest of the segment
			}
			size := int(lenField & (1<<56 - 1))
			pad := 0
			if lenField&(1<<63) != 0 {
				pad = int(lenField>>56) & 0x7
			}
			if off+8+size > len(b) {
				break // a record being written right now
			}
			var rec walpb.Record
			if err := proto.Unmarshal(b[off+8:off+8+size], &rec); err != nil {
				return 0, 0, fmt.Errorf("%s at %d: %w", seg, off, err)
			}
			off += 8 + size + pad
			if rec.GetType() != walEntryRecord {
				continue
			}
			var e raftpb.Entry
			if err := proto.Unmarshal(rec.GetData(), &e); err != nil {
				return 0, 0, fmt.Errorf("%s: entry before %d: %w", seg, off, err)
			}
			if e.GetIndex() <= from || e.GetIndex() > to {
				continue
			}
			entries++
			if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
				var batch metadatapb.RecordBatch
				if err := proto.Unmarshal(e.GetData(), &batch); err != nil {
					return 0, 0, fmt.Errorf("%s: entry %d is not a RecordBatch: %w", seg, e.GetIndex(), err)
				}
				records += len(batch.GetRecords())
			}
		}
	}
	return entries, records, nil
}
