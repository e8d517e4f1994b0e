package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.GroupStore = (*Store)(nil)

// CommitOffsets implements metastore.GroupStore. A zero CommittedAt is set
// from the store's clock; any other is kept, so that a coordinator can
// carry over a commit time it already knows.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []metastore.CommittedOffset) error {
	gk, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("commit offsets %q: %w", group, err)
	}
	now := s.now()
	err = s.update(ctx, func(tx kv.Tx) error {
		return putOffsets(tx, tx.Bucket([]byte(bucketOffsets)), gk, offsets, now)
	})
	if err != nil {
		return fmt.Errorf("commit offsets %q: %w", group, err)
	}
	s.log.Debug("offsets committed", "group", group, "partitions", len(offsets))
	return nil
}

// putOffsets writes offsets into b, each under prefix followed by its
// partition's key (offsetKey), in tx. An offset of an unknown topic or
// partition fails the whole call (returning rolls back what it already
// wrote); a zero CommittedAt is set to now. Committed offsets and those
// pending in a transaction are written by it alike.
func putOffsets(tx kv.Tx, b kv.Bucket, prefix []byte, offsets []metastore.CommittedOffset, now time.Time) error {
	// Commits name many partitions of few topics: decode each topic once.
	partitions := make(map[metastore.TopicID]int32)
	for _, o := range offsets {
		pk := partitionKey{id: o.TopicID, partition: o.Partition}
		n, ok := partitions[pk.id]
		if !ok {
			_, rec, err := topicByID(tx, pk.id[:])
			switch {
			case err == nil:
				n = rec.Partitions
			case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
				n = 0 // every partition is unknown
			default:
				return err
			}
			partitions[pk.id] = n
		}
		if pk.partition < 0 || pk.partition >= n {
			return fmt.Errorf("%s: %w", pk, metastore.ErrUnknownTopicOrPartition)
		}
		if o.CommittedAt.IsZero() {
			o.CommittedAt = now
		}
		if err := b.Put(offsetKey(prefix, pk), encodeOffset(&o)); err != nil {
			return err
		}
	}
	return nil
}

// FetchOffsets implements metastore.GroupStore. A group's offsets are one
// key range, in topic ID and partition order.
func (s *Store) FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error) {
	gk, err := groupKey(group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets %q: %w", group, err)
	}
	var offsets []metastore.CommittedOffset
	err = s.view(ctx, func(tx kv.Tx) error {
		c := tx.Bucket([]byte(bucketOffsets)).Cursor()
		for k, v := c.Seek(gk); bytes.HasPrefix(k, gk); k, v = c.Next() {
			o, err := decodeOffset(k[len(gk):], v)
			if err != nil {
				return err
			}
			offsets = append(offsets, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch offsets %q: %w", group, err)
	}
	return offsets, nil
}

// DeleteOffsets implements metastore.GroupStore. Partitions without a
// committed offset are ignored.
func (s *Store) DeleteOffsets(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	gk, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("delete offsets %q: %w", group, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketOffsets))
		for _, tp := range partitions {
			if err := b.Delete(offsetKey(gk, partitionKey{id: tp.TopicID, partition: tp.Partition})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete offsets %q: %w", group, err)
	}
	return nil
}

// ExpireOffsets implements metastore.GroupStore.
func (s *Store) ExpireOffsets(ctx context.Context, group string, olderThan time.Time) (int, error) {
	gk, err := groupKey(group)
	if err != nil {
		return 0, fmt.Errorf("expire offsets %q: %w", group, err)
	}
	var expired [][]byte
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketOffsets))
		c := b.Cursor()
		for k, v := c.Seek(gk); bytes.HasPrefix(k, gk); k, v = c.Next() {
			o, err := decodeOffset(k[len(gk):], v)
			if err != nil {
				return err
			}
			if o.CommittedAt.Before(olderThan) {
				expired = append(expired, bytes.Clone(k))
			}
		}
		// Deleting under the cursor would skip keys.
		return deleteKeys(b, expired)
	})
	if err != nil {
		return 0, fmt.Errorf("expire offsets %q before %v: %w", group, olderThan, err)
	}
	return len(expired), nil
}

// LoadGroup implements metastore.GroupStore.
func (s *Store) LoadGroup(ctx context.Context, name string) (metastore.Group, bool, error) {
	gk, err := groupKey(name)
	if err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %q: %w", name, err)
	}
	var rec *groupRecord
	err = s.view(ctx, func(tx kv.Tx) error {
		v := tx.Bucket([]byte(bucketGroups)).Get(gk)
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeGroup(v)
		return err
	})
	if err != nil {
		return metastore.Group{}, false, fmt.Errorf("load group %q: %w", name, err)
	}
	if rec == nil {
		return metastore.Group{}, false, nil
	}
	return rec.group(name), true, nil
}

