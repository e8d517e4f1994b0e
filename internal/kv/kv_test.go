package kv_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/floe-io/floe/internal/kv"
)

func openBolt(t *testing.T) *kv.Bolt {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return kv.NewBolt(db)
}

// TestMemoryAgreesWithBolt runs one random history of transactions
// (commits and rollbacks; puts, some with stale hints, deletes, prefix
// deletes, bucket creation and deletion)
// on Bolt and Memory, and compares every read: gets, cursor walks from
// random seeks in both directions, and whole dumps after each
// transaction.
func TestMemoryAgreesWithBolt(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { differential(t, seed) })
	}
}

func differential(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	dbs := []kv.DB{openBolt(t), kv.NewMemory()}
	names := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	hints := map[string]*kv.Hint{"a": {}, "b": {}, "c": {}}
	key := func() []byte {
		// Short keys over a small alphabet: many collisions, shared
		// prefixes and neighbours.
		k := make([]byte, 1+rng.IntN(3))
		for i := range k {
			k[i] = byte('0' + rng.IntN(6))
		}
		return k
	}
	for txn := range 200 {
		commit := rng.IntN(4) != 0
		ops := make([]func(tx kv.Tx) string, 0, 40)
		for range 1 + rng.IntN(40) {
			name := names[rng.IntN(len(names))]
			k, v := key(), []byte(fmt.Sprint(rng.IntN(1000)))
			if rng.IntN(5) == 0 {
				v = nil // an empty value
			}
			switch r := rng.IntN(100); {
			case r < 3:
				ops = append(ops, func(tx kv.Tx) string { return fmt.Sprint(tx.DeleteBucket(name) != nil) })
			case r < 10:
				ops = append(ops, func(tx kv.Tx) string {
					_, err := tx.CreateBucketIfNotExists(name)
					return fmt.Sprint(err)
				})
			case r < 50:
				ops = append(ops, func(tx kv.Tx) string {
					b := tx.Bucket(name)
					if b == nil {
						return "no bucket"
					}
					switch r % 3 {
					case 0:
						return fmt.Sprint(kv.PutPair(b, append(slices.Clone(k), v...), len(k)))
					case 1:
						// A hint shared by every key and transaction of
						// the bucket: mostly wrong, never harmful.
						return fmt.Sprint(kv.PutPairHint(b, append(slices.Clone(k), v...), len(k), hints[string(name)]))
					}
					return fmt.Sprint(b.Put(k, v))
				})
			case r < 65:
				ops = append(ops, func(tx kv.Tx) string {
					b := tx.Bucket(name)
					if b == nil {
						return "no bucket"
					}
					return fmt.Sprint(b.Delete(k))
				})
			case r < 68:
				// Prefixes of one or two bytes: Memory deletes a few
				// keys one by one, or rebuilds the tree without many.
				prefix := k[:min(len(k), 1+rng.IntN(2))]
				ops = append(ops, func(tx kv.Tx) string {
					b := tx.Bucket(name)
					if b == nil {
						return "no bucket"
					}
					n, err := kv.DeletePrefix(b, prefix)
					return fmt.Sprint(n, err)
				})
			case r < 80:
				ops = append(ops, func(tx kv.Tx) string {
					b := tx.Bucket(name)
					if b == nil {
						return "no bucket"
					}
					// Not whether an empty value is nil: bbolt returns nil
					// for a value put as nil until the transaction commits.
					if r%2 == 0 {
						return fmt.Sprintf("%q", kv.GetHint(b, k, hints[string(name)]))
					}
					return fmt.Sprintf("%q", b.Get(k))
				})
			default:
				steps := make([]int, 1+rng.IntN(6))
				for i := range steps {
					steps[i] = rng.IntN(2)
				}
				start := rng.IntN(3)
				ops = append(ops, func(tx kv.Tx) string { return walk(tx.Bucket(name), start, k, steps) })
			}
		}
		var want []string
		for i, db := range dbs {
			tx, err := db.Begin(true)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, op := range ops {
				got = append(got, op(tx))
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, dump(t, db))
			if m, ok := db.(*kv.Memory); ok {
				checkSize(t, m)
			}
			if i == 0 {
				want = got
				continue
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("transaction %d (commit %v), step %d: Memory %s, Bolt %s", txn, commit, j, got[j], want[j])
				}
			}
		}
	}
}

