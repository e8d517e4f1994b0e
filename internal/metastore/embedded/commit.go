package embedded

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// CommitSegment implements metastore.Store. The whole commit is one bbolt
// write transaction: bbolt has a single writer, which is what makes the
// offsets it hands out unique and contiguous.
func (s *Store) CommitSegment(ctx context.Context, c metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	if err := metastore.ValidateCommit(c); err != nil {
		return nil, fmt.Errorf("commit segment %s: %w", c.Object, err)
	}
	var (
		results []metastore.BatchResult
		extents int
	)
	err := s.updateStates(ctx, func(tx kv.Tx, held *heldStates) error {
		var err error
		results, extents, err = commitIn(tx, held, c, s.now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("commit segment %s: %w", c.Object, err)
	}
	s.log.Debug("segment committed", "object", c.Object, "batches", len(c.Batches), "extents", extents)
	s.Notify(metastore.NoticeFor(c, results))
	return results, nil
}

// CommitSegments implements metastore.GroupSequencer: the segments are
// committed one after another, as CommitSegment commits them, in one
// bbolt write transaction, and announced in one notice.
func (s *Store) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if err := metastore.ValidateCommits(cs); err != nil {
		return nil, fmt.Errorf("commit %d segments: %w", len(cs), err)
	}
	results := make([][]metastore.BatchResult, len(cs))
	err := s.updateStates(ctx, func(tx kv.Tx, held *heldStates) error {
		now := s.now()
		for k, c := range cs {
			var err error
			if results[k], _, err = commitIn(tx, held, c, now); err != nil {
				return fmt.Errorf("segment %s: %w", c.Object, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit %d segments (%s, …): %w", len(cs), cs[0].Object, err)
	}
	s.log.Debug("segments committed together", "objects", len(cs), "first", cs[0].Object)
	s.Notify(metastore.NoticeForGroup(cs, results))
	return results, nil
}

// commitIn commits c inside the write transaction tx, deciding its
// batches in order, and returns their results and the number of extents
// it wrote.
func commitIn(tx kv.Tx, held *heldStates, c metastore.SegmentCommit, now time.Time) ([]metastore.BatchResult, int, error) {
	cm := newCommitter(tx, c, now, held)
	results := make([]metastore.BatchResult, len(c.Batches))
	for i, b := range c.Batches {
		r, err := cm.add(b)
		if err != nil {
			return nil, 0, fmt.Errorf("batch %d: %w", i, err)
		}
		results[i] = r
	}
	extents := len(cm.extents.Extents)
	return results, extents, cm.write()
}

// committer accumulates one commit inside its transaction: it reads each
// partition's and producer's state once, updates it in memory batch by
// batch, and writes everything back at the end.
type committer struct {
	tx     kv.Tx
	commit metastore.SegmentCommit
	now    time.Time

	held *heldStates // partition states by topic, shared with the batch's other commits
	commitMaps

	extents *metastore.CommitExtents
}

// commitMaps are a commit's maps. A batch's commits take turns with one
// set (heldStates.maps), each clearing it first: the tables are made
// once a batch instead of once a commit.
type commitMaps struct {
	sequences map[sequenceKey]*sequence.State // nil: no state yet
	changed   map[sequenceKey]int64           // sequences to write back, with their last batch's max timestamp
	seqValues map[seqStatesKey]*seqValue      // producers' stored states per topic (seqstate.go), read once

	txns     map[int64]*txnLookup  // transactions by current producer id
	open     map[sequenceKey]bool  // open transaction entries that exist, stored or new
	newOpens map[sequenceKey]int64 // entries this commit opens, at their first offset

	// batches is the last commit's batches: after more than
	// maxReusedBatches the next commit makes new maps, since a cleared
	// map keeps its table and clearing it costs its size.
	batches int
}

// maxReusedBatches bounds the commits whose maps the next commit of the
// batch clears and reuses (commitMaps.batches).
const maxReusedBatches = 256

// forCommit returns the maps, cleared, for a commit of n batches.
func (m *commitMaps) forCommit(n int) commitMaps {
	if m.sequences == nil || m.batches > maxReusedBatches {
		// Sized for the commit's batches: a map of more than eight
		// entries grown one insert at a time copies itself into a
		// table, a tenth of what the maps cost at ten partitions a
		// commit.
		*m = commitMaps{
			sequences: make(map[sequenceKey]*sequence.State, n),
			changed:   make(map[sequenceKey]int64, n),
			seqValues: make(map[seqStatesKey]*seqValue, n),
			txns:      make(map[int64]*txnLookup),
			open:      make(map[sequenceKey]bool),
			newOpens:  make(map[sequenceKey]int64),
		}
	} else {
		clear(m.sequences)
		clear(m.changed)
		clear(m.seqValues)
		clear(m.txns)
		clear(m.open)
		clear(m.newOpens)
	}
	m.batches = n
	return *m
}

// txnLookup is the transaction whose current producer an id is, if any.
type txnLookup struct {
	txn   metastore.Txn
	found bool
}

// foldLimits bound the extent log (extentlog.go); zero records or
// extents are the defaults. A trim begins once the log holds more than
// records+roundRecords records or extents+roundExtents entries, and
// folds until it holds at most records and extents: zero rounds fold one
// record at a time, as each commit passes the limits (a store on file);
// a store in memory folds in rounds (defaultFoldRound…).
type foldLimits struct {
	records, extents           int
	roundRecords, roundExtents int
	// budget, when set, is what a trim folding whole partitions moves
	// at most, instead of twice the newest record's extents (tests).
	budget int
}

// heldStates are the partition states of the topics that commits read,
// decoded, changed in place, and written back to the partstates bucket
// at the end of the commit or of the batch of commits (Store.Batch), with
// the extent log trimmed then: a batch of commits to one topic decodes
// and encodes its states once, not once per commit.
type heldStates struct {
	topics   map[metastore.TopicID]*topicCommit // nil: no such topic
	logged   bool                               // a commit appended to the extent log
	limits   foldLimits
	byRecord bool         // Store.foldByRecord
	slabs    *extentSlabs // Store.slabs
	maps     commitMaps   // the commits' maps, reused (commitMaps)
	// later, when set, is what the commit trims to itself, the rest
	// left to the store's goroutine (trimlater.go), and wake whether
	// write found the log long enough to wake it.
	later *laterLimits
	wake  bool
	// values, when set, collects the partition states values write
	// puts, for the caller to recycle once the transaction is over (a
	// store on file: bbolt copies them to its pages at the commit; a
	// store in memory keeps them).
	values *[][]byte
}

// Buffers of topic states, decoded and encoded, kept between commits: a
// topic of 10,000 partitions decodes 320 KB and encodes as much at every
// commit, and allocations that large are cleared, collected and, once
// given back to the system, faulted in again every time.
var (
	statesPool sync.Pool // *topicStates
	valuesPool sync.Pool // *[]byte
)

func recycledStates() topicStates {
	if p, ok := statesPool.Get().(*topicStates); ok {
		return *p
	}
	return nil
}

// recycleStates gives back held states that nothing refers to any more.
func recycleStates(ts topicStates) {
	if cap(ts) > 0 {
		statesPool.Put(&ts)
	}
}

func recycledValue() []byte {
	if p, ok := valuesPool.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// recycleValues gives back values put in a transaction that is over.
func recycleValues(vs [][]byte) {
	for _, v := range vs {
		valuesPool.Put(&v)
	}
}

func newHeldStates(limits foldLimits) *heldStates {
	limits.records = cmp.Or(limits.records, defaultFoldRecords)
	limits.extents = cmp.Or(limits.extents, defaultFoldExtents)
	return &heldStates{topics: make(map[metastore.TopicID]*topicCommit), limits: limits}
}

func (s *Store) newHeldStates() *heldStates {
	h := newHeldStates(s.fold)
	h.byRecord, h.slabs = s.foldByRecord, s.slabs
	return h
}

// write trims the extent log if a commit appended to it, stores the
// states that changed and forgets them all, so that later calls read the
// bucket.
func (h *heldStates) write(tx kv.Tx) error {
	if len(h.topics) == 0 {
		return nil
	}
	if h.logged {
		l := h.limits
		if h.later != nil {
			l = h.later.backstop
		}
		records, entries, err := h.folder(tx).trim(l)
		if err != nil {
			return err
		}
		h.wake = h.later != nil && h.later.wakeAt.past(records, entries)
	}
	partitions := tx.Bucket([]byte(bucketPartStates))
	ids := slices.SortedFunc(maps.Keys(h.topics), func(a, b metastore.TopicID) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		t := h.topics[id]
		if t == nil {
			continue
		}
		if t.changed {
			var v []byte
			if h.values != nil {
				v = recycledValue()
			}
			v = t.states.appendTo(append(v, id[:]...))
			if err := kv.PutPair(partitions, v, len(id)); err != nil {
				return err
			}
			if h.values != nil {
				*h.values = append(*h.values, v)
			}
		}
		recycleStates(t.states)
	}
	clear(h.topics)
	h.logged = false
	return nil
}

func newCommitter(tx kv.Tx, c metastore.SegmentCommit, now time.Time, held *heldStates) *committer {
	return &committer{
		tx:         tx,
		commit:     c,
		now:        now,
		held:       held,
		commitMaps: held.maps.forCommit(len(c.Batches)),
		extents:    metastore.NewCommitExtents(c, now),
	}
}

// add decides one batch. A returned error is a storage failure and aborts
// the commit; rejections are in the result.
func (cm *committer) add(b metastore.BatchCommit) (metastore.BatchResult, error) {
	pk := partitionKey{id: b.TopicID, partition: b.Partition}
	ps, err := cm.partition(pk)
	if err != nil {
		return metastore.BatchResult{}, err
	}
	if ps == nil {
		return metastore.RejectedBatch(metastore.ErrUnknownTopicOrPartition), nil
	}

	var (
		sk                sequenceKey
		st                *sequence.State
		firstSeq, lastSeq int32
		reject            error
	)
	if b.ProducerID >= 0 {
		sk = sequenceKey{partitionKey: pk, producerID: b.ProducerID}
		if st, err = cm.sequence(sk); err != nil {
			return metastore.BatchResult{}, err
		}
		firstSeq, lastSeq = b.BaseSequence, sequence.Last(b.BaseSequence, b.OffsetCount)
		dupBase, dup, err := st.Check(b.ProducerEpoch, firstSeq, lastSeq)
		if err == nil && dup {
			// A duplicate is answered before the transaction check, as
			// Kafka does: it was written in its transaction. Its bytes
			// stay unreferenced, so the extent cannot run across them.
			cm.extents.EndRun(b.TopicID, b.Partition)
			return metastore.BatchResult{BaseOffset: dupBase, Duplicate: true, LogStartOffset: ps.logStartOffset}, nil
		}
		reject = err
	}
	if b.Transactional {
		t, err := cm.txn(b.ProducerID)
		if err != nil {
			return metastore.BatchResult{}, err
		}
		if err := metastore.TxnBatchError(t.txn, t.found, b); err != nil {
			reject = err // before a sequence error, as in Kafka
		}
	}
	if reject != nil {
		cm.extents.EndRun(b.TopicID, b.Partition)
		return metastore.RejectedBatch(reject), nil
	}

	base := ps.highWatermark
	ps.highWatermark += b.OffsetCount
	cm.moved(b.TopicID)
	if b.ProducerID >= 0 {
		cm.sequences[sk] = st.Accept(b.ProducerEpoch, firstSeq, lastSeq, base)
		cm.changed[sk] = b.MaxTimestamp
	}
	if b.Transactional {
		cm.openTxn(sk, base)
	}
	cm.extents.Add(b, base)
	return metastore.BatchResult{BaseOffset: base, LogStartOffset: ps.logStartOffset}, nil
}

// addMarker gives a transaction marker (EndTxn) the next offset of its
// partition: -1 if the partition does not exist.
func (cm *committer) addMarker(b metastore.BatchCommit) (int64, error) {
	ps, err := cm.partition(partitionKey{id: b.TopicID, partition: b.Partition})
	if err != nil || ps == nil {
		return -1, err
	}
	base := ps.highWatermark
	ps.highWatermark += b.OffsetCount
	cm.moved(b.TopicID)
	cm.extents.Add(b, base)
	return base, nil
}

// txn returns the transaction whose current producer is producerID,
// loading it on first use.
func (cm *committer) txn(producerID int64) (*txnLookup, error) {
	if t, ok := cm.txns[producerID]; ok {
		return t, nil
	}
	t := &txnLookup{}
	if producerID >= 0 {
		var err error
		if t.txn, t.found, err = txnOfProducer(cm.tx, producerID); err != nil {
			return nil, err
		}
	}
	cm.txns[producerID] = t
	return t, nil
}

// openTxn opens the producer's transaction on the partition at base,
// unless it is open there already.
func (cm *committer) openTxn(sk sequenceKey, base int64) {
	if cm.open[sk] {
		return
	}
	cm.open[sk] = true
	if cm.tx.Bucket([]byte(bucketTxnOpen)).Get(sk.key()) == nil {
		cm.newOpens[sk] = base
	}
}

// topicCommit is one topic's partition states during a commit, decoded
// once and written back once if a batch changed them.
type topicCommit struct {
	states  topicStates
	changed bool
}

// partition returns the partition's state, loading its topic's states on
// first use, or nil if the topic incarnation or partition does not exist.
// The caller that changes the state marks its topic changed (moved).
func (cm *committer) partition(pk partitionKey) (*partitionState, error) {
	return cm.held.partition(cm.tx, pk)
}

func (h *heldStates) partition(tx kv.Tx, pk partitionKey) (*partitionState, error) {
	t, ok := h.topics[pk.id]
	if !ok {
		var err error
		if t, err = h.load(tx, pk.id); err != nil {
			return nil, err
		}
	}
	if t == nil || pk.partition < 0 || int(pk.partition) >= len(t.states) {
		return nil, nil
	}
	return &t.states[pk.partition], nil
}

// load reads and holds a topic's states, nil if it does not exist. A
// segment holds many partitions of few topics: one read and one decode
// per topic and commit (or batch of commits). It is a function of its
// own so that the read, which sends the key to the heap, costs
// partition's callers nothing once the topic is held.
func (h *heldStates) load(tx kv.Tx, id metastore.TopicID) (*topicCommit, error) {
	var t *topicCommit
	if v := tx.Bucket([]byte(bucketPartStates)).Get(id[:]); v != nil {
		states, err := decodeTopicStatesInto(recycledStates(), v)
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", id, err)
		}
		t = &topicCommit{states: states}
	}
	h.topics[id] = t
	return t, nil
}

// moved records that a batch moved a partition of the topic.
func (cm *committer) moved(id metastore.TopicID) {
	cm.held.moved(id)
}

// moved records that a partition of the topic, held, changed.
func (h *heldStates) moved(id metastore.TopicID) {
	h.topics[id].changed = true
}

// sequence returns a producer's state on a partition, loading it on first
// use; nil means none.
func (cm *committer) sequence(sk sequenceKey) (*sequence.State, error) {
	if st, ok := cm.sequences[sk]; ok {
		return st, nil
	}
	k := seqStatesKeyOf(sk)
	sv, ok := cm.seqValues[k]
	if !ok {
		// One read and one index per producer, span and commit.
		var err error
		if sv, err = loadSeqValue(cm.tx, k); err != nil {
			return nil, fmt.Errorf("topic %s: %w", sk.partitionKey, err)
		}
		cm.seqValues[k] = sv
	}
	st, err := sv.lookup(sk.partition)
	if err != nil {
		return nil, fmt.Errorf("topic %s producer %d: %w", sk.partitionKey, sk.producerID, err)
	}
	cm.sequences[sk] = st
	return st, nil
}

// write stores everything the commit changed.
func (cm *committer) write() error {
	defer func() {
		for _, sv := range cm.seqValues {
			sv.release()
		}
	}()
	if len(cm.extents.Extents) == 0 {
		return nil // nothing accepted: the object stays unreferenced
	}
	// One value per producer and topic (seqstate.go).
	changed := make([]seqChange, 0, len(cm.changed))
	for sk, ts := range cm.changed {
		changed = append(changed, seqChange{key: seqStatesKeyOf(sk), entry: seqEntry{partition: sk.partition, state: cm.sequences[sk], lastTimestamp: ts}})
	}
	if err := writeSeqStates(cm.tx, cm.seqValues, changed); err != nil {
		return err
	}
	open := cm.tx.Bucket([]byte(bucketTxnOpen))
	for sk, first := range cm.newOpens {
		if err := open.Put(sk.key(), binary.BigEndian.AppendUint64(nil, uint64(first))); err != nil {
			return err
		}
	}
	byKey := make([]*metastore.Extent, len(cm.extents.Extents))
	for i := range cm.extents.Extents {
		byKey[i] = &cm.extents.Extents[i]
	}
	slices.SortFunc(byKey, func(a, b *metastore.Extent) int {
		return cmp.Or(comparePartitions(partitionKey{a.TopicID, a.Partition}, partitionKey{b.TopicID, b.Partition}), cmp.Compare(a.BaseOffset, b.BaseOffset))
	})
	// One record at the end of the extent log, not one key per extent
	// (extentlog.go).
	seq, err := appendLog(cm.tx, byKey)
	if err != nil {
		return err
	}
	for _, e := range byKey {
		ps, err := cm.partition(partitionKey{id: e.TopicID, partition: e.Partition})
		if err != nil {
			return err
		}
		if ps.pendingSeq == 0 {
			ps.pendingSeq = seq
		}
		ps.pendingCount++
		cm.moved(e.TopicID)
	}
	cm.held.logged = true // the log is trimmed when the states are written
	return applyRefs(cm.tx, metastore.RefChanges(nil, cm.extents.Extents), cm.now, true)
}

// folder folds partitions through the held topic states.
func (h *heldStates) folder(tx kv.Tx) *folder {
	return &folder{tx: tx, byRecord: h.byRecord, slabs: h.slabs, states: func(pk partitionKey) (*partitionState, error) {
		ps, err := h.partition(tx, pk)
		if ps != nil {
			h.moved(pk.id)
		}
		return ps, err
	}}
}

// foldNow folds partitions (sorted, no duplicates) outside a commit, for
// calls that change their extents in the extents bucket.
func foldNow(tx kv.Tx, pks []partitionKey) error {
	held := newHeldStates(foldLimits{})
	if err := held.folder(tx).foldPartitions(pks); err != nil {
		return err
	}
	return held.write(tx)
}

// comparePartitions orders partitions as their keys are: topic ID, then
// partition (never negative, so its unsigned encoding keeps the order).
func comparePartitions(a, b partitionKey) int {
	return cmp.Or(bytes.Compare(a.id[:], b.id[:]), cmp.Compare(a.partition, b.partition))
}
