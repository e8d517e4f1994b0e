package remote

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// hotGen makes values of the hot types with the edges of their encoding:
// integers at every head size and sign, strings empty, long and not
// UTF-8, nil and empty slices, zero and zoned times.
type hotGen struct{ rng *rand.Rand }

func (g hotGen) int64() int64 {
	edges := []int64{0, 1, -1, 23, 24, -24, -25, 255, 256, -256, -257, 65535, 65536, -65537,
		math.MaxInt32, math.MinInt32, math.MaxUint32, math.MaxUint32 + 1, -math.MaxUint32 - 1, math.MaxInt64, math.MinInt64}
	if g.rng.IntN(3) == 0 {
		return g.rng.Int64() >> g.rng.IntN(64)
	}
	return edges[g.rng.IntN(len(edges))]
}

func (g hotGen) int32() int32 { return int32(g.int64()) }

func (g hotGen) str() string {
	switch g.rng.IntN(5) {
	case 0:
		return ""
	case 1:
		return strings.Repeat("x", 23+g.rng.IntN(3))
	case 2:
		return "\xff\xfeno utf-8"
	case 3:
		return strings.Repeat("y", 250+g.rng.IntN(300))
	}
	return "segments/0001/abc"
}

func (g hotGen) id() (id metastore.TopicID) {
	for i := range id {
		id[i] = byte(g.rng.IntN(256))
	}
	return id
}

func (g hotGen) count() int {
	if g.rng.IntN(4) == 0 {
		return -1 // nil
	}
	return g.rng.IntN(30)
}

func (g hotGen) time() time.Time {
	switch g.rng.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(g.rng.Int64N(4e9), 0).UTC()
	case 2:
		return time.Unix(g.rng.Int64N(4e9), g.rng.Int64N(1e9)).In(time.FixedZone("", 3600*(g.rng.IntN(25)-12)))
	}
	return time.Unix(g.rng.Int64N(4e9), g.rng.Int64N(1e9)).UTC()
}

func (g hotGen) segmentCommit() metastore.SegmentCommit {
	c := metastore.SegmentCommit{Object: g.str(), Size: g.int64()}
	if n := g.count(); n >= 0 {
		c.Batches = make([]metastore.BatchCommit, n)
		for i := range c.Batches {
			c.Batches[i] = metastore.BatchCommit{
				TopicID: g.id(), Partition: g.int32(), ByteOffset: g.int64(), ByteLength: g.int64(),
				OffsetCount: g.int64(), MaxTimestamp: g.int64(), ProducerID: g.int64(),
				ProducerEpoch: int16(g.int64()), BaseSequence: g.int32(), Transactional: g.rng.IntN(2) == 0,
			}
		}
	}
	return c
}

func (g hotGen) extents() []metastore.Extent {
	n := g.count()
	if n < 0 {
		return nil
	}
	es := make([]metastore.Extent, n)
	for i := range es {
		es[i] = metastore.Extent{
			TopicID: g.id(), Partition: g.int32(), BaseOffset: g.int64(), EndOffset: g.int64(),
			Object: g.str(), ObjectSize: g.int64(), ByteOffset: g.int64(), ByteLength: g.int64(),
			MaxTimestamp: g.int64(), CommittedAt: g.time(),
		}
	}
	return es
}

func (g hotGen) batchResults(withErrors bool) []batchResult {
	n := g.count()
	if n < 0 {
		return nil
	}
	rs := make([]batchResult, n)
	for i := range rs {
		rs[i] = batchResult{BaseOffset: g.int64(), Duplicate: g.rng.IntN(2) == 0, LogStartOffset: g.int64()}
		if withErrors && g.rng.IntN(3) == 0 {
			rs[i].Err = EncodeError(metastore.ErrOutOfOrderSequence)
		}
	}
	return rs
}

func (g hotGen) commitNotice() metastore.CommitNotice {
	var n metastore.CommitNotice
	if c := g.count(); c >= 0 {
		n.Partitions = make([]metastore.TopicPartition, c)
		for i := range n.Partitions {
			n.Partitions[i] = metastore.TopicPartition{TopicID: g.id(), Partition: g.int32()}
		}
	}
	return n
}

func (g hotGen) response(rare bool) Response {
	var r Response
	if g.rng.IntN(3) != 0 {
		r.Result, _ = encMode.Marshal(g.batchResults(false))
	}
	if g.rng.IntN(2) == 0 {
		r.Commits = make([]metastore.CommitNotice, 1+g.rng.IntN(3))
		for i := range r.Commits {
			r.Commits[i] = g.commitNotice()
		}
	}
	if rare {
		if g.rng.IntN(2) == 0 {
			r.Err = EncodeError(metastore.ErrTopicExists)
		}
		if g.rng.IntN(2) == 0 {
			r.Topics = []metastore.TopicNotice{{Names: []string{g.str()}}}
		}
	}
	return r
}

