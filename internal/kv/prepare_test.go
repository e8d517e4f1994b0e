package kv_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/kv"
)

// prepare is a writable transaction's Prepare.
func prepare(t *testing.T, tx kv.Tx) *kv.Prepared {
	t.Helper()
	p, err := tx.(interface{ Prepare() (*kv.Prepared, error) }).Prepare()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// begin starts a writable transaction.
func begin(t *testing.T, m *kv.Memory) kv.Tx {
	t.Helper()
	tx, err := m.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// put writes key=val in bucket "b".
func put(t *testing.T, tx kv.Tx, key, val string) {
	t.Helper()
	b, err := tx.CreateBucketIfNotExists([]byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put([]byte(key), []byte(val)); err != nil {
		t.Fatal(err)
	}
}

// read returns key's value in the published state ("" if absent).
func read(t *testing.T, m *kv.Memory, key string) string {
	t.Helper()
	var v string
	if err := m.View(func(tx kv.Tx) error {
		if b := tx.Bucket([]byte("b")); b != nil {
			v = string(b.Get([]byte(key)))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPreparedChain: a prepared state is hidden from readers until
// published, the next writer builds on it, states publish in order, and
// a discard drops the state and those built on it.
func TestPreparedChain(t *testing.T) {
	m := kv.NewMemory()
	tx := begin(t, m)
	put(t, tx, "a", "1")
	p1 := prepare(t, tx)
	if got := read(t, m, "a"); got != "" {
		t.Fatalf("reader sees a prepared write: a=%q", got)
	}
	tx = begin(t, m)
	if v := tx.Bucket([]byte("b")).Get([]byte("a")); string(v) != "1" {
		t.Fatalf("next writer sees a=%q, want the prepared 1", v)
	}
	put(t, tx, "b", "2")
	p2 := prepare(t, tx)
	if err := p2.Publish(); err == nil {
		t.Fatal("published the second prepared state before the first")
	}
	if err := p1.Publish(); err != nil {
		t.Fatal(err)
	}
	if a, b := read(t, m, "a"), read(t, m, "b"); a != "1" || b != "" {
		t.Fatalf("after the first publish: a=%q b=%q, want 1 and nothing", a, b)
	}
	if err := p2.Publish(); err != nil {
		t.Fatal(err)
	}
	if b := read(t, m, "b"); b != "2" {
		t.Fatalf("after the second publish: b=%q", b)
	}

	// A discard drops the state and the ones built on it; the writer
	// open on them cannot end.
	tx = begin(t, m)
	put(t, tx, "c", "3")
	p3 := prepare(t, tx)
	tx = begin(t, m)
	put(t, tx, "d", "4")
	p4 := prepare(t, tx)
	open := begin(t, m)
	put(t, open, "e", "5")
	p3.Discard()
	if err := p4.Publish(); !errors.Is(err, kv.ErrDiscarded) {
		t.Fatalf("publish of a state built on a discarded one: %v, want ErrDiscarded", err)
	}
	if _, err := open.(interface{ Prepare() (*kv.Prepared, error) }).Prepare(); !errors.Is(err, kv.ErrDiscarded) {
		t.Fatalf("prepare of a writer begun on a discarded state: %v, want ErrDiscarded", err)
	}
	p4.Discard() // dropped already: nothing
	tx = begin(t, m)
	if v := tx.Bucket([]byte("b")).Get([]byte("c")); v != nil {
		t.Fatalf("writer after the discard sees c=%q", v)
	}
	put(t, tx, "f", "6")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "1", "b": "2", "c": "", "d": "", "e": "", "f": "6"} {
		if got := read(t, m, k); got != want {
			t.Fatalf("%s=%q, want %q", k, got, want)
		}
	}
}

// TestCommitAfterPrepared: a writer that commits on top of prepared
// states waits until they are published, and fails if they are
// discarded.
func TestCommitAfterPrepared(t *testing.T) {
	m := kv.NewMemory()
	tx := begin(t, m)
	put(t, tx, "a", "1")
	p := prepare(t, tx)
	tx = begin(t, m)
	put(t, tx, "b", "2")
	done := make(chan error, 1)
	go func() { done <- tx.Commit() }()
	select {
	case err := <-done:
		t.Fatalf("commit on an unpublished state returned (%v) before it was published", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.Publish(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a, b := read(t, m, "a"), read(t, m, "b"); a != "1" || b != "2" {
		t.Fatalf("a=%q b=%q", a, b)
	}

	tx = begin(t, m)
	put(t, tx, "c", "3")
	p = prepare(t, tx)
	tx = begin(t, m)
	put(t, tx, "d", "4")
	go func() { done <- tx.Commit() }()
	time.Sleep(10 * time.Millisecond)
	p.Discard()
	if err := <-done; !errors.Is(err, kv.ErrDiscarded) {
		t.Fatalf("commit on a discarded state: %v, want ErrDiscarded", err)
	}
	if c, d := read(t, m, "c"), read(t, m, "d"); c != "" || d != "" {
		t.Fatalf("c=%q d=%q after the discard", c, d)
	}
}

// TestPreparedCounter counts with writers that each begin on the last
// state, prepared or published, while another goroutine publishes: no
// increment may be lost (a writer must never begin on a published state
// older than one that a publish just replaced).
func TestPreparedCounter(t *testing.T) {
	m := kv.NewMemory()
	const n = 20_000
	prepared := make(chan *kv.Prepared, 4)
	published := make(chan error, 1)
	go func() {
		var err error
		for p := range prepared {
			if e := p.Publish(); e != nil && err == nil {
				err = e
			}
		}
		published <- err
	}()
	for range n {
		tx := begin(t, m)
		b, err := tx.CreateBucketIfNotExists([]byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		var c uint64
		if v := b.Get([]byte("n")); v != nil {
			c = binary.BigEndian.Uint64(v)
		}
		if err := b.Put([]byte("n"), binary.BigEndian.AppendUint64(nil, c+1)); err != nil {
			t.Fatal(err)
		}
		prepared <- prepare(t, tx)
	}
	close(prepared)
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	var got uint64
	m.View(func(tx kv.Tx) error {
		got = binary.BigEndian.Uint64(tx.Bucket([]byte("b")).Get([]byte("n")))
		return nil
	})
	if got != n {
		t.Fatalf("counted %d, want %d: writers began on stale states", got, n)
	}
}
