package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/floe-io/floe/internal/kv"
	bolt "go.etcd.io/bbolt"
)

// keyApplied, in the meta bucket, is the sequence number of the last
// journal batch applied to a replicated state (internal/control) and the
// latest time stamped on its commands: written in the same transaction
// as the batch, so a snapshot of the file says exactly which batches it
// holds, and a state started from it never stamps an earlier time.
const keyApplied = "applied_seq"

// SetAppliedSeq records seq as the last journal batch applied to the
// store, and at (Unix nanoseconds) as the latest time stamped on a
// command so far. Under Batch it joins the batch's transaction.
func (s *Store) SetAppliedSeq(ctx context.Context, seq, at int64) error {
	if seq < 0 {
		return fmt.Errorf("applied sequence %d: negative", seq)
	}
	return s.update(ctx, func(tx kv.Tx) error {
		v := binary.BigEndian.AppendUint64(nil, uint64(seq))
		v = binary.BigEndian.AppendUint64(v, uint64(at))
		return tx.Bucket([]byte(bucketMeta)).Put([]byte(keyApplied), v)
	})
}

// AppliedSeq is what SetAppliedSeq last recorded, zeros if never.
func (s *Store) AppliedSeq(ctx context.Context) (seq, at int64, err error) {
	err = s.view(ctx, func(tx kv.Tx) error {
		seq, at, err = applied(tx)
		return err
	})
	return seq, at, err
}

func applied(tx kv.Tx) (seq, at int64, err error) {
	v := tx.Bucket([]byte(bucketMeta)).Get([]byte(keyApplied))
	if v == nil {
		return 0, 0, nil
	}
	if len(v) != 16 || int64(binary.BigEndian.Uint64(v)) < 0 {
		return 0, 0, fmt.Errorf("%w: applied sequence of %d bytes", errCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// Snapshot is a consistent read-only view of the whole store, held open
// (a bbolt read transaction) until Close: writers go on meanwhile, and
// Close of the store waits for it.
type Snapshot struct {
	tx  kv.Tx
	seq int64
}

// BeginSnapshot opens a Snapshot of the store as it is now.
func (s *Store) BeginSnapshot() (*Snapshot, error) {
	if err := s.ready(context.Background()); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, closedErr(err)
	}
	seq, _, err := applied(tx)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return &Snapshot{tx: tx, seq: seq}, nil
}

// AppliedSeq is the store's applied sequence number in the snapshot.
func (sn *Snapshot) AppliedSeq() int64 { return sn.seq }

// ErrNestedBucket reports a nested bbolt bucket, which the store never
// creates and snapshots do not carry.
var ErrNestedBucket = errors.New("nested bucket")

// ForEach calls fn with every key and value of every bucket, buckets in
// name order and keys in order within each. The slices are valid only
// during the call.
func (sn *Snapshot) ForEach(fn func(bucket, key, value []byte) error) error {
	return sn.tx.ForEach(func(name []byte, b kv.Bucket) error {
		return forEachValue(name, b, func(k, v []byte) error { return fn(name, k, v) })
	})
}

// forEachValue calls fn with every key and value of bucket name, b,
// refusing a nested bucket (a nil value).
func forEachValue(name []byte, b kv.Bucket, fn func(k, v []byte) error) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return fmt.Errorf("%w %q in %q", ErrNestedBucket, k, name)
		}
		return fn(k, v)
	})
}

// Close ends the snapshot's read transaction.
func (sn *Snapshot) Close() error { return sn.tx.Rollback() }

// Loader builds a store file from a snapshot's keys and values: a fresh
// bbolt file, written by bbolt itself (never a file copied from
// elsewhere, whose pages could be malformed), which Open then opens.
type Loader struct {
	db      kv.DB
	tx      kv.Tx
	bucket  []byte
	b       kv.Bucket
	pending int
}

// loaderCommitEvery bounds the writes of one loader transaction.
const loaderCommitEvery = 1 << 14

// NewLoader creates the file at path, which must not exist.
func NewLoader(path string) (*Loader, error) {
	opts := *bolt.DefaultOptions
	opts.Timeout = lockTimeout
	opts.NoSync = true
	opts.NoFreelistSync = true
	opts.FreelistType = bolt.FreelistMapType
	db, err := bolt.Open(path, 0o600, &opts)
	if err != nil {
		return nil, fmt.Errorf("load snapshot into %s: %w", path, err)
	}
	l := &Loader{db: kv.NewBolt(db)}
	if l.tx, err = l.db.Begin(true); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

// Put stores one key and value in bucket. Calls come bucket by bucket,
// keys in increasing order within a bucket (as ForEach gives them);
// anything else is refused.
func (l *Loader) Put(bucket, key, value []byte) error {
	if len(bucket) == 0 || len(bucket) > bolt.MaxKeySize || len(key) == 0 || len(key) > bolt.MaxKeySize || int64(len(value)) > bolt.MaxValueSize {
		return fmt.Errorf("load snapshot: bucket of %d bytes, key of %d, value of %d: out of bounds", len(bucket), len(key), len(value))
	}
	if l.b == nil || !bytes.Equal(bucket, l.bucket) {
		if l.b != nil && bytes.Compare(bucket, l.bucket) <= 0 {
			return fmt.Errorf("load snapshot: bucket %q after %q", bucket, l.bucket)
		}
		b, err := l.tx.CreateBucket(bucket)
		if err != nil {
			return fmt.Errorf("load snapshot: bucket %q: %w", bucket, err)
		}
		b.SetFillPercent(1) // keys come in order
		l.bucket, l.b = bytes.Clone(bucket), b
	} else if k, _ := l.b.Cursor().Last(); k != nil && bytes.Compare(key, k) <= 0 {
		return fmt.Errorf("load snapshot: key %q after %q in %q", key, k, bucket)
	}
	if err := l.b.Put(bytes.Clone(key), bytes.Clone(value)); err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	if l.pending++; l.pending >= loaderCommitEvery {
		if err := l.tx.Commit(); err != nil {
			return fmt.Errorf("load snapshot: %w", err)
		}
		l.pending = 0
		tx, err := l.db.Begin(true)
		if err != nil {
			return fmt.Errorf("load snapshot: %w", err)
		}
		l.tx, l.b = tx, tx.Bucket(l.bucket)
		l.b.SetFillPercent(1)
	}
	return nil
}

// Close commits what was put (commit true) or drops it, and closes the
// file.
func (l *Loader) Close(commit bool) error {
	var err error
	if commit {
		err = l.tx.Commit()
	} else {
		l.tx.Rollback()
	}
	if cerr := l.db.Close(); err == nil {
		err = cerr
	}
	return err
}
