package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// The seqstates bucket holds idempotent producers' sequence state, one
// value per topic incarnation, producer and span of seqStatesSpan
// partitions (span = partition / seqStatesSpan), holding the producer's
// state on every partition of the span it has written to:
//
//	seqstates  topicID(16) producerID(8) span(4) → version(1)=1 entry…
//	entry      length(1) body                          (length = len(body) <= maxSeqEntryBody)
//	body       partition(uvarint) epoch(2) lastSeq(uvarint) lastTimestamp(varint) n(1) n × batch
//	batch      firstSeq(uvarint) span(uvarint) baseOffset(uvarint)
//
// Entries are in increasing partition order, one per partition. n is at
// most sequence.RecentBatches. The first batch holds its first sequence
// and base offset as they are; each later one holds them as the
// difference from the batch before (its first sequence less the previous
// batch's last sequence and one, its base offset less the previous
// batch's), and every batch its last sequence as the difference from its
// first (span). Differences are taken modulo 2^32 for sequences and
// 2^64 for offsets, so every state round-trips, and a producer's usual
// batches (consecutive sequences, nearby offsets) take a few bytes each:
// about 35 bytes a partition with five recent batches, against 123 bytes
// and a key of 28 for the layout before.
//
// A commit reads a producer's value once per span it touches, finds the
// partitions it needs by their length bytes (no decoding of the others),
// and writes the value once: a key per producer and span of partitions
// instead of one per producer and partition, so a commit touching
// thousands of partitions writes a sixteenth of the keys; and a commit
// touching a few partitions of a producer that writes to many rewrites
// a few values of at most 16 entries (about 600 bytes), not every entry
// the producer has in the topic (35 KB at 1,000 partitions, rewritten
// at every commit, when the value was per topic: partitions format 3).
// The untouched entries of a span are copied as they are.
//
// Files of partitions format 3 have one value per topic and producer,
// keyed topicID(16) producerID(8), the same entries; files written
// before that have one key per partition and producer in the sequences
// bucket, topicID(16) partition(4) producerID(8) → encodeSequence's
// value (or JSON, older still). Open moves both here (upgradeSeqStates),
// at every open, so that what an older binary wrote to a converted file
// is taken in too. The guard against a binary of a layout before is the
// partitions format (partstate.go): such a binary refuses a file whose
// format is not one it reads, and those older still fail on the
// partitions bucket's guard keys.
const (
	seqStatesSpan    = 16
	seqStatesVersion = 1
	// maxSeqEntryBody: partition 5, epoch 2, lastSeq 5, lastTimestamp
	// 10, n 1, and per batch 5 + 5 + 10.
	maxSeqEntryBody = 5 + 2 + 5 + binary.MaxVarintLen64 + 1 + sequence.RecentBatches*(5+5+binary.MaxVarintLen64)
	minSeqEntryBody = 1 + 2 + 1 + 1 + 1
)

// seqStatesKey names one producer's value of one span of partitions of
// one topic incarnation.
type seqStatesKey struct {
	id         metastore.TopicID
	producerID int64
	span       int32 // partition / seqStatesSpan
}

// seqStatesKeyOf is the key of the value that holds sk's state.
func seqStatesKeyOf(sk sequenceKey) seqStatesKey {
	return seqStatesKey{id: sk.id, producerID: sk.producerID, span: sk.partition / seqStatesSpan}
}

// holds reports whether partition belongs in k's value.
func (k seqStatesKey) holds(partition int32) bool { return partition/seqStatesSpan == k.span }

// seqStatesKeyLen is the length of a seqStatesKey's bytes.
const seqStatesKeyLen = len(metastore.TopicID{}) + 8 + 4

func (k seqStatesKey) bytes() []byte { return k.appendTo(make([]byte, 0, seqStatesKeyLen)) }

func (k seqStatesKey) appendTo(b []byte) []byte {
	b = append(b, k.id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(k.producerID))
	return binary.BigEndian.AppendUint32(b, uint32(k.span))
}

func compareSeqStatesKeys(a, b seqStatesKey) int {
	return cmp.Or(bytes.Compare(a.id[:], b.id[:]), cmp.Compare(a.producerID, b.producerID), cmp.Compare(a.span, b.span))
}

// decodeSeqStatesKey splits a seqstates key.
func decodeSeqStatesKey(k []byte) (seqStatesKey, error) {
	var sk seqStatesKey
	if len(k) != seqStatesKeyLen || binary.BigEndian.Uint64(k[16:]) > math.MaxInt64 || binary.BigEndian.Uint32(k[24:]) > math.MaxInt32/seqStatesSpan {
		return sk, fmt.Errorf("producer sequence states key %x: %w", k, errCorrupt)
	}
	copy(sk.id[:], k)
	sk.producerID = int64(binary.BigEndian.Uint64(k[16:]))
	sk.span = int32(binary.BigEndian.Uint32(k[24:]))
	return sk, nil
}

