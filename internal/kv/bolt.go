package kv

import bolt "go.etcd.io/bbolt"

// Bolt is a DB over a bbolt file.
type Bolt struct{ DB *bolt.DB }

// NewBolt wraps an open bbolt file.
func NewBolt(db *bolt.DB) *Bolt { return &Bolt{DB: db} }

func (b *Bolt) Begin(writable bool) (Tx, error) {
	tx, err := b.DB.Begin(writable)
	if err != nil {
		return nil, err
	}
	return boltTx{tx}, nil
}

func (b *Bolt) View(fn func(Tx) error) error {
	return b.DB.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *Bolt) Update(fn func(Tx) error) error {
	return b.DB.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *Bolt) Close() error { return b.DB.Close() }

type boltTx struct{ tx *bolt.Tx }

func bucketOrNil(b *bolt.Bucket) Bucket {
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

func (t boltTx) Bucket(name []byte) Bucket { return bucketOrNil(t.tx.Bucket(name)) }

func (t boltTx) CreateBucket(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucket(name)
	return bucketOrNil(b), err
}

func (t boltTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	return bucketOrNil(b), err
}

func (t boltTx) DeleteBucket(name []byte) error { return t.tx.DeleteBucket(name) }

func (t boltTx) ForEach(fn func(name []byte, b Bucket) error) error {
	return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error { return fn(name, boltBucket{b}) })
}

func (t boltTx) Commit() error   { return t.tx.Commit() }
func (t boltTx) Rollback() error { return t.tx.Rollback() }

type boltBucket struct{ b *bolt.Bucket }

func (b boltBucket) Get(key []byte) []byte                    { return b.b.Get(key) }
func (b boltBucket) Put(key, value []byte) error              { return b.b.Put(key, value) }
func (b boltBucket) Delete(key []byte) error                  { return b.b.Delete(key) }
func (b boltBucket) Cursor() Cursor                           { return b.b.Cursor() }
func (b boltBucket) Sequence() uint64                         { return b.b.Sequence() }
func (b boltBucket) SetFillPercent(f float64)                 { b.b.FillPercent = f }
func (b boltBucket) KeyN() int                                { return b.b.Stats().KeyN }
func (b boltBucket) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }
