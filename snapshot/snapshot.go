// Package snapshot holds snapshot files: an image written to disk as records, with a header and a
// footer, so that the log before it can be dropped. It writes them durably, reads and verifies them,
// and lists the ones in a directory. It knows nothing of Raft or of the image: callers hand it records
// (metadatalog.Image.Records) and get records back.
//
// # File layout
//
// A snapshot of the log up to offset O in epoch E is named FileName(O, E), "%020d-%010d.checkpoint",
// and holds, in order (integers big-endian):
//
//	magic      8 bytes   "KRFTSNAP"
//	version    uint32    1, the format version
//	frame      'H'       a metadatapb.SnapshotHeader: offset, epoch, Raft configuration,
//	                     metadata.version, record count, creation time, cluster id
//	frame      'R'  ...  zero or more metadatapb.RecordBatch chunks holding the records, in the
//	                     order given to Write; each chunk is about 64 KiB, never empty
//	frame      'F'       the footer: a 4-byte CRC32C (Castagnoli) of every byte before this frame
//	end of file
//
// A frame is one kind byte, a uint32 payload length and the payload. The length lets a reader stream
// the file one chunk at a time, so a million-partition image never needs one huge allocation, and the
// reader checks every length against a limit (1 MiB for the header, 16 MiB for a chunk, exactly 4 for
// the footer) and against the bytes left in the file before allocating. Every byte of the file is
// therefore either covered by the CRC or checked for an exact value: the footer's kind, length and
// checksum, and the end of the file right after it.
//
// The record count goes in the header, so Write takes the records as a slice: the image already holds
// them in memory, and a reader learns up front how many records to expect. A reader that reaches the
// footer with fewer records, or finds more, refuses the file. It also refuses a record of a type it
// does not know: software older than the snapshot must not build an image that lacks part of it.
//
// # Faults
//
// Every fault in a file's content is a *CorruptError naming the file and the fault in one line, so a
// caller can fall back to an older snapshot. Failures to open or read a file are ordinary wrapped
// errors. Records streamed by a Reader are trustworthy only once Next has returned io.EOF: the checksum
// is checked at the footer, so a caller must discard what it built from a stream that failed.
package snapshot

import (
	"strconv"

	"github.com/kraftgo/kraft/api/metadatapb"
)

const (
	magic         = "KRFTSNAP"
	formatVersion = 1
	preludeLen    = len(magic) + 4

	kindHeader  = 'H'
	kindRecords = 'R'
	kindFooter  = 'F'

	frameHeadLen = 5 // kind byte + uint32 length
	footerLen    = 4 // the CRC32C
	// minTail is the least a file holds after the last record frame: the footer frame.
	minTail = frameHeadLen + footerLen

	maxHeaderFrame = 1 << 20
	maxChunkFrame  = 16 << 20
	chunkTarget    = 64 << 10

	// minRecordLen is the fewest bytes one record takes inside a chunk: its tag and length, and inside
	// it the tag and length of the record type (a record with no type is refused).
	minRecordLen = 4
)

// Header is what a snapshot says about itself.
type Header struct {
	// Offset and Epoch are the last log offset the image includes and that entry's epoch: the log up
	// to and including Offset can be dropped once the snapshot is durable.
	Offset uint64
	Epoch  uint64

	// The Raft configuration at Offset, as etcd raft's ConfState holds it. VotersOutgoing,
	// LearnersNext and AutoLeave are set only during a joint configuration change.
	Voters         []uint64
	Learners       []uint64
	VotersOutgoing []uint64
	LearnersNext   []uint64
	AutoLeave      bool

	// MetadataVersion is the image's finalized metadata.version level.
	MetadataVersion int32
	// RecordCount is how many records follow the header. Write sets it from the records it is given.
	RecordCount uint64
	// CreateTimeMs is the writer's wall clock, in milliseconds, when the snapshot was written.
	CreateTimeMs int64
	ClusterID    string
}

func (h *Header) toProto() *metadatapb.SnapshotHeader {
	return &metadatapb.SnapshotHeader{
		LastIncludedOffset: h.Offset,
		LastIncludedEpoch:  h.Epoch,
		Voters:             h.Voters,
		Learners:           h.Learners,
		VotersOutgoing:     h.VotersOutgoing,
		LearnersNext:       h.LearnersNext,
		AutoLeave:          h.AutoLeave,
		MetadataVersion:    h.MetadataVersion,
		RecordCount:        h.RecordCount,
		CreateTimeMs:       h.CreateTimeMs,
		ClusterId:          h.ClusterID,
	}
}

func headerFromProto(p *metadatapb.SnapshotHeader) Header {
	return Header{
		Offset:          p.GetLastIncludedOffset(),
		Epoch:           p.GetLastIncludedEpoch(),
		Voters:          p.GetVoters(),
		Learners:        p.GetLearners(),
		VotersOutgoing:  p.GetVotersOutgoing(),
		LearnersNext:    p.GetLearnersNext(),
		AutoLeave:       p.GetAutoLeave(),
		MetadataVersion: p.GetMetadataVersion(),
		RecordCount:     p.GetRecordCount(),
		CreateTimeMs:    p.GetCreateTimeMs(),
		ClusterID:       p.GetClusterId(),
	}
}

// CorruptError reports a snapshot file whose content is damaged or cannot be trusted. The caller
// should fall back to an older snapshot plus the log, or stop loudly; never serve a partial image.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string { return "snapshot " + e.Path + ": " + e.Reason }

// count formats n with thousands separators, as the messages people read do: 1,048,576.
func count[T int | int64 | uint32 | uint64](n T) string {
	if n < 0 {
		return "-" + count(-n)
	}
	s := strconv.FormatUint(uint64(n), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
