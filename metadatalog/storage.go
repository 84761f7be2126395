package metadatalog

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

// A formatted metadata directory holds meta.properties (who the directory belongs to), bootstrap.checkpoint
// (the records a new cluster starts from) and wal/ (the Raft log).
const (
	metaPropertiesFile = "meta.properties"
	bootstrapFile      = "bootstrap.checkpoint"
	walDirName         = "wal"
)

// ErrNotFormatted marks a directory that `kraftctl storage format` has not prepared.
var ErrNotFormatted = errors.New("not formatted")

// MetaProperties identifies the cluster and node a metadata directory belongs to.
type MetaProperties struct {
	ClusterID   string
	NodeID      int32
	DirectoryID string
}

// RandomUUID returns a random id in Kafka's form: 16 bytes, URL-safe base64 without padding.
func RandomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidateClusterID checks that id is a Kafka cluster id: 16 bytes in URL-safe base64 without padding.
func ValidateClusterID(id string) error {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(b) != 16 {
		return fmt.Errorf("cluster id %q is not a 22-character base64 UUID: generate one with `kraftctl storage random-uuid`", id)
	}
	return nil
}

// WALDir is where the Raft log of a formatted directory lives.
func WALDir(dir string) string { return filepath.Join(dir, walDirName) }

// Format prepares dir for a node of a cluster: meta.properties and the bootstrap records. A directory
// already formatted is refused, naming both cluster ids when they differ, unless ignoreFormatted is set
// and it belongs to the same cluster and node, in which case it is left untouched.
func Format(dir string, mp MetaProperties, bootstrap *metadatapb.RecordBatch, ignoreFormatted bool) error {
	if err := ValidateClusterID(mp.ClusterID); err != nil {
		return err
	}
	if existing, err := ReadMetaProperties(dir); err == nil {
		if existing.ClusterID != mp.ClusterID {
			return fmt.Errorf("%s is already formatted for cluster %s, not %s: use another metadata.log.dir, or remove the directory to wipe that cluster's metadata", dir, existing.ClusterID, mp.ClusterID)
		}
		if existing.NodeID != mp.NodeID {
			return fmt.Errorf("%s is already formatted for node %d, not %d: give each node its own metadata.log.dir", dir, existing.NodeID, mp.NodeID)
		}
		if ignoreFormatted {
			return nil
		}
		return fmt.Errorf("%s is already formatted (cluster %s, node %d): pass --ignore-formatted to skip it", dir, existing.ClusterID, existing.NodeID)
	} else if !errors.Is(err, ErrNotFormatted) {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty but holds no meta.properties: refusing to format over unknown files", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if mp.DirectoryID == "" {
		mp.DirectoryID = RandomUUID()
	}
	data, err := proto.Marshal(bootstrap)
	if err != nil {
		return err
	}
	framed := binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crcTable))
	if err := writeFileSync(filepath.Join(dir, bootstrapFile), append(framed, data...)); err != nil {
		return err
	}
	// meta.properties goes last: its presence is what marks the directory as formatted.
	props := fmt.Sprintf("#\n#Written by kraftctl storage format\nversion=1\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n", mp.ClusterID, mp.NodeID, mp.DirectoryID)
	return writeFileSync(filepath.Join(dir, metaPropertiesFile), []byte(props))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// writeFileSync writes a whole file durably: temp file, fsync, rename, fsync of the directory.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadMetaProperties reads dir's meta.properties; ErrNotFormatted when there is none.
func ReadMetaProperties(dir string) (MetaProperties, error) {
	var mp MetaProperties
	data, err := os.ReadFile(filepath.Join(dir, metaPropertiesFile))
	if errors.Is(err, os.ErrNotExist) {
		return mp, fmt.Errorf("%s is %w: run `kraftctl storage format`", dir, ErrNotFormatted)
	}
	if err != nil {
		return mp, err
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	mp.ClusterID, mp.DirectoryID = kv["cluster.id"], kv["directory.id"]
	id, err := strconv.ParseInt(kv["node.id"], 10, 32)
	if mp.ClusterID == "" || err != nil {
		return mp, fmt.Errorf("%s: corrupt meta.properties (cluster.id=%q node.id=%q): re-format the directory", dir, mp.ClusterID, kv["node.id"])
	}
	mp.NodeID = int32(id)
	return mp, nil
}

// CheckFormatted is the start-up check: dir must be formatted for this node.
func CheckFormatted(dir string, nodeID int32) (MetaProperties, error) {
	mp, err := ReadMetaProperties(dir)
	if err != nil {
		return mp, err
	}
	if mp.NodeID != nodeID {
		return mp, fmt.Errorf("%s is formatted for node %d (cluster %s), but this is node %d: give each node its own metadata.log.dir", dir, mp.NodeID, mp.ClusterID, nodeID)
	}
	return mp, nil
}

// ReadBootstrap returns the records a new cluster's first leader writes.
func ReadBootstrap(dir string) (*metadatapb.RecordBatch, error) {
	path := filepath.Join(dir, bootstrapFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read bootstrap records: %w", err)
	}
	if len(data) < 4 || binary.BigEndian.Uint32(data) != crc32.Checksum(data[4:], crcTable) {
		return nil, fmt.Errorf("%w: %s fails its checksum: re-format the directory", ErrCorruptLog, path)
	}
	batch := &metadatapb.RecordBatch{}
	if err := proto.Unmarshal(data[4:], batch); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptLog, path, err)
	}
	return batch, nil
}

// BootstrapRecords are the records formatted into a new cluster: its metadata.version.
func BootstrapRecords(mv MetadataVersion) *metadatapb.RecordBatch {
	return &metadatapb.RecordBatch{Records: []*metadatapb.Record{{Record: &metadatapb.Record_FeatureLevel{
		FeatureLevel: &metadatapb.FeatureLevelRecord{Name: MetadataVersionFeature, FeatureLevel: int32(mv.Level)}}}}}
}
