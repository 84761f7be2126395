package metadatalog

// Client quotas in the image: one float per (entity, quota key), as ClientQuotaRecords set and remove
// them. They exist from metadata.version 4 (1.1-IV1).
//
// An entity is one or more parts, each a type ("user", "client-id", "ip") and a name or, with no
// name, the default entity of that type. The tree's key is the entity's parts in type order, each as
// its type and name with length prefixes (so no name can be mistaken for a separator), then a zero
// byte, then the quota key: one entity's quotas are adjacent, under one prefix.

import (
	"encoding/binary"
	"slices"
	"strings"

	iradix "github.com/hashicorp/go-immutable-radix/v2"
	"github.com/kraftgo/kraft/api/metadatapb"
)

// QuotaEntityPart is one part of a client-quota entity; a nil Name is the default entity of Type.
type QuotaEntityPart struct {
	Type string
	Name *string
}

// ClientQuota is one entity's quotas.
type ClientQuota struct {
	Entity []QuotaEntityPart // ordered by Type
	Values map[string]float64
}

// ClientQuotaCount is how many (entity, key) values the image holds.
func (img *Image) ClientQuotaCount() int { return img.quotaCount }

// ClientQuotas returns every entity that holds a quota, in key order.
func (img *Image) ClientQuotas() []ClientQuota {
	var out []ClientQuota
	var lastEntity string
	img.quotas.Root().Walk(func(k []byte, v float64) bool {
		entity, key, ok := splitQuotaKey(k)
		if !ok {
			return false
		}
		if len(out) == 0 || string(entity) != lastEntity {
			lastEntity = string(entity)
			out = append(out, ClientQuota{Entity: decodeQuotaEntity(entity), Values: map[string]float64{}})
		}
		out[len(out)-1].Values[key] = v
		return false
	})
	return out
}

// ClientQuotaValues returns the quotas of exactly this entity (nil when it holds none).
func (img *Image) ClientQuotaValues(entity []QuotaEntityPart) map[string]float64 {
	var out map[string]float64
	prefix := encodeQuotaEntity(entity)
	img.quotas.Root().WalkPrefix(prefix, func(k []byte, v float64) bool {
		if out == nil {
			out = map[string]float64{}
		}
		out[string(k[len(prefix):])] = v
		return false
	})
	return out
}

// SortQuotaEntity orders an entity's parts by type, the canonical order.
func SortQuotaEntity(entity []QuotaEntityPart) {
	slices.SortFunc(entity, func(a, b QuotaEntityPart) int { return strings.Compare(a.Type, b.Type) })
}

// encodeQuotaEntity returns the key prefix of an entity's quotas, ending in the zero byte.
func encodeQuotaEntity(entity []QuotaEntityPart) []byte {
	parts := slices.Clone(entity)
	SortQuotaEntity(parts)
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p.Type))+1) // +1: a zero length ends the entity
		b = append(b, p.Type...)
		if p.Name == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(len(*p.Name)))
			b = append(b, *p.Name...)
		}
	}
	return append(b, 0)
}

// splitQuotaKey splits a tree key into the entity's encoding (ending in its zero byte) and the quota key.
func splitQuotaKey(k []byte) (entity []byte, key string, ok bool) {
	i := 0
	for {
		n, w := binary.Uvarint(k[i:])
		if w <= 0 {
			return nil, "", false
		}
		i += w
		if n == 0 {
			return k[:i], string(k[i:]), true
		}
		i += int(n - 1)
		if i >= len(k) {
			return nil, "", false
		}
		named := k[i] == 1
		i++
		if named {
			m, w := binary.Uvarint(k[i:])
			if w <= 0 {
				return nil, "", false
			}
			i += w + int(m)
		}
		if i > len(k) {
			return nil, "", false
		}
	}
}

func decodeQuotaEntity(b []byte) []QuotaEntityPart {
	var out []QuotaEntityPart
	i := 0
	for {
		n, w := binary.Uvarint(b[i:])
		i += w
		if n == 0 {
			return out
		}
		p := QuotaEntityPart{Type: string(b[i : i+int(n-1)])}
		i += int(n - 1)
		named := b[i] == 1
		i++
		if named {
			m, w := binary.Uvarint(b[i:])
			i += w
			name := string(b[i : i+int(m)])
			p.Name = &name
			i += int(m)
		}
		out = append(out, p)
	}
}

func (d *delta) quotaTxn() *iradix.Txn[float64] {
	if d.quotas == nil {
		d.quotas = d.base.quotas.Txn()
	}
	return d.quotas
}

func (d *delta) applyQuota(r *metadatapb.ClientQuotaRecord) string {
	if len(r.GetEntity()) == 0 || r.GetKey() == "" {
		return "a client quota without an entity or a key"
	}
	entity := make([]QuotaEntityPart, 0, len(r.GetEntity()))
	for _, e := range r.GetEntity() {
		if e.GetEntityType() == "" {
			return "a client quota entity without a type"
		}
		entity = append(entity, QuotaEntityPart{Type: e.GetEntityType(), Name: e.EntityName})
	}
	k := append(encodeQuotaEntity(entity), r.GetKey()...)
	if r.GetRemove() {
		if _, ok := d.quotaTxn().Delete(k); ok {
			d.quotaCount--
		}
		return ""
	}
	if _, existed := d.quotaTxn().Insert(k, r.GetValue()); !existed {
		d.quotaCount++
	}
	return ""
}

// QuotaRecord is the record that sets (or, with remove, deletes) one quota of entity.
func QuotaRecord(entity []QuotaEntityPart, key string, value float64, remove bool) *metadatapb.Record {
	r := &metadatapb.ClientQuotaRecord{Key: key, Value: value, Remove: remove}
	parts := slices.Clone(entity)
	SortQuotaEntity(parts)
	for _, p := range parts {
		r.Entity = append(r.Entity, &metadatapb.ClientQuotaRecord_EntityData{EntityType: p.Type, EntityName: p.Name})
	}
	return &metadatapb.Record{Record: &metadatapb.Record_ClientQuota{ClientQuota: r}}
}
