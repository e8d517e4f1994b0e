package metastore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Client quotas (KIP-13, KIP-124, KIP-546) are stored as Kafka shapes
// them: an entity, made of a user part, a client-id part or both, each
// named or the default, and a set of quota values keyed by Kafka's names
// (producer_byte_rate, consumer_byte_rate, request_percentage,
// controller_mutation_rate). The store keeps them; agents enforce them.

// Quota entity types.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
)

// QuotaEntityPart is one part of an entity. A nil Name is the default
// ("<default>" in Kafka's tools): it applies to every user, or client id,
// without a quota of its own.
type QuotaEntityPart struct {
	Type string
	Name *string
}

// QuotaEntity is a user, a client id, or a user and a client id.
type QuotaEntity []QuotaEntityPart

// Key is the entity's canonical text, user part first:
// "user=alice", "client-id=<default>", "user=alice,client-id=app".
// Names are quoted if they contain ',', '=' or '"' or could be read as
// the default, so distinct entities have distinct keys.
func (e QuotaEntity) Key() string {
	parts := make([]string, len(e))
	for i, p := range e.sorted() {
		name := "<default>"
		if p.Name != nil {
			name = *p.Name
			if strings.ContainsAny(name, `,="`) || name == "<default>" {
				name = fmt.Sprintf("%q", name)
			}
		}
		parts[i] = p.Type + "=" + name
	}
	return strings.Join(parts, ",")
}

func (e QuotaEntity) sorted() QuotaEntity {
	out := append(QuotaEntity(nil), e...)
	sort.Slice(out, func(i, j int) bool { return out[i].Type > out[j].Type }) // "user" before "client-id"
	return out
}

// Part returns the entity's part of type t.
func (e QuotaEntity) Part(t string) (QuotaEntityPart, bool) {
	for _, p := range e {
		if p.Type == t {
			return p, true
		}
	}
	return QuotaEntityPart{}, false
}

// ErrInvalidQuota reports a quota entity or value no quota can have.
var ErrInvalidQuota = errors.New("invalid client quota")

// Validate checks an entity: one or two parts, of the types user and
// client-id, at most one of each.
func (e QuotaEntity) Validate() error {
	if len(e) == 0 || len(e) > 2 {
		return fmt.Errorf("%w: an entity has a user, a client-id or both, not %d parts", ErrInvalidQuota, len(e))
	}
	seen := map[string]bool{}
	for _, p := range e {
		if p.Type != QuotaEntityUser && p.Type != QuotaEntityClientID {
			return fmt.Errorf("%w: unknown entity type %q", ErrInvalidQuota, p.Type)
		}
		if seen[p.Type] {
			return fmt.Errorf("%w: entity type %q given twice", ErrInvalidQuota, p.Type)
		}
		seen[p.Type] = true
	}
	return nil
}

// Quota keys.
const (
	QuotaProducerByteRate       = "producer_byte_rate"
	QuotaConsumerByteRate       = "consumer_byte_rate"
	QuotaRequestPercentage      = "request_percentage"
	QuotaControllerMutationRate = "controller_mutation_rate"
)

// ValidateQuotaValue checks a value for key as Kafka does: a known key
// and a positive value, whole for byte rates.
func ValidateQuotaValue(key string, v float64) error {
	switch key {
	case QuotaProducerByteRate, QuotaConsumerByteRate:
		if v != float64(int64(v)) {
			return fmt.Errorf("%w: %s must be a whole number, not %v", ErrInvalidQuota, key, v)
		}
	case QuotaRequestPercentage, QuotaControllerMutationRate:
	default:
		return fmt.Errorf("%w: unknown quota key %q", ErrInvalidQuota, key)
	}
	if !(v > 0) {
		return fmt.Errorf("%w: %s must be positive, not %v", ErrInvalidQuota, key, v)
	}
	return nil
}

// ClientQuota is an entity's quotas.
type ClientQuota struct {
	Entity QuotaEntity
	Values map[string]float64
}

// QuotaChange sets and removes quota values of one entity. An entity left
// without values is removed.
type QuotaChange struct {
	Entity QuotaEntity
	Set    map[string]float64
	Remove []string
}

// QuotaStore keeps the client quotas.
type QuotaStore interface {
	// ClientQuotas returns every entity with quotas, sorted by Key.
	ClientQuotas(ctx context.Context) ([]ClientQuota, error)
	// AlterClientQuotas applies changes in one transaction, after
	// checking them all (ErrInvalidQuota).
	AlterClientQuotas(ctx context.Context, changes []QuotaChange) error
}

// ValidateQuotaChange checks a change, for backends and callers.
func ValidateQuotaChange(c QuotaChange) error {
	if err := c.Entity.Validate(); err != nil {
		return err
	}
	for k, v := range c.Set {
		if err := ValidateQuotaValue(k, v); err != nil {
			return err
		}
	}
	for _, k := range c.Remove {
		if _, set := c.Set[k]; set {
			return fmt.Errorf("%w: %s both set and removed", ErrInvalidQuota, k)
		}
	}
	return nil
}

// ApplyQuotaChange returns values changed by c (values is not modified).
func ApplyQuotaChange(values map[string]float64, c QuotaChange) map[string]float64 {
	out := make(map[string]float64, len(values)+len(c.Set))
	for k, v := range values {
		out[k] = v
	}
	for k, v := range c.Set {
		out[k] = v
	}
	for _, k := range c.Remove {
		delete(out, k)
	}
	return out
}
