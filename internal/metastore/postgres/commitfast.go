package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// The commit of a segment without transactional batches holds its
// partition locks only while the database runs its writes, never across
// a round trip to the agent (commitUnlocked):
//
//  1. take the producer states of its idempotent batches from the
//     store's cache of the states its own commits wrote (producerCache)
//     or read those it lacks, outside any transaction and without locks
//     (no round trip at all when it lacks none);
//  2. decide every batch in memory as CommitSegment does, but with
//     offsets relative to each partition's high watermark, which the
//     agent does not know yet;
//  3. in one round trip and one implicit transaction: the plan settings
//     (commitPlans) and one statement (queueRelativeCommit) that locks
//     the partitions (the one sorted order of docs/postgres.md), inserts
//     the extents and writes the producer states with the offsets it
//     computes from the locked high watermarks, and moves the high
//     watermarks.
//
// The producer states of step 1 may be stale (the same producer
// committing through another agent, which only a client's retry after a
// failover does, or a deleted topic). A batch that a cached state refuses
// or finds a duplicate is decided again from the stored state, since
// refusals write nothing that could be checked; and step 3 writes a
// state only where the stored one is still the one read, and fails the
// transaction otherwise (a division by zero, below; a unique violation
// for a state that appeared meanwhile), and the commit runs again from
// step 1. Partitions deleted meanwhile are simply missing from step 3's
// lock: their rows join with nothing and their batches are answered
// UNKNOWN_TOPIC_OR_PARTITION.
//
// A commit's partitions were locked for a round trip to the agent and
// back in the two-trip commit (inTwoTrips), which under load is what the
// commits queued on a hot partition waited for; here the wait is the
// database's own work.

// conflictDivisor is the SQLSTATE (division_by_zero) of the statement
// that finds a producer state changed since it was read.
const conflictDivisor = "22012"

// producerStatePKey is the primary key of producer_state, which a state
// inserted concurrently violates.
const producerStatePKey = "producer_state_pkey"

// commitUnlocked commits cs, which have no transactional batch, as above,
// in one transaction.
func (s *Store) commitUnlocked(ctx context.Context, cs []metastore.SegmentCommit) (*plan, error) {
	var (
		p        *plan
		conflict bool // a previous attempt found a producer state changed: read them all afresh
	)
	err := s.run(ctx, func(ctx context.Context) error {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		var stored map[sequenceKey]*sequence.State
		for {
			p = newPlan(cs...)
			// Every partition is assumed to exist at high watermark 0,
			// so that decide assigns offsets relative to the
			// partition's watermark; the lock in step 3 says which
			// exist.
			for _, b := range p.commit.Batches {
				pk := partitionKey{b.TopicID, b.Partition}
				if p.partitions[pk] == nil {
					p.partitions[pk] = &partitionState{}
				}
			}
			cached, err := s.loadProducers(ctx, conn, p, conflict)
			if err != nil {
				return err
			}
			stored = make(map[sequenceKey]*sequence.State, len(p.sequences))
			for sk, st := range p.sequences {
				stored[sk] = st
			}
			p.decide()
			// A batch refused or found a duplicate by a cached state is
			// decided again from the stored one: only what is written
			// is checked against the database.
			if !cached || !p.refusedAny() {
				break
			}
			conflict = true
			s.producerConflicts.Add(1)
		}
		locked := make(map[partitionKey]*partitionState, len(p.partitions))
		keys := make([]partitionKey, 0, len(p.partitions))
		for pk := range p.partitions {
			keys = append(keys, pk)
		}
		if len(p.extents.Extents) == 0 {
			// Nothing accepted, nothing to write: the answers need only
			// the partitions' log start offsets, and which exist.
			var read pgx.Batch
			queueReadPartitions(&read, keys, locked)
			if err := conn.SendBatch(ctx, &read).Close(); err != nil {
				return err
			}
			p.settle(locked)
			return nil
		}
		// No BEGIN and no COMMIT: a batch without them runs as one
		// implicit transaction, committed when it ends and rolled back
		// by the database if any statement fails.
		var write pgx.Batch
		write.Queue(commitPlans)
		p.queueRelativeCommit(&write, keys, locked, stored)
		if err := conn.SendBatch(ctx, &write).Close(); err != nil {
			// Whatever happened, the cached states of this commit's
			// producers may be wrong now.
			s.producers.forget(p.changed)
			err = conflictOrErr(err)
			if errors.Is(err, errRetry) {
				conflict = true
				s.producerConflicts.Add(1)
			}
			return err
		}
		p.settle(locked)
		s.producers.remember(p, locked)
		return nil
	})
	return p, err
}

// queueReadPartitions queues the read of partitions' states, without
// locks, into into; partitions without a row are left out.
func queueReadPartitions(batch *pgx.Batch, keys []partitionKey, into map[partitionKey]*partitionState) {
	ids, parts := partitionArgs(keys)
	batch.Queue(partitionsByKey("topic_id, part, high_watermark, log_start_offset", ""),
		ids, parts).Query(scanPartitionStates(into))
}

// conflictOrErr turns the errors by which the writes report a producer
// state changed by a concurrent commit into errRetry.
func conflictOrErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == conflictDivisor ||
		pgErr.Code == "23505" && pgErr.ConstraintName == producerStatePKey) {
		return fmt.Errorf("%w: producer state: %v", errRetry, err)
	}
	return err
}

// loadProducers fills in the states of the commit's idempotent batches
// from the store's cache and reads, without locks, those it lacks (all of
// them when afresh); cached reports states taken from the cache.
func (s *Store) loadProducers(ctx context.Context, conn *pgxpool.Conn, p *plan, afresh bool) (cached bool, err error) {
	var missing []sequenceKey
	seen := make(map[sequenceKey]bool)
	for _, b := range p.commit.Batches {
		sk := sequenceKey{partitionKey{b.TopicID, b.Partition}, b.ProducerID}
		if b.ProducerID < 0 || seen[sk] {
			continue
		}
		seen[sk] = true
		if !afresh && s.producers.lookup(sk, p) {
			cached = true
		} else {
			missing = append(missing, sk)
		}
	}
	if len(missing) == 0 {
		return cached, nil
	}
	var read pgx.Batch
	p.queueLoadProducerKeys(&read, missing)
	return cached, conn.SendBatch(ctx, &read).Close()
}

// refusedAny reports an idempotent batch that decide refused or found a
// duplicate.
func (p *plan) refusedAny() bool {
	for i, b := range p.commit.Batches {
		if b.ProducerID >= 0 && (p.results[i].Err != nil || p.results[i].Duplicate) {
			return true
		}
	}
	return false
}

// offsetHoles is how many new batches a written producer state can hold
// whose offsets the database fills in: all of them, since a state keeps at
// most sequence.RecentBatches.
const offsetHoles = sequence.RecentBatches

// hole is the placeholder of the i-th relative offset in a state's
// encoded recent batches; the database replaces it with the offset.
func hole(i int) string { return "@" + strconv.Itoa(i) + "@" }

// encodeRecentTemplate writes a state's recent batches as the JSON the
// other commit path writes, except that the base offsets of the last
// fresh ones (accepted in this commit, relative to the partition's high
// watermark) are holes for the database to fill in; rel lists them.
func encodeRecentTemplate(recent []sequence.Batch, fresh int) (template string, rel [offsetHoles]int64) {
	var b strings.Builder
	b.WriteByte('[')
	first := len(recent) - fresh
	for i, r := range recent {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"first_seq":`)
		b.WriteString(strconv.FormatInt(int64(r.FirstSeq), 10))
		b.WriteString(`,"last_seq":`)
		b.WriteString(strconv.FormatInt(int64(r.LastSeq), 10))
		b.WriteString(`,"base_offset":`)
		if i >= first {
			b.WriteString(hole(i - first))
			rel[i-first] = r.BaseOffset
		} else {
			b.WriteString(strconv.FormatInt(r.BaseOffset, 10))
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.String(), rel
}

// queueRelativeCommit queues the commit's one statement: it locks the
// partitions of keys in their sorted order and reads their states into
// locked, and writes the commit with offsets relative to the locked high
// watermarks, which it reads from the rows it locked (the newest
// versions, whatever the statement's snapshot). stored are the producer
// states read before deciding. One statement instead of one per table
// costs the database one executor start and one result instead of five,
// and holds the locks for one statement's work.
//
// Its parts are data-modifying WITH queries, which PostgreSQL runs
// against one snapshot and whose effects they cannot see of each other;
// so every part reads the partitions' state from locked, none from the
// table, and the high watermarks are moved from locked's values. A row
// changed since the snapshot (by a commit this one waited for) is
// updated in its newest version, its conditions checked again
// (READ COMMITTED's recheck): a producer state no longer as read is then
// left alone, and the count of changed states no longer matches, which
// fails the statement with a division by zero (conflictDivisor); a state
// inserted meanwhile fails it with a unique violation.
func (p *plan) queueRelativeCommit(batch *pgx.Batch, keys []partitionKey, locked map[partitionKey]*partitionState, stored map[sequenceKey]*sequence.State) {
	keys = sortedPartitions(keys)
	ids, parts := partitionArgs(keys)
	deltas := make([]int64, len(keys))
	for i, k := range keys {
		if ps := p.partitions[k]; ps != nil && ps.changed {
			deltas[i] = ps.highWatermark
		}
	}

	n := len(p.extents.Extents)
	var (
		eIDs     = make([][]byte, 0, n)
		eParts   = make([]int32, 0, n)
		bases    = make([]int64, 0, n)
		ends     = make([]int64, 0, n)
		offsets  = make([]int64, 0, n)
		lengths  = make([]int64, 0, n)
		maxTimes = make([]int64, 0, n)
		eObjects = make([]int32, 0, n) // 1-based, in objects
		objects  = make([]string, len(p.segments))
		sizes    = make([]int64, len(p.segments))
		objectOf = make(map[string]int32, len(p.segments))
	)
	for i, sc := range p.segments {
		objects[i], sizes[i], objectOf[sc.Object] = sc.Object, sc.Size, int32(i+1)
	}
	for _, e := range p.extents.Extents {
		eIDs, eParts, bases, ends = append(eIDs, sqlID(e.TopicID)), append(eParts, e.Partition), append(bases, e.BaseOffset), append(ends, e.EndOffset)
		offsets, lengths, maxTimes = append(offsets, e.ByteOffset), append(lengths, e.ByteLength), append(maxTimes, e.MaxTimestamp)
		eObjects = append(eObjects, objectOf[e.Object])
	}

	// Producer states: those read are updated only if still as read,
	// new ones inserted.
	type stateRows struct {
		ids         [][]byte
		parts       []int32
		producers   []int64
		epochs      []int16
		lastSeqs    []int32
		recents     []string
		rel         [offsetHoles][]int64
		stamps      []int64
		oldEpochs   []int16
		oldLastSeqs []int32
		oldRecents  []string
	}
	var upd, ins stateRows
	for sk, ts := range p.changed {
		st := p.sequences[sk]
		old := stored[sk]
		rows := &ins
		if old != nil {
			rows = &upd
		}
		// The batches this commit accepted are the last of Recent (at
		// most all of them).
		fresh := min(p.accepted[sk], len(st.Recent))
		tmpl, rel := encodeRecentTemplate(st.Recent, fresh)
		rows.ids, rows.parts, rows.producers = append(rows.ids, sqlID(sk.id)), append(rows.parts, sk.partition), append(rows.producers, sk.producerID)
		rows.epochs, rows.lastSeqs = append(rows.epochs, st.Epoch), append(rows.lastSeqs, st.LastSeq)
		rows.recents, rows.stamps = append(rows.recents, tmpl), append(rows.stamps, ts)
		for i := range rel {
			rows.rel[i] = append(rows.rel[i], rel[i])
		}
		if old != nil {
			rows.oldEpochs, rows.oldLastSeqs = append(rows.oldEpochs, old.Epoch), append(rows.oldLastSeqs, old.LastSeq)
			rows.oldRecents = append(rows.oldRecents, p.storedRecent[sk])
		}
	}

	batch.Queue(relativeCommit,
		ids, parts, deltas,
		eIDs, eParts, bases, ends, offsets, lengths, maxTimes, objects, sizes,
		upd.ids, upd.parts, upd.producers, upd.epochs, upd.lastSeqs, upd.recents, upd.stamps,
		upd.oldEpochs, upd.oldLastSeqs, upd.oldRecents,
		upd.rel[0], upd.rel[1], upd.rel[2], upd.rel[3], upd.rel[4], len(upd.ids),
		ins.ids, ins.parts, ins.producers, ins.epochs, ins.lastSeqs, ins.recents, ins.stamps,
		ins.rel[0], ins.rel[1], ins.rel[2], ins.rel[3], ins.rel[4],
		eObjects,
	).Query(scanPartitionStates(locked))
}

// filledRecent is the SQL of a state's recent batches (u.recent) with
// their holes filled in from the locked high watermark (l.high_watermark
// plus u.r0 … u.r4): offsetHoles replace calls.
var filledRecent = func() string {
	filled := "u.recent"
	for i := range offsetHoles {
		filled = fmt.Sprintf("replace(%s, '%s', (l.high_watermark + u.r%d)::TEXT)", filled, hole(i), i)
	}
	return filled
}()

// relativeCommit is queueRelativeCommit's statement. $1–$3: the sorted
// partitions and how far each high watermark moves; $4–$10 and $41: the
// extents (offsets relative to the high watermark, and the index of their
// object in $11); $11–$12: the objects and their sizes;
// $13–$28: the producer states to update, with the state each must still
// have, and their count; $29–$40: the producer states to insert. Its rows
// are the locked partitions' states as they were locked.
var relativeCommit = `
	WITH locked AS MATERIALIZED (
		SELECT p.topic_id, p.part, p.high_watermark, p.log_start_offset, k.delta
		FROM unnest($1::BYTEA[], $2::INTEGER[], $3::BIGINT[]) WITH ORDINALITY AS k(topic_id, part, delta, n)
		CROSS JOIN LATERAL (SELECT topic_id, part, high_watermark, log_start_offset FROM partitions
			WHERE topic_id = k.topic_id AND part = k.part FOR UPDATE) AS p
		ORDER BY k.n),
	moved AS (
		UPDATE partitions AS p SET high_watermark = l.high_watermark + l.delta
		FROM locked AS l
		WHERE p.topic_id = l.topic_id AND p.part = l.part AND l.delta <> 0),
	added AS (
		INSERT INTO extents (topic_id, part, base_offset, end_offset, object, object_size,
			byte_offset, byte_length, max_timestamp, committed_at)
		SELECT u.topic_id, u.part, l.high_watermark + u.base_offset, l.high_watermark + u.end_offset,
			($11::TEXT[])[u.obj], ($12::BIGINT[])[u.obj],
			u.byte_offset, u.byte_length, u.max_timestamp, now()
		FROM unnest($4::BYTEA[], $5::INTEGER[], $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::BIGINT[], $41::INTEGER[])
			AS u(topic_id, part, base_offset, end_offset, byte_offset, byte_length, max_timestamp, obj)
		JOIN locked AS l ON l.topic_id = u.topic_id AND l.part = u.part
		RETURNING object, object_size),
	referenced AS (
		INSERT INTO objects (object, size, refs)
		SELECT object, object_size, count(*) FROM added GROUP BY object, object_size
		ON CONFLICT (object) DO UPDATE SET refs = objects.refs + excluded.refs),
	claimed AS (
		DELETE FROM unreferenced_objects AS x WHERE x.object = ANY($11::TEXT[])
			AND (EXISTS (SELECT 1 FROM added AS a WHERE a.object = x.object)
				OR EXISTS (SELECT 1 FROM objects AS o WHERE o.object = x.object AND o.refs > 0))),
	changed AS (
		UPDATE producer_state AS s SET epoch = u.epoch, last_seq = u.last_seq, recent = ` + filledRecent + `,
			last_timestamp = u.stamp
		FROM unnest($13::BYTEA[], $14::INTEGER[], $15::BIGINT[], $16::SMALLINT[], $17::INTEGER[], $18::TEXT[], $19::BIGINT[],
			$20::SMALLINT[], $21::INTEGER[], $22::TEXT[],
			$23::BIGINT[], $24::BIGINT[], $25::BIGINT[], $26::BIGINT[], $27::BIGINT[])
			AS u(topic_id, part, producer_id, epoch, last_seq, recent, stamp, old_epoch, old_last_seq, old_recent,
				r0, r1, r2, r3, r4)
		JOIN locked AS l ON l.topic_id = u.topic_id AND l.part = u.part
		WHERE s.topic_id = u.topic_id AND s.part = u.part AND s.producer_id = u.producer_id
			AND s.epoch = u.old_epoch AND s.last_seq = u.old_last_seq AND s.recent = u.old_recent
		RETURNING 1),
	inserted AS (
		INSERT INTO producer_state (topic_id, part, producer_id, epoch, last_seq, recent, last_timestamp)
		SELECT u.topic_id, u.part, u.producer_id, u.epoch, u.last_seq, ` + filledRecent + `, u.stamp
		FROM unnest($29::BYTEA[], $30::INTEGER[], $31::BIGINT[], $32::SMALLINT[], $33::INTEGER[], $34::TEXT[], $35::BIGINT[],
			$36::BIGINT[], $37::BIGINT[], $38::BIGINT[], $39::BIGINT[], $40::BIGINT[])
			AS u(topic_id, part, producer_id, epoch, last_seq, recent, stamp, r0, r1, r2, r3, r4)
		JOIN locked AS l ON l.topic_id = u.topic_id AND l.part = u.part)
	SELECT l.topic_id, l.part, l.high_watermark, l.log_start_offset
	FROM locked AS l
	WHERE 1 / ((SELECT count(*) FROM changed) = $28)::INTEGER = 1`

// settle turns the relative offsets of the decided results into the
// offsets the database gave them, from the partitions' high watermarks
// when they were locked; batches of partitions that were not there are
// refused.
func (p *plan) settle(locked map[partitionKey]*partitionState) {
	for i, b := range p.commit.Batches {
		r := &p.results[i]
		ps := locked[partitionKey{b.TopicID, b.Partition}]
		switch {
		case ps == nil:
			*r = metastore.RejectedBatch(metastore.ErrUnknownTopicOrPartition)
		case r.Err != nil:
		case r.Duplicate:
			if p.freshDup[i] {
				r.BaseOffset += ps.highWatermark
			}
			r.LogStartOffset = ps.logStartOffset
		default:
			r.BaseOffset += ps.highWatermark
			r.LogStartOffset = ps.logStartOffset
		}
	}
}

// maxCachedProducers bounds the producer states a store keeps between its
// commits (about 150 bytes each, so about 10 MB): an agent's producers
// times the partitions each writes through it.
const maxCachedProducers = 1 << 16

// producerCache keeps the producer states this store's commits wrote, so
// that the next commit of the same producer and partition skips step 1's
// read. A cached state is only a guess: step 3 writes a state only where
// the stored one is still the one expected, so a stale entry (the
// producer committing through another agent, a deleted topic) fails the
// transaction and the commit runs again with every state read afresh.
type producerCache struct {
	mu sync.Mutex
	m  map[sequenceKey]cachedProducer
}

// cachedProducer is a state as this store wrote it; its recent batches
// were stored as encodeRecentTemplate(state.Recent, 0) writes them.
type cachedProducer struct {
	state  *sequence.State // not modified once cached
	recent string          // encodeRecentTemplate(state.Recent, 0)
}

// lookup fills in p's state of sk from the cache, reporting whether it
// was there.
func (c *producerCache) lookup(sk sequenceKey, p *plan) bool {
	c.mu.Lock()
	e, ok := c.m[sk]
	c.mu.Unlock()
	if ok {
		p.sequences[sk] = e.state
		p.storedRecent[sk] = e.recent
	}
	return ok
}

// remember caches the states a successful commit wrote, as written: the
// recent batches with their offsets filled in from the locked high
// watermarks. The states of partitions that no longer exist are
// forgotten.
func (c *producerCache) remember(p *plan, locked map[partitionKey]*partitionState) {
	type entry struct {
		sk sequenceKey
		e  cachedProducer // without a state: the partition is gone, forget sk
	}
	entries := make([]entry, 0, len(p.changed))
	for sk := range p.changed {
		ps := locked[sk.partitionKey]
		if ps == nil {
			entries = append(entries, entry{sk: sk})
			continue
		}
		st := p.sequences[sk]
		fresh := min(p.accepted[sk], len(st.Recent))
		abs := &sequence.State{Epoch: st.Epoch, LastSeq: st.LastSeq, Recent: make([]sequence.Batch, len(st.Recent))}
		copy(abs.Recent, st.Recent)
		for i := len(abs.Recent) - fresh; i < len(abs.Recent); i++ {
			abs.Recent[i].BaseOffset += ps.highWatermark
		}
		recent, _ := encodeRecentTemplate(abs.Recent, 0)
		entries = append(entries, entry{sk: sk, e: cachedProducer{state: abs, recent: recent}})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[sequenceKey]cachedProducer)
	}
	for _, en := range entries {
		if en.e.state == nil {
			delete(c.m, en.sk)
			continue
		}
		if len(c.m) >= maxCachedProducers {
			// Drop about an eighth, at random (map order).
			n := maxCachedProducers / 8
			for k := range c.m {
				delete(c.m, k)
				if n--; n == 0 {
					break
				}
			}
		}
		c.m[en.sk] = en.e
	}
}

// forget drops the states of keys.
func (c *producerCache) forget(keys map[sequenceKey]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for sk := range keys {
		delete(c.m, sk)
	}
}
