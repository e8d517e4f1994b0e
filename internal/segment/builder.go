package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/floe-io/floe/internal/recordbatch"
)

// Placement says where one added batch ended up in the built object.
type Placement struct {
	TopicID    [16]byte
	Partition  int32
	ByteOffset int64 // absolute position of the batch in the object
	ByteLength int64
}

type partitionKey struct {
	topicID   [16]byte
	partition int32
}

// group is one partition's batches, in arrival order.
type group struct {
	entry   IndexEntry // DataOffset and DataLength are filled in by Build
	batches []int      // add-indexes into Builder.batches
}

type added struct {
	group int
	data  []byte
}

// Builder collects batches for one segment object. It is not safe for
// concurrent use; the open segment of a produce flusher owns one.
type Builder struct {
	groups  []group // in first-arrival order
	byKey   map[partitionKey]int
	batches []added // in Add order
	size    int
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{
		byKey: make(map[partitionKey]int),
		size:  HeaderSize + indexCountSize,
	}
}

// Add appends a batch for a partition and returns its add-index, which
// Build's placements are indexed by. The batch must already have passed
// recordbatch.Validate; Add keeps a reference to it (no copy), so the caller
// must not modify it until Build has returned. The topic name is stored for
// humans only: the name given with a partition's first batch is kept, cut
// to MaxTopicLength bytes. Add panics if batch has no readable header, which
// means the caller skipped validation.
func (b *Builder) Add(topicID [16]byte, topic string, partition int32, batch []byte) int {
	h, err := recordbatch.ParseHeader(batch)
	if err != nil {
		panic(fmt.Sprintf("segment.Builder.Add: unvalidated batch: %v", err))
	}
	key := partitionKey{topicID, partition}
	gi, ok := b.byKey[key]
	if !ok {
		if len(topic) > MaxTopicLength {
			topic = topic[:MaxTopicLength]
		}
		gi = len(b.groups)
		b.byKey[key] = gi
		b.groups = append(b.groups, group{entry: IndexEntry{
			TopicID:      topicID,
			Topic:        topic,
			Partition:    partition,
			MinTimestamp: h.FirstTimestamp,
			MaxTimestamp: h.MaxTimestamp,
		}})
		b.size += entrySize(topic)
	}
	g := &b.groups[gi]
	e := &g.entry
	e.BatchCount++
	e.OffsetCount += uint64(int64(h.LastOffsetDelta) + 1)
	e.MinTimestamp = min(e.MinTimestamp, h.FirstTimestamp)
	e.MaxTimestamp = max(e.MaxTimestamp, h.MaxTimestamp)

	i := len(b.batches)
	g.batches = append(g.batches, i)
	b.batches = append(b.batches, added{group: gi, data: batch})
	b.size += len(batch)
	return i
}

// Size returns the size in bytes of the object Build would produce now.
func (b *Builder) Size() int { return b.size }

// Len returns the number of batches added.
func (b *Builder) Len() int { return len(b.batches) }

// Build lays out the object: header, index, then each partition's batches
// contiguously, partitions in first-arrival order and batches in arrival
// order. placements[i] is where the batch of add-index i lies. Build copies
// each batch once and leaves the Builder unchanged, so calling it again
// gives the same bytes.
func (b *Builder) Build() (object []byte, placements []Placement) {
	indexLen := b.indexLength()
	dataStart := uint64(HeaderSize + indexLen)
	entries := make([]IndexEntry, len(b.groups))
	placements = make([]Placement, len(b.batches))

	pos := dataStart
	for gi := range b.groups {
		g := &b.groups[gi]
		e := g.entry
		e.DataOffset = pos
		for _, ai := range g.batches {
			n := uint64(len(b.batches[ai].data))
			placements[ai] = Placement{
				TopicID:    e.TopicID,
				Partition:  e.Partition,
				ByteOffset: int64(pos),
				ByteLength: int64(n),
			}
			pos += n
		}
		e.DataLength = pos - e.DataOffset
		entries[gi] = e
	}

	object = make([]byte, HeaderSize, b.size)
	object = binary.BigEndian.AppendUint32(object, uint32(len(entries)))
	for i := range entries {
		object = entries[i].append(object)
	}
	index := object[HeaderSize:]
	h := Header{
		Version:     Version,
		IndexLength: uint32(len(index)),
		IndexCRC:    crc32.Checksum(index, castagnoli),
		DataLength:  pos - dataStart,
	}
	h.append(object[:0]) // fills the HeaderSize bytes reserved above
	for gi := range b.groups {
		for _, ai := range b.groups[gi].batches {
			object = append(object, b.batches[ai].data...)
		}
	}
	if len(object) != b.size {
		panic(fmt.Sprintf("segment.Builder.Build: object of %d bytes, Size said %d", len(object), b.size))
	}
	return object, placements
}

// indexLength is the size of the index for the partitions added so far.
func (b *Builder) indexLength() int {
	n := indexCountSize
	for i := range b.groups {
		n += entrySize(b.groups[i].entry.Topic)
	}
	return n
}
