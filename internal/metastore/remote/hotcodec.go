package remote

import (
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// marshalHot writes the hot types by hand (cborfast.go); ok is false for
// any other value.
func marshalHot(v any) (b []byte, ok bool) {
	// Buffers sized for the usual encoding (maps' keys and all), so that
	// appending seldom grows them.
	switch x := v.(type) {
	case Response:
		return appendResponse(make([]byte, 0, responseSize(&x)), &x)
	case *Response:
		return appendResponse(make([]byte, 0, responseSize(x)), x)
	case metastore.SegmentCommit:
		return appendSegmentCommit(make([]byte, 0, 32+len(x.Object)+len(x.Batches)*72), &x), true
	case []batchResult:
		return appendBatchResults(make([]byte, 0, 1+len(x)*24), x)
	case []metastore.Extent:
		n := 1
		for i := range x {
			n += 220 + len(x[i].Object)
		}
		return appendExtents(make([]byte, 0, n), x), true
	case metastore.CommitNotice:
		return appendCommitNotice(make([]byte, 0, 16+len(x.Partitions)*40), &x), true
	}
	return nil, false
}

func responseSize(x *Response) int {
	n := 32 + len(x.Result)
	for _, c := range x.Commits {
		n += 16 + len(c.Partitions)*40
	}
	return n
}

// unmarshalHot reads the hot types by hand into v; ok is false for any
// other type, and for data it does not read as the codec's writing of
// v's type, with v unchanged.
func unmarshalHot(data []byte, v any) bool {
	switch p := v.(type) {
	case *Response:
		return readInto(data, p, readResponse)
	case *metastore.SegmentCommit:
		return readInto(data, p, readSegmentCommit)
	case *[]batchResult:
		return readInto(data, p, readBatchResults)
	case *[]metastore.Extent:
		return readInto(data, p, readExtents)
	case *metastore.CommitNotice:
		return readInto(data, p, readCommitNotice)
	}
	return false
}

// readInto sets *p to what read reads from the whole of data, if it
// does.
func readInto[T any](data []byte, p *T, read func(*cborIn) T) bool {
	r := cborIn{b: data}
	x := read(&r)
	if !r.end() {
		return false
	}
	*p = x
	return true
}

// A Response is a map of its non-empty fields: "result" (the result's
// own encoding), "err", "commits", "topics". err and topics, rare, are
// written by the codec inside the map and send a reader to the codec.
func appendResponse(b []byte, x *Response) ([]byte, bool) {
	var errBytes, topicBytes []byte
	n := uint64(0)
	if len(x.Result) > 0 {
		n++
	}
	if x.Err != nil {
		var err error
		if errBytes, err = encMode.Marshal(x.Err); err != nil {
			return nil, false
		}
		n++
	}
	if len(x.Commits) > 0 {
		n++
	}
	if len(x.Topics) > 0 {
		var err error
		if topicBytes, err = encMode.Marshal(x.Topics); err != nil {
			return nil, false
		}
		n++
	}
	b = appendHead(b, majorMap, n)
	if len(x.Result) > 0 {
		b = append(appendTextString(b, "result"), x.Result...)
	}
	if x.Err != nil {
		b = append(appendTextString(b, "err"), errBytes...)
	}
	if len(x.Commits) > 0 {
		b = appendHead(appendTextString(b, "commits"), majorArray, uint64(len(x.Commits)))
		for i := range x.Commits {
			b = appendCommitNotice(b, &x.Commits[i])
		}
	}
	if len(x.Topics) > 0 {
		b = append(appendTextString(b, "topics"), topicBytes...)
	}
	return b, true
}

func readResponse(r *cborIn) Response {
	var x Response
	n := r.count(majorMap)
	if n > 4 {
		r.fail()
	}
	for i := 0; i < n && !r.bad; i++ {
		switch k := string(r.str(majorText)); {
		case k == "result" && i == 0:
			x.Result = r.skip() // null too: the codec keeps its byte
		case k == "commits" && x.Commits == nil:
			m := r.count(majorArray)
			if m == 0 {
				r.fail() // omitted when empty: not written so
			}
			x.Commits = make([]metastore.CommitNotice, m)
			for j := range x.Commits {
				x.Commits[j] = readCommitNotice(r)
			}
		default: // err, topics, or anything out of order
			r.fail()
		}
	}
	return x
}

// A CommitNotice is {"Partitions": [{"TopicID": bytes, "Partition": n}, …]}.
func appendCommitNotice(b []byte, n *metastore.CommitNotice) []byte {
	b = appendTextString(appendHead(b, majorMap, 1), "Partitions")
	if n.Partitions == nil {
		return append(b, cborNull)
	}
	b = appendHead(b, majorArray, uint64(len(n.Partitions)))
	for _, tp := range n.Partitions {
		b = appendHead(b, majorMap, 2)
		b = appendByteString(appendTextString(b, "TopicID"), tp.TopicID[:])
		b = appendInt(appendTextString(b, "Partition"), int64(tp.Partition))
	}
	return b
}

func readCommitNotice(r *cborIn) metastore.CommitNotice {
	var n metastore.CommitNotice
	if r.count(majorMap) != 1 {
		r.fail()
	}
	r.key("Partitions")
	if r.null() {
		return n
	}
	n.Partitions = make([]metastore.TopicPartition, r.count(majorArray))
	for i := range n.Partitions {
		if r.count(majorMap) != 2 {
			r.fail()
		}
		r.key("TopicID")
		n.Partitions[i].TopicID = readTopicID(r)
		r.key("Partition")
		n.Partitions[i].Partition = int32(r.intIn(-1<<31, 1<<31-1))
		if r.bad {
			break
		}
	}
	return n
}

func readTopicID(r *cborIn) metastore.TopicID {
	var id metastore.TopicID
	if s := r.str(majorBytes); len(s) == len(id) {
		copy(id[:], s)
	} else {
		r.fail() // the codec pads or cuts other lengths
	}
	return id
}

// A SegmentCommit is {"Object", "Size", "Batches"}, each batch an array
// of its ten fields (version 2).
func appendSegmentCommit(b []byte, c *metastore.SegmentCommit) []byte {
	b = appendHead(b, majorMap, 3)
	b = appendTextString(appendTextString(b, "Object"), c.Object)
	b = appendInt(appendTextString(b, "Size"), c.Size)
	b = appendTextString(b, "Batches")
	if c.Batches == nil {
		return append(b, cborNull)
	}
	b = appendHead(b, majorArray, uint64(len(c.Batches)))
	for i := range c.Batches {
		bc := &c.Batches[i]
		b = appendHead(b, majorArray, batchCommitFields)
		b = appendByteString(b, bc.TopicID[:])
		b = appendInt(b, int64(bc.Partition))
		b = appendInt(b, bc.ByteOffset)
		b = appendInt(b, bc.ByteLength)
		b = appendInt(b, bc.OffsetCount)
		b = appendInt(b, bc.MaxTimestamp)
		b = appendInt(b, bc.ProducerID)
		b = appendInt(b, int64(bc.ProducerEpoch))
		b = appendInt(b, int64(bc.BaseSequence))
		b = appendBool(b, bc.Transactional)
	}
	return b
}

// batchCommitFields is the number of metastore.BatchCommit's fields.
const batchCommitFields = 10

func readSegmentCommit(r *cborIn) metastore.SegmentCommit {
	var c metastore.SegmentCommit
	if r.count(majorMap) != 3 {
		r.fail()
	}
	r.key("Object")
	c.Object = string(r.str(majorText))
	r.key("Size")
	c.Size = r.int64()
	r.key("Batches")
	if r.null() {
		return c
	}
	c.Batches = make([]metastore.BatchCommit, r.count(majorArray))
	for i := range c.Batches {
		if r.count(majorArray) != batchCommitFields {
			r.fail()
			break
		}
		bc := &c.Batches[i]
		bc.TopicID = readTopicID(r)
		bc.Partition = int32(r.intIn(-1<<31, 1<<31-1))
		bc.ByteOffset = r.int64()
		bc.ByteLength = r.int64()
		bc.OffsetCount = r.int64()
		bc.MaxTimestamp = r.int64()
		bc.ProducerID = r.int64()
		bc.ProducerEpoch = int16(r.intIn(-1<<15, 1<<15-1))
		bc.BaseSequence = int32(r.intIn(-1<<31, 1<<31-1))
		bc.Transactional = r.bool()
		if r.bad {
			break
		}
	}
	return c
}

// Results of a segment commit: arrays of [BaseOffset, Duplicate,
// LogStartOffset, Err], an error written by the codec (and one it
// cannot write left to it, ok false).
func appendBatchResults(b []byte, rs []batchResult) (_ []byte, ok bool) {
	if rs == nil {
		return append(b, cborNull), true
	}
	b = appendHead(b, majorArray, uint64(len(rs)))
	for _, x := range rs {
		b = appendHead(b, majorArray, 4)
		b = appendInt(b, x.BaseOffset)
		b = appendBool(b, x.Duplicate)
		b = appendInt(b, x.LogStartOffset)
		if x.Err == nil {
			b = append(b, cborNull)
			continue
		}
		e, err := encMode.Marshal(x.Err)
		if err != nil {
			return nil, false
		}
		b = append(b, e...)
	}
	return b, true
}

func readBatchResults(r *cborIn) []batchResult {
	if r.null() {
		return nil
	}
	rs := make([]batchResult, r.count(majorArray))
	for i := range rs {
		if r.count(majorArray) != 4 {
			r.fail()
			break
		}
		rs[i].BaseOffset = r.int64()
		rs[i].Duplicate = r.bool()
		rs[i].LogStartOffset = r.int64()
		if !r.null() {
			r.fail() // an error: the codec's
			break
		}
	}
	return rs
}

// Extents: maps of their ten fields, CommittedAt as RFC 3339 text (null
// when zero).
func appendExtents(b []byte, es []metastore.Extent) []byte {
	if es == nil {
		return append(b, cborNull)
	}
	b = appendHead(b, majorArray, uint64(len(es)))
	var ts []byte
	for i := range es {
		e := &es[i]
		b = appendHead(b, majorMap, 10)
		b = appendByteString(appendTextString(b, "TopicID"), e.TopicID[:])
		b = appendInt(appendTextString(b, "Partition"), int64(e.Partition))
		b = appendInt(appendTextString(b, "BaseOffset"), e.BaseOffset)
		b = appendInt(appendTextString(b, "EndOffset"), e.EndOffset)
		b = appendTextString(appendTextString(b, "Object"), e.Object)
		b = appendInt(appendTextString(b, "ObjectSize"), e.ObjectSize)
		b = appendInt(appendTextString(b, "ByteOffset"), e.ByteOffset)
		b = appendInt(appendTextString(b, "ByteLength"), e.ByteLength)
		b = appendInt(appendTextString(b, "MaxTimestamp"), e.MaxTimestamp)
		b = appendTextString(b, "CommittedAt")
		if e.CommittedAt.IsZero() {
			b = append(b, cborNull)
		} else {
			ts = e.CommittedAt.AppendFormat(ts[:0], time.RFC3339Nano)
			b = append(appendHead(b, majorText, uint64(len(ts))), ts...)
		}
	}
	return b
}

func readExtents(r *cborIn) []metastore.Extent {
	if r.null() {
		return nil
	}
	es := make([]metastore.Extent, r.count(majorArray))
	for i := range es {
		if r.count(majorMap) != 10 {
			r.fail()
			break
		}
		e := &es[i]
		r.key("TopicID")
		e.TopicID = readTopicID(r)
		r.key("Partition")
		e.Partition = int32(r.intIn(-1<<31, 1<<31-1))
		r.key("BaseOffset")
		e.BaseOffset = r.int64()
		r.key("EndOffset")
		e.EndOffset = r.int64()
		r.key("Object")
		e.Object = string(r.str(majorText))
		r.key("ObjectSize")
		e.ObjectSize = r.int64()
		r.key("ByteOffset")
		e.ByteOffset = r.int64()
		r.key("ByteLength")
		e.ByteLength = r.int64()
		r.key("MaxTimestamp")
		e.MaxTimestamp = r.int64()
		r.key("CommittedAt")
		if !r.null() {
			s := r.str(majorText)
			t, err := time.Parse(time.RFC3339, string(s))
			if err != nil {
				r.fail()
			}
			e.CommittedAt = t
		}
		if r.bad {
			break
		}
	}
	return es
}
