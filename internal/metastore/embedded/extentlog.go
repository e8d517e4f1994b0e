package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// The extent log: a commit writes its extents as one record, instead of
// one key per extent in the extents bucket. The extents bucket orders
// extents by partition, so a commit touching thousands of partitions
// dirtied (and bbolt copied and wrote) one leaf page per partition; the
// log's keys only grow, so a commit appends one value at its end.
//
//	extentlog  seq(8) → version(1)=1 committedAt(8, Unix ns) objectSize(8)
//	                    objectLen(4) object count(4)
//	                    count × [ topicID(16) partition(4) baseOffset(8) endOffset(8)
//	                              byteOffset(8) byteLength(8) maxTimestamp(8) ]
//
// seq is the meta key "extentlog-seq" plus one (the log bucket's own
// sequence for a file written before that key existed), so records are
// numbered 1, 2, … with no gaps. It is a key, not the bucket's sequence,
// because a state snapshot (snapshot.go) carries keys and values only: a
// store loaded from one numbered its records from 1 again, over live
// ones, and the live records are one contiguous range (the oldest
// is always the one removed). Entries are sorted by topic, partition and
// base offset, so a partition's entries in a record are found by binary
// search.
//
// A partition's pendingSeq (partstate.go) is the first record holding an
// extent of it that the extents bucket does not, or a record between
// that one and the last record holding one of its moved extents (a store
// in memory folds record by record, below): its extents are those of the
// extents bucket, then its entries in records pendingSeq, pendingSeq+1,
// … up to the newest (entries of records before pendingSeq, or of any
// record when pendingSeq is 0, were moved already and are ignored). Every
// extent of the log has a higher offset than every extent of the bucket
// for the same partition, so this is offset order.
//
// Moving (folding) a partition copies all its pending entries to the
// extents bucket at once and sets pendingSeq to 0. When the log holds
// more than foldRecords records or foldExtents entries, a commit folds
// every partition pending in the oldest record and deletes it: a
// partition's extents reach the bucket a few at a time, one page write
// for several commits. A store in memory has no pages to save: it moves
// only the oldest records' pending entries (foldRecords), which needs no
// search through later records, and sets those partitions' pendingSeq
// to the record after the last that held one (0 if none of their
// extents is left in the log), and it lets the log grow a round past
// the limits before folding the oldest records back down to them, in
// one transaction and in key order (below).
// Calls that change a partition's extents otherwise (AdvanceLogStart,
// ReplaceExtents, DeleteTopic) fold it first.
//
// The meta key "extentlog-entries" counts the entries of the live
// records (folded or not), for the limit.
const (
	extentLogVersion = 1
	extentLogFixed   = 1 + 8 + 8 + 4 + 4 // without the object key
	extentLogEntry   = 16 + 4 + 8*5

	// defaultFoldRecords and defaultFoldExtents bound the log. A read of
	// a pending partition visits at most that many records (a binary
	// search in each); a partition is folded at most once per commit
	// that removes a record holding it. The longer the log, the more
	// commits a partition's fold waits for, and the fewer leaf pages a
	// commit's fold writes: at commits of 1,500 partitions of 10,000,
	// 131,072 entries (64 records) write 615 pages a commit against 926
	// at 32,768 (21 records), for 20.7 against 29.0 ms of CPU, and a
	// read at the live edge costs 23 against 7 µs (docs/benchmarks.md).
	defaultFoldRecords = 64
	defaultFoldExtents = 1 << 17

	// defaultFoldRoundRecords and defaultFoldRoundExtents are how far a
	// store in memory lets the log grow past the limits before it folds
	// back down to them in one transaction. Each of its transactions
	// copies the B-tree nodes it changes, and a fold puts each extent at
	// its partition's end: folded a record per commit, nearly every put
	// copied a leaf and the nodes above it for itself; in rounds, the
	// puts of one partition share its leaf, and all of them the nodes
	// above (a fifth less CPU a commit at floe bench metastore's shape,
	// docs/benchmarks.md). A round of 256 records of 10 entries takes a
	// few milliseconds, once in 256 commits. The limits themselves are
	// lower in memory (memoryFold…), where a larger log saves no page
	// writes: a round folds as much either way, and a read of a pending
	// partition, which visits the records from its first pending one,
	// visits at most 272 of them.
	defaultFoldRoundRecords = 256
	defaultFoldRoundExtents = 1 << 12
	memoryFoldRecords       = 16
	memoryFoldExtents       = 1 << 12

	// minFoldBudget is the least a trim folding whole partitions moves
	// (trim).
	minFoldBudget = 1 << 12
)

