package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

// Read reads and verifies the snapshot at path: its header and all its records. Any fault in the
// content is a *CorruptError.
func Read(path string) (Header, []*metadatapb.Record, error) {
	r, err := Open(path)
	if err != nil {
		return Header{}, nil, err
	}
	defer r.Close()
	// The header's count was checked against the file's size, so this allocation is bounded by it.
	records := make([]*metadatapb.Record, 0, r.h.RecordCount)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.h, records, nil
		}
		if err != nil {
			return Header{}, nil, err
		}
		records = append(records, rec)
	}
}

// Reader streams a snapshot's records one chunk at a time. The records it returns are trustworthy only
// once Next has returned io.EOF, which it does after verifying the footer and the checksum.
type Reader struct {
	path   string
	closer io.Closer
	br     *bufio.Reader
	size   int64 // of the whole file
	pos    int64 // bytes consumed so far
	crc    uint32
	h      Header

	seen  uint64 // records decoded so far
	chunk []*metadatapb.Record
	next  int // index in chunk
	buf   []byte
	done  bool
	err   error // sticky: once a Reader fails, it keeps failing
}

// Open opens the snapshot at path and reads and verifies its header, which must agree with the name.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	r, err := newReader(path, f, fi.Size(), true)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// newReader reads the prelude and header from src, which holds size bytes. checkName compares the
// header with the offset and epoch in path's name.
func newReader(path string, src io.Reader, size int64, checkName bool) (*Reader, error) {
	r := &Reader{path: path, br: bufio.NewReaderSize(src, 256<<10), size: size}
	if size < int64(preludeLen+frameHeadLen+minTail) {
		return nil, r.corrupt("only %s bytes long, too short to be a snapshot", count(size))
	}
	prelude, err := r.read(preludeLen)
	if err != nil {
		return nil, r.failed(err, "truncated in the prelude")
	}
	if string(prelude[:len(magic)]) != magic {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("not a snapshot file: it does not start with %q", magic)}
	}
	if v := binary.BigEndian.Uint32(prelude[len(magic):]); v != formatVersion {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("format version %d, but this build reads only version %d; use an older snapshot or newer software", v, formatVersion)}
	}

	kind, n, err := r.frameHead()
	if err != nil {
		return nil, r.failed(err, "truncated before the header")
	}
	if kind != kindHeader {
		return nil, r.corrupt("the first frame has kind 0x%02x, not the header", kind)
	}
	if n > maxHeaderFrame || int64(n) > r.size-r.pos-minTail {
		return nil, r.corrupt("the header frame claims %s bytes; the limit is %s and %s remain", count(n), count(maxHeaderFrame), count(r.size-r.pos))
	}
	payload, err := r.read(int(n))
	if err != nil {
		return nil, r.failed(err, "truncated in the header")
	}
	ph := &metadatapb.SnapshotHeader{}
	if err := proto.Unmarshal(payload, ph); err != nil {
		return nil, r.corrupt("the header does not decode: %v", err)
	}
	r.h = headerFromProto(ph)

	if checkName {
		offset, epoch, ok := ParseFileName(filepath.Base(path))
		if !ok {
			return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("the name is not <offset>-<epoch>%s, as %s is", fileSuffix, FileName(r.h.Offset, r.h.Epoch))}
		}
		if offset != r.h.Offset || epoch != r.h.Epoch {
			return nil, &CorruptError{Path: path, Reason: fmt.Sprintf("the header says offset %d epoch %d, but the name says offset %d epoch %d; the file was renamed or is damaged", r.h.Offset, r.h.Epoch, offset, epoch)}
		}
	}
	if most := uint64(r.size-r.pos-minTail) / minRecordLen; r.h.RecordCount > most {
		return nil, r.corrupt("the header claims %s records, but %s bytes hold at most %s", count(r.h.RecordCount), count(r.size-r.pos), count(most))
	}
	return r, nil
}

// Header is the snapshot's header, as Open verified it.
func (r *Reader) Header() Header { return r.h }

