package snapshot

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeKnobs are the tests' hooks into Write; the zero value is what Write uses.
type writeKnobs struct {
	// chunkBytes replaces the chunk size target, so a small test image spans several chunks.
	chunkBytes int
	// wrapFile wraps the .part file, for instance to fail the way a full disk does.
	wrapFile func(io.Writer) io.Writer
}

// Write writes a snapshot of records into dir and returns its path, FileName(h.Offset, h.Epoch). It sets
// h.RecordCount to len(records). The file is written as <name>.part, fsynced, renamed and the directory
// fsynced, so once Write returns nil the snapshot survives a crash and the log before it may be
// dropped. On any error Write removes what it wrote, so a full disk leaves nothing behind, and the
// caller can go on with its log and retry later. An existing snapshot of the same name is replaced.
func Write(dir string, h Header, records []*metadatapb.Record) (string, error) {
	return write(dir, h, records, writeKnobs{})
}

func write(dir string, h Header, records []*metadatapb.Record, knobs writeKnobs) (_ string, err error) {
	for i, r := range records {
		// A record with no type would be refused by every reader: fail now rather than write it.
		if r.GetRecord() == nil {
			return "", fmt.Errorf("write snapshot: record %s of %s has no type", count(i), count(len(records)))
		}
	}
	h.RecordCount = uint64(len(records))
	path := filepath.Join(dir, FileName(h.Offset, h.Epoch))
	tmp := path + partSuffix

	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("write snapshot: %w", err)
	}
	renamed := false
	defer func() {
		if err == nil {
			return
		}
		if f != nil {
			f.Close()
		}
		os.Remove(tmp)
		if renamed {
			// The directory's fsync failed: whether the rename survives a crash is unknown, so take
			// the snapshot back rather than report a failure and leave it behind.
			os.Remove(path)
		}
	}()

	var w io.Writer = f
	if knobs.wrapFile != nil {
		w = knobs.wrapFile(f)
	}
	chunk := knobs.chunkBytes
	if chunk <= 0 {
		chunk = chunkTarget
	}
	if err := encode(w, &h, records, chunk); err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync snapshot %s: %w", tmp, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return "", fmt.Errorf("write snapshot %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write snapshot: %w", err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return "", fmt.Errorf("write snapshot %s: fsync of its directory: %w", path, err)
	}
	return path, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// encoder writes frames and keeps the CRC of every byte written.
type encoder struct {
	w   *bufio.Writer
	crc uint32
}

func (e *encoder) frame(kind byte, payload []byte) error {
	var head [frameHeadLen]byte
	head[0] = kind
	binary.BigEndian.PutUint32(head[1:], uint32(len(payload)))
	e.crc = crc32.Update(e.crc, castagnoli, head[:])
	e.crc = crc32.Update(e.crc, castagnoli, payload)
	e.w.Write(head[:])
	_, err := e.w.Write(payload)
	return err
}

// encode writes the whole file to w; the layout is in the package comment.
func encode(w io.Writer, h *Header, records []*metadatapb.Record, chunkBytes int) error {
	e := &encoder{w: bufio.NewWriterSize(w, 256<<10)}
	var prelude [preludeLen]byte
	copy(prelude[:], magic)
	binary.BigEndian.PutUint32(prelude[len(magic):], formatVersion)
	e.crc = crc32.Update(0, castagnoli, prelude[:])
	e.w.Write(prelude[:])

	head, err := proto.Marshal(h.toProto())
	if err != nil {
		return err
	}
	if len(head) > maxHeaderFrame {
		return fmt.Errorf("the header takes %s bytes, more than the %s a reader accepts", count(len(head)), count(maxHeaderFrame))
	}
	if err := e.frame(kindHeader, head); err != nil {
		return err
	}

	// Each chunk is a RecordBatch built by hand: field 1 (records) once per record, so a record is
	// marshalled once and no chunk-sized message tree is ever built.
	buf := make([]byte, 0, chunkBytes+chunkBytes/4)
	var one []byte
	for i, r := range records {
		one, err = proto.MarshalOptions{}.MarshalAppend(one[:0], r)
		if err != nil {
			return fmt.Errorf("record %s: %w", count(i), err)
		}
		need := protowire.SizeTag(1) + protowire.SizeBytes(len(one))
		if need > maxChunkFrame {
			return fmt.Errorf("record %s takes %s bytes, more than a snapshot frame holds (%s)", count(i), count(len(one)), count(maxChunkFrame))
		}
		if len(buf) > 0 && len(buf)+need > maxChunkFrame {
			if err := e.frame(kindRecords, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = protowire.AppendTag(buf, 1, protowire.BytesType)
		buf = protowire.AppendBytes(buf, one)
		if len(buf) >= chunkBytes {
			if err := e.frame(kindRecords, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if err := e.frame(kindRecords, buf); err != nil {
			return err
		}
	}

	var footer [frameHeadLen + footerLen]byte
	footer[0] = kindFooter
	binary.BigEndian.PutUint32(footer[1:], footerLen)
	binary.BigEndian.PutUint32(footer[frameHeadLen:], e.crc)
	e.w.Write(footer[:])
	return e.w.Flush()
}