// seqEntry is one partition's sequence state and its last batch's max
// timestamp.
type seqEntry struct {
	partition     int32
	state         *sequence.State
	lastTimestamp int64
}

// appendSeqEntry appends one entry, its length byte first.
func appendSeqEntry(v []byte, e seqEntry) ([]byte, error) {
	st := e.state
	if e.partition < 0 || st == nil || len(st.Recent) > sequence.RecentBatches {
		return nil, fmt.Errorf("producer sequence state of partition %d: nothing or too many recent batches", e.partition)
	}
	at := len(v)
	v = append(v, 0)
	v = binary.AppendUvarint(v, uint64(e.partition))
	v = binary.BigEndian.AppendUint16(v, uint16(st.Epoch))
	v = binary.AppendUvarint(v, uint64(uint32(st.LastSeq)))
	v = binary.AppendVarint(v, e.lastTimestamp)
	v = append(v, byte(len(st.Recent)))
	var prevLast uint32
	var prevBase uint64
	for i, b := range st.Recent {
		first, base := uint32(b.FirstSeq), uint64(b.BaseOffset)
		if i > 0 {
			first -= prevLast + 1
			base -= prevBase
		}
		v = binary.AppendUvarint(v, uint64(first))
		v = binary.AppendUvarint(v, uint64(uint32(b.LastSeq)-uint32(b.FirstSeq)))
		v = binary.AppendUvarint(v, base)
		prevLast, prevBase = uint32(b.LastSeq), uint64(b.BaseOffset)
	}
	v[at] = byte(len(v) - at - 1)
	return v, nil
}

// seqBody reads an entry's body: every varint must fit what it encodes
// and the body must hold nothing after the last batch. The file is input
// like any other.
type seqBody struct {
	b   []byte
	err bool
}