// TestHotCodecsAgree writes random values of the hot types by hand and
// with the codec (the same bytes), and reads them back by hand and with
// the codec (the same values, read by hand whenever no error or topic
// notice is in them).
func TestHotCodecsAgree(t *testing.T) {
	g := hotGen{rand.New(rand.NewPCG(7, 8))}
	for i := range 3000 {
		rare := i%2 == 1
		values := []any{g.segmentCommit(), g.extents(), g.batchResults(rare), g.commitNotice(), g.response(rare)}
		for _, v := range values {
			want, err := encMode.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := marshalHot(v)
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("%T %+v: by hand (%v) %x, codec %x", v, v, ok, got, want)
			}
			byHand := reflect.New(reflect.TypeOf(v))
			byCodec := reflect.New(reflect.TypeOf(v))
			if err := decMode.Unmarshal(want, byCodec.Interface()); err != nil {
				t.Fatalf("%T: codec: %v", v, err)
			}
			ok = unmarshalHot(want, byHand.Interface())
			if !ok && !rare {
				t.Fatalf("%T %x: not read by hand", v, want)
			}
			if ok && !reflect.DeepEqual(byHand.Elem().Interface(), byCodec.Elem().Interface()) {
				t.Fatalf("%T %x: by hand %+v, codec %+v", v, want, byHand.Elem().Interface(), byCodec.Elem().Interface())
			}
		}
	}
}

// FuzzHotDecoders reads arbitrary bytes as each hot type: whatever is
// read by hand, the codec reads too, into the same value.
func FuzzHotDecoders(f *testing.F) {
	g := hotGen{rand.New(rand.NewPCG(9, 10))}
	for i := range 20 {
		for _, v := range []any{g.segmentCommit(), g.extents(), g.batchResults(true), g.commitNotice(), g.response(true)} {
			b, _ := encMode.Marshal(v)
			f.Add(byte(i), b)
		}
	}
	for _, b := range outOfRange() {
		f.Add(byte(1), b)
		f.Add(byte(4), b)
	}
	types := []reflect.Type{
		reflect.TypeFor[Response](), reflect.TypeFor[metastore.SegmentCommit](), reflect.TypeFor[[]batchResult](),
		reflect.TypeFor[[]metastore.Extent](), reflect.TypeFor[metastore.CommitNotice](),
	}
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		typ := types[int(which)%len(types)]
		byHand := reflect.New(typ)
		if !unmarshalHot(data, byHand.Interface()) {
			if !byHand.Elem().IsZero() {
				t.Fatalf("%v: not read by hand, yet changed", typ)
			}
			return
		}
		byCodec := reflect.New(typ)
		if err := decMode.Unmarshal(data, byCodec.Interface()); err != nil {
			t.Fatalf("%v %x: read by hand, codec refuses: %v", typ, data, err)
		}
		if !reflect.DeepEqual(byHand.Elem().Interface(), byCodec.Elem().Interface()) {
			t.Fatalf("%v %x: by hand %+v, codec %+v", typ, data, byHand.Elem().Interface(), byCodec.Elem().Interface())
		}
	})
}

// Wider mirrors of the hot types, to write integers out of their range.
type (
	wideBatch struct {
		_                                                                                             struct{} `cbor:",toarray"`
		TopicID                                                                                       metastore.TopicID
		Partition, ByteOffset, ByteLength, OffsetCount, MaxTimestamp, ProducerID, Epoch, BaseSequence int64
		Transactional                                                                                 bool
	}
	wideCommit struct {
		Object  string
		Size    int64
		Batches []wideBatch
	}
	wideTopicPartition struct {
		TopicID   metastore.TopicID
		Partition int64
	}
	wideNotice struct{ Partitions []wideTopicPartition }
)

// outOfRange are encodings with an integer too large for its field:
// the codec refuses them, and so must the readers by hand.
func outOfRange() map[string][]byte {
	enc := func(v any) []byte {
		b, err := encMode.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	batch := wideBatch{Partition: 1, Epoch: 1, BaseSequence: 1}
	out := map[string][]byte{}
	for name, mutate := range map[string]func(*wideBatch){
		"partition":      func(b *wideBatch) { b.Partition = 1 << 31 },
		"epoch":          func(b *wideBatch) { b.Epoch = 1 << 15 },
		"negative epoch": func(b *wideBatch) { b.Epoch = -1<<15 - 1 },
		"sequence":       func(b *wideBatch) { b.BaseSequence = -1<<31 - 1 },
	} {
		b := batch
		mutate(&b)
		out["commit "+name] = enc(wideCommit{Object: "o", Batches: []wideBatch{b}})
	}
	out["notice partition"] = enc(wideNotice{Partitions: []wideTopicPartition{{Partition: 1 << 40}}})
	return out
}

func TestHotDecodersRefuseOutOfRange(t *testing.T) {
	for name, b := range outOfRange() {
		var v any = new(metastore.SegmentCommit)
		if strings.HasPrefix(name, "notice") {
			v = new(metastore.CommitNotice)
		}
		if decMode.Unmarshal(b, v) == nil {
			t.Fatalf("%s: the codec reads %x", name, b)
		}
		if unmarshalHot(b, v) {
			t.Errorf("%s: read by hand: %x", name, b)
		}
	}
}
