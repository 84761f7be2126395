package metadatalog

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kraftgo/kraft/api/metadatapb"
	"google.golang.org/protobuf/proto"
)

// storageClusterID and storageOtherClusterID are valid cluster ids (16 bytes, URL-safe base64).
const (
	storageClusterID      = "MkU3OEVBNTcwNTJENDM2Qk"
	storageOtherClusterID = "q1Sh-9_ISia_zwGINzRvyQ"
)

func storageBootstrap(t *testing.T, release string) *metadatapb.RecordBatch {
	t.Helper()
	mv, err := LookupMetadataVersion(release)
	if err != nil {
		t.Fatal(err)
	}
	return BootstrapRecords(mv)
}

func mustFormat(t *testing.T, dir string, clusterID string, node int32, release string) {
	t.Helper()
	if err := Format(dir, MetaProperties{ClusterID: clusterID, NodeID: node}, storageBootstrap(t, release), false); err != nil {
		t.Fatalf("Format(%s): %v", dir, err)
	}
}

// dirSnapshot maps every file under dir to its content.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = string(b)
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFormatThenRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release string
		dirID   string
	}{
		{"latest, generated directory id", LatestMetadataVersion.Name, ""},
		{"older release, given directory id", "1.0-IV1", "AAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A directory that does not exist yet is created, parents included.
			dir := filepath.Join(t.TempDir(), "data", "meta")
			bootstrap := storageBootstrap(t, tc.release)
			if err := Format(dir, MetaProperties{ClusterID: storageClusterID, NodeID: 3, DirectoryID: tc.dirID}, bootstrap, false); err != nil {
				t.Fatalf("Format: %v", err)
			}
			mp, err := ReadMetaProperties(dir)
			if err != nil {
				t.Fatalf("ReadMetaProperties: %v", err)
			}
			if mp.ClusterID != storageClusterID || mp.NodeID != 3 {
				t.Fatalf("meta.properties = %+v", mp)
			}
			if tc.dirID != "" && mp.DirectoryID != tc.dirID {
				t.Fatalf("directory id %q, want the given %q", mp.DirectoryID, tc.dirID)
			}
			if err := ValidateClusterID(mp.DirectoryID); err != nil {
				t.Fatalf("directory id %q is not a UUID: %v", mp.DirectoryID, err)
			}
			cmp, err := CheckFormatted(dir, 3)
			if err != nil {
				t.Fatalf("CheckFormatted: %v", err)
			}
			if cmp != mp {
				t.Fatalf("CheckFormatted = %+v, ReadMetaProperties = %+v", cmp, mp)
			}
			got, err := ReadBootstrap(dir)
			if err != nil {
				t.Fatalf("ReadBootstrap: %v", err)
			}
			if !proto.Equal(got, bootstrap) {
				t.Fatalf("bootstrap = %v, want %v", got, bootstrap)
			}
			mv, _ := LookupMetadataVersion(tc.release)
			img, err := EmptyImage().Apply(1, 1, got)
			if err != nil || img.MetadataVersion() != mv.Level {
				t.Fatalf("bootstrap applies to metadata.version %d (err %v), want %d", img.MetadataVersion(), err, mv.Level)
			}
			// Kafka's own key names are in meta.properties, and no temp file is left behind.
			raw, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"cluster.id=" + storageClusterID, "node.id=3", "directory.id=" + mp.DirectoryID} {
				if !strings.Contains(string(raw), want) {
					t.Fatalf("meta.properties lacks %q:\n%s", want, raw)
				}
			}
			parts, _ := filepath.Glob(filepath.Join(dir, "*.part"))
			if len(parts) > 0 {
				t.Fatalf("temp files left behind: %v", parts)
			}
		})
	}
}

func TestFormatGeneratesDistinctDirectoryIDs(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	mustFormat(t, a, storageClusterID, 1, "1.1")
	mustFormat(t, b, storageClusterID, 1, "1.1")
	ma, _ := ReadMetaProperties(a)
	mb, _ := ReadMetaProperties(b)
	if ma.DirectoryID == "" || ma.DirectoryID == mb.DirectoryID {
		t.Fatalf("directory ids %q and %q", ma.DirectoryID, mb.DirectoryID)
	}
}