// walk positions a cursor (first, last or seek k) and steps it (0 next,
// 1 prev), recording where it lands.
func walk(b kv.Bucket, start int, k []byte, steps []int) string {
	if b == nil {
		return "no bucket"
	}
	c := b.Cursor()
	var out bytes.Buffer
	var key, val []byte
	switch start {
	case 0:
		key, val = c.First()
	case 1:
		key, val = c.Last()
	default:
		key, val = c.Seek(k)
	}
	fmt.Fprintf(&out, "%q=%q ", key, val)
	for _, s := range steps {
		if key == nil {
			break // bbolt's position past an end is its own affair
		}
		if s == 0 {
			key, val = c.Next()
		} else {
			key, val = c.Prev()
		}
		fmt.Fprintf(&out, "%q=%q ", key, val)
	}
	return out.String()
}

func dump(t *testing.T, db kv.DB) string {
	t.Helper()
	var out bytes.Buffer
	err := db.View(func(tx kv.Tx) error {
		return tx.ForEach(func(name []byte, b kv.Bucket) error {
			fmt.Fprintf(&out, "[%s %d]", name, b.KeyN())
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&out, " %s=%s", k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestMemoryReadersSeeTheirState checks snapshot isolation: a reader
// keeps the state it began with while a writer commits, and readers run
// beside the writer (run with -race).
func TestMemoryReadersSeeTheirState(t *testing.T) {
	m := kv.NewMemory()
	if err := m.Update(func(tx kv.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := range 1000 {
			if err := b.Put(fmt.Appendf(nil, "%04d", i), []byte("0")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	old, err := m.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				// Every committed state has all 1000 keys with one value.
				err := m.View(func(tx kv.Tx) error {
					var first []byte
					count := 0
					c := tx.Bucket([]byte("b")).Cursor()
					for k, v := c.First(); k != nil; k, v = c.Next() {
						if first == nil {
							first = v
						} else if !bytes.Equal(v, first) {
							return fmt.Errorf("key %s: %s, first key %s: a state half written", k, v, first)
						}
						count++
					}
					if count != 1000 {
						return fmt.Errorf("%d keys", count)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for round := 1; round <= 20; round++ {
		err := m.Update(func(tx kv.Tx) error {
			b := tx.Bucket([]byte("b"))
			for i := range 1000 {
				if err := b.Put(fmt.Appendf(nil, "%04d", i), fmt.Append(nil, round)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// A rolled-back writer leaves nothing.
		tx, _ := m.Begin(true)
		tx.Bucket([]byte("b")).Put([]byte("0000"), []byte("rolled back"))
		tx.Bucket([]byte("b")).Delete([]byte("0001"))
		tx.Rollback()
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if v := old.Bucket([]byte("b")).Get([]byte("0500")); string(v) != "0" {
		t.Errorf("old reader sees %q, want its own state's 0", v)
	}
	old.Rollback()
	m.View(func(tx kv.Tx) error {
		if v := tx.Bucket([]byte("b")).Get([]byte("0000")); string(v) != "20" {
			t.Errorf("after the rollback: %q, want 20", v)
		}
		return nil
	})
}

// TestMemoryRules checks the refusals: writes in a read-only or ended
// transaction, a closed store.
func TestMemoryRules(t *testing.T) {
	m := kv.NewMemory()
	if err := m.Update(func(tx kv.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := m.View(func(tx kv.Tx) error { return tx.Bucket([]byte("b")).Put([]byte("k"), []byte("v")) })
	if !errors.Is(err, kv.ErrTxNotWritable) {
		t.Errorf("put in a read-only transaction: %v", err)
	}
	tx, _ := m.Begin(true)
	b := tx.Bucket([]byte("b"))
	if err := b.Put(nil, []byte("v")); !errors.Is(err, kv.ErrKeyRequired) {
		t.Errorf("empty key: %v", err)
	}
	if _, err := tx.CreateBucket([]byte("b")); !errors.Is(err, kv.ErrBucketExists) {
		t.Errorf("bucket twice: %v", err)
	}
	if err := b.Put([]byte("empty"), nil); err != nil || b.Get([]byte("empty")) == nil {
		t.Errorf("a key put with no value: %v, read back as nil", err)
	}
	if err := kv.PutPair(b, []byte("pair"), 4); err != nil || b.Get([]byte("pair")) == nil {
		t.Errorf("a pair with no value: %v, read back as nil", err)
	}
	if err := kv.PutPair(b, []byte("v"), 0); !errors.Is(err, kv.ErrKeyRequired) {
		t.Errorf("empty key, pair: %v", err)
	}
	if err := kv.PutPair(b, []byte("v"), 2); err == nil {
		t.Errorf("a pair shorter than its key: no error")
	}
	if err := kv.PutPair(b, []byte("keyvalue"), 3); err != nil || string(b.Get([]byte("key"))) != "value" {
		t.Errorf("a pair: %v, read back as %q", err, b.Get([]byte("key")))
	}
	// A key read back is its own slice: appending to it leaves the
	// value that follows it in memory alone.
	if k, _ := b.Cursor().Seek([]byte("key")); string(append(k, 'X')) != "keyX" || string(b.Get([]byte("key"))) != "value" {
		t.Errorf("appending to a key read back: value now %q", b.Get([]byte("key")))
	}
	tx.Commit()
	if err := b.Put([]byte("k"), nil); !errors.Is(err, kv.ErrTxClosed) {
		t.Errorf("put after commit: %v", err)
	}
	m.Close()
	if _, err := m.Begin(false); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("begin after close: %v", err)
	}
}

// TestMemoryCursorUnderWrites walks a Memory cursor while deleting the
// keys it lands on and putting others: it still visits every key that
// was there, in order, once (bbolt would skip some).
func TestMemoryCursorUnderWrites(t *testing.T) {
	m := kv.NewMemory()
	tx, _ := m.Begin(true)
	b, _ := tx.CreateBucket([]byte("b"))
	var want []string
	for i := range 500 {
		k := fmt.Sprintf("k%04d", 2*i)
		b.Put([]byte(k), []byte("v"))
		want = append(want, k)
	}
	var got []string
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		got = append(got, string(k))
		if err := b.Delete(k); err != nil {
			t.Fatal(err)
		}
		// A key after the cursor's (visited later) and one before it.
		if len(got)%50 == 0 {
			b.Put([]byte(string(k)+"x"), []byte("new"))
			want = slices.Insert(want, len(got), string(k)+"x")
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("walked %d keys under deletes, want %d: %v", len(got), len(want), got[:min(len(got), 10)])
	}
	// Backwards, deleting as it goes.
	for i := range 100 {
		b.Put(fmt.Appendf(nil, "p%03d", i), []byte("v"))
	}
	n := 0
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		b.Delete(k)
		n++
	}
	if n != 100 || b.KeyN() != 0 {
		t.Errorf("walked back %d keys, %d left", n, b.KeyN())
	}
	tx.Rollback()
}

// checkSize compares Memory.Size with the keys and bytes a scan counts.
func checkSize(t *testing.T, m *kv.Memory) {
	t.Helper()
	var keys, bytes int64
	m.View(func(tx kv.Tx) error {
		return tx.ForEach(func(_ []byte, b kv.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				keys++
				bytes += int64(len(k) + len(v))
				return nil
			})
		})
	})
	if gk, gb := m.Size(); gk != keys || gb != bytes {
		t.Fatalf("Size: %d keys, %d bytes; a scan counts %d and %d", gk, gb, keys, bytes)
	}
}
