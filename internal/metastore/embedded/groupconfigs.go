package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.GroupConfigStore = (*Store)(nil)

func groupConfigsIn(tx kv.Tx, gk []byte) (map[string]string, error) {
	configs := map[string]string{}
	v := tx.Bucket([]byte(bucketGroupConfigs)).Get(gk)
	if v == nil {
		return configs, nil
	}
	if err := json.Unmarshal(v, &configs); err != nil {
		return nil, fmt.Errorf("group configs: %w: %w", errCorrupt, err)
	}
	return configs, nil
}

// GroupConfigs implements metastore.GroupConfigStore.
func (s *Store) GroupConfigs(ctx context.Context, group string) (map[string]string, error) {
	gk, err := groupKey(group)
	if err != nil {
		return nil, fmt.Errorf("group configs %q: %w", group, err)
	}
	var configs map[string]string
	err = s.view(ctx, func(tx kv.Tx) error {
		configs, err = groupConfigsIn(tx, gk)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("group configs %q: %w", group, err)
	}
	return configs, nil
}

// AlterGroupConfigs implements metastore.GroupConfigStore.
func (s *Store) AlterGroupConfigs(ctx context.Context, group string, changes []metastore.ConfigChange) (map[string]string, error) {
	gk, err := groupKey(group)
	if err != nil {
		return nil, fmt.Errorf("alter group configs %q: %w", group, err)
	}
	var configs map[string]string
	err = s.update(ctx, func(tx kv.Tx) error {
		old, err := groupConfigsIn(tx, gk)
		if err != nil {
			return err
		}
		if configs, err = metastore.ApplyGroupConfigChanges(old, changes); err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketGroupConfigs))
		if len(configs) == 0 {
			return b.Delete(gk)
		}
		v, err := json.Marshal(configs)
		if err != nil {
			return err
		}
		return b.Put(gk, v)
	})
	if err != nil {
		return nil, fmt.Errorf("alter group configs %q: %w", group, err)
	}
	return configs, nil
}

// GroupsWithConfigs implements metastore.GroupConfigStore. A group's key
// is its name's length and then the name, so the bucket's order is the
// one the interface promises; a group left with no config has no key.
func (s *Store) GroupsWithConfigs(ctx context.Context, limit int) ([]string, error) {
	var groups []string
	if limit < 1 {
		return groups, nil
	}
	err := s.view(ctx, func(tx kv.Tx) error {
		c := tx.Bucket([]byte(bucketGroupConfigs)).Cursor()
		for k, _ := c.First(); k != nil && len(groups) < limit; k, _ = c.Next() {
			group, rest, err := decodeGroupKey(k)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return fmt.Errorf("group configs key: %w: %d bytes after the name", errCorrupt, len(rest))
			}
			groups = append(groups, group)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("groups with configs: %w", err)
	}
	return groups, nil
}
