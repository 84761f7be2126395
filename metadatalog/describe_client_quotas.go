package metadatalog

// The DescribeClientQuotas answer (Kafka API key 48, versions 0–1; v1 is flexible and changes nothing
// else) built from an image. Brokers and controllers both answer it from their own image, so the
// filter lives here, beside the image, once.
//
// The filter is Kafka's (its KRaft image's describe): each component names an entity type and a match
// — EXACT a name, DEFAULT the type's default entity, ANY every entity with a part of that type, named
// or default. An entity matches when it has a part matching every component; a strict filter also
// requires it to have no other parts. No components and not strict matches everything.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The client-quota entity types Kafka knows.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
	QuotaEntityIP       = "ip"
)

// ClientQuotasRefusal is why client quotas cannot be used at metadata.version level, or "" when they
// can: the message the client-quota APIs answer UNSUPPORTED_VERSION with.
func ClientQuotasRefusal(level int16) string {
	if level >= QuotasLevel {
		return ""
	}
	need, _ := MetadataVersionByLevel(QuotasLevel)
	return fmt.Sprintf("client quotas need metadata.version %s (level %d) or later; the cluster is at %s: raise it with `kraftctl features upgrade --metadata %s`",
		need.Name, need.Level, describeLevel(level), need.Name)
}

// describeLevel names a level for a person: "1.1-IV0 (level 3)", or just "level 0" when the table has
// no name for it (an image that has not yet read its bootstrap records).
func describeLevel(level int16) string {
	if v, ok := MetadataVersionByLevel(level); ok {
		return fmt.Sprintf("%s (level %d)", v.Name, level)
	}
	return fmt.Sprintf("level %d", level)
}

// DescribeClientQuotasResponse answers req from img.
func (img *Image) DescribeClientQuotasResponse(req *kmsg.DescribeClientQuotasRequest) *kmsg.DescribeClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	quotas, code, msg := img.DescribeClientQuotas(req.Components, req.Strict)
	if code != nil {
		// As Kafka answers a refused filter: the error, and no entries at all (null).
		resp.ErrorCode, resp.ErrorMessage = code.Code, &msg
		return resp
	}
	resp.Entries = make([]kmsg.DescribeClientQuotasResponseEntry, 0, len(quotas))
	for _, q := range quotas {
		e := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range q.Entity {
			re := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			re.Type, re.Name = p.Type, p.Name
			e.Entity = append(e.Entity, re)
		}
		keys := make([]string, 0, len(q.Values))
		for k := range q.Values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, q.Values[k]
			e.Values = append(e.Values, v)
		}
		resp.Entries = append(resp.Entries, e)
	}
	return resp
}

// quotaMatch is one checked filter component.
type quotaMatch struct {
	typ   string
	any   bool    // ANY: any part of this type
	name  *string // EXACT: this name; DEFAULT: nil
	exact bool    // EXACT or DEFAULT
}

// DescribeClientQuotas returns the entities img holds quotas for that the filter matches, in the
// image's order. A filter Kafka refuses is answered with its code and message and no entities;
// below the metadata.version client quotas need, every filter is refused with UNSUPPORTED_VERSION.
func (img *Image) DescribeClientQuotas(components []kmsg.DescribeClientQuotasRequestComponent, strict bool) ([]ClientQuota, *kerr.Error, string) {
	if msg := ClientQuotasRefusal(img.MetadataVersion()); msg != "" {
		return nil, kerr.UnsupportedVersion, msg
	}
	matches, code, msg := checkQuotaFilter(components)
	if code != nil {
		return nil, code, msg
	}

	// A strict filter of exact names and defaults names one entity: look it up.
	if strict && len(matches) > 0 && !slices.ContainsFunc(matches, func(m quotaMatch) bool { return m.any }) {
		entity := make([]QuotaEntityPart, len(matches))
		for i, m := range matches {
			entity[i] = QuotaEntityPart{Type: m.typ, Name: m.name}
		}
		SortQuotaEntity(entity)
		values := img.ClientQuotaValues(entity)
		if values == nil {
			return nil, nil, ""
		}
		return []ClientQuota{{Entity: entity, Values: values}}, nil, ""
	}

	var out []ClientQuota
	for _, q := range img.ClientQuotas() {
		if quotaFilterMatches(q.Entity, matches, strict) {
			out = append(out, q)
		}
	}
	return out, nil, ""
}

// checkQuotaFilter checks the components as Kafka does, in order, and returns the first refusal with
// Kafka's code and message.
func checkQuotaFilter(components []kmsg.DescribeClientQuotasRequestComponent) ([]quotaMatch, *kerr.Error, string) {
	matches := make([]quotaMatch, 0, len(components))
	seen := map[string]bool{}
	for _, c := range components {
		switch {
		case c.EntityType == "":
			return nil, kerr.InvalidRequest, "Invalid empty entity type."
		case seen[c.EntityType]:
			return nil, kerr.InvalidRequest, fmt.Sprintf("Entity type %s cannot appear more than once in the filter.", c.EntityType)
		case c.EntityType != QuotaEntityUser && c.EntityType != QuotaEntityClientID && c.EntityType != QuotaEntityIP:
			// Kafka answers an entity type it does not know with UNSUPPORTED_VERSION, not INVALID_REQUEST.
			return nil, kerr.UnsupportedVersion, fmt.Sprintf("Unsupported entity type %s", c.EntityType)
		}
		seen[c.EntityType] = true
		m := quotaMatch{typ: c.EntityType}
		switch c.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if c.Match == nil {
				return nil, kerr.InvalidRequest, "Request specified MATCH_TYPE_EXACT, but set match string to null."
			}
			m.exact, m.name = true, c.Match
		case kmsg.QuotasMatchTypeDefault:
			if c.Match != nil {
				return nil, kerr.InvalidRequest, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
			}
			m.exact = true
		case kmsg.QuotasMatchTypeAny:
			if c.Match != nil {
				return nil, kerr.InvalidRequest, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
			}
			m.any = true
		default:
			return nil, kerr.InvalidRequest, fmt.Sprintf("Unknown match type %d", c.MatchType)
		}
		matches = append(matches, m)
	}
	if seen[QuotaEntityIP] && (seen[QuotaEntityUser] || seen[QuotaEntityClientID]) {
		return nil, kerr.InvalidRequest, "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component."
	}
	return matches, nil, ""
}

// quotaFilterMatches reports whether entity passes every match (and, strict, has no other parts).
func quotaFilterMatches(entity []QuotaEntityPart, matches []quotaMatch, strict bool) bool {
	if strict && len(entity) != len(matches) {
		return false
	}
	for _, m := range matches {
		i := slices.IndexFunc(entity, func(p QuotaEntityPart) bool { return p.Type == m.typ })
		if i < 0 {
			return false
		}
		if m.exact && !sameQuotaName(entity[i].Name, m.name) {
			return false
		}
	}
	return true
}

func sameQuotaName(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// QuotaEntityString is an entity as messages show it: {client-id=app, user=<default>}, parts in
// type order.
func QuotaEntityString(entity []QuotaEntityPart) string {
	parts := slices.Clone(entity)
	SortQuotaEntity(parts)
	s := make([]string, len(parts))
	for i, p := range parts {
		if p.Name == nil {
			s[i] = p.Type + "=<default>"
		} else {
			s[i] = p.Type + "=" + *p.Name
		}
	}
	return "{" + strings.Join(s, ", ") + "}"
}