// logRecord is a decoded extentlog value; it aliases the value's bytes.
type logRecord struct {
	seq         uint64
	committedAt int64
	objectSize  int64
	object      []byte
	entries     []byte
	n           int
}

func logKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// appendLogRecord appends the record of one commit's extents, which must
// share an object and a commit time (CommitExtents makes them so), to dst.
func appendLogRecord(dst []byte, es []*metastore.Extent) ([]byte, error) {
	if len(es) == 0 || len(es) > math.MaxInt32 {
		return nil, fmt.Errorf("extent log record of %d extents", len(es))
	}
	first := es[0]
	if len(first.Object) > math.MaxInt32 {
		return nil, fmt.Errorf("extent log record: object key of %d bytes", len(first.Object))
	}
	v := slices.Grow(dst, extentLogFixed+len(first.Object)+len(es)*extentLogEntry)
	v = append(v, extentLogVersion)
	v = binary.BigEndian.AppendUint64(v, uint64(first.CommittedAt.UnixNano()))
	v = binary.BigEndian.AppendUint64(v, uint64(first.ObjectSize))
	v = binary.BigEndian.AppendUint32(v, uint32(len(first.Object)))
	v = append(v, first.Object...)
	v = binary.BigEndian.AppendUint32(v, uint32(len(es)))
	for _, e := range es {
		if e.Object != first.Object || e.ObjectSize != first.ObjectSize || !e.CommittedAt.Equal(first.CommittedAt) {
			return nil, fmt.Errorf("extent log record: extents of objects %s and %s in one commit", first.Object, e.Object)
		}
		v = append(v, e.TopicID[:]...)
		v = binary.BigEndian.AppendUint32(v, uint32(e.Partition))
		for _, n := range []int64{e.BaseOffset, e.EndOffset, e.ByteOffset, e.ByteLength, e.MaxTimestamp} {
			v = binary.BigEndian.AppendUint64(v, uint64(n))
		}
	}
	return v, nil
}

// decodeLogRecord checks a record's lengths against its bytes. It does
// not check that entries are sorted (a read would then miss entries of a
// corrupt record, not fail), which would cost a pass over every record
// on every read.
func decodeLogRecord(k, v []byte) (logRecord, error) {
	bad := func(what string) (logRecord, error) {
		return logRecord{}, fmt.Errorf("extent log record %x: %w: %s (%d bytes)", k, errCorrupt, what, len(v))
	}
	if len(k) != 8 {
		return bad("key length")
	}
	if len(v) < extentLogFixed || v[0] != extentLogVersion {
		return bad("header")
	}
	r := logRecord{
		seq:         binary.BigEndian.Uint64(k),
		committedAt: int64(binary.BigEndian.Uint64(v[1:])),
		objectSize:  int64(binary.BigEndian.Uint64(v[9:])),
	}
	ol := uint64(binary.BigEndian.Uint32(v[17:]))
	if ol > uint64(len(v)-extentLogFixed) {
		return bad("object key length")
	}
	at := 21 + int(ol)
	r.object = v[21:at]
	n := uint64(binary.BigEndian.Uint32(v[at:]))
	r.entries = v[at+4:]
	if n == 0 || uint64(len(r.entries)) != n*extentLogEntry {
		return bad("entry count")
	}
	r.n = int(n)
	return r, nil
}

