package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// CommitSegment implements metastore.Store in one transaction:
//
//  1. lock the partitions rows of the commit, sorted by (topic_id, part),
//     which serialises commits per partition and, by the fixed order,
//     never deadlocks two commits;
//  2. read the producer states of its idempotent batches and, only if it
//     has transactional batches, share-lock their transactions rows
//     (sorted by transactional_id), in the same round trip as step 1;
//  3. decide every batch in memory (plan, below);
//  4. write the new high watermarks, producer states, open transaction
//     entries, extents and the object, and announce the commit
//     (pg_notify), in one round trip with COMMIT, of a few statements:
//     each table's rows go in one statement over arrays (unnest),
//     whatever the number of partitions.
//
// That is two round trips in all (inTwoTrips), the partitions locked for
// one of them.
//
// Offsets are unique and contiguous because step 1 makes every commit to a
// partition wait for the previous one, and steps 2–4 read what it wrote.
// A transactional batch is never written after its transaction's marker:
// EndTxn takes the same partition locks first and then the transaction's
// row for update, so it waits for this commit or this commit waits for it
// and then reads the ended record.
func (s *Store) CommitSegment(ctx context.Context, c metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	if err := metastore.ValidateCommit(c); err != nil {
		return nil, fmt.Errorf("commit segment %s: %w", c.Object, err)
	}
	results, err := s.commitGroup(ctx, []metastore.SegmentCommit{c})
	if err != nil {
		return nil, fmt.Errorf("commit segment %s: %w", c.Object, err)
	}
	return results[0], nil
}

// CommitSegments implements metastore.GroupSequencer: the segments'
// batches, in order, are one commit's as far as the steps above go (their
// partitions locked together in the one sorted order, so a group
// deadlocks with nobody either); each extent names its own segment's
// object, and one notice announces them all.
func (s *Store) CommitSegments(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if err := metastore.ValidateCommits(cs); err != nil {
		return nil, fmt.Errorf("commit %d segments: %w", len(cs), err)
	}
	results, err := s.commitGroup(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("commit %d segments (%s, …): %w", len(cs), cs[0].Object, err)
	}
	return results, nil
}

// commitGroup commits valid segments in one transaction.
func (s *Store) commitGroup(ctx context.Context, cs []metastore.SegmentCommit) ([][]metastore.BatchResult, error) {
	if !slices.ContainsFunc(cs, hasTransactional) {
		p, err := s.commitUnlocked(ctx, cs)
		if err != nil {
			return nil, err
		}
		s.logCommitted(p)
		if len(p.extents.Extents) > 0 {
			notice := metastore.NoticeFor(p.commit, p.results)
			s.announce(notice)
			if !s.relayed(notice) && s.notifier != nil {
				s.notifier.add(notice)
			}
		}
		return p.segmentResults(), nil
	}
	var p *plan
	// Steps 1 and 2 go with BEGIN in one round trip (the statements run
	// in order, so the producer rows are read with the partitions
	// locked), step 4 with COMMIT in the second.
	err := s.inTwoTrips(ctx, func(read *pgx.Batch) {
		p = newPlan(cs...)
		read.Queue(commitPlans)
		p.queueLockPartitions(read)
		p.queueLoadProducers(read)
	}, func() (*pgx.Batch, error) {
		p.decide()
		var write pgx.Batch
		if err := p.queue(&write, s.notify, s.origin); err != nil {
			return nil, err
		}
		return &write, nil
	})
	if err != nil {
		return nil, err
	}
	s.logCommitted(p)
	if len(p.extents.Extents) > 0 {
		s.announce(metastore.NoticeFor(p.commit, p.results))
	}
	return p.segmentResults(), nil
}

func (s *Store) logCommitted(p *plan) {
	if len(p.segments) == 1 {
		s.log.Debug("segment committed", "object", p.commit.Object, "batches", len(p.commit.Batches), "extents", len(p.extents.Extents))
		return
	}
	s.log.Debug("segments committed together", "objects", len(p.segments), "first", p.commit.Object,
		"batches", len(p.commit.Batches), "extents", len(p.extents.Extents))
}

