package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

var _ metastore.ObjectLedger = (*Store)(nil)

// objectsFormat is the version of the objects bucket's values this code
// writes: 2 = size and refs.
const objectsFormat = 2

type objectRecord struct {
	size int64
	refs int64
}

func encodeObject(r objectRecord) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(r.size))
	return binary.BigEndian.AppendUint64(v, uint64(r.refs))
}

func decodeObject(v []byte) (objectRecord, error) {
	if len(v) != 16 {
		return objectRecord{}, fmt.Errorf("object: %w: %d bytes", errCorrupt, len(v))
	}
	return objectRecord{size: int64(binary.BigEndian.Uint64(v)), refs: int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

func encodeUnref(since time.Time, size int64) []byte {
	v := binary.BigEndian.AppendUint64(nil, uint64(since.UnixNano()))
	return binary.BigEndian.AppendUint64(v, uint64(size))
}

func decodeUnref(k, v []byte) (metastore.UnreferencedObject, error) {
	if len(v) != 16 {
		return metastore.UnreferencedObject{}, fmt.Errorf("unreferenced object: %w: %d bytes", errCorrupt, len(v))
	}
	return metastore.UnreferencedObject{
		Key:   string(k),
		Since: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(),
		Size:  int64(binary.BigEndian.Uint64(v[8:])),
	}, nil
}

// applyRefs changes objects' reference counts. An object new to the
// ledger is registered; one whose count reaches zero becomes unreferenced
// since now. reviveUnreferenced allows an unreferenced object to be
// referenced again (a commit of a reused key, which agents never send);
// otherwise that fails with ErrInvalidReplacement.
func applyRefs(tx kv.Tx, changes []metastore.ObjectRef, now time.Time, reviveUnreferenced bool) error {
	objects := tx.Bucket([]byte(bucketObjects))
	unref := tx.Bucket([]byte(bucketUnref))
	for _, c := range changes {
		key := []byte(c.Key)
		var rec objectRecord
		if v := objects.Get(key); v != nil {
			var err error
			if rec, err = decodeObject(v); err != nil {
				return fmt.Errorf("object %s: %w", c.Key, err)
			}
		} else {
			rec.size = c.Size
		}
		was := rec.refs
		rec.refs += c.Delta
		switch {
		case rec.refs < 0:
			return fmt.Errorf("object %s: %w: %d references", c.Key, errCorrupt, rec.refs)
		case rec.refs == 0:
			if err := unref.Put(key, encodeUnref(now, rec.size)); err != nil {
				return err
			}
		case was == 0 && unref.Get(key) != nil:
			if !reviveUnreferenced {
				return fmt.Errorf("%w: object %s is unreferenced and may be being deleted", metastore.ErrInvalidReplacement, c.Key)
			}
			if err := unref.Delete(key); err != nil {
				return err
			}
		}
		if err := objects.Put(key, encodeObject(rec)); err != nil {
			return err
		}
	}
	return nil
}

// upgradeObjects turns objects values written before the ledger existed
// (the size alone) into size and refs, counting every extent once; objects
// no extent names become unreferenced now.
func upgradeObjects(tx kv.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if v := meta.Get([]byte(keyObjectsFormat)); v != nil {
		return nil
	}
	refs := map[string]int64{}
	err := tx.Bucket([]byte(bucketExtents)).ForEach(func(k, v []byte) error {
		e, err := decodeExtent(k, v)
		if err != nil {
			return err
		}
		refs[e.Object]++
		return nil
	})
	if err != nil {
		return err
	}
	objects := tx.Bucket([]byte(bucketObjects))
	type old struct {
		key  []byte
		size int64
	}
	var olds []old
	err = objects.ForEach(func(k, v []byte) error {
		if len(v) == 8 {
			olds = append(olds, old{bytes.Clone(k), int64(binary.BigEndian.Uint64(v))})
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now()
	for _, o := range olds {
		n := refs[string(o.key)]
		if err := objects.Put(o.key, encodeObject(objectRecord{size: o.size, refs: n})); err != nil {
			return err
		}
		if n == 0 {
			if err := tx.Bucket([]byte(bucketUnref)).Put(o.key, encodeUnref(now, o.size)); err != nil {
				return err
			}
		}
	}
	return meta.Put([]byte(keyObjectsFormat), binary.BigEndian.AppendUint64(nil, objectsFormat))
}

// ListDeletable implements metastore.ObjectLedger.
func (s *Store) ListDeletable(ctx context.Context, before time.Time, limit int) ([]metastore.UnreferencedObject, error) {
	var out []metastore.UnreferencedObject
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketUnref)).ForEach(func(k, v []byte) error {
			o, err := decodeUnref(k, v)
			if err != nil {
				return err
			}
			if o.Since.Before(before) {
				out = append(out, o)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list deletable objects: %w", err)
	}
	metastore.SortDeletable(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ForgetObject implements metastore.ObjectLedger.
func (s *Store) ForgetObject(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx kv.Tx) error {
		objects := tx.Bucket([]byte(bucketObjects))
		v := objects.Get([]byte(key))
		if v == nil {
			return tx.Bucket([]byte(bucketUnref)).Delete([]byte(key))
		}
		rec, err := decodeObject(v)
		if err != nil {
			return err
		}
		if rec.refs > 0 {
			return metastore.ErrObjectReferenced
		}
		if err := objects.Delete([]byte(key)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketUnref)).Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("forget object %s: %w", key, err)
	}
	return nil
}

// KnownObjects implements metastore.ObjectLedger.
func (s *Store) KnownObjects(ctx context.Context, keys []string) (map[string]bool, error) {
	known := make(map[string]bool)
	err := s.view(ctx, func(tx kv.Tx) error {
		objects := tx.Bucket([]byte(bucketObjects))
		for _, k := range keys {
			if objects.Get([]byte(k)) != nil {
				known[k] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("known objects: %w", err)
	}
	return known, nil
}

// ObjectUsage implements metastore.ObjectLedger with a scan of the ledger.
func (s *Store) ObjectUsage(ctx context.Context) (metastore.ObjectUsage, error) {
	var u metastore.ObjectUsage
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketObjects)).ForEach(func(k, v []byte) error {
			rec, err := decodeObject(v)
			if err != nil {
				return fmt.Errorf("object %s: %w", k, err)
			}
			if rec.refs > 0 {
				u.ReferencedObjects++
				u.ReferencedBytes += rec.size
			} else {
				u.UnreferencedObjects++
				u.UnreferencedBytes += rec.size
			}
			return nil
		})
	})
	if err != nil {
		return metastore.ObjectUsage{}, fmt.Errorf("object usage: %w", err)
	}
	return u, nil
}

// ObjectSize implements metastore.ObjectLedger.
func (s *Store) ObjectSize(ctx context.Context, key string) (int64, bool, error) {
	var (
		rec   objectRecord
		known bool
	)
	err := s.view(ctx, func(tx kv.Tx) error {
		v := tx.Bucket([]byte(bucketObjects)).Get([]byte(key))
		if v == nil {
			return nil
		}
		var err error
		rec, err = decodeObject(v)
		known = err == nil
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("object size %s: %w", key, err)
	}
	return rec.size, known, nil
}