// entryKey is entry i's topicID(16) partition(4), comparable with
// partitionKey.bytes.
func (r *logRecord) entryKey(i int) []byte {
	return r.entries[i*extentLogEntry : i*extentLogEntry+20]
}

// entryPartition is entry i's partition.
func (r *logRecord) entryPartition(i int) partitionKey {
	var pk partitionKey
	k := r.entryKey(i)
	copy(pk.id[:], k)
	pk.partition = int32(binary.BigEndian.Uint32(k[16:]))
	return pk
}

// pendingIn reports whether the partition whose state is st (nil: its
// topic is gone, and DeleteTopic folded it) still has its entries of r in
// the log: one whose pendingSeq is later was folded since r was written.
func pendingIn(st *partitionState, r *logRecord) bool {
	return st != nil && st.pendingSeq != 0 && st.pendingSeq <= r.seq
}

func (r *logRecord) extent(i int) metastore.Extent { return r.extentOf(i, string(r.object)) }

// extentOf is extent i, whose object key is object (r's, converted once
// for all its entries).
func (r *logRecord) extentOf(i int, object string) metastore.Extent {
	b := r.entries[i*extentLogEntry:]
	n := func(j int) int64 { return int64(binary.BigEndian.Uint64(b[20+8*j:])) }
	e := metastore.Extent{
		Partition:    int32(binary.BigEndian.Uint32(b[16:])),
		BaseOffset:   n(0),
		EndOffset:    n(1),
		ByteOffset:   n(2),
		ByteLength:   n(3),
		MaxTimestamp: n(4),
		Object:       object,
		ObjectSize:   r.objectSize,
		CommittedAt:  time.Unix(0, r.committedAt).UTC(),
	}
	copy(e.TopicID[:], b)
	return e
}

// find returns the range [lo, hi) of the partition's entries.
func (r *logRecord) find(pk []byte) (int, int) {
	return searchEntries(r, pk, false), searchEntries(r, pk, true)
}

// searchEntries returns the first entry whose key is >= pk (after false)
// or > pk (after true).
func searchEntries(r *logRecord, pk []byte, after bool) int {
	return searchEntriesIn(r, 0, r.n, pk, after)
}

// searchEntriesIn is searchEntries among entries [lo, hi), which must
// hold the answer (or end at it).
func searchEntriesIn(r *logRecord, lo, hi int, pk []byte, after bool) int {
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := bytes.Compare(r.entryKey(mid), pk)
		if c < 0 || (after && c == 0) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// pendingExtents calls fn, in offset order, for each extent of the
// partition that is still in the log (ps.pendingSeq onwards), until fn
// returns false.
func pendingExtents(tx kv.Tx, pk partitionKey, ps partitionState, fn func(metastore.Extent) bool) error {
	if ps.pendingSeq == 0 {
		return nil
	}
	key := pk.bytes()
	left := ps.pendingCount
	c := tx.Bucket([]byte(bucketExtentLog)).Cursor()
	for k, v := c.Seek(logKey(ps.pendingSeq)); k != nil && left > 0; k, v = c.Next() {
		r, err := decodeLogRecord(k, v)
		if err != nil {
			return err
		}
		lo, hi := r.find(key)
		for i := lo; i < hi && left > 0; i++ {
			left--
			if !fn(r.extent(i)) {
				return nil
			}
		}
	}
	return nil
}

// pendingTail returns, in offset order, the partition's extents still in
// the log that end after from, and whether the first of them begins at or
// before from (or one ending at or before from was met): then the extents
// bucket holds nothing that ends after from. It walks the log from its
// newest record back to the partition's first pending one, stopping there:
// a read at the live edge, whose extents the last commits wrote, visits
// those records alone, where a walk from the first pending record visited
// every record of the log (64 on file) with a binary search in each.
func pendingTail(tx kv.Tx, pk partitionKey, ps partitionState, from int64) (tail []metastore.Extent, covered bool, err error) {
	if ps.pendingSeq == 0 {
		return nil, false, nil
	}
	key := pk.bytes()
	left := ps.pendingCount
	c := tx.Bucket([]byte(bucketExtentLog)).Cursor()
walk:
	for k, v := c.Last(); k != nil && left > 0; k, v = c.Prev() {
		r, err := decodeLogRecord(k, v)
		if err != nil {
			return nil, false, err
		}
		if r.seq < ps.pendingSeq {
			break
		}
		lo, hi := r.find(key)
		for i := hi - 1; i >= lo && left > 0; i-- {
			left--
			e := r.extent(i)
			if e.EndOffset <= from {
				covered = true
				break walk
			}
			tail = append(tail, e)
			if e.BaseOffset <= from {
				covered = true
				break walk
			}
		}
	}
	slices.Reverse(tail)
	return tail, covered, nil
}

// partitionExtents calls fn, in offset order, for every extent of the
// partition whose base offset is >= from, then the one before it if that
// one ends after from (the extent containing from comes first), until fn
// returns false: the extents bucket's, then the log's.
func partitionExtents(tx kv.Tx, pk partitionKey, from int64, fn func(metastore.Extent) bool) error {
	ps, err := readPartition(tx, pk)
	if err != nil {
		return err
	}
	from = max(from, 0)
	tail, covered, err := pendingTail(tx, pk, ps, from)
	if err != nil {
		return err
	}
	if !covered {
		if done, err := foldedExtents(tx, pk, from, fn); done || err != nil {
			return err
		}
	}
	for _, e := range tail {
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// foldedExtents is partitionExtents over the extents bucket alone; done
// reports that fn returned false.
func foldedExtents(tx kv.Tx, pk partitionKey, from int64, fn func(metastore.Extent) bool) (done bool, err error) {
	prefix := pk.bytes()
	c := tx.Bucket([]byte(bucketExtents)).Cursor()
	start := pk.extentKey(from)
	k, _ := c.Seek(start)
	if !bytes.Equal(k, start) {
		// Step back to the extent before the seek position.
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		if bytes.HasPrefix(k, prefix) {
			start = bytes.Clone(k)
		}
	}
	for k, v := c.Seek(start); bytes.HasPrefix(k, prefix); k, v = c.Next() {
		e, err := decodeExtent(k, v)
		if err != nil {
			return false, err
		}
		if e.EndOffset <= from {
			continue // the extent before from ends before it
		}
		if !fn(e) {
			return true, nil
		}
	}
	return false, nil
}

// folder moves partitions' pending extents from the log to the extents
// bucket, inside one write transaction. states returns a partition's
// state for update (nil for a partition that no longer exists) and marks
// its topic's states changed.
type folder struct {
	tx     kv.Tx
	states func(pk partitionKey) (*partitionState, error)
	// byRecord: trim moves the oldest records' entries only
	// (foldRecords), not all the pending extents of their partitions.
	byRecord bool
	slabs    *extentSlabs // where folded extents are built (nil: alone)
}

// foldPartitions folds the given partitions (sorted, no duplicates; those
// not pending are skipped) and sets their pendingSeq and pendingCount to
// 0. The log's records from the first pending one on are decoded once
// and walked together: each keeps the first of its entries not below the
// partition being folded, so that a fold of the 1,500 partitions of a
// record steps through each later record once instead of searching it
// twice per partition.
func (f *folder) foldPartitions(pks []partitionKey) error {
	type pending struct {
		pk partitionKey
		st *partitionState
	}
	var (
		wants []pending
		first uint64
	)
	for _, pk := range pks {
		st, err := f.states(pk)
		if err != nil {
			return err
		}
		if st == nil || st.pendingSeq == 0 {
			continue
		}
		if len(wants) == 0 || st.pendingSeq < first {
			first = st.pendingSeq
		}
		wants = append(wants, pending{pk, st})
	}
	if len(wants) == 0 {
		return nil
	}
	// The live records from the first pending one (about the log's
	// limits and a round: trim keeps it so), aliasing their values: the
	// log is not written while they are read.
	var rs []logRecord
	c := f.tx.Bucket([]byte(bucketExtentLog)).Cursor()
	for k, v := c.Seek(logKey(first)); k != nil; k, v = c.Next() {
		r, err := decodeLogRecord(k, v)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	next := make([]int, len(rs))       // each record's first entry not below the partition
	objects := make([]string, len(rs)) // each record's object key, converted once
	extents := f.tx.Bucket([]byte(bucketExtents))
	for _, w := range wants {
		key := w.pk.bytes()
		// Its extents, in offset order, from its first pending record
		// until all pendingCount are found: one record for a partition
		// that one commit wrote to since its last fold.
		var found uint64
		for ri := range rs {
			if found == w.st.pendingCount {
				break
			}
			r := &rs[ri]
			if r.seq < w.st.pendingSeq {
				continue // its entries of this partition were moved
			}
			i := seekEntry(r, next[ri], key)
			for ; i < r.n && found < w.st.pendingCount && bytes.Equal(r.entryKey(i), key); i++ {
				if objects[ri] == "" {
					objects[ri] = string(r.object)
				}
				e := r.extentOf(i, objects[ri])
				if err := f.slabs.put(extents, w.pk, &e); err != nil {
					return err
				}
				found++
			}
			next[ri] = i
		}
		if found != w.st.pendingCount {
			return fmt.Errorf("extent log: %w: %d of partition %s's %d pending extents found", errCorrupt, found, w.pk, w.st.pendingCount)
		}
		w.st.pendingSeq, w.st.pendingCount = 0, 0
	}
	return nil
}

// seekEntry returns the first entry of r at or after from whose key is
// >= pk, given that every entry before from is below pk: a galloping
// search from from, a few comparisons when the entry is near (the next
// partition of a sorted walk), a binary search's when it is far.
func seekEntry(r *logRecord, from int, pk []byte) int {
	lo, step := from, 1
	hi := lo
	for hi < r.n && bytes.Compare(r.entryKey(hi), pk) < 0 {
		lo = hi + 1
		hi += step
		step *= 2
	}
	return searchEntriesIn(r, lo, min(hi, r.n), pk, false)
}

// foldRecords moves the entries of rs, the log's oldest records in
// order, that are still pending, leaving the partitions' later entries
// in the log: a partition's pendingSeq becomes the record after the last
// of rs that held one of its moved entries (the first record that can
// hold one), or 0 when none is left. Unlike foldPartitions it reads no
// other record: in memory, where a partition's extents moved together
// share no page write, finding them is what folding costs. The entries
// are put partition by partition, in key order, whatever record holds
// them: a partition's extents go to one leaf of the extents bucket's
// B-tree, one after the other, where taken record by record each put
// went to another partition's leaf, most of them cold in the cache.
func (f *folder) foldRecords(rs []logRecord) error {
	type ref struct {
		key  [20]byte // topicID(16) partition(4), as the entry's
		r, i int32    // record and entry
	}
	n := 0
	objects := make([]string, len(rs)) // each record's, converted once
	for i, r := range rs {
		n += r.n
		objects[i] = string(r.object)
	}
	refs := make([]ref, 0, n)
	for ri := range rs {
		for i := range rs[ri].n {
			x := ref{r: int32(ri), i: int32(i)}
			copy(x.key[:], rs[ri].entryKey(i))
			refs = append(refs, x)
		}
	}
	// A partition's entries in record order, and in offset order within
	// a record, so in offset order: each is put next to the last in the
	// B-tree and in the partition's slab.
	slices.SortFunc(refs, func(a, b ref) int {
		return cmp.Or(bytes.Compare(a.key[:], b.key[:]), cmp.Compare(a.r, b.r), cmp.Compare(a.i, b.i))
	})
	extents := f.tx.Bucket([]byte(bucketExtents))
	for g := 0; g < len(refs); {
		end := g + 1
		for end < len(refs) && refs[end].key == refs[g].key {
			end++
		}
		pk := rs[refs[g].r].entryPartition(int(refs[g].i))
		st, err := f.states(pk)
		if err != nil {
			return err
		}
		var moved, last uint64
		for _, x := range refs[g:end] {
			r := &rs[x.r]
			if !pendingIn(st, r) {
				continue // folded whole since r was written, or gone
			}
			// Key and value built in one array, in the partition's slab
			// in memory.
			e := r.extentOf(int(x.i), objects[x.r])
			if err := f.slabs.put(extents, pk, &e); err != nil {
				return err
			}
			moved, last = moved+1, max(last, r.seq)
		}
		if moved > 0 {
			if moved > st.pendingCount {
				return fmt.Errorf("extent log: %w: records %d to %d hold %d extents of partition %s, %d pending", errCorrupt, rs[0].seq, last, moved, pk, st.pendingCount)
			}
			st.pendingCount -= moved
			st.pendingSeq = last + 1
			if st.pendingCount == 0 {
				st.pendingSeq = 0
			}
		}
		g = end
	}
	return nil
}

// foldPartitionsOf folds, whole, the partitions with entries of r still
// pending, in key order, while the extents they move stay within budget
// (a first partition whatever its count, when budget is not 0): it
// returns the extents moved, and whether none of r's is pending any
// more.
func (f *folder) foldPartitionsOf(r *logRecord, budget uint64) (moved uint64, done bool, err error) {
	var pks []partitionKey
	done = true
	for i := 0; i < r.n; i++ {
		pk := r.entryPartition(i)
		if len(pks) > 0 && pks[len(pks)-1] == pk {
			continue
		}
		st, err := f.states(pk)
		if err != nil {
			return 0, false, err
		}
		if !pendingIn(st, r) {
			continue
		}
		if budget == 0 || (len(pks) > 0 && moved+st.pendingCount > budget) {
			done = false
			break
		}
		pks = append(pks, pk)
		moved += st.pendingCount
	}
	return moved, done, f.foldPartitions(pks)
}

// trim removes the oldest records while the log holds more than
// l.records records or l.extents entries, folding first what each holds
// still pending: its partitions whole (foldPartitionsOf), record by
// record, or the entries of all the records removed, together
// (foldRecords, byRecord). It begins only once the log holds more than
// a round past either limit (foldLimits). It returns the records and
// entries the log holds after it.
//
// Folding whole partitions, a trim moves at most twice as many extents
// as the newest record holds, and at least minFoldBudget: when the
// oldest record's partitions hold many pending extents (every partition
// written by every commit, all folded together, so all pending again
// together), the fold is spread over the next commits, the record kept
// until none of its partitions is pending, instead of one commit moving
// them all. The log then holds more than its limits for a few commits.
func (f *folder) trim(l foldLimits) (records, entries uint64, err error) {
	records, entries, err = logLength(f.tx)
	if err != nil || records == 0 || !l.past(records, entries) {
		return records, entries, err // nothing removed: the count stays as appendLog wrote it
	}
	log := f.tx.Bucket([]byte(bucketExtentLog))
	meta := f.tx.Bucket([]byte(bucketMeta))
	c := log.Cursor()
	budget := uint64(l.budget)
	if budget == 0 && !f.byRecord {
		last, lastV := c.Last()
		newest, err := decodeLogRecord(last, lastV)
		if err != nil {
			return 0, 0, err
		}
		budget = max(2*uint64(newest.n), minFoldBudget)
	}
	// Past a limit's round: down to the limits themselves.
	var (
		removed []logRecord
		keys    [][]byte
	)
	for k, v := c.First(); k != nil && l.over(records, entries); k, v = c.Next() {
		r, err := decodeLogRecord(k, v)
		if err != nil {
			return 0, 0, err
		}
		if f.byRecord {
			removed = append(removed, r)
		} else {
			moved, done, err := f.foldPartitionsOf(&r, budget)
			if err != nil {
				return 0, 0, err
			}
			budget -= min(budget, moved)
			if !done {
				break // the record stays; a later commit goes on
			}
		}
		keys = append(keys, bytes.Clone(k))
		records--
		entries -= min(entries, uint64(r.n))
	}
	if err := f.foldRecords(removed); err != nil {
		return 0, 0, err
	}
	if err := deleteKeys(log, keys); err != nil {
		return 0, 0, err
	}
	return records, entries, meta.Put([]byte(keyExtentLogEntries), binary.BigEndian.AppendUint64(nil, entries))
}

// over reports whether a log of records and entries holds more than l's
// limits.
func (l foldLimits) over(records, entries uint64) bool {
	return records > uint64(l.records) || entries > uint64(l.extents)
}

// past reports whether a log of records and entries holds more than a
// round past either of l's limits: where a trim begins.
func (l foldLimits) past(records, entries uint64) bool {
	return records > uint64(l.records+l.roundRecords) || entries > uint64(l.extents+l.roundExtents)
}

// logLength reads how many records the extent log holds, from its first
// to its last, and the count of their entries.
func logLength(tx kv.Tx) (records, entries uint64, err error) {
	if entries, err = logEntries(tx.Bucket([]byte(bucketMeta))); err != nil {
		return 0, 0, err
	}
	c := tx.Bucket([]byte(bucketExtentLog)).Cursor()
	first, _ := c.First()
	last, _ := c.Last()
	if first == nil {
		return 0, entries, nil
	}
	if len(first) != 8 || len(last) != 8 {
		return 0, 0, fmt.Errorf("extent log: %w: key of %d bytes", errCorrupt, len(first))
	}
	return binary.BigEndian.Uint64(last) - binary.BigEndian.Uint64(first) + 1, entries, nil
}

// logEntries reads the count of entries in the live records.
func logEntries(meta kv.Bucket) (uint64, error) {
	v := meta.Get([]byte(keyExtentLogEntries))
	if v == nil {
		return 0, nil
	}
	n, err := decodeInt64(v, "extent log entries")
	return uint64(n), err
}

// appendLog writes one commit's extents (sorted by key) as the next
// record and returns its seq; the caller sets the partitions' pendingSeq.
func appendLog(tx kv.Tx, es []*metastore.Extent) (uint64, error) {
	kv8, err := appendLogRecord(make([]byte, 8), es) // its key first, set below
	if err != nil {
		return 0, err
	}
	log := tx.Bucket([]byte(bucketExtentLog))
	// Records only ever go at the end: pages full, not split in half.
	log.SetFillPercent(1)
	meta := tx.Bucket([]byte(bucketMeta))
	seq := log.Sequence()
	if k, _ := log.Cursor().Last(); len(k) == 8 {
		seq = max(seq, binary.BigEndian.Uint64(k))
	}
	if last := meta.Get([]byte(keyExtentLogSeq)); last != nil {
		n, err := decodeInt64(last, "extent log seq")
		if err != nil {
			return 0, err
		}
		seq = uint64(n)
	}
	seq++
	if err := meta.Put([]byte(keyExtentLogSeq), binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		return 0, err
	}
	binary.BigEndian.PutUint64(kv8, seq) // logKey(seq)
	if err := kv.PutPair(log, kv8, 8); err != nil {
		return 0, err
	}
	n, err := logEntries(meta)
	if err != nil {
		return 0, err
	}
	return seq, meta.Put([]byte(keyExtentLogEntries), binary.BigEndian.AppendUint64(nil, n+uint64(len(es))))
}
