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

const shareGroupHeaderSize = 8 + 8

// LoadShareGroup implements metastore.ShareStore.
func (s *Store) LoadShareGroup(ctx context.Context, group string) (metastore.ShareGroupRecord, bool, error) {
	var rec metastore.ShareGroupRecord
	gk, err := groupKey(group)
	if err != nil {
		return rec, false, fmt.Errorf("load share group %q: %w", group, err)
	}
	found := false
	err = s.view(ctx, func(tx kv.Tx) error {
		v := tx.Bucket([]byte(bucketShareGroups)).Get(gk)
		if v == nil {
			return nil
		}
		if len(v) < shareGroupHeaderSize {
			return fmt.Errorf("share group record: %w: %d bytes", errCorrupt, len(v))
		}
		found = true
		rec.Version = int64(binary.BigEndian.Uint64(v))
		rec.UpdatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[8:])))
		rec.Data = bytes.Clone(v[shareGroupHeaderSize:])
		return nil
	})
	if err != nil {
		return metastore.ShareGroupRecord{}, false, fmt.Errorf("load share group %q: %w", group, err)
	}
	return rec, found, nil
}

// SaveShareGroup implements metastore.ShareStore.
func (s *Store) SaveShareGroup(ctx context.Context, group string, rec metastore.ShareGroupRecord) (int64, error) {
	gk, err := groupKey(group)
	if err != nil {
		return 0, fmt.Errorf("save share group %q: %w", group, err)
	}
	if err := metastore.CheckShareGroupRecord(rec); err != nil {
		return 0, fmt.Errorf("save share group %q: %w", group, err)
	}
	if rec.UpdatedAt.IsZero() {
		rec.UpdatedAt = s.now()
	}
	var version int64
	err = s.update(ctx, func(tx kv.Tx) error {
		b := tx.Bucket([]byte(bucketShareGroups))
		var stored int64
		if v := b.Get(gk); v != nil {
			if len(v) < shareGroupHeaderSize {
				return fmt.Errorf("share group record: %w", errCorrupt)
			}
			stored = int64(binary.BigEndian.Uint64(v))
		}
		if stored != rec.Version {
			return fmt.Errorf("expected version %d, stored %d: %w", rec.Version, stored, metastore.ErrShareVersionConflict)
		}
		if len(rec.Data) == 0 {
			return b.Delete(gk)
		}
		version = rec.Version + 1
		v := make([]byte, 0, shareGroupHeaderSize+len(rec.Data))
		v = binary.BigEndian.AppendUint64(v, uint64(version))
		v = binary.BigEndian.AppendUint64(v, uint64(rec.UpdatedAt.UnixNano()))
		return b.Put(gk, append(v, rec.Data...))
	})
	if err != nil {
		return 0, fmt.Errorf("save share group %q: %w", group, err)
	}
	return version, nil
}
