// Package kv is the ordered key-value store under the embedded metadata
// store: buckets of byte keys in order, read in snapshot transactions,
// written by one transaction at a time. Two implementations share the
// interfaces: Bolt, a bbolt file (the store of record for `floe
// playground` and single-agent deployments), and Memory, plain
// copy-on-write B-trees in memory for a state whose durability is
// elsewhere (internal/control's journal): no pages, no file, a commit is
// a pointer swap.
//
// The interfaces are the part of bbolt's the embedded store uses, with
// bbolt's rules: values returned are valid only during their
// transaction and must not be modified; keys and values passed to Put
// must not be modified until the transaction ends; a cursor's bucket
// must not be modified while the cursor walks it (Memory tolerates it,
// bbolt skips entries); one writable transaction at a time, any number
// of readers, each seeing the state as it was when it began.
package kv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/tidwall/btree"
)

// DB is a store of buckets.
type DB interface {
	// Begin starts a transaction; a writable one waits for the previous
	// writer to end.
	Begin(writable bool) (Tx, error)
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a writable transaction, committed if fn returns
	// nil, rolled back otherwise.
	Update(fn func(Tx) error) error
	// Close waits for transactions in progress (Bolt) or refuses new ones
	// (Memory); later calls fail with ErrClosed.
	Close() error
}

// Tx is a transaction.
type Tx interface {
	// Bucket is the bucket named name, nil if there is none.
	Bucket(name []byte) Bucket
	CreateBucket(name []byte) (Bucket, error)
	CreateBucketIfNotExists(name []byte) (Bucket, error)
	DeleteBucket(name []byte) error
	// ForEach calls fn with every bucket, in name order.
	ForEach(fn func(name []byte, b Bucket) error) error
	Commit() error
	Rollback() error
}

// Bucket is an ordered map of keys to values.
type Bucket interface {
	// Get is key's value, nil if key is absent.
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	// ForEach calls fn with every key and value in key order.
	ForEach(fn func(k, v []byte) error) error
	Cursor() Cursor
	// Sequence is bbolt's bucket sequence (never set by Floe; 0 in Memory).
	Sequence() uint64
	// SetFillPercent tells Bolt how full to fill split pages (1 for keys
	// only ever appended); Memory ignores it.
	SetFillPercent(f float64)
	// KeyN counts the keys.
	KeyN() int
}

// Cursor walks a bucket in key order. Each method returns the key and
// value it lands on, nil and nil past either end.
type Cursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	// Seek lands on the first key at or after seek.
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
}

// PutPair is b.Put of a key and its value in one array, kv: the key's
// keyLen bytes, then the value. The caller hands kv over and never
// changes it again, not even after the transaction: Memory keeps kv
// itself instead of a copy (Bolt copies it at commit, as with Put).
func PutPair(b Bucket, kv []byte, keyLen int) error { return PutPairHint(b, kv, keyLen, nil) }

// Hint remembers the path to a key in a bucket of Memory, so that the
// next search for a key near it (the same key again, the next of a run)
// looks first where that one was instead of searching every node from
// its middle: a couple of comparisons per node when it is right, a
// search of what is left when it is not. Bolt ignores it; the zero Hint
// knows nothing. A Hint serves one bucket, one key or run at a time.
type Hint struct{ path btree.PathHint }

// GetHint is b.Get(key), looking where h says first and remembering
// where key is.
func GetHint(b Bucket, key []byte, h *Hint) []byte {
	if o, ok := b.(*memBucket); ok {
		return o.get(key, h)
	}
	return b.Get(key)
}

// PutPairHint is PutPair, looking where h says first and remembering
// where the key went; h may be nil.
func PutPairHint(b Bucket, kv []byte, keyLen int, h *Hint) error {
	if keyLen < 0 || keyLen > len(kv) {
		return fmt.Errorf("kv: key of %d bytes in a pair of %d", keyLen, len(kv))
	}
	if o, ok := b.(*memBucket); ok {
		return o.putPairHint(kv, keyLen, h)
	}
	return b.Put(kv[:keyLen:keyLen], kv[keyLen:])
}

// DeletePrefix deletes every key of b that starts with prefix and
// returns how many it deleted. Memory rebuilds a tree that loses a good
// part of its keys instead of deleting them one by one (a topic's
// hundreds of thousands of extents); Bolt deletes them one by one.
func DeletePrefix(b Bucket, prefix []byte) (int, error) {
	if o, ok := b.(interface {
		deletePrefix(prefix []byte) (int, error)
	}); ok {
		return o.deletePrefix(prefix)
	}
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k)) // deleting under a cursor skips entries
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Errors of Memory (Bolt returns bbolt's own).
var (
	ErrClosed         = errors.New("kv: store closed")
	ErrTxClosed       = errors.New("kv: transaction closed")
	ErrTxNotWritable  = errors.New("kv: transaction not writable")
	ErrBucketExists   = errors.New("kv: bucket already exists")
	ErrBucketNotFound = errors.New("kv: bucket not found")
	ErrKeyRequired    = errors.New("kv: key required")
	ErrNameRequired   = errors.New("kv: bucket name required")
)