// hasTransactional reports a commit with a transactional batch, which
// takes the two-trip path: its transactions are share-locked after its
// partitions (the lock order of docs/postgres.md).
func hasTransactional(c metastore.SegmentCommit) bool {
	for _, b := range c.Batches {
		if b.Transactional {
			return true
		}
	}
	return false
}

// partitionKey names one partition of one topic incarnation.
type partitionKey struct {
	id        metastore.TopicID
	partition int32
}

func comparePartitions(a, b partitionKey) int {
	return cmp.Or(bytes.Compare(a.id[:], b.id[:]), cmp.Compare(a.partition, b.partition))
}

type sequenceKey struct {
	partitionKey
	producerID int64
}

type partitionState struct {
	highWatermark  int64
	logStartOffset int64
	changed        bool
}

// plan is one commit inside its transaction: the state it read, and what
// it decided to write.
type plan struct {
	// commit holds the batches of every segment of the plan, in order;
	// segments are the segments themselves (one, unless a group is
	// committed together: CommitSegments), starts the index in
	// commit.Batches of each one's first batch.
	commit     metastore.SegmentCommit
	segments   []metastore.SegmentCommit
	starts     []int
	partitions map[partitionKey]*partitionState // missing: unknown partition
	sequences  map[sequenceKey]*sequence.State  // nil: no state yet
	changed    map[sequenceKey]int64            // sequences to write back, with their last batch's max timestamp
	txns       map[int64]metastore.Txn          // transactions by current producer id; missing: none
	opens      map[sequenceKey]int64            // first offset of each producer's first transactional batch per partition

	results []metastore.BatchResult
	extents *metastore.CommitExtents // CommittedAt left zero: the database's now()

	// For commitUnlocked: the batches each producer state accepted in
	// this commit, and the recent batches as stored (compared, as
	// written, before the state is replaced).
	accepted     map[sequenceKey]int
	storedRecent map[sequenceKey]string
	freshDup     []bool // by batch: a duplicate of a batch accepted in this commit
}

func newPlan(segs ...metastore.SegmentCommit) *plan {
	c := segs[0]
	starts := []int{0}
	if len(segs) > 1 {
		n := 0
		for _, sc := range segs {
			n += len(sc.Batches)
		}
		c = metastore.SegmentCommit{Object: segs[0].Object, Batches: make([]metastore.BatchCommit, 0, n)}
		starts = make([]int, len(segs))
		for i, sc := range segs {
			starts[i] = len(c.Batches)
			c.Batches = append(c.Batches, sc.Batches...)
		}
	}
	p := &plan{
		commit:       c,
		segments:     segs,
		starts:       starts,
		partitions:   make(map[partitionKey]*partitionState),
		sequences:    make(map[sequenceKey]*sequence.State),
		changed:      make(map[sequenceKey]int64),
		txns:         make(map[int64]metastore.Txn),
		opens:        make(map[sequenceKey]int64),
		accepted:     make(map[sequenceKey]int),
		storedRecent: make(map[sequenceKey]string),
		extents:      metastore.NewCommitExtents(c, time.Time{}),
	}
	p.extents.NextSegment(segs[0]) // the object and size of the first
	return p
}

// segmentResults are the results of each of the plan's segments.
func (p *plan) segmentResults() [][]metastore.BatchResult {
	out := make([][]metastore.BatchResult, len(p.segments))
	for i, start := range p.starts {
		end := len(p.results)
		if i+1 < len(p.starts) {
			end = p.starts[i+1]
		}
		out[i] = p.results[start:end:end]
	}
	return out
}

// queueLockPartitions queues the statement that locks and reads the
// commit's partitions in (topic_id, part) order. Partitions without a
// row do not exist.
func (p *plan) queueLockPartitions(batch *pgx.Batch) {
	keys := make([]partitionKey, 0, len(p.commit.Batches))
	for _, b := range p.commit.Batches {
		keys = append(keys, partitionKey{b.TopicID, b.Partition})
	}
	queueLockPartitions(batch, keys, p.partitions)
}

