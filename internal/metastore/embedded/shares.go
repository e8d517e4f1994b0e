package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.ShareStore = (*Store)(nil)

// Share-partition states live in the shares bucket, keyed by the group's
// groupKey, then the topic id (16 bytes) and partition (4 bytes,
// big-endian), so one group's states are a prefix range in load order.
// Files written before share groups lack the bucket; Open creates it
// empty. A value is
//
//	version(8) stateEpoch(4) startOffset(8) updatedAt(8, Unix ns) batches
//
// all big-endian, batches as metastore.EncodeShareBatches writes them.
const shareHeaderSize = 8 + 4 + 8 + 8

func shareKey(gk []byte, id metastore.TopicID, partition int32) []byte {
	k := make([]byte, 0, len(gk)+16+4)
	k = append(k, gk...)
	k = append(k, id[:]...)
	return binary.BigEndian.AppendUint32(k, uint32(partition))
}

func encodeShareState(s *metastore.ShareState) []byte {
	v := make([]byte, 0, shareHeaderSize)
	v = binary.BigEndian.AppendUint64(v, uint64(s.Version))
	v = binary.BigEndian.AppendUint32(v, uint32(s.StateEpoch))
	v = binary.BigEndian.AppendUint64(v, uint64(s.StartOffset))
	v = binary.BigEndian.AppendUint64(v, uint64(s.UpdatedAt.UnixNano()))
	return append(v, metastore.EncodeShareBatches(s.Batches)...)
}

func decodeShareState(rest, v []byte) (metastore.ShareState, error) {
	var s metastore.ShareState
	if len(rest) != 16+4 || len(v) < shareHeaderSize {
		return s, fmt.Errorf("share state: %w: key %d bytes, value %d bytes", errCorrupt, len(rest), len(v))
	}
	copy(s.TopicID[:], rest)
	s.Partition = int32(binary.BigEndian.Uint32(rest[16:]))
	s.Version = int64(binary.BigEndian.Uint64(v))
	s.StateEpoch = int32(binary.BigEndian.Uint32(v[8:]))
	s.StartOffset = int64(binary.BigEndian.Uint64(v[12:]))
	s.UpdatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[20:])))
	var err error
	if s.Batches, err = metastore.DecodeShareBatches(v[shareHeaderSize:]); err != nil {
		return s, fmt.Errorf("share state: %w: %w", errCorrupt, err)
	}
	return s, nil
}

// LoadShareStates implements metastore.ShareStore.
func (s *Store) LoadShareStates(ctx context.Context, group string) ([]metastore.ShareState, error) {
	gk, err := groupKey(group)
	if err != nil {
		return nil, fmt.Errorf("load share states %q: %w", group, err)
	}
	var states []metastore.ShareState
	err = s.view(ctx, func(tx kv.Tx) error {
		c := tx.Bucket([]byte(bucketShares)).Cursor()
		for k, v := c.Seek(gk); bytes.HasPrefix(k, gk); k, v = c.Next() {
			st, err := decodeShareState(k[len(gk):], v)
			if err != nil {
				return err
			}
			states = append(states, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load share states %q: %w", group, err)
	}
	return states, nil
}

// ListShareGroups implements metastore.ShareStore: the groups of the
// shares bucket and of the sharegroups bucket (membership records). The
// shares keys start with the length-prefixed group name, so one pass over
// the bucket sees each group's states together.
func (s *Store) ListShareGroups(ctx context.Context) ([]string, error) {
	var groups []string
	err := s.view(ctx, func(tx kv.Tx) error {
		for _, bucket := range []string{bucketShares, bucketShareGroups} {
			c := tx.Bucket([]byte(bucket)).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				g, _, err := decodeGroupKey(k)
				if err != nil {
					return err
				}
				if n := len(groups); n == 0 || groups[n-1] != g {
					groups = append(groups, g)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list share groups: %w", err)
	}
	// Keys sort by length first; the interface sorts by name.
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// WriteShareStates implements metastore.ShareStore: one bolt
// transaction checks every version and writes every state.
func (s *Store) WriteShareStates(ctx context.Context, group string, states []metastore.ShareState) ([]int64, error) {
	gk, err := groupKey(group)
	if err != nil {
		return nil, fmt.Errorf("write share states %q: %w", group, err)
	}
	if err := metastore.CheckShareStates(states); err != nil {
		return nil, fmt.Errorf("write share states %q: %w", group, err)
	}
	now := s.now()
	versions := make([]int64, len(states))
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketShares))
		partitions := make(map[metastore.TopicID]int32)
		for i, st := range states {
			n, ok := partitions[st.TopicID]
			if !ok {
				_, rec, err := topicByID(tx, st.TopicID[:])
				switch {
				case err == nil:
					n = rec.Partitions
				case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
				default:
					return err
				}
				partitions[st.TopicID] = n
			}
			if st.Partition < 0 || st.Partition >= n {
				return fmt.Errorf("%x-%d: %w", st.TopicID[:], st.Partition, metastore.ErrUnknownTopicOrPartition)
			}
			k := shareKey(gk, st.TopicID, st.Partition)
			var stored int64
			if v := b.Get(k); v != nil {
				if len(v) < 8 {
					return fmt.Errorf("share state: %w", errCorrupt)
				}
				stored = int64(binary.BigEndian.Uint64(v))
			}
			if stored != st.Version {
				return fmt.Errorf("%x-%d: expected version %d, stored %d: %w", st.TopicID[:], st.Partition, st.Version, stored, metastore.ErrShareVersionConflict)
			}
			st.Version++
			if st.UpdatedAt.IsZero() {
				st.UpdatedAt = now
			}
			if err := b.Put(k, encodeShareState(&st)); err != nil {
				return err
			}
			versions[i] = st.Version
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write share states %q: %w", group, err)
	}
	return versions, nil
}

// DeleteShareStates implements metastore.ShareStore.
func (s *Store) DeleteShareStates(ctx context.Context, group string, partitions []metastore.TopicPartition) error {
	gk, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("delete share states %q: %w", group, err)
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketShares))
		if partitions == nil {
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(gk); bytes.HasPrefix(k, gk); k, _ = c.Next() {
				// Another group's name may extend this one's key only
				// with a different length prefix, so the prefix is exact.
				keys = append(keys, bytes.Clone(k))
			}
			return deleteKeys(b, keys)
		}
		for _, tp := range partitions {
			if err := b.Delete(shareKey(gk, tp.TopicID, tp.Partition)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete share states %q: %w", group, err)
	}
	return nil
}

// deleteTopicShares deletes every group's share-partition states of a
// topic, in DeleteTopic's transaction. Like committed offsets they are
// keyed by group first, so the whole bucket is read; topics are deleted
// rarely.
func deleteTopicShares(tx kv.Tx, id metastore.TopicID) error {
	if err := deleteTopicOfGroups(tx.Bucket([]byte(bucketShares)), id); err != nil {
		return fmt.Errorf("share states of topic %x: %w", id[:], err)
	}
	return nil
}
