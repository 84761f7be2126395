package metadatalog

import (
	"strings"
	"testing"
)

func TestLookupMetadataVersion(t *testing.T) {
	tests := []struct {
		in        string
		wantLevel int16
		wantName  string
	}{
		{"1.0-IV0", 1, "1.0-IV0"},
		{"1.0-IV1", 2, "1.0-IV1"},
		{"1.1-IV0", 3, "1.1-IV0"},
		{"1.1-IV1", 4, "1.1-IV1"},
		{"1", 1, "1.0-IV0"},
		{"2", 2, "1.0-IV1"},
		{"3", 3, "1.1-IV0"},
		{"4", 4, "1.1-IV1"},
		{"1.0", 2, "1.0-IV1"}, // a release means its newest level
		{"1.1", 4, "1.1-IV1"},
		{" 1.1 ", 4, "1.1-IV1"},
		{"\t3\n", 3, "1.1-IV0"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			v, err := LookupMetadataVersion(tc.in)
			if err != nil {
				t.Fatalf("LookupMetadataVersion(%q): %v", tc.in, err)
			}
			if v.Level != tc.wantLevel || v.Name != tc.wantName {
				t.Fatalf("LookupMetadataVersion(%q) = %d %s, want %d %s", tc.in, v.Level, v.Name, tc.wantLevel, tc.wantName)
			}
			if want, _ := MetadataVersionByLevel(tc.wantLevel); v != want {
				t.Fatalf("LookupMetadataVersion(%q) = %+v, table has %+v", tc.in, v, want)
			}
		})
	}
}

func TestLookupMetadataVersionUnknown(t *testing.T) {
	for _, in := range []string{"", "0", "5", "-1", "1.2", "1.1-IV2", "1.1-IV", "2.0", "1.", "latest", "1.1-iv1x", "IV0"} {
		t.Run(in, func(t *testing.T) {
			v, err := LookupMetadataVersion(in)
			if err == nil {
				t.Fatalf("LookupMetadataVersion(%q) = %+v, want an error", in, v)
			}
			for _, known := range MetadataVersions {
				if !strings.Contains(err.Error(), known.Name) {
					t.Fatalf("error %q does not list %s", err, known.Name)
				}
			}
			if !strings.Contains(err.Error(), `"`+strings.TrimSpace(in)+`"`) {
				t.Fatalf("error %q does not quote the input", err)
			}
		})
	}
}

func TestMetadataVersionTable(t *testing.T) {
	if MinMetadataVersion.Level != 1 || LatestMetadataVersion.Level != 4 || LatestMetadataVersion.Name != "1.1-IV1" {
		t.Fatalf("bounds %+v .. %+v", MinMetadataVersion, LatestMetadataVersion)
	}
	// DESIGN.md's table: which levels change metadata.
	wantChanges := map[int16]bool{1: false, 2: false, 3: true, 4: true}
	for i, v := range MetadataVersions {
		if v.Level != int16(i+1) {
			t.Fatalf("MetadataVersions[%d] has level %d: the table must be dense and ordered", i, v.Level)
		}
		if v.ChangesMetadata != wantChanges[v.Level] {
			t.Fatalf("level %d ChangesMetadata = %v, want %v", v.Level, v.ChangesMetadata, wantChanges[v.Level])
		}
		got, ok := MetadataVersionByLevel(v.Level)
		if !ok || got != v {
			t.Fatalf("MetadataVersionByLevel(%d) = %+v, %v", v.Level, got, ok)
		}
	}
	for _, l := range []int16{-1, 0, 5} {
		if _, ok := MetadataVersionByLevel(l); ok {
			t.Fatalf("MetadataVersionByLevel(%d) found a level", l)
		}
	}
}