// queueLockPartitions queues the statement that locks partitions rows for
// update in (topic_id, part) order (sorted here: bytes.Compare on the ids
// is BYTEA's order), the one order every transaction that locks several
// takes, and reads their state into into. Partitions
// without a row do not exist and are left out.
func queueLockPartitions(batch *pgx.Batch, keys []partitionKey, into map[partitionKey]*partitionState) {
	keys = sortedPartitions(keys)
	if len(keys) == 0 {
		return
	}
	ids, parts := partitionArgs(keys)
	batch.Queue(partitionsByKey("topic_id, part, high_watermark, log_start_offset", "FOR UPDATE"),
		ids, parts).Query(scanPartitionStates(into))
}

// sortedPartitions returns keys sorted in the one order in which
// transactions lock several partitions rows, without repeats.
func sortedPartitions(keys []partitionKey) []partitionKey {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, comparePartitions)
	return slices.Compact(keys)
}

// partitionsByKey is a statement that reads columns of the partitions
// rows named by $1 (topic ids) and $2 (partition numbers), locked as lock
// says ("FOR UPDATE", "FOR SHARE" or nothing), in the order of the keys:
// one primary-key lookup per key, the locks taken in that order. A
// lateral subquery that locks, or has OFFSET 0, is not flattened into a
// join, so the planner cannot choose a scan of the whole table, which it
// did for a join or a row-value IN list on a table of a thousand
// partitions: it walks the chains of dead row versions that commits
// leave on exactly these rows (TestCommitScansNoTable).
func partitionsByKey(columns, lock string) string {
	if lock == "" {
		lock = "OFFSET 0"
	}
	return `SELECT p.* FROM unnest($1::BYTEA[], $2::INTEGER[]) WITH ORDINALITY AS k(topic_id, part, n)
		CROSS JOIN LATERAL (SELECT ` + columns + ` FROM partitions
			WHERE topic_id = k.topic_id AND part = k.part ` + lock + `) AS p
		ORDER BY k.n`
}

// queueLoadProducers queues the reads of the state of every producer
// with idempotent batches and, if the commit has transactional batches,
// of the transactions of their producers, share-locked so that no EndTxn
// or SaveTxn changes them before this commit ends. Queued after
// queueLockPartitions, they run with the partitions locked, so nobody
// else changes the producer rows meanwhile; rows of partitions that do
// not exist do not exist either.
func (p *plan) queueLoadProducers(batch *pgx.Batch) {
	var (
		keys  []sequenceKey
		txnal []int64
		seen  = make(map[sequenceKey]bool)
	)
	for _, b := range p.commit.Batches {
		sk := sequenceKey{partitionKey{b.TopicID, b.Partition}, b.ProducerID}
		if b.ProducerID < 0 {
			continue
		}
		if b.Transactional && !slices.Contains(txnal, b.ProducerID) {
			txnal = append(txnal, b.ProducerID)
		}
		if !seen[sk] {
			seen[sk] = true
			keys = append(keys, sk)
		}
	}
	if len(keys) == 0 {
		return
	}
	p.queueLoadProducerKeys(batch, keys)
	if len(txnal) > 0 {
		batch.Queue(`SELECT `+txnColumns+` FROM transactions WHERE producer_id = ANY($1)
			ORDER BY transactional_id FOR SHARE`, txnal).Query(func(rows pgx.Rows) error {
			txns, err := pgx.CollectRows(rows, scanTxn)
			for _, t := range txns {
				if _, dup := p.txns[t.ProducerID]; !dup {
					p.txns[t.ProducerID] = t
				}
			}
			return err
		})
	}
}