func (r *seqBody) uvarint(limit uint64) uint64 {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > limit {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *seqBody) varint() int64 {
	n, k := binary.Varint(r.b)
	if k <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *seqBody) fixed(n int) []byte {
	if len(r.b) < n {
		r.err, r.b = true, nil
		return make([]byte, n)
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// entryPartition reads the partition at the start of a body.
func entryPartition(body []byte) (int32, bool) {
	r := seqBody{b: body}
	p := r.uvarint(math.MaxInt32)
	return int32(p), !r.err
}

// decodeSeqEntry decodes one entry's body.
func decodeSeqEntry(body []byte) (seqEntry, error) {
	r := seqBody{b: body}
	e := seqEntry{partition: int32(r.uvarint(math.MaxInt32))}
	st := &sequence.State{Epoch: int16(binary.BigEndian.Uint16(r.fixed(2)))}
	st.LastSeq = int32(uint32(r.uvarint(math.MaxUint32)))
	e.lastTimestamp = r.varint()
	n := int(r.fixed(1)[0])
	if r.err || n > sequence.RecentBatches {
		return seqEntry{}, fmt.Errorf("producer sequence state: %w: entry of %d bytes", errCorrupt, len(body))
	}
	if n > 0 {
		st.Recent = make([]sequence.Batch, n)
	}
	var prevLast uint32
	var prevBase uint64
	for i := range st.Recent {
		first := uint32(r.uvarint(math.MaxUint32))
		span := uint32(r.uvarint(math.MaxUint32))
		base := r.uvarint(math.MaxUint64)
		if i > 0 {
			first += prevLast + 1
			base += prevBase
		}
		last := first + span
		st.Recent[i] = sequence.Batch{FirstSeq: int32(first), LastSeq: int32(last), BaseOffset: int64(base)}
		prevLast, prevBase = last, base
	}
	if r.err || len(r.b) != 0 {
		return seqEntry{}, fmt.Errorf("producer sequence state of partition %d: %w: entry of %d bytes", e.partition, errCorrupt, len(body))
	}
	e.state = st
	return e, nil
}

// seqRef is where one entry's body lies in a value.
type seqRef struct {
	partition int32
	at, end   int
}

// walkSeqStates calls fn with every entry's partition and body, checking
// the framing (the version, every length against the bytes left and the
// bounds of a body) and the partition order, but not the bodies past
// their partition.
func walkSeqStates(v []byte, fn func(p int32, at, end int) bool) error {
	if len(v) < 1 || v[0] != seqStatesVersion {
		return fmt.Errorf("producer sequence states: %w: %d bytes", errCorrupt, len(v))
	}
	prev := int32(-1)
	for at := 1; at < len(v); {
		n := int(v[at])
		if n < minSeqEntryBody || n > maxSeqEntryBody || n > len(v)-at-1 {
			return fmt.Errorf("producer sequence states: %w: entry of %d bytes at %d of %d", errCorrupt, n, at, len(v))
		}
		p, ok := entryPartition(v[at+1 : at+1+n])
		if !ok || p <= prev {
			return fmt.Errorf("producer sequence states: %w: partition out of order at %d", errCorrupt, at)
		}
		prev = p
		if !fn(p, at+1, at+1+n) {
			return nil
		}
		at += 1 + n
	}
	return nil
}

// indexSeqStates returns where every entry of a value lies, in refs
// (reused when large enough; a value's entries are at least
// 1+minSeqEntryBody bytes each, so it grows with the value's size).
// One walk: counting the entries first cost a second one at every
// commit.
func indexSeqStates(v []byte, refs []seqRef) ([]seqRef, error) {
	refs = refs[:0]
	err := walkSeqStates(v, func(p int32, at, end int) bool {
		refs = append(refs, seqRef{partition: p, at: at, end: end})
		return true
	})
	return refs, err
}

// decodeSeqStates decodes a whole value.
func decodeSeqStates(v []byte) ([]seqEntry, error) {
	refs, err := indexSeqStates(v, nil)
	if err != nil {
		return nil, err
	}
	out := make([]seqEntry, len(refs))
	for i, r := range refs {
		if out[i], err = decodeSeqEntry(v[r.at:r.end]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// encodeSeqStates encodes entries in increasing partition order.
func encodeSeqStates(es []seqEntry) ([]byte, error) {
	v := make([]byte, 1, 1+40*len(es))
	v[0] = seqStatesVersion
	for i, e := range es {
		if i > 0 && e.partition <= es[i-1].partition {
			return nil, fmt.Errorf("producer sequence states: partition %d after %d", e.partition, es[i-1].partition)
		}
		var err error
		if v, err = appendSeqEntry(v, e); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// findSeqState returns a partition's state in a value, nil if it has
// none, without decoding the other entries.
func findSeqState(v []byte, partition int32) (*sequence.State, int64, error) {
	var body []byte
	err := walkSeqStates(v, func(p int32, at, end int) bool {
		if p == partition {
			body = v[at:end]
		}
		return p < partition
	})
	if err != nil || body == nil {
		return nil, -1, err
	}
	e, err := decodeSeqEntry(body)
	if err != nil {
		return nil, 0, err
	}
	return e.state, e.lastTimestamp, nil
}

// seqValue is one producer's value of one topic during a commit: the
// stored bytes (bbolt's, valid until the transaction ends and not
// written before the commit's last read) and where its entries lie.
type seqValue struct {
	v    []byte
	refs []seqRef
	box  *[]seqRef // where refs go back to seqRefs (release); nil: not from it
	hint kv.Hint   // where its key is (or goes) in the bucket
	key  [seqStatesKeyLen]byte
}

// lookup decodes a partition's state, nil if none.
func (sv *seqValue) lookup(partition int32) (*sequence.State, error) {
	i, ok := slices.BinarySearchFunc(sv.refs, partition, func(r seqRef, p int32) int { return cmp.Compare(r.partition, p) })
	if !ok {
		return nil, nil
	}
	e, err := decodeSeqEntry(sv.v[sv.refs[i].at:sv.refs[i].end])
	if err != nil {
		return nil, err
	}
	return e.state, nil
}

// mergedLen is about the length of the value merged with n changed
// entries (usually more: a changed entry replaces a stored one).
func (sv *seqValue) mergedLen(n int) int { return len(sv.v) + 40*n + 1 }

// merge appends to dst the value with the changed entries (in increasing
// partition order) in place of, or added to, the stored ones; entries
// not changed are copied as they are.
func (sv *seqValue) merge(dst []byte, changed []seqEntry) ([]byte, error) {
	out := slices.Grow(dst, sv.mergedLen(len(changed)))
	out = append(out, seqStatesVersion)
	i := 0
	var err error
	for _, e := range changed {
		for ; i < len(sv.refs) && sv.refs[i].partition < e.partition; i++ {
			r := sv.refs[i]
			out = append(out, sv.v[r.at-1:r.end]...) // its length byte, then its body
		}
		if i < len(sv.refs) && sv.refs[i].partition == e.partition {
			i++
		}
		if out, err = appendSeqEntry(out, e); err != nil {
			return nil, err
		}
	}
	for ; i < len(sv.refs); i++ {
		r := sv.refs[i]
		out = append(out, sv.v[r.at-1:r.end]...)
	}
	return out, nil
}

// seqRefs keeps the indexes of values no longer in use (seqValue.release):
// a commit's producer has an entry for every partition it wrote to, and
// indexing its value is most of what a commit allocates for it.
var seqRefs sync.Pool // of *[]seqRef

// loadSeqValue reads and indexes one producer's value of one topic.
func loadSeqValue(tx kv.Tx, k seqStatesKey) (*seqValue, error) {
	// The key and the hint in the value: one allocation, not three.
	sv := &seqValue{}
	v := kv.GetHint(tx.Bucket([]byte(bucketSeqStates)), k.appendTo(sv.key[:0]), &sv.hint)
	if v == nil {
		return sv, nil
	}
	box, _ := seqRefs.Get().(*[]seqRef)
	if box == nil {
		box = new([]seqRef)
	}
	refs, err := indexSeqStates(v, (*box)[:0])
	if err == nil && (len(refs) == 0 || !k.holds(refs[0].partition) || !k.holds(refs[len(refs)-1].partition)) {
		// In order (walkSeqStates checks it), so all in the span.
		err = fmt.Errorf("producer sequence states: %w: %d entries, not all of span %d", errCorrupt, len(refs), k.span)
	}
	if err != nil {
		return nil, fmt.Errorf("producer %d: %w", k.producerID, err)
	}
	sv.v, sv.refs, sv.box = v, refs, box
	return sv, nil
}

// release gives the value's index back for another to use; sv is empty
// afterwards.
func (sv *seqValue) release() {
	if sv.box != nil {
		*sv.box = sv.refs[:0]
		seqRefs.Put(sv.box)
	}
	sv.v, sv.refs, sv.box = nil, nil, nil
}

// seqChange is a producer's new state on a partition, and the key of
// the value that holds it.
type seqChange struct {
	key   seqStatesKey
	entry seqEntry
}

// writeSeqStates stores the changed states of a commit (one per producer
// and partition; sorted here). Values are built first, then written in
// key order, so that no stored value a merge copies from is overwritten
// before it is read.
func writeSeqStates(tx kv.Tx, values map[seqStatesKey]*seqValue, changed []seqChange) error {
	slices.SortFunc(changed, func(a, b seqChange) int {
		return cmp.Or(compareSeqStatesKeys(a.key, b.key), cmp.Compare(a.entry.partition, b.entry.partition))
	})
	type built struct {
		pair []byte // its key, then its value
		sv   *seqValue
	}
	out := make([]built, 0, len(changed))
	es := make([]seqEntry, 0, len(changed))
	for i := 0; i < len(changed); {
		k := changed[i].key
		es = es[:0]
		for ; i < len(changed) && changed[i].key == k; i++ {
			es = append(es, changed[i].entry)
		}
		sv := values[k]
		if sv == nil {
			var err error
			if sv, err = loadSeqValue(tx, k); err != nil {
				return err
			}
		}
		// The key, then room for the value: one allocation.
		pair, err := sv.merge(k.appendTo(make([]byte, 0, seqStatesKeyLen+sv.mergedLen(len(es)))), es)
		if err != nil {
			return err
		}
		out = append(out, built{pair: pair, sv: sv})
	}
	b := tx.Bucket([]byte(bucketSeqStates))
	for _, o := range out {
		// Where loadSeqValue found the key, it goes back.
		if err := kv.PutPairHint(b, o.pair, seqStatesKeyLen, &o.sv.hint); err != nil {
			return err
		}
	}
	return nil
}

// producersOnPartition calls fn with every producer that has sequence
// state on the partition, in producer id order.
func producersOnPartition(tx kv.Tx, pk partitionKey, fn func(producerID int64, st *sequence.State, lastTimestamp int64) error) error {
	c := tx.Bucket([]byte(bucketSeqStates)).Cursor()
	span := pk.partition / seqStatesSpan
	for k, v := c.Seek(pk.id[:]); bytes.HasPrefix(k, pk.id[:]); {
		sk, err := decodeSeqStatesKey(k)
		if err != nil {
			return err
		}
		if sk.span != span {
			// Straight to this producer's value of the span, or to the
			// next producer.
			next := seqStatesKey{id: pk.id, producerID: sk.producerID, span: span}
			if sk.span > span {
				if sk.producerID == math.MaxInt64 {
					return nil
				}
				next = seqStatesKey{id: pk.id, producerID: sk.producerID + 1}
			}
			k, v = c.Seek(next.bytes())
			continue
		}
		value := v
		k, v = c.Next()
		st, ts, err := findSeqState(value, pk.partition)
		if err != nil {
			return fmt.Errorf("producer %d: %w", sk.producerID, err)
		}
		if st != nil {
			if err := fn(sk.producerID, st, ts); err != nil {
				return err
			}
		}
	}
	return nil
}

// upgradeSeqStates moves the sequences bucket's per-partition keys (the
// layout before partitions format 3, binary or JSON) and the per-topic
// values of format 3 into per-span seqstates values, and drops the
// values of topics that no longer exist (an older binary deletes a
// topic's old keys only). It runs at every Open: usually there is
// nothing to move and the scan of seqstates' keys is all it costs. An
// old key for a partition that also has an entry wins: only an older
// binary, after the conversion, can have written it, and only on a
// partition it created (the partitions guard stops it on the others).
func upgradeSeqStates(tx kv.Tx) error {
	old := tx.Bucket([]byte(bucketSequences))
	topics := tx.Bucket([]byte(bucketTopics))
	states := tx.Bucket([]byte(bucketSeqStates))
	groups := map[seqStatesKey][]seqEntry{}
	add := func(sk sequenceKey, e seqEntry) {
		k := seqStatesKeyOf(sk)
		groups[k] = append(groups[k], e)
	}
	// Format 3: a value per topic and producer (24-byte keys), its
	// entries in partition order.
	var perTopic [][]byte
	err := states.ForEach(func(k, v []byte) error {
		if len(k) == seqStatesKeyLen {
			return nil
		}
		if len(k) != 24 || binary.BigEndian.Uint64(k[16:]) > math.MaxInt64 {
			return fmt.Errorf("upgrade producer sequence states key %x: %w", k, errCorrupt)
		}
		perTopic = append(perTopic, bytes.Clone(k))
		if topics.Get(k[:16]) == nil {
			return nil
		}
		es, err := decodeSeqStates(v)
		if err != nil {
			return fmt.Errorf("upgrade producer sequence states %x: %w", k, err)
		}
		var sk sequenceKey
		copy(sk.id[:], k)
		sk.producerID = int64(binary.BigEndian.Uint64(k[16:]))
		for _, e := range es {
			sk.partition = e.partition
			add(sk, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := deleteKeys(states, perTopic); err != nil {
		return err
	}
	// Before format 3: a key per partition and producer; these win over
	// the entries above (kept in order: they come after them).
	var keys [][]byte
	err = old.ForEach(func(k, v []byte) error {
		if len(k) != 28 || v == nil || binary.BigEndian.Uint32(k[16:]) > math.MaxInt32 || binary.BigEndian.Uint64(k[20:]) > math.MaxInt64 {
			return fmt.Errorf("upgrade producer sequence state %x: %w", k, errCorrupt)
		}
		keys = append(keys, bytes.Clone(k))
		if topics.Get(k[:16]) == nil {
			return nil // the old code deleted these with their topic
		}
		st, ts, err := decodeSequence(v)
		if err != nil {
			return fmt.Errorf("upgrade producer sequence state %x: %w", k, err)
		}
		var sk sequenceKey
		copy(sk.id[:], k)
		sk.partition = int32(binary.BigEndian.Uint32(k[16:]))
		sk.producerID = int64(binary.BigEndian.Uint64(k[20:]))
		add(sk, seqEntry{partition: sk.partition, state: st, lastTimestamp: ts})
		return nil
	})
	if err != nil {
		return err
	}
	if err := deleteKeys(old, keys); err != nil {
		return err
	}
	for _, sk := range slices.SortedFunc(maps.Keys(groups), compareSeqStatesKeys) {
		byPartition := map[int32]seqEntry{}
		if v := states.Get(sk.bytes()); v != nil {
			have, err := decodeSeqStates(v)
			if err != nil {
				return fmt.Errorf("upgrade producer sequence states of producer %d: %w", sk.producerID, err)
			}
			for _, e := range have {
				byPartition[e.partition] = e
			}
		}
		for _, e := range groups[sk] { // later ones win
			byPartition[e.partition] = e
		}
		es := slices.SortedFunc(maps.Values(byPartition), func(a, b seqEntry) int { return cmp.Compare(a.partition, b.partition) })
		nv, err := encodeSeqStates(es)
		if err != nil {
			return err
		}
		if err := states.Put(sk.bytes(), nv); err != nil {
			return err
		}
	}
	var orphans [][]byte
	err = states.ForEach(func(k, _ []byte) error {
		if _, err := decodeSeqStatesKey(k); err != nil {
			return err
		}
		if topics.Get(k[:16]) == nil {
			orphans = append(orphans, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return deleteKeys(states, orphans)
}
