package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// CreateTopic implements metastore.Store.
func (s *Store) CreateTopic(ctx context.Context, spec metastore.TopicSpec) (metastore.Topic, error) {
	if err := metastore.CheckTopicSpec(spec); err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	id := metastore.TopicID(u)
	rec := &topicRecord{
		Name:       spec.Name,
		Partitions: spec.Partitions,
		Configs:    make(map[string]string, len(spec.Configs)),
		CreatedAt:  s.now().UTC().Round(0),
	}
	for k, v := range spec.Configs {
		rec.Configs[k] = v
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		names := tx.Bucket([]byte(bucketNames))
		if names.Get([]byte(spec.Name)) != nil {
			return metastore.ErrTopicExists
		}
		if tx.Bucket([]byte(bucketTopics)).Get(id[:]) != nil {
			return errors.New("topic id collision") // a broken random source
		}
		if err := names.Put([]byte(spec.Name), id[:]); err != nil {
			return err
		}
		if err := resizeTopicStates(tx, id, rec.Partitions); err != nil {
			return err
		}
		return putTopic(tx, id, rec)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create topic %s: %w", spec.Name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{spec.Name}})
	return rec.topic(id), nil
}

// DeleteTopic implements metastore.Store.
func (s *Store) DeleteTopic(ctx context.Context, name string) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.update(ctx, func(tx kv.Tx) error {
		id, rec, err := topicByName(tx, name)
		if err != nil {
			return err
		}
		t = rec.topic(id)
		// Its extents still in the log go to the extents bucket first,
		// to be counted off their objects and deleted with the rest.
		if err := foldTopic(tx, id); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketNames)).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketTopics)).Delete(id[:]); err != nil {
			return err
		}
		// Its objects lose these references; those left with none
		// become the cleaner's.
		removed := metastore.RefTally{}
		c := tx.Bucket([]byte(bucketExtents)).Cursor()
		for k, v := c.Seek(id[:]); k != nil && bytes.HasPrefix(k, id[:]); k, v = c.Next() {
			e, err := decodeExtent(k, v)
			if err != nil {
				return err
			}
			removed.Remove(e)
		}
		if err := applyRefs(tx, removed.Changes(), s.now(), false); err != nil {
			return err
		}
		// Every per-partition key starts with the topic ID (the
		// partitions value's key is the ID itself), and so does every
		// producer's sequence states value of the topic.
		for _, b := range []string{bucketPartitions, bucketPartStates, bucketExtents, bucketSeqStates} {
			if err := deletePrefix(tx.Bucket([]byte(b)), id[:]); err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
		}
		if err := deleteTopicTxns(tx, id); err != nil {
			return err
		}
		if err := deleteTopicShares(tx, id); err != nil {
			return err
		}
		// The writer's alone, as the transaction (forgetting a slab
		// that a rolled-back transaction needed costs a new one).
		s.slabs.dropTopic(id)
		// Committed offsets are keyed by group first.
		return deleteTopicOffsets(tx, id)
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("delete topic %s: %w", name, err)
	}
	s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
	return t, nil
}

