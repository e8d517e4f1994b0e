package embedded

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// ACL bindings, in their own bucket, created by the first change (files
// written before ACLs existed have none):
//
//	acls  resourceType(1) patternType(1) operation(1) permission(1)
//	      len(2) resourceName len(2) principal len(2) host   → (empty)
//	meta  "acl-version"                                      → version(8)
//
// A binding is its key; the value is empty.
const (
	bucketACLs    = "acls"
	keyACLVersion = "acl-version"
)

var _ metastore.ACLStore = (*Store)(nil)

// CreateACLs implements metastore.ACLStore.
func (s *Store) CreateACLs(ctx context.Context, acls []metastore.ACL) error {
	err := s.update(ctx, func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketACLs))
		if err != nil {
			return err
		}
		added := false
		for _, a := range acls {
			k, err := aclKey(a)
			if err != nil {
				return err
			}
			if b.Get(k) != nil {
				continue
			}
			if err := b.Put(k, []byte{}); err != nil {
				return err
			}
			added = true
		}
		if !added {
			return nil
		}
		return bumpACLVersion(tx)
	})
	if err != nil {
		return fmt.Errorf("create %d acls: %w", len(acls), err)
	}
	return nil
}

// DeleteACLs implements metastore.ACLStore.
func (s *Store) DeleteACLs(ctx context.Context, acls []metastore.ACL) ([]metastore.ACL, error) {
	var deleted []metastore.ACL
	err := s.update(ctx, func(tx kv.Tx) error {
		deleted = nil
		b := tx.Bucket([]byte(bucketACLs))
		if b == nil {
			return nil
		}
		for _, a := range acls {
			k, err := aclKey(a)
			if err != nil {
				return err
			}
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			deleted = append(deleted, a)
		}
		if len(deleted) == 0 {
			return nil
		}
		return bumpACLVersion(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("delete %d acls: %w", len(acls), err)
	}
	return metastore.SortACLs(deleted), nil
}

// ACLs implements metastore.ACLStore.
func (s *Store) ACLs(ctx context.Context) ([]metastore.ACL, int64, error) {
	var (
		acls    []metastore.ACL
		version int64
	)
	err := s.view(ctx, func(tx kv.Tx) error {
		version = aclVersion(tx)
		b := tx.Bucket([]byte(bucketACLs))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			a, err := decodeACLKey(k)
			if err != nil {
				return err
			}
			acls = append(acls, a)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read acls: %w", err)
	}
	return metastore.SortACLs(acls), version, nil
}

// ACLVersion implements metastore.ACLStore.
func (s *Store) ACLVersion(ctx context.Context) (int64, error) {
	var version int64
	err := s.view(ctx, func(tx kv.Tx) error {
		version = aclVersion(tx)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read acl version: %w", err)
	}
	return version, nil
}

func aclVersion(tx kv.Tx) int64 {
	v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keyACLVersion))
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func bumpACLVersion(tx kv.Tx) error {
	return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyACLVersion), binary.BigEndian.AppendUint64(nil, uint64(aclVersion(tx)+1)))
}

func aclKey(a metastore.ACL) ([]byte, error) {
	k := []byte{byte(a.ResourceType), byte(a.PatternType), byte(a.Operation), byte(a.Permission)}
	for _, s := range []string{a.ResourceName, a.Principal, a.Host} {
		if len(s) > 0xffff {
			return nil, fmt.Errorf("acl field of %d bytes is too long", len(s))
		}
		k = binary.BigEndian.AppendUint16(k, uint16(len(s)))
		k = append(k, s...)
	}
	return k, nil
}

func decodeACLKey(k []byte) (metastore.ACL, error) {
	if len(k) < 4 {
		return metastore.ACL{}, fmt.Errorf("acl key: %w: %d bytes", errCorrupt, len(k))
	}
	a := metastore.ACL{ResourceType: int8(k[0]), PatternType: int8(k[1]), Operation: int8(k[2]), Permission: int8(k[3])}
	rest := k[4:]
	for _, dst := range []*string{&a.ResourceName, &a.Principal, &a.Host} {
		if len(rest) < 2 || len(rest) < 2+int(binary.BigEndian.Uint16(rest)) {
			return metastore.ACL{}, fmt.Errorf("acl key: %w: truncated", errCorrupt)
		}
		n := int(binary.BigEndian.Uint16(rest))
		*dst = string(rest[2 : 2+n])
		rest = rest[2+n:]
	}
	if len(rest) != 0 {
		return metastore.ACL{}, fmt.Errorf("acl key: %w: %d trailing bytes", errCorrupt, len(rest))
	}
	return a, nil
}
