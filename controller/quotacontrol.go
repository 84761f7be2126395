package controller

import (
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/kraftgo/kraft/api/metadatapb"
	"github.com/kraftgo/kraft/metadatalog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// quotaControl is the client-quota manager, Kafka's ClientQuotaControlManager: it decides
// AlterClientQuotas requests. It is pure: (image, request) in, (records, per-entry answers) out, with
// Kafka's error codes and messages.
//
// A request is one batch: every entry that passes goes into it, every entry that fails is answered
// with its error and writes nothing. Below the metadata.version client quotas need, every entry is
// refused with UNSUPPORTED_VERSION.
type quotaControl struct{}

// quotaAlteration is one entry of an AlterClientQuotas request.
type quotaAlteration struct {
	entity []metadatalog.QuotaEntityPart // as the request lists it
	ops    []quotaOp
}

// quotaOp sets key to value, or removes it.
type quotaOp struct {
	key    string
	value  float64
	remove bool
}

// quotaOutcome is the answer for one entry.
type quotaOutcome struct {
	code *kerr.Error
	msg  string
}

func (o *quotaOutcome) fail(code *kerr.Error, format string, args ...any) {
	o.code, o.msg = code, fmt.Sprintf(format, args...)
}

// quotaValueKind is how a quota's value is checked: Kafka's config type for it.
type quotaValueKind int

const (
	quotaDouble quotaValueKind = iota
	quotaLong
	quotaInt
)

// Kafka's quota configs (QuotaConfig): which keys an entity of each kind may hold, and their types.
var (
	userClientQuotaKeys = map[string]quotaValueKind{
		"producer_byte_rate":       quotaLong,
		"consumer_byte_rate":       quotaLong,
		"request_percentage":       quotaDouble,
		"controller_mutation_rate": quotaDouble,
	}
	ipQuotaKeys = map[string]quotaValueKind{
		"connection_creation_rate": quotaInt,
	}
)

// alterClientQuotas decides an AlterClientQuotas request, entry by entry in request order. Within an
// entry the first operation that fails refuses the whole entry. Only changes write: setting a quota to
// the value it holds, or removing one the entity does not hold, writes nothing for it.
func (quotaControl) alterClientQuotas(img *metadatalog.Image, entries []quotaAlteration) ([]*metadatapb.Record, []quotaOutcome) {
	out := make([]quotaOutcome, len(entries))
	if msg := metadatalog.ClientQuotasRefusal(img.MetadataVersion()); msg != "" {
		for i := range out {
			out[i].fail(kerr.UnsupportedVersion, "%s", msg)
		}
		return nil, out
	}
	times := make(map[string]int, len(entries))
	for _, e := range entries {
		times[quotaEntityKey(e.entity)]++
	}
	var records []*metadatapb.Record
	for i, e := range entries {
		if times[quotaEntityKey(e.entity)] > 1 {
			// Every copy, so that nothing depends on which came first. (Kafka writes the first copy and
			// then answers the entity with this error.)
			out[i].fail(kerr.InvalidRequest, "Ignoring duplicate entity %s", metadatalog.QuotaEntityString(e.entity))
			continue
		}
		var recs []*metadatapb.Record
		recs, out[i] = alterQuotaEntity(img, e)
		records = append(records, recs...)
	}
	return records, out
}

// quotaEntityKey identifies an entity whatever the order of its parts.
func quotaEntityKey(entity []metadatalog.QuotaEntityPart) string {
	parts := slices.Clone(entity)
	metadatalog.SortQuotaEntity(parts)
	key := ""
	for _, p := range parts {
		key += fmt.Sprintf("%q", p.Type)
		if p.Name == nil {
			key += "-"
		} else {
			key += fmt.Sprintf("%q", *p.Name)
		}
	}
	return key
}

// alterQuotaEntity decides one entry.
func alterQuotaEntity(img *metadatalog.Image, e quotaAlteration) ([]*metadatapb.Record, quotaOutcome) {
	var o quotaOutcome
	// Kafka's order: duplicate keys, then the entity, then each operation.
	seen := make(map[string]bool, len(e.ops))
	for _, op := range e.ops {
		if seen[op.key] {
			o.fail(kerr.InvalidRequest, "Duplicate quota key %s not updating quota for this entity %s", op.key, metadatalog.QuotaEntityString(e.entity))
			return nil, o
		}
		seen[op.key] = true
	}
	keys, ok := checkQuotaEntity(e.entity, &o)
	if !ok {
		return nil, o
	}
	current := img.ClientQuotaValues(e.entity)
	var records []*metadatapb.Record
	for _, op := range e.ops {
		have, held := current[op.key]
		if op.remove {
			// As in Kafka, a removal is not checked against the keys: one the entity does not hold,
			// valid or not, is simply not there to remove.
			if held {
				records = append(records, metadatalog.QuotaRecord(e.entity, op.key, 0, true))
			}
			continue
		}
		if !checkQuotaValue(keys, op.key, op.value, &o) {
			return nil, o
		}
		if !held || have != op.value {
			records = append(records, metadatalog.QuotaRecord(e.entity, op.key, op.value, false))
		}
	}
	return records, o
}

// checkQuotaEntity checks an entity's parts and their combination as Kafka does, in its order, and
// returns the quota keys the entity may hold.
func checkQuotaEntity(entity []metadatalog.QuotaEntityPart, o *quotaOutcome) (map[string]quotaValueKind, bool) {
	if len(entity) == 0 {
		o.fail(kerr.InvalidRequest, "Invalid empty client quota entity")
		return nil, false
	}
	has := map[string]*string{}
	for _, p := range entity {
		if _, dup := has[p.Type]; dup {
			o.fail(kerr.InvalidRequest, "Invalid client quota entity, duplicate entity entry %s", p.Type)
			return nil, false
		}
		switch p.Type {
		case metadatalog.QuotaEntityUser, metadatalog.QuotaEntityClientID, metadatalog.QuotaEntityIP:
		default:
			o.fail(kerr.InvalidRequest, "Unhandled client quota entity type: %s", p.Type)
			return nil, false
		}
		if p.Name != nil && *p.Name == "" {
			// The default entity is a null name; an empty one would be an entity nobody can be.
			o.fail(kerr.InvalidRequest, "Empty %s not supported", p.Type)
			return nil, false
		}
		has[p.Type] = p.Name
	}
	ip, hasIP := has[metadatalog.QuotaEntityIP]
	if !hasIP {
		return userClientQuotaKeys, true // user, client-id, or both
	}
	if len(has) > 1 {
		o.fail(kerr.InvalidRequest, "Invalid quota entity combination, IP entity should not be combined with User or ClientId")
		return nil, false
	}
	if ip != nil {
		// Kafka also accepts a host name it can resolve; a pure decision cannot resolve one, and a
		// quota keyed by a name whose address changes would be a surprise, so only addresses pass.
		if _, err := netip.ParseAddr(*ip); err != nil {
			o.fail(kerr.InvalidRequest, "%s is not a valid IP address.", *ip)
			return nil, false
		}
	}
	return ipQuotaKeys, true
}

// checkQuotaValue checks that key is a quota this kind of entity may hold and value one it may take,
// with Kafka's messages.
func checkQuotaValue(keys map[string]quotaValueKind, key string, value float64, o *quotaOutcome) bool {
	kind, ok := keys[key]
	if !ok {
		o.fail(kerr.InvalidRequest, "Invalid configuration key %s", key)
		return false
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		// Kafka lets these through for a DOUBLE quota; no limit is "no quota", which is a removal.
		o.fail(kerr.InvalidRequest, "Quota %s must be a finite number; remove the quota to lift the limit", key)
		return false
	}
	if value <= 0 {
		o.fail(kerr.InvalidRequest, "Quota %s must be greater than 0", key)
		return false
	}
	switch kind {
	case quotaLong:
		if value >= math.MaxInt64 { // 2^63, the first float64 above MaxInt64
			o.fail(kerr.InvalidRequest, "Proposed value for %s is too large for a LONG.", key)
			return false
		}
	case quotaInt:
		if value > math.MaxInt32 {
			o.fail(kerr.InvalidRequest, "Proposed value for %s is too large for an INT.", key)
			return false
		}
	default:
		return true
	}
	if math.Abs(math.Mod(value, 1)) > 1e-6 {
		o.fail(kerr.InvalidRequest, "%s cannot be a fractional value.", key)
		return false
	}
	return true
}