// Next returns the next record, or io.EOF once every record has been returned and the footer and
// checksum verified. Any fault in the content is a *CorruptError.
func (r *Reader) Next() (*metadatapb.Record, error) {
	for r.next >= len(r.chunk) {
		if r.err != nil {
			return nil, r.err
		}
		if r.done {
			return nil, io.EOF
		}
		r.chunk, r.next = r.chunk[:0], 0
		if err := r.nextFrame(); err != nil {
			r.err = err
			return nil, err
		}
	}
	rec := r.chunk[r.next]
	r.chunk[r.next] = nil // let the caller own it alone
	r.next++
	return rec, nil
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// nextFrame reads one record chunk into r.chunk, or the footer.
func (r *Reader) nextFrame() error {
	at := r.pos
	crcBefore := r.crc
	kind, n, err := r.frameHead()
	if err != nil {
		return r.failed(err, r.truncated())
	}
	switch kind {
	case kindRecords:
		left := r.size - r.pos
		if n > maxChunkFrame {
			return r.corrupt("the record frame at byte %s claims %s bytes, more than the limit of %s", count(at), count(n), count(maxChunkFrame))
		}
		if int64(n) > left {
			return r.corrupt("%s: the record frame at byte %s claims %s bytes and %s remain", r.truncated(), count(at), count(n), count(left))
		}
		if n == 0 {
			return r.corrupt("the record frame at byte %s is empty", count(at))
		}
		payload, err := r.read(int(n))
		if err != nil {
			return r.failed(err, r.truncated())
		}
		batch := &metadatapb.RecordBatch{}
		if err := proto.Unmarshal(payload, batch); err != nil {
			return r.corrupt("the record frame at byte %s, after %s of %s records, does not decode: %v", count(at), count(r.seen), count(r.h.RecordCount), err)
		}
		if len(batch.Records) == 0 || batch.AppendTimeMs != 0 {
			return r.corrupt("the record frame at byte %s is not a chunk of records", count(at))
		}
		for i, rec := range batch.Records {
			if rec.GetRecord() == nil {
				return r.corrupt("record %s has no type this build knows", count(r.seen+uint64(i)))
			}
		}
		if r.seen+uint64(len(batch.Records)) > r.h.RecordCount {
			return r.corrupt("holds more records than the %s its header claims", count(r.h.RecordCount))
		}
		r.seen += uint64(len(batch.Records))
		r.chunk = append(r.chunk, batch.Records...)
		return nil

	case kindFooter:
		if n != footerLen {
			return r.corrupt("the footer at byte %s claims %s bytes, not %d", count(at), count(n), footerLen)
		}
		sum, err := r.read(footerLen)
		if err != nil {
			return r.failed(err, "truncated in the footer")
		}
		if want := binary.BigEndian.Uint32(sum); want != crcBefore {
			return r.corrupt("checksum mismatch: the footer says %08x, the content sums to %08x", want, crcBefore)
		}
		if r.seen != r.h.RecordCount {
			return r.corrupt("the footer follows %s records, but the header claims %s", count(r.seen), count(r.h.RecordCount))
		}
		if extra := r.size - r.pos; extra != 0 {
			return r.corrupt("%s bytes follow the footer", count(extra))
		}
		if _, err := r.br.ReadByte(); err != io.EOF {
			return r.failed(err, "bytes follow the footer")
		}
		r.done = true
		return nil

	default:
		return r.corrupt("unknown frame kind 0x%02x at byte %s, after %s of %s records", kind, count(at), count(r.seen), count(r.h.RecordCount))
	}
}

func (r *Reader) truncated() string {
	if r.seen == r.h.RecordCount {
		return fmt.Sprintf("truncated after all %s records, before the footer", count(r.seen))
	}
	return fmt.Sprintf("truncated after %s of %s records", count(r.seen), count(r.h.RecordCount))
}

// frameHead reads a frame's kind and payload length. (The footer compares its checksum with the CRC
// from before its head.)
func (r *Reader) frameHead() (byte, uint32, error) {
	b, err := r.read(frameHeadLen)
	if err != nil {
		return 0, 0, err
	}
	return b[0], binary.BigEndian.Uint32(b[1:]), nil
}

// read reads n bytes that the CRC covers.
func (r *Reader) read(n int) ([]byte, error) {
	b, err := r.readRaw(n)
	if err == nil {
		r.crc = crc32.Update(r.crc, castagnoli, b)
	}
	return b, err
}

// readRaw reads n bytes into r.buf; callers have checked n against the bytes left in the file.
func (r *Reader) readRaw(n int) ([]byte, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	got, err := io.ReadFull(r.br, b)
	r.pos += int64(got)
	return b, err
}

// corrupt is a CorruptError for damage found in the content.
func (r *Reader) corrupt(format string, args ...any) error {
	return &CorruptError{Path: r.path, Reason: fmt.Sprintf(format, args...) + "; the file is damaged"}
}

// failed turns a read error into the error to report: running out of bytes is damage (the reason
// says where), anything else is an I/O failure.
func (r *Reader) failed(err error, reason string) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.corrupt("%s", reason)
	}
	return fmt.Errorf("read snapshot %s: %w", r.path, err)
}