// queueLoadProducerKeys queues the read of the stored states of keys
// into p.sequences (missing: no state) and p.storedRecent.
func (p *plan) queueLoadProducerKeys(batch *pgx.Batch, keys []sequenceKey) {
	ids, parts, producers := make([][]byte, len(keys)), make([]int32, len(keys)), make([]int64, len(keys))
	for i, sk := range keys {
		ids[i], parts[i], producers[i] = sqlID(sk.id), sk.partition, sk.producerID
	}
	// One primary-key lookup per key (OFFSET 0 keeps the lateral
	// subquery from being flattened into a join, which the planner ran
	// as a scan of the whole table once it held a few thousand states):
	// this read runs outside the commit's transaction and its
	// commitPlans.
	batch.Queue(`
		SELECT s.topic_id, s.part, s.producer_id, s.epoch, s.last_seq, s.recent
		FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[]) AS k(topic_id, part, producer_id)
		CROSS JOIN LATERAL (
			SELECT topic_id, part, producer_id, epoch, last_seq, recent FROM producer_state
			WHERE topic_id = k.topic_id AND part = k.part AND producer_id = k.producer_id
			OFFSET 0) AS s`,
		ids, parts, producers).Query(func(rows pgx.Rows) error {
		var (
			id     []byte
			sk     sequenceKey
			st     sequence.State
			recent string
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &sk.partition, &sk.producerID, &st.Epoch, &st.LastSeq, &recent}, func() error {
			var err error
			if sk.id, err = topicID(id); err != nil {
				return err
			}
			state := sequence.State{Epoch: st.Epoch, LastSeq: st.LastSeq}
			if err := json.Unmarshal([]byte(recent), &state.Recent); err != nil {
				return fmt.Errorf("producer %d on %s: %w", sk.producerID, partitionName(sk.id, sk.partition), err)
			}
			p.sequences[sk] = &state
			p.storedRecent[sk] = recent
			return nil
		})
		return err
	})
}

// decide assigns offsets to the batches in order, as the embedded store
// does: rejected batches get an error, duplicates their first offset, and
// accepted batches extend the partition's open extent when their bytes
// follow it.
func (p *plan) decide() {
	p.results = make([]metastore.BatchResult, len(p.commit.Batches))
	p.freshDup = make([]bool, len(p.commit.Batches))
	seg := 0
	for i, b := range p.commit.Batches {
		// The next segment's extents name its object.
		for seg+1 < len(p.starts) && p.starts[seg+1] == i {
			seg++
			p.extents.NextSegment(p.segments[seg])
		}
		p.results[i] = p.add(b)
		p.freshDup[i] = p.results[i].Duplicate && p.acceptedHere(b)
	}
}

// acceptedHere reports whether a duplicate batch repeats one that this
// very commit accepted (a retry that reached the same segment), whose
// offset commitUnlocked knows only relative to the partition.
func (p *plan) acceptedHere(b metastore.BatchCommit) bool {
	sk := sequenceKey{partitionKey{b.TopicID, b.Partition}, b.ProducerID}
	st := p.sequences[sk]
	if st == nil {
		return false
	}
	last := sequence.Last(b.BaseSequence, b.OffsetCount)
	for _, r := range st.Recent[len(st.Recent)-min(p.accepted[sk], len(st.Recent)):] {
		if r.FirstSeq == b.BaseSequence && r.LastSeq == last {
			return true
		}
	}
	return false
}

