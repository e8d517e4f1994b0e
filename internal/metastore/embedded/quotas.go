package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.QuotaStore = (*Store)(nil)

// ClientQuotas implements metastore.QuotaStore; bbolt iterates keys in
// order, which is the order of QuotaEntity.Key.
func (s *Store) ClientQuotas(ctx context.Context) ([]metastore.ClientQuota, error) {
	var out []metastore.ClientQuota
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketQuotas)).ForEach(func(k, v []byte) error {
			var q metastore.ClientQuota
			if err := json.Unmarshal(v, &q); err != nil {
				return fmt.Errorf("quota %s: %w: %v", k, errCorrupt, err)
			}
			out = append(out, q)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("client quotas: %w", err)
	}
	return out, nil
}

// AlterClientQuotas implements metastore.QuotaStore.
func (s *Store) AlterClientQuotas(ctx context.Context, changes []metastore.QuotaChange) error {
	for _, c := range changes {
		if err := metastore.ValidateQuotaChange(c); err != nil {
			return fmt.Errorf("alter client quotas: %w", err)
		}
	}
	err := s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketQuotas))
		for _, c := range changes {
			key := []byte(c.Entity.Key())
			var old metastore.ClientQuota
			if v := b.Get(key); v != nil {
				if err := json.Unmarshal(v, &old); err != nil {
					return fmt.Errorf("quota %s: %w: %v", key, errCorrupt, err)
				}
			}
			values := metastore.ApplyQuotaChange(old.Values, c)
			if len(values) == 0 {
				if err := b.Delete(key); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(metastore.ClientQuota{Entity: c.Entity, Values: values})
			if err != nil {
				return err
			}
			if err := b.Put(key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	return nil
}