// SaveGroup implements metastore.GroupStore. The version check and the write
// are one transaction, and bbolt has a single writer, so of two coordinators
// saving over the same version exactly one wins. A zero UpdatedAt is set
// from the store's clock.
func (s *Store) SaveGroup(ctx context.Context, g metastore.Group) (int64, error) {
	gk, err := groupKey(g.Name)
	if err != nil {
		return 0, fmt.Errorf("save group %q: %w", g.Name, err)
	}
	rec := &groupRecord{
		ProtocolType: g.ProtocolType,
		State:        g.State,
		Data:         g.Data,
		Version:      g.Version + 1,
		UpdatedAt:    g.UpdatedAt.UTC().Round(0),
	}
	if g.UpdatedAt.IsZero() {
		rec.UpdatedAt = s.now().UTC().Round(0)
	}
	// Encoded before the transaction: the caller's Data is not retained.
	v, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("save group %q: %w", g.Name, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketGroups))
		var stored int64 // no record: version 0
		if old := b.Get(gk); old != nil {
			oldRec, err := decodeGroup(old)
			if err != nil {
				return err
			}
			stored = oldRec.Version
		}
		if g.Version != stored {
			return fmt.Errorf("expected version %d, stored %d: %w", g.Version, stored, metastore.ErrGroupVersionConflict)
		}
		return b.Put(gk, v)
	})
	if err != nil {
		return 0, fmt.Errorf("save group %q: %w", g.Name, err)
	}
	return rec.Version, nil
}

// ListGroups implements metastore.GroupStore.
func (s *Store) ListGroups(ctx context.Context) ([]metastore.GroupSummary, error) {
	var groups []metastore.GroupSummary
	err := s.view(ctx, func(tx kv.Tx) error {
		withRecord := make(map[string]bool)
		err := tx.Bucket([]byte(bucketGroups)).ForEach(func(k, v []byte) error {
			name, rest, err := decodeGroupKey(k)
			if err != nil {
				return err
			}
			if len(rest) != 0 {
				return fmt.Errorf("group key: %w: %d bytes after the name", errCorrupt, len(rest))
			}
			rec, err := decodeGroup(v)
			if err != nil {
				return fmt.Errorf("group %q: %w", name, err)
			}
			withRecord[name] = true
			groups = append(groups, metastore.GroupSummary{Name: name, ProtocolType: rec.ProtocolType, State: rec.State})
			return nil
		})
		if err != nil {
			return err
		}
		// A group's offsets are contiguous, so comparing with the previous
		// key's group sees each group once.
		var prev []byte
		return tx.Bucket([]byte(bucketOffsets)).ForEach(func(k, _ []byte) error {
			if prev != nil && bytes.HasPrefix(k, prev) {
				return nil
			}
			name, _, err := decodeGroupKey(k)
			if err != nil {
				return err
			}
			if prev, err = groupKey(name); err != nil {
				return err
			}
			if !withRecord[name] {
				// Groups that only commit offsets (standalone consumers,
				// or a group whose record was never saved).
				groups = append(groups, metastore.OffsetsOnlyGroup(name))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	slices.SortFunc(groups, func(a, b metastore.GroupSummary) int { return cmp.Compare(a.Name, b.Name) })
	return groups, nil
}

// DeleteGroup implements metastore.GroupStore.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	gk, err := groupKey(name)
	if err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		groups := tx.Bucket([]byte(bucketGroups))
		hadRecord := groups.Get(gk) != nil
		if err := groups.Delete(gk); err != nil {
			return err
		}
		offsets := tx.Bucket([]byte(bucketOffsets))
		k, _ := offsets.Cursor().Seek(gk)
		hadOffsets := bytes.HasPrefix(k, gk)
		if !hadRecord && !hadOffsets {
			return metastore.ErrUnknownGroup
		}
		return deletePrefix(offsets, gk)
	})
	if err != nil {
		return fmt.Errorf("delete group %q: %w", name, err)
	}
	return nil
}

// deleteTopicOffsets deletes every group's committed offsets for a topic,
// inside DeleteTopic's transaction. Offsets are keyed by group, so this
// reads the whole bucket (see the layout).
func deleteTopicOffsets(tx kv.Tx, id metastore.TopicID) error {
	if err := deleteTopicOfGroups(tx.Bucket([]byte(bucketOffsets)), id); err != nil {
		return fmt.Errorf("offsets of topic %s: %w", uuid.UUID(id), err)
	}
	return nil
}

// deleteTopicOfGroups deletes a topic's entries from a bucket keyed by
// group first and then topic ID (committed offsets, share states): it
// reads the whole bucket.
func deleteTopicOfGroups(b kv.Bucket, id metastore.TopicID) error {
	var keys [][]byte
	err := b.ForEach(func(k, _ []byte) error {
		_, rest, err := decodeGroupKey(k)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(rest, id[:]) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return deleteKeys(b, keys)
}
