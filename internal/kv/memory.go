package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/tidwall/btree"
)

// Memory is a DB held in memory: each bucket a copy-on-write B-tree. A
// committed state is never modified again: a reader keeps the one it
// began with, and a writer works on copies (a tree's copy is O(1), its
// nodes copied as the writer first changes them), published whole by
// its commit.
//
// A writer may also be prepared (Prepared) instead of committed: its
// state is held back from readers until it is published, and the next
// writer begins from it, so that one writer's work overlaps with what
// must happen before the last may be seen (internal/control's journal
// appends).
type Memory struct {
	writer sync.Mutex // held by the writable transaction
	state  atomic.Pointer[memState]
	closed atomic.Bool

	// prepared are the states of prepared writers not yet published,
	// oldest first, each built on the one before it and the first on
	// state. gen counts the discards: a writer that began on a prepared
	// state of an earlier generation may not end. drained is signalled
	// when prepared empties. All guarded by mu.
	mu       sync.Mutex
	prepared []*memState
	gen      uint64
	drained  sync.Cond
}

// memState is one committed state: the buckets by name, and their keys
// and bytes (keys and values) in all. Nothing of it changes once it is
// published.
type memState struct {
	buckets     map[string]*memTree
	keys, bytes int64
}

// Size is the keys, and the bytes of keys and values, of the last
// committed state (what it holds, not the trees' overhead).
func (m *Memory) Size() (keys, bytes int64) {
	st := m.state.Load()
	return st.keys, st.bytes
}

// item is a key and its value in one array, the value right after the
// key: 16 bytes with one pointer where two slices take 48 with two. A
// writer copies every node it changes (a leaf holds up to 63 items), and
// the collector scans every node, so both cost a third.
type item struct {
	p    *byte // the key's first byte
	k, v uint32
}

// maxLen is the longest key or value Memory stores.
const maxLen = math.MaxUint32

// pair makes the item of kv, a key of keyLen bytes and then its value.
func pair(kv []byte, keyLen int) item {
	return item{p: unsafe.SliceData(kv), k: uint32(keyLen), v: uint32(len(kv) - keyLen)}
}

// probe is the item to search for key. A key too long to be stored is
// cut to maxLen bytes: nothing stored equals it, and what sorts after
// the cut key is at most a few keys before what sorts after the key
// (seek steps over them).
func probe(key []byte) item {
	return item{p: unsafe.SliceData(key), k: uint32(min(len(key), maxLen))}
}

func (it item) key() []byte { return unsafe.Slice(it.p, it.k) }

func (it item) value() []byte {
	if it.v == 0 {
		return []byte{} // present, and empty (a nil value means absent)
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(it.p), it.k)), it.v)
}

