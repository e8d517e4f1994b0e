package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.JobStore = (*Store)(nil)

// leaseRecord is a lease as stored; its name is the key.
type leaseRecord struct {
	Holder   string    `json:"holder"`
	Epoch    int64     `json:"epoch"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
}

func (r *leaseRecord) lease(name string) metastore.Lease {
	return metastore.Lease{Name: name, Holder: r.Holder, Epoch: r.Epoch, Acquired: r.Acquired, Renewed: r.Renewed, Expires: r.Expires}
}

func getLease(tx kv.Tx, name string) (*leaseRecord, error) {
	v := tx.Bucket([]byte(bucketLeases)).Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	var r leaseRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("lease %s: %w: %v", name, errCorrupt, err)
	}
	return &r, nil
}

func putLease(tx kv.Tx, name string, r *leaseRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketLeases)).Put([]byte(name), v)
}

// AcquireLease implements metastore.LeaseStore. The store's clock is this
// process's: one process uses the file.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	if err := metastore.CheckLeaseArgs(name, holder, ttl); err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	var (
		l        metastore.Lease
		acquired bool
	)
	err := s.update(ctx, func(tx kv.Tx) error {
		now := s.now().UTC()
		r, err := getLease(tx, name)
		if err != nil {
			return err
		}
		if r == nil {
			r = &leaseRecord{}
		}
		held := r.Holder != "" && now.Before(r.Expires)
		switch {
		case held && r.Holder != holder:
			l, acquired = r.lease(name), false
			return nil
		case !held:
			r.Holder, r.Epoch, r.Acquired = holder, r.Epoch+1, now
		}
		r.Renewed, r.Expires = now, now.Add(ttl)
		l, acquired = r.lease(name), true
		return putLease(tx, name, r)
	})
	if err != nil {
		return metastore.Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return l, acquired, nil
}

// RenewLease implements metastore.LeaseStore.
func (s *Store) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) (metastore.Lease, error) {
	if err := metastore.CheckLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return metastore.Lease{}, fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	var out metastore.Lease
	err := s.update(ctx, func(tx kv.Tx) error {
		now := s.now().UTC()
		r, err := getLease(tx, l.Name)
		if err != nil {
			return err
		}
		if r == nil || r.Holder != l.Holder || r.Epoch != l.Epoch || !now.Before(r.Expires) {
			return metastore.ErrLeaseLost
		}
		r.Renewed, r.Expires = now, now.Add(ttl)
		out = r.lease(l.Name)
		return putLease(tx, l.Name, r)
	})
	if err != nil {
		return metastore.Lease{}, fmt.Errorf("renew lease %s: %w", l.Name, err)
	}
	return out, nil
}

// ReleaseLease implements metastore.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	err := s.update(ctx, func(tx kv.Tx) error {
		now := s.now().UTC()
		r, err := getLease(tx, l.Name)
		if err != nil || r == nil || r.Holder != l.Holder || r.Epoch != l.Epoch || !now.Before(r.Expires) {
			return err
		}
		r.Expires = now
		return putLease(tx, l.Name, r)
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.Name, err)
	}
	return nil
}

// Leases implements metastore.LeaseStore.
func (s *Store) Leases(ctx context.Context) ([]metastore.Lease, error) {
	var out []metastore.Lease
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketLeases)).ForEach(func(k, _ []byte) error {
			r, err := getLease(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, r.lease(string(k)))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

// AdvanceLogStart implements metastore.RetentionStore.
func (s *Store) AdvanceLogStart(ctx context.Context, id metastore.TopicID, partition int32, offset int64) (metastore.PartitionOffsets, error) {
	pk := partitionKey{id: id, partition: partition}
	var (
		o       metastore.PartitionOffsets
		changed bool
	)
	err := s.update(ctx, func(tx kv.Tx) error {
		if err := checkPartition(tx, pk); err != nil {
			return err
		}
		// The extents it drops must all be in the extents bucket.
		if err := foldNow(tx, []partitionKey{pk}); err != nil {
			return err
		}
		ps, err := readPartition(tx, pk)
		if err != nil {
			return err
		}
		oldest, err := oldestOpen(tx, pk)
		if err != nil {
			return err
		}
		o = metastore.NewPartitionOffsets(ps.logStartOffset, ps.highWatermark, oldest)
		to, advance, err := metastore.NewLogStart(o, offset)
		if err != nil || !advance {
			return err
		}
		ps.logStartOffset, changed = to, true
		o = metastore.NewPartitionOffsets(ps.logStartOffset, ps.highWatermark, oldest)
		if err := writePartition(tx, pk, ps); err != nil {
			return err
		}
		// Aborted transactions whose markers lie below the new start go
		// too; keys are in marker order.
		if err := trimAborted(tx, pk, to); err != nil {
			return err
		}
		// Extents ending at or below the new start go; keys are in offset
		// order, so they are a prefix of the partition's range.
		var dropped []metastore.Extent
		prefix := pk.bytes()
		c := tx.Bucket([]byte(bucketExtents)).Cursor()
		for k, v := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeExtent(k, v)
			if err != nil {
				return err
			}
			if e.EndOffset > to {
				break
			}
			dropped = append(dropped, e)
		}
		if err := deleteExtents(tx, dropped); err != nil {
			return err
		}
		return applyRefs(tx, metastore.RefChanges(dropped, nil), s.now(), false)
	})
	if err != nil {
		return metastore.PartitionOffsets{}, fmt.Errorf("advance log start %s to %d: %w", pk, offset, err)
	}
	if changed {
		s.Notify(metastore.CommitNotice{Partitions: []metastore.TopicPartition{{TopicID: id, Partition: partition}}})
	}
	return o, nil
}

// trimAborted deletes a partition's aborted transactions whose markers lie
// below offset.
func trimAborted(tx kv.Tx, pk partitionKey, offset int64) error {
	b := tx.Bucket([]byte(bucketTxnAborted))
	var keys [][]byte
	prefix := pk.bytes()
	c := b.Cursor()
	for k, _ := c.Seek(prefix); bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != 28 {
			return fmt.Errorf("aborted transaction: %w: key %d bytes", errCorrupt, len(k))
		}
		if int64(binary.BigEndian.Uint64(k[20:])) >= offset {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	return deleteKeys(b, keys)
}

func deleteExtents(tx kv.Tx, es []metastore.Extent) error {
	b := tx.Bucket([]byte(bucketExtents))
	for _, e := range es {
		pk := partitionKey{id: e.TopicID, partition: e.Partition}
		if err := b.Delete(pk.extentKey(e.BaseOffset)); err != nil {
			return err
		}
	}
	return nil
}

// PartitionUsage implements metastore.RetentionStore with a scan of the
// topic's extents.
func (s *Store) PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error) {
	var out []metastore.PartitionUsage
	err := s.view(ctx, func(tx kv.Tx) error {
		_, rec, err := topicByID(tx, id[:])
		if err != nil {
			return err
		}
		out = make([]metastore.PartitionUsage, rec.Partitions)
		for p := range out {
			pk := partitionKey{id: id, partition: int32(p)}
			o, err := partitionOffsets(tx, pk)
			if err != nil {
				return err
			}
			out[p].Partition = int32(p)
			out[p].PartitionOffsets = o
		}
		c := tx.Bucket([]byte(bucketExtents)).Cursor()
		for k, v := c.Seek(id[:]); bytes.HasPrefix(k, id[:]); k, v = c.Next() {
			e, err := decodeExtent(k, v)
			if err != nil {
				return err
			}
			if e.Partition < 0 || int(e.Partition) >= len(out) {
				continue
			}
			u := &out[e.Partition]
			if u.Extents == 0 {
				u.First = e
			}
			u.Extents++
			u.Bytes += e.ByteLength
		}
		// Then the extents still in the log.
		v := tx.Bucket([]byte(bucketPartStates)).Get(id[:])
		if _, err := checkTopicStates(v); err != nil {
			return err
		}
		for p := range out {
			u := &out[p]
			pk := partitionKey{id: id, partition: int32(p)}
			if p >= (len(v)-topicStatesHeader)/partitionStateSize {
				break
			}
			err := pendingExtents(tx, pk, stateAt(v, int32(p)), func(e metastore.Extent) bool {
				if u.Extents == 0 {
					u.First = e
				}
				u.Extents++
				u.Bytes += e.ByteLength
				return true
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partition usage %x: %w", id, err)
	}
	return out, nil
}

// ReplaceExtents implements metastore.ExtentReplacer in one write
// transaction.
func (s *Store) ReplaceExtents(ctx context.Context, rs []metastore.PartitionReplacement) error {
	if err := metastore.ValidateReplacements(rs); err != nil {
		return fmt.Errorf("replace extents: %w", err)
	}
	notice := metastore.CommitNotice{Partitions: []metastore.TopicPartition{}}
	err := s.update(ctx, func(tx kv.Tx) error {
		var (
			conflicts      []metastore.TopicPartition
			removed, added []metastore.Extent
			dropAborted    [][]byte
		)
		// The extents it replaces must all be in the extents bucket.
		var pks []partitionKey
		for _, r := range rs {
			pk := partitionKey{id: r.TopicID, partition: r.Partition}
			if checkPartition(tx, pk) == nil {
				pks = append(pks, pk)
			}
		}
		slices.SortFunc(pks, comparePartitions)
		if err := foldNow(tx, slices.Compact(pks)); err != nil {
			return err
		}
		for _, r := range rs {
			tp := metastore.TopicPartition{TopicID: r.TopicID, Partition: r.Partition}
			pk := partitionKey{id: r.TopicID, partition: r.Partition}
			stored, err := readExtents(tx, pk, r.Old[0].BaseOffset, len(r.Old))
			if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				conflicts = append(conflicts, tp)
				continue
			}
			if err != nil {
				return err
			}
			ps, err := readPartition(tx, pk)
			if err != nil {
				return err
			}
			newExtents, old, conflict, err := metastore.ResolveReplacement(r, stored, ps.logStartOffset)
			if err != nil {
				return err
			}
			if conflict {
				conflicts = append(conflicts, tp)
				continue
			}
			removed, added = append(removed, old...), append(added, newExtents...)
			notice.Partitions = append(notice.Partitions, tp)
			for _, m := range r.DropAborted {
				dropAborted = append(dropAborted, abortedKey(pk, m))
			}
		}
		if len(conflicts) > 0 {
			return &metastore.ReplaceConflictError{Partitions: conflicts}
		}
		if err := deleteExtents(tx, removed); err != nil {
			return err
		}
		for _, k := range dropAborted {
			if err := tx.Bucket([]byte(bucketTxnAborted)).Delete(k); err != nil {
				return err
			}
		}
		b := tx.Bucket([]byte(bucketExtents))
		for i := range added {
			e := &added[i]
			pk := partitionKey{id: e.TopicID, partition: e.Partition}
			if err := b.Put(pk.extentKey(e.BaseOffset), encodeExtent(e)); err != nil {
				return err
			}
		}
		return applyRefs(tx, metastore.RefChanges(removed, added), s.now(), false)
	})
	if err != nil {
		return fmt.Errorf("replace extents: %w", err)
	}
	s.Notify(notice)
	return nil
}

// readExtents reads up to limit extents of a partition starting with the
// one whose base offset is exactly from, if any (otherwise from the next
// one), in one transaction.
func readExtents(tx kv.Tx, pk partitionKey, from int64, limit int) ([]metastore.Extent, error) {
	if err := checkPartition(tx, pk); err != nil {
		return nil, err
	}
	var out []metastore.Extent
	prefix := pk.bytes()
	c := tx.Bucket([]byte(bucketExtents)).Cursor()
	for k, v := c.Seek(pk.extentKey(max(from, 0))); bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
		e, err := decodeExtent(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
