package metadatalog

import (
	"fmt"

	"github.com/kraftgo/kraft/api/metadatapb"
	"strconv"
	"strings"
)

// MetadataVersion is one level of the metadata.version feature.
type MetadataVersion struct {
	Level int16
	Name  string
	// ChangesMetadata marks a level whose records older levels cannot represent: a safe downgrade may
	// not cross it.
	ChangesMetadata bool
	Enables         string
}

// MetadataVersions is the table of DESIGN.md, oldest first.
var MetadataVersions = []MetadataVersion{
	{1, "1.0-IV0", false, "brokers, fencing, topics, partitions, configs, feature levels"},
	{2, "1.0-IV1", false, "brokers may follow the log from standby controllers"},
	{3, "1.1-IV0", true, "ACL records and the ACL APIs"},
	{4, "1.1-IV1", true, "client-quota records and the client-quota APIs"},
}

// MinMetadataVersion and LatestMetadataVersion bound the levels this software supports.
var (
	MinMetadataVersion    = MetadataVersions[0]
	LatestMetadataVersion = MetadataVersions[len(MetadataVersions)-1]
)

// LookupMetadataVersion accepts a level's name ("1.1-IV1"), its number ("4"), or a release ("1.1", the
// newest level of that release), as kafka-storage.sh and kafka-features.sh do.
func LookupMetadataVersion(s string) (MetadataVersion, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		for _, v := range MetadataVersions {
			if int(v.Level) == n {
				return v, nil
			}
		}
	}
	var found *MetadataVersion
	for i, v := range MetadataVersions {
		if v.Name == s || strings.HasPrefix(v.Name, s+"-IV") {
			found = &MetadataVersions[i]
		}
	}
	if found == nil {
		names := make([]string, len(MetadataVersions))
		for i, v := range MetadataVersions {
			names[i] = v.Name
		}
		return MetadataVersion{}, fmt.Errorf("unknown metadata.version %q: use one of %s", s, strings.Join(names, ", "))
	}
	return *found, nil
}

// MetadataVersionByLevel returns the table entry of a level.
func MetadataVersionByLevel(level int16) (MetadataVersion, bool) {
	for _, v := range MetadataVersions {
		if v.Level == level {
			return v, true
		}
	}
	return MetadataVersion{}, false
}

// The levels that ACL and client-quota records need (DESIGN.md's table).
const (
	ACLsLevel   = 3
	QuotasLevel = 4
)

// RecordMinLevel is the lowest metadata.version at which r may be written: the image refuses it
// below, so no controller can write it and no log can hold it there.
func RecordMinLevel(r *metadatapb.Record) int16 {
	switch r.GetRecord().(type) {
	case *metadatapb.Record_AccessControlEntry, *metadatapb.Record_RemoveAccessControlEntry:
		return ACLsLevel
	case *metadatapb.Record_ClientQuota:
		return QuotasLevel
	}
	return MinMetadataVersion.Level
}

// RecordTypeName is a record's type as Kafka names it, "TopicRecord" for instance.
func RecordTypeName(r *metadatapb.Record) string {
	if r.GetRecord() == nil {
		return "record without a type"
	}
	return string(r.ProtoReflect().WhichOneof(r.ProtoReflect().Descriptor().Oneofs().ByName("record")).Message().Name())
}