// less orders items by key, as bytes.Compare does, a word at a time:
// keys here are a few dozen bytes that share long prefixes (a topic id,
// a partition), where the call into bytes.Compare cost more than the
// comparison (a tenth of floe control's CPU in its B-tree searches).
func less(a, b item) bool {
	x, y := a.key(), b.key()
	for len(x) >= 8 && len(y) >= 8 {
		u, v := binary.BigEndian.Uint64(x), binary.BigEndian.Uint64(y)
		if u != v {
			return u < v
		}
		x, y = x[8:], y[8:]
	}
	for i := range min(len(x), len(y)) {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return len(x) < len(y)
}

type memTree = btree.BTreeG[item]

func newTree() *memTree {
	// No locks: a published tree is only read (Copy writes only its copy
	// id, which readers never look at), and a writer's copies are its own.
	return btree.NewBTreeGOptions(less, btree.Options{NoLocks: true})
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	m := &Memory{}
	m.drained.L = &m.mu
	m.state.Store(&memState{buckets: map[string]*memTree{}})
	return m
}

func (m *Memory) Begin(writable bool) (Tx, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if !writable {
		return &memTx{m: m, st: m.state.Load()}, nil
	}
	m.writer.Lock()
	if m.closed.Load() {
		m.writer.Unlock()
		return nil, ErrClosed
	}
	// Under mu: a publish moves a state from prepared to state.
	m.mu.Lock()
	cur := m.state.Load()
	gen, chained := m.gen, len(m.prepared) > 0
	if chained {
		cur = m.prepared[len(m.prepared)-1]
	}
	m.mu.Unlock()
	return &memTx{m: m, st: &memState{buckets: maps.Clone(cur.buckets), keys: cur.keys, bytes: cur.bytes}, writable: true, own: map[string]bool{},
		chained: chained, gen: gen}, nil
}

func (m *Memory) View(fn func(Tx) error) error {
	tx, err := m.Begin(false)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

func (m *Memory) Update(fn func(Tx) error) error {
	tx, err := m.Begin(true)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close refuses new transactions; those in progress end as they would.
func (m *Memory) Close() error {
	m.closed.Store(true)
	return nil
}

type memTx struct {
	m        *Memory
	st       *memState
	writable bool
	own      map[string]bool // buckets whose tree this writer copied or created
	writes   int             // puts and deletes so far (memCursor)
	done     bool
	// chained: a writer that began on a prepared state, of generation
	// gen (Memory.prepared).
	chained bool
	gen     uint64
	// handles are the buckets Bucket returned, for the next calls (a
	// commit asks for the same few buckets many times).
	handles [8]*memBucket
}

func (t *memTx) Bucket(name []byte) Bucket {
	if t.done {
		return nil
	}
	if _, ok := t.st.buckets[string(name)]; !ok {
		return nil
	}
	for i, h := range t.handles {
		if h == nil {
			h = &memBucket{tx: t, name: string(name)}
			t.handles[i] = h
			return h
		}
		if h.name == string(name) {
			return h
		}
	}
	return &memBucket{tx: t, name: string(name)}
}

func (t *memTx) CreateBucket(name []byte) (Bucket, error) {
	switch {
	case t.done:
		return nil, ErrTxClosed
	case !t.writable:
		return nil, ErrTxNotWritable
	case len(name) == 0:
		return nil, ErrNameRequired
	}
	if _, ok := t.st.buckets[string(name)]; ok {
		return nil, ErrBucketExists
	}
	t.st.buckets[string(name)] = newTree()
	t.own[string(name)] = true
	return &memBucket{tx: t, name: string(name)}, nil
}

func (t *memTx) CreateBucketIfNotExists(name []byte) (Bucket, error) {
	if b := t.Bucket(name); b != nil {
		if !t.writable {
			return nil, ErrTxNotWritable
		}
		return b, nil
	}
	return t.CreateBucket(name)
}

func (t *memTx) DeleteBucket(name []byte) error {
	switch {
	case t.done:
		return ErrTxClosed
	case !t.writable:
		return ErrTxNotWritable
	}
	tr, ok := t.st.buckets[string(name)]
	if !ok {
		return ErrBucketNotFound
	}
	tr.Scan(func(it item) bool {
		t.st.keys--
		t.st.bytes -= int64(it.k) + int64(it.v)
		return true
	})
	delete(t.st.buckets, string(name))
	delete(t.own, string(name))
	return nil
}

func (t *memTx) ForEach(fn func(name []byte, b Bucket) error) error {
	if t.done {
		return ErrTxClosed
	}
	for _, name := range slices.Sorted(maps.Keys(t.st.buckets)) {
		if err := fn([]byte(name), &memBucket{tx: t, name: name}); err != nil {
			return err
		}
	}
	return nil
}

func (t *memTx) Commit() error {
	switch {
	case t.done:
		return ErrTxClosed
	case !t.writable:
		return ErrTxNotWritable
	}
	t.done = true
	defer t.m.writer.Unlock()
	if t.chained {
		// After the prepared states it was built on, once published.
		m := t.m
		m.mu.Lock()
		for len(m.prepared) > 0 && m.gen == t.gen {
			m.drained.Wait()
		}
		discarded := m.gen != t.gen
		m.mu.Unlock()
		if discarded {
			return ErrDiscarded
		}
	}
	t.m.state.Store(t.st)
	return nil
}

// ErrDiscarded reports a writer that began on a prepared state that was
// then discarded: it is rolled back.
var ErrDiscarded = errors.New("kv: transaction began on a discarded prepared state")

// Prepare ends a writable transaction without publishing its state:
// readers keep the last published state, and the next writer begins
// from this one. The Prepared must then be published or discarded, in
// the order the transactions were prepared. A writer that began on a
// prepared state that was discarded meanwhile is rolled back
// (ErrDiscarded).
func (t *memTx) Prepare() (*Prepared, error) {
	switch {
	case t.done:
		return nil, ErrTxClosed
	case !t.writable:
		return nil, ErrTxNotWritable
	}
	t.done = true
	m := t.m
	defer m.writer.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.chained && m.gen != t.gen {
		return nil, ErrDiscarded
	}
	m.prepared = append(m.prepared, t.st)
	return &Prepared{m: m, st: t.st}, nil
}

// Prepared is a prepared transaction's state (memTx.Prepare).
type Prepared struct {
	m  *Memory
	st *memState
}

// Publish shows the state to readers. It must be the oldest prepared
// state still held back.
func (p *Prepared) Publish() error {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	switch i := slices.Index(m.prepared, p.st); {
	case i < 0:
		return ErrDiscarded
	case i > 0:
		return errors.New("kv: prepared states published out of order")
	}
	m.state.Store(p.st)
	m.prepared[0] = nil
	m.prepared = m.prepared[1:]
	if len(m.prepared) == 0 {
		m.prepared = nil
		m.drained.Broadcast()
	}
	return nil
}

// Discard drops the state, and every prepared state built on it; the
// next writer begins from the newest state left. Discarding a state
// dropped already does nothing.
func (p *Prepared) Discard() {
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.prepared, p.st)
	if i < 0 {
		return
	}
	clear(m.prepared[i:])
	m.prepared = m.prepared[:i]
	if i == 0 {
		m.prepared = nil
	}
	m.gen++ // the writer now open began on a state dropped
	m.drained.Broadcast()
}

func (t *memTx) Rollback() error {
	if t.done {
		return ErrTxClosed
	}
	t.done = true
	if t.writable {
		t.m.writer.Unlock()
	}
	return nil
}

// memBucket names a bucket of a transaction; it finds its tree at each
// call, so that it follows the writer's copy.
type memBucket struct {
	tx   *memTx
	name string
}

// tree is the bucket's tree to read, nil once the bucket or the
// transaction is gone.
func (b *memBucket) tree() *memTree {
	if b.tx.done {
		return nil
	}
	return b.tx.st.buckets[b.name]
}

// mutable is the bucket's tree to write: the writer's own copy.
func (b *memBucket) mutable() (*memTree, error) {
	t := b.tx
	switch {
	case t.done:
		return nil, ErrTxClosed
	case !t.writable:
		return nil, ErrTxNotWritable
	}
	tr, ok := t.st.buckets[b.name]
	if !ok {
		return nil, ErrBucketNotFound
	}
	if !t.own[b.name] {
		tr = tr.Copy()
		t.st.buckets[b.name] = tr
		t.own[b.name] = true
	}
	return tr, nil
}

func (b *memBucket) Get(key []byte) []byte { return b.get(key, nil) }

// get is Get with a hint (GetHint); h may be nil.
func (b *memBucket) get(key []byte, h *Hint) []byte {
	tr := b.tree()
	if tr == nil {
		return nil
	}
	if len(key) > maxLen {
		return nil
	}
	var path *btree.PathHint
	if h != nil {
		path = &h.path
	}
	it, ok := tr.GetHint(probe(key), path)
	if !ok {
		return nil
	}
	return it.value()
}

func (b *memBucket) Put(key, value []byte) error {
	if err := checkLens(len(key), len(value)); err != nil {
		return err
	}
	kv := make([]byte, len(key)+len(value))
	copy(kv, key)
	copy(kv[len(key):], value)
	return b.set(pair(kv, len(key)))
}

// putPairHint is Put keeping kv itself (PutPairHint); h may be nil.
func (b *memBucket) putPairHint(kv []byte, keyLen int, h *Hint) error {
	if err := checkLens(keyLen, len(kv)-keyLen); err != nil {
		return err
	}
	return b.setHint(pair(kv, keyLen), h)
}

func checkLens(key, value int) error {
	switch {
	case key == 0:
		return ErrKeyRequired
	case key > maxLen || value > maxLen:
		return fmt.Errorf("kv: key of %d bytes or value of %d: longer than %d", key, value, maxLen)
	}
	return nil
}

// set stores it as it is.
func (b *memBucket) set(it item) error { return b.setHint(it, nil) }

func (b *memBucket) setHint(it item, h *Hint) error {
	tr, err := b.mutable()
	if err != nil {
		return err
	}
	var path *btree.PathHint
	if h != nil {
		path = &h.path
	}
	if prev, replaced := tr.SetHint(it, path); replaced {
		b.tx.st.keys--
		b.tx.st.bytes -= int64(prev.k) + int64(prev.v)
	}
	b.tx.st.keys++
	b.tx.st.bytes += int64(it.k) + int64(it.v)
	b.tx.writes++
	return nil
}

func (b *memBucket) Delete(key []byte) error {
	tr, err := b.mutable()
	if err != nil {
		return err
	}
	if len(key) > maxLen {
		// Nothing stored is that long; probe would cut it to a key
		// that may be.
		b.tx.writes++
		return nil
	}
	if prev, deleted := tr.Delete(probe(key)); deleted {
		b.tx.st.keys--
		b.tx.st.bytes -= int64(prev.k) + int64(prev.v)
	}
	b.tx.writes++
	return nil
}

// deletePrefix is DeletePrefix. Deleting a key copies the nodes on its
// path that the writer does not own yet, and searches from the root: for
// more than a tenth of the tree, building a new tree of the keys kept
// (appended in order) costs less.
func (b *memBucket) deletePrefix(prefix []byte) (int, error) {
	tr, err := b.mutable()
	if err != nil {
		return 0, err
	}
	var gone []item
	var goneBytes int64
	inPrefix := func(it item) bool { return bytes.HasPrefix(it.key(), prefix) }
	tr.Ascend(probe(prefix), func(it item) bool {
		if !inPrefix(it) {
			return false
		}
		gone = append(gone, it)
		goneBytes += int64(it.k) + int64(it.v)
		return true
	})
	if len(gone) == 0 {
		return 0, nil
	}
	if len(gone) <= tr.Len()/10 {
		for _, it := range gone {
			tr.Delete(it)
		}
	} else {
		kept := newTree()
		tr.Scan(func(it item) bool {
			if !inPrefix(it) {
				kept.Load(it)
			}
			return true
		})
		b.tx.st.buckets[b.name] = kept
	}
	b.tx.st.keys -= int64(len(gone))
	b.tx.st.bytes -= goneBytes
	b.tx.writes++
	return len(gone), nil
}

func (b *memBucket) ForEach(fn func(k, v []byte) error) error {
	tr := b.tree()
	if tr == nil {
		return ErrTxClosed
	}
	var err error
	tr.Scan(func(it item) bool {
		err = fn(it.key(), it.value())
		return err == nil
	})
	return err
}

func (b *memBucket) Sequence() uint64       { return 0 }
func (b *memBucket) SetFillPercent(float64) {}

func (b *memBucket) KeyN() int {
	if tr := b.tree(); tr != nil {
		return tr.Len()
	}
	return 0
}

func (b *memBucket) Cursor() Cursor { return &memCursor{b: b} }

// memCursor walks a bucket with the tree's iterator. A writer changing
// the bucket meanwhile (tx.writes moved) may have replaced the nodes the
// iterator stands on: the next step seeks again from the key it is on.
type memCursor struct {
	b      *memBucket
	tr     *memTree // the tree it walks
	it     btree.IterG[item]
	writes int    // tx.writes when it was positioned
	key    []byte // where it is; nil before the first move or past an end
}

// iter is an iterator on the bucket's current tree, nil if the bucket
// or the transaction is gone.
func (c *memCursor) iter() *btree.IterG[item] {
	tr := c.b.tree()
	if tr == nil {
		return nil
	}
	c.tr, c.it, c.writes = tr, tr.Iter(), c.b.tx.writes
	return &c.it
}

func (c *memCursor) land(it *btree.IterG[item], ok bool) ([]byte, []byte) {
	if it == nil || !ok {
		c.key = nil
		return nil, nil
	}
	x := it.Item()
	c.key = x.key()
	return c.key, x.value()
}

func (c *memCursor) First() ([]byte, []byte) {
	it := c.iter()
	return c.land(it, it != nil && it.First())
}

func (c *memCursor) Last() ([]byte, []byte) {
	it := c.iter()
	return c.land(it, it != nil && it.Last())
}

func (c *memCursor) Seek(seek []byte) ([]byte, []byte) {
	it := c.iter()
	k, v := c.land(it, it != nil && it.Seek(probe(seek)))
	for k != nil && bytes.Compare(k, seek) < 0 { // only for a key longer than maxLen
		k, v = c.Next()
	}
	return k, v
}

// stale reports whether the bucket changed since the iterator was
// positioned (its nodes may have been replaced).
func (c *memCursor) stale() bool {
	return c.b.tree() != c.tr || c.b.tx.writes != c.writes
}

func (c *memCursor) Next() ([]byte, []byte) {
	if c.key == nil || c.b.tree() == nil {
		return c.land(nil, false)
	}
	if !c.stale() {
		return c.land(&c.it, c.it.Next())
	}
	key := c.key
	it := c.iter()
	if !it.Seek(probe(key)) {
		return c.land(nil, false)
	}
	if bytes.Equal(it.Item().key(), key) {
		return c.land(it, it.Next())
	}
	return c.land(it, true) // key was deleted: its successor
}

func (c *memCursor) Prev() ([]byte, []byte) {
	if c.key == nil || c.b.tree() == nil {
		return c.land(nil, false)
	}
	if !c.stale() {
		return c.land(&c.it, c.it.Prev())
	}
	key := c.key
	it := c.iter()
	if !it.Seek(probe(key)) {
		return c.land(it, it.Last()) // everything from key on is gone
	}
	return c.land(it, it.Prev()) // the last key before key (or before its successor, the same)
}