func (p *plan) add(b metastore.BatchCommit) metastore.BatchResult {
	pk := partitionKey{b.TopicID, b.Partition}
	ps := p.partitions[pk]
	if ps == nil {
		return metastore.RejectedBatch(metastore.ErrUnknownTopicOrPartition)
	}
	var (
		sk                sequenceKey
		firstSeq, lastSeq int32
		reject            error
	)
	if b.ProducerID >= 0 {
		sk = sequenceKey{pk, b.ProducerID}
		firstSeq, lastSeq = b.BaseSequence, sequence.Last(b.BaseSequence, b.OffsetCount)
		dupBase, dup, err := p.sequences[sk].Check(b.ProducerEpoch, firstSeq, lastSeq)
		if err == nil && dup {
			// A duplicate is answered before the transaction check, as
			// Kafka does: it was written in its transaction. Its bytes
			// stay unreferenced, so the extent cannot run across them.
			p.extents.EndRun(b.TopicID, b.Partition)
			return metastore.BatchResult{BaseOffset: dupBase, Duplicate: true, LogStartOffset: ps.logStartOffset}
		}
		reject = err
	}
	if b.Transactional {
		t, found := p.txns[b.ProducerID]
		if err := metastore.TxnBatchError(t, found, b); err != nil {
			reject = err // before a sequence error, as in Kafka
		}
	}
	if reject != nil {
		p.extents.EndRun(b.TopicID, b.Partition)
		return metastore.RejectedBatch(reject)
	}
	base := ps.highWatermark
	ps.highWatermark += b.OffsetCount
	ps.changed = true
	if b.ProducerID >= 0 {
		p.sequences[sk] = p.sequences[sk].Accept(b.ProducerEpoch, firstSeq, lastSeq, base)
		p.changed[sk] = b.MaxTimestamp
		p.accepted[sk]++
	}
	if _, open := p.opens[sk]; b.Transactional && !open {
		p.opens[sk] = base // a stored entry wins: see queue
	}
	p.extents.Add(b, base)
	return metastore.BatchResult{BaseOffset: base, LogStartOffset: ps.logStartOffset}
}

// addMarker gives a transaction marker (EndTxn) the next offset of its
// partition, or rejects it if the partition does not exist.
func (p *plan) addMarker(b metastore.BatchCommit) metastore.BatchResult {
	ps := p.partitions[partitionKey{b.TopicID, b.Partition}]
	if ps == nil {
		return metastore.RejectedBatch(metastore.ErrUnknownTopicOrPartition)
	}
	base := ps.highWatermark
	ps.highWatermark += b.OffsetCount
	ps.changed = true
	p.extents.Add(b, base)
	return metastore.BatchResult{BaseOffset: base, LogStartOffset: ps.logStartOffset}
}