// CreatePartitions implements metastore.Store.
func (s *Store) CreatePartitions(ctx context.Context, name string, total int32) (metastore.Topic, error) {
	t, err := s.alterTopic(ctx, name, func(rec *topicRecord) error {
		if err := metastore.CheckPartitionIncrease(rec.Partitions, total); err != nil {
			return err
		}
		rec.Partitions = total
		return nil
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("create partitions %s: %w", name, err)
	}
	return t, nil
}

// AlterTopicConfigs implements metastore.Store.
func (s *Store) AlterTopicConfigs(ctx context.Context, name string, changes []metastore.ConfigChange) (metastore.Topic, error) {
	t, err := s.alterTopic(ctx, name, func(rec *topicRecord) error {
		rec.Configs = metastore.ApplyConfigChanges(rec.Configs, changes)
		return nil
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("alter topic configs %s: %w", name, err)
	}
	return t, nil
}

// alterTopic applies change to a topic's record and stores it.
func (s *Store) alterTopic(ctx context.Context, name string, change func(*topicRecord) error) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.update(ctx, func(tx kv.Tx) error {
		id, rec, err := topicByName(tx, name)
		if err != nil {
			return err
		}
		if err := change(rec); err != nil {
			return err
		}
		t = rec.topic(id)
		if err := resizeTopicStates(tx, id, rec.Partitions); err != nil {
			return err
		}
		return putTopic(tx, id, rec)
	})
	if err == nil {
		s.NotifyTopics(metastore.TopicNotice{Names: []string{name}})
	}
	return t, err
}

// Topic implements metastore.Store.
func (s *Store) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	var t metastore.Topic
	err := s.view(ctx, func(tx kv.Tx) error {
		id, rec, err := topicByName(tx, name)
		if err != nil {
			return err
		}
		t = rec.topic(id)
		return nil
	})
	if err != nil {
		return metastore.Topic{}, fmt.Errorf("topic %s: %w", name, err)
	}
	return t, nil
}

// Topics implements metastore.Store.
func (s *Store) Topics(ctx context.Context) ([]metastore.Topic, error) {
	var topics []metastore.Topic
	err := s.view(ctx, func(tx kv.Tx) error {
		// The names bucket iterates in byte order, which is Go's string order.
		return tx.Bucket([]byte(bucketNames)).ForEach(func(name, v []byte) error {
			id, rec, err := topicByID(tx, v)
			if err != nil {
				return fmt.Errorf("topic %s: %w", name, err)
			}
			topics = append(topics, rec.topic(id))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	return topics, nil
}

func topicByName(tx kv.Tx, name string) (metastore.TopicID, *topicRecord, error) {
	v := tx.Bucket([]byte(bucketNames)).Get([]byte(name))
	if v == nil {
		return metastore.TopicID{}, nil, metastore.ErrUnknownTopicOrPartition
	}
	return topicByID(tx, v)
}

func topicByID(tx kv.Tx, idBytes []byte) (metastore.TopicID, *topicRecord, error) {
	var id metastore.TopicID
	if len(idBytes) != len(id) {
		return id, nil, fmt.Errorf("topic id: %w: %d bytes", errCorrupt, len(idBytes))
	}
	copy(id[:], idBytes)
	v := tx.Bucket([]byte(bucketTopics)).Get(id[:])
	if v == nil {
		return id, nil, metastore.ErrUnknownTopicOrPartition
	}
	rec, err := decodeTopic(v)
	return id, rec, err
}

// checkPartition fails with ErrUnknownTopicOrPartition unless the topic
// incarnation exists and has the partition. It reads the topic's
// partition states (a header and a length), not its JSON record.
func checkPartition(tx kv.Tx, pk partitionKey) error {
	_, err := readPartition(tx, pk)
	return err
}

func putTopic(tx kv.Tx, id metastore.TopicID, rec *topicRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketTopics)).Put(id[:], v)
}

// deletePrefix deletes every key of b that starts with prefix
// (kv.DeletePrefix).
func deletePrefix(b kv.Bucket, prefix []byte) error {
	_, err := kv.DeletePrefix(b, prefix)
	return err
}

// deleteKeys deletes keys from b: keys a walk collected first, because
// deleting under a cursor skips entries.
func deleteKeys(b kv.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// foldTopic folds every pending partition of a topic (extentlog.go).
func foldTopic(tx kv.Tx, id metastore.TopicID) error {
	v := tx.Bucket([]byte(bucketPartStates)).Get(id[:])
	n, err := checkTopicStates(v)
	if err != nil {
		return err
	}
	var pks []partitionKey
	for p := range n {
		if stateAt(v, p).pendingSeq != 0 {
			pks = append(pks, partitionKey{id: id, partition: p})
		}
	}
	return foldNow(tx, pks)
}