func TestFormatAlreadyFormatted(t *testing.T) {
	tests := []struct {
		name            string
		clusterID       string
		node            int32
		ignoreFormatted bool
		wantErr         bool
		mention         []string // "$dir" stands for the directory
	}{
		{"same cluster and node", storageClusterID, 1, false, true, []string{"$dir", storageClusterID, "--ignore-formatted"}},
		{"same cluster and node, ignore formatted", storageClusterID, 1, true, false, nil},
		{"different cluster", storageOtherClusterID, 1, false, true, []string{"$dir", storageClusterID, storageOtherClusterID}},
		{"different cluster, ignore formatted", storageOtherClusterID, 1, true, true, []string{"$dir", storageClusterID, storageOtherClusterID}},
		{"different node", storageClusterID, 2, false, true, []string{"$dir", "node 1", "2"}},
		{"different node, ignore formatted", storageClusterID, 2, true, true, []string{"$dir", "node 1", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mustFormat(t, dir, storageClusterID, 1, "1.1-IV1")
			before := dirSnapshot(t, dir)
			// A different bootstrap, so that an overwrite would show.
			err := Format(dir, MetaProperties{ClusterID: tc.clusterID, NodeID: tc.node}, storageBootstrap(t, "1.0-IV0"), tc.ignoreFormatted)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Format again: err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				for _, w := range tc.mention {
					w = strings.ReplaceAll(w, "$dir", dir)
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not mention %q", err, w)
					}
				}
			}
			if after := dirSnapshot(t, dir); !sameSnapshot(before, after) {
				t.Fatalf("re-format changed the directory:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestFormatRefusesNonEmptyUnformattedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000000.log"), []byte("someone else's data"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, dir)
	err := Format(dir, MetaProperties{ClusterID: storageClusterID, NodeID: 1}, storageBootstrap(t, "1.1"), false)
	if err == nil {
		t.Fatal("Format wrote into a non-empty unformatted directory")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q does not name %s", err, dir)
	}
	if err := Format(dir, MetaProperties{ClusterID: storageClusterID, NodeID: 1}, storageBootstrap(t, "1.1"), true); err == nil {
		t.Fatal("ignoreFormatted let Format write into a non-empty unformatted directory")
	}
	if after := dirSnapshot(t, dir); !sameSnapshot(before, after) {
		t.Fatalf("the refused format changed the directory: %v", after)
	}
}

func TestFormatRefusesBadClusterID(t *testing.T) {
	for _, id := range []string{
		"",
		"abc",
		"MkU3OEVBNTcwNTJENDM2Qk==",             // padded
		"MkU3OEVBNTcwNTJENDM2QkMk",             // 18 bytes
		"MkU3OEVBNTcwNTJENDM2Q",                // 21 characters
		"q1Sh+9/ISia/zwGINzRvyQ",               // standard, not URL-safe, alphabet
		"MkU3OEVBNTcwNTJENDM2Q!",               // not base64
		"3f2504e0-4f89-11d3-9a0c-0305e82c3301", // a UUID in hex form
		" MkU3OEVBNTcwNTJENDM2Qk",              // leading space
	} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			if err := ValidateClusterID(id); err == nil {
				t.Fatalf("ValidateClusterID(%q) accepted it", id)
			}
			dir := filepath.Join(t.TempDir(), "meta")
			err := Format(dir, MetaProperties{ClusterID: id, NodeID: 1}, storageBootstrap(t, "1.1"), false)
			if err == nil {
				t.Fatalf("Format accepted cluster id %q", id)
			}
			if !strings.Contains(err.Error(), "random-uuid") {
				t.Fatalf("error %q does not say how to get a valid id", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Format with a bad cluster id created %s (stat err %v)", dir, err)
			}
		})
	}
}

func TestCheckFormattedUnformatted(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"empty dir", func(t *testing.T) string { return t.TempDir() }},
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }},
		{"dir with only a WAL", func(t *testing.T) string {
			d := t.TempDir()
			if err := os.MkdirAll(WALDir(d), 0o755); err != nil {
				t.Fatal(err)
			}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			_, err := CheckFormatted(dir, 1)
			if !errors.Is(err, ErrNotFormatted) {
				t.Fatalf("CheckFormatted = %v, want ErrNotFormatted", err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q does not name %s", err, dir)
			}
			if _, err := ReadMetaProperties(dir); !errors.Is(err, ErrNotFormatted) {
				t.Fatalf("ReadMetaProperties = %v, want ErrNotFormatted", err)
			}
		})
	}
}

func TestCheckFormattedNodeMismatch(t *testing.T) {
	dir := t.TempDir()
	mustFormat(t, dir, storageClusterID, 7, "1.1")
	_, err := CheckFormatted(dir, 8)
	if err == nil {
		t.Fatal("CheckFormatted accepted another node's directory")
	}
	if errors.Is(err, ErrNotFormatted) {
		t.Fatalf("a node mismatch reported as not formatted: %v", err)
	}
	for _, w := range []string{dir, "7", "8", storageClusterID} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestReadMetaPropertiesCorrupt(t *testing.T) {
	for _, content := range []string{
		"version=1\nnode.id=1\n",
		"version=1\ncluster.id=" + storageClusterID + "\n",
		"version=1\ncluster.id=" + storageClusterID + "\nnode.id=one\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadMetaProperties(dir)
		if err == nil || errors.Is(err, ErrNotFormatted) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("meta.properties %q: err %v, want a corruption error naming %s", content, err, dir)
		}
	}
}

func TestReadBootstrapDetectsCorruption(t *testing.T) {
	dir := t.TempDir()
	mustFormat(t, dir, storageClusterID, 1, "1.1-IV1")
	path := filepath.Join(dir, "bootstrap.checkpoint")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, what string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadBootstrap(dir)
		if !errors.Is(err, ErrCorruptLog) {
			t.Fatalf("%s: ReadBootstrap = %v, want ErrCorruptLog", what, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error %q does not name %s", what, err, path)
		}
	}
	// Every single flipped byte, checksum included, is caught.
	for i := range orig {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			data := append([]byte(nil), orig...)
			data[i] ^= mask
			check(t, "byte "+strconv.Itoa(i)+" ^ "+strconv.Itoa(int(mask)), data)
		}
	}
	check(t, "truncated", orig[:len(orig)-1])
	check(t, "empty", nil)
	check(t, "only the checksum", orig[:4])
	check(t, "extra byte", append(append([]byte(nil), orig...), 0))

	// The intact file still reads.
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBootstrap(dir); err != nil {
		t.Fatalf("intact bootstrap: %v", err)
	}
	// A missing file is an error too, though not a corrupt one.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBootstrap(dir); err == nil {
		t.Fatal("ReadBootstrap of a missing file succeeded")
	}
}

func TestRandomUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := RandomUUID()
		if len(id) != 22 {
			t.Fatalf("RandomUUID() = %q, %d characters, want 22", id, len(id))
		}
		if err := ValidateClusterID(id); err != nil {
			t.Fatalf("RandomUUID() = %q does not validate: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("RandomUUID() repeated %q", id)
		}
		seen[id] = true
	}
	// It is usable to format a directory.
	mustFormat(t, t.TempDir(), RandomUUID(), 1, "1")
}