// queue queues the writes of what the commit changed, to go in one
// pipelined round trip, and the notification, which the database delivers
// at commit.
func (p *plan) queue(batch *pgx.Batch, notify bool, origin string) error {
	if len(p.extents.Extents) == 0 {
		return nil // nothing accepted: the object stays unreferenced
	}
	var pk struct {
		ids   [][]byte
		parts []int32
		hwms  []int64
	}
	for k, ps := range p.partitions {
		if ps.changed {
			pk.ids, pk.parts, pk.hwms = append(pk.ids, sqlID(k.id)), append(pk.parts, k.partition), append(pk.hwms, ps.highWatermark)
		}
	}
	if len(pk.ids) > 0 {
		batch.Queue(`
			UPDATE partitions AS p SET high_watermark = u.hwm
			FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[]) AS u(topic_id, part, hwm)
			WHERE p.topic_id = u.topic_id AND p.part = u.part`,
			pk.ids, pk.parts, pk.hwms)
	}
	if len(p.changed) > 0 {
		n := len(p.changed)
		var (
			ids       = make([][]byte, 0, n)
			parts     = make([]int32, 0, n)
			producers = make([]int64, 0, n)
			epochs    = make([]int16, 0, n)
			lastSeqs  = make([]int32, 0, n)
			recents   = make([]string, 0, n)
			stamps    = make([]int64, 0, n)
		)
		for sk, ts := range p.changed {
			st := p.sequences[sk]
			recent, err := json.Marshal(st.Recent)
			if err != nil {
				return err
			}
			ids, parts, producers = append(ids, sqlID(sk.id)), append(parts, sk.partition), append(producers, sk.producerID)
			epochs, lastSeqs = append(epochs, st.Epoch), append(lastSeqs, st.LastSeq)
			recents, stamps = append(recents, string(recent)), append(stamps, ts)
		}
		batch.Queue(`
			INSERT INTO producer_state (topic_id, part, producer_id, epoch, last_seq, recent, last_timestamp)
			SELECT * FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[], $4::SMALLINT[], $5::INTEGER[], $6::TEXT[], $7::BIGINT[])
			ON CONFLICT (topic_id, part, producer_id)
			DO UPDATE SET epoch = excluded.epoch, last_seq = excluded.last_seq, recent = excluded.recent,
				last_timestamp = excluded.last_timestamp`,
			ids, parts, producers, epochs, lastSeqs, recents, stamps)
	}
	// An entry already open stays where the transaction began.
	if len(p.opens) > 0 {
		var (
			ids       [][]byte
			parts     []int32
			producers []int64
			firsts    []int64
		)
		for sk, first := range p.opens {
			ids, parts, producers, firsts = append(ids, sqlID(sk.id)), append(parts, sk.partition), append(producers, sk.producerID), append(firsts, first)
		}
		batch.Queue(`
			INSERT INTO txn_open (topic_id, part, producer_id, first_offset)
			SELECT * FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[])
			ON CONFLICT (topic_id, part, producer_id) DO NOTHING`,
			ids, parts, producers, firsts)
	}
	n := len(p.extents.Extents)
	var (
		ids      = make([][]byte, 0, n)
		parts    = make([]int32, 0, n)
		bases    = make([]int64, 0, n)
		ends     = make([]int64, 0, n)
		objects  = make([]string, 0, n)
		sizes    = make([]int64, 0, n)
		offsets  = make([]int64, 0, n)
		lengths  = make([]int64, 0, n)
		maxTimes = make([]int64, 0, n)
	)
	for _, e := range p.extents.Extents {
		ids, parts, bases, ends = append(ids, sqlID(e.TopicID)), append(parts, e.Partition), append(bases, e.BaseOffset), append(ends, e.EndOffset)
		objects, sizes = append(objects, e.Object), append(sizes, e.ObjectSize)
		offsets, lengths, maxTimes = append(offsets, e.ByteOffset), append(lengths, e.ByteLength), append(maxTimes, e.MaxTimestamp)
	}
	batch.Queue(`
		INSERT INTO extents (topic_id, part, base_offset, end_offset, object, object_size,
			byte_offset, byte_length, max_timestamp, committed_at)
		SELECT topic_id, part, base_offset, end_offset, object, object_size,
			byte_offset, byte_length, max_timestamp, now()
		FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[],
			$7::BIGINT[], $8::BIGINT[], $9::BIGINT[])
			AS u(topic_id, part, base_offset, end_offset, object, object_size, byte_offset, byte_length, max_timestamp)`,
		ids, parts, bases, ends, objects, sizes, offsets, lengths, maxTimes)
	// The object is new (keys are never reused), so this locks no row
	// another transaction holds; a reused key would gain references and
	// leave the cleaner's list.
	refs := make(map[string]int, len(p.segments))
	for _, e := range p.extents.Extents {
		refs[e.Object]++
	}
	for _, sc := range p.segments {
		if refs[sc.Object] == 0 {
			continue // nothing of it accepted: it stays unreferenced
		}
		batch.Queue(`
			INSERT INTO objects (object, size, refs) VALUES ($1, $2, $3)
			ON CONFLICT (object) DO UPDATE SET refs = objects.refs + excluded.refs`,
			sc.Object, sc.Size, refs[sc.Object])
		batch.Queue(`DELETE FROM unreferenced_objects WHERE object = $1`, sc.Object)
	}
	if notify {
		batch.Queue(`SELECT pg_notify($1, $2)`, notifyChannel,
			encodeNotice(origin, metastore.NoticeFor(p.commit, p.results)))
	}
	return nil
}

// scanPartitionStates reads rows of (topic_id, part, high_watermark,
// log_start_offset) into into.
func scanPartitionStates(into map[partitionKey]*partitionState) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var (
			id []byte
			k  partitionKey
			ps partitionState
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &k.partition, &ps.highWatermark, &ps.logStartOffset}, func() error {
			var err error
			if k.id, err = topicID(id); err != nil {
				return err
			}
			state := ps
			into[k] = &state
			return nil
		})
		return err
	}
}
