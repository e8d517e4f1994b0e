package kproxy

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Byte positions in a v2 record batch.
const (
	batchHeaderBytes = 61 // FirstOffset through NumRecords
	lengthAt         = 8
	crcAt            = 17
	attributesAt     = 21
)

// rewriteFetch applies an armed DropRecord or SwapRecords fault to every
// batch it chose, choosing the first eligible batch it sees. It holds
// p.mu throughout, so that two responses carrying the same batch on two
// connections cannot both be the first: every reader sees one log.
func (p *Proxy) rewriteFetch(resp *kmsg.FetchResponse) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault == HideAborts {
		return p.hideAborts(resp)
	}
	if p.fault != DropRecord && p.fault != SwapRecords && p.fault != ReorderBatches {
		return false
	}
	changed := false
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			part := &t.Partitions[pi]
			out, ok := p.rewriteBatches(p.topicName(t.Topic, t.TopicID), part.Partition, part.RecordBatches)
			if ok {
				part.RecordBatches = out
				changed = true
			}
		}
	}
	return changed
}

func (p *Proxy) rewriteBatches(topic string, partition int32, raw []byte) ([]byte, bool) {
	if p.fault == ReorderBatches {
		return p.reorderBatches(topic, partition, raw)
	}
	var out []byte
	changed := false
	for len(raw) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(raw[lengthAt:])))
		if size < batchHeaderBytes || size > len(raw) {
			break // a batch cut short at the end of the response: left alone
		}
		b := raw[:size]
		raw = raw[size:]
		if nb, ok := p.rewriteBatch(topic, partition, b); ok {
			out = append(out, nb...)
			changed = true
			continue
		}
		out = append(out, b...)
	}
	return append(out, raw...), changed
}

// rewriteBatch applies the fault to b if b is (or becomes) the chosen
// batch. Only uncompressed, non-transactional data batches are eligible.
func (p *Proxy) rewriteBatch(topic string, partition int32, b []byte) ([]byte, bool) {
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(b); err != nil || batch.Magic != 2 {
		return nil, false
	}
	if p.inj == nil {
		const compression, transactional, control = 0x07, 0x10, 0x20
		if batch.Attributes&(compression|transactional|control) != 0 || batch.NumRecords < 3 {
			return nil, false
		}
		p.inj = &Injection{Fault: p.fault, Topic: topic, Partition: partition, Offset: batch.FirstOffset, Records: int(batch.NumRecords)}
	}
	if p.inj.Topic != topic || p.inj.Partition != partition || p.inj.Offset != batch.FirstOffset {
		return nil, false
	}
	records, ok := splitRecords(batch.Records, int(batch.NumRecords))
	if !ok || len(records) < 3 {
		return nil, false
	}
	switch p.fault {
	case DropRecord:
		records = append(records[:1], records[2:]...)
	case SwapRecords:
		var r0, r1 kmsg.Record
		if r0.ReadFrom(records[0]) != nil || r1.ReadFrom(records[1]) != nil {
			return nil, false
		}
		r0.Key, r1.Key = r1.Key, r0.Key
		r0.Value, r1.Value = r1.Value, r0.Value
		r0.Headers, r1.Headers = r1.Headers, r0.Headers
		records[0], records[1] = encodeRecord(r0), encodeRecord(r1)
	}
	batch.NumRecords = int32(len(records))
	batch.Records = nil
	for _, r := range records {
		batch.Records = append(batch.Records, r...)
	}
	p.inj.Applied++
	return encodeBatch(&batch), true
}

// splitRecords cuts a batch's records apart, each with its length prefix.
func splitRecords(raw []byte, n int) ([][]byte, bool) {
	var out [][]byte
	for i := 0; i < n; i++ {
		r := kbin.Reader{Src: raw}
		l := r.Varint()
		if !r.Ok() || l < 0 || int(l) > len(r.Src) {
			return nil, false
		}
		size := len(raw) - len(r.Src) + int(l)
		out = append(out, raw[:size])
		raw = raw[size:]
	}
	return out, len(raw) == 0
}

func encodeRecord(r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero length is one varint byte
	return append(kbin.AppendVarint(nil, int32(len(body))), body...)
}

// encodeBatch encodes a batch with its length and CRC computed.
func encodeBatch(b *kmsg.RecordBatch) []byte {
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[lengthAt:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[crcAt:], crc32.Checksum(out[attributesAt:], castagnoli))
	return out
}

// duplicate returns, for an armed DuplicateBatch that has not acted yet,
// a Produce request frame (with its size) that writes the first batch of
// req again, without the producer id and sequence that would let the
// agent recognise it.
func (p *Proxy) duplicate(req *kmsg.ProduceRequest, clientID string) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault != DuplicateBatch || p.inj != nil || req.Acks == 0 || req.TransactionID != nil {
		return nil
	}
	for _, t := range req.Topics {
		for _, part := range t.Partitions {
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(part.Records); err != nil || batch.Magic != 2 || batch.NumRecords < 1 {
				continue
			}
			batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = -1, -1, -1
			copyReq := kmsg.NewPtrProduceRequest()
			copyReq.SetVersion(req.GetVersion())
			copyReq.Acks = -1
			copyReq.TimeoutMillis = req.TimeoutMillis
			ct := kmsg.NewProduceRequestTopic()
			ct.Topic, ct.TopicID = t.Topic, t.TopicID
			cp := kmsg.NewProduceRequestTopicPartition()
			cp.Partition = part.Partition
			cp.Records = encodeBatch(&batch)
			ct.Partitions = append(ct.Partitions, cp)
			copyReq.Topics = append(copyReq.Topics, ct)
			p.inj = &Injection{Fault: DuplicateBatch, Topic: p.topicName(t.Topic, t.TopicID), Partition: part.Partition, Offset: -1, Records: int(batch.NumRecords), Applied: 1}
			// Responses are matched to requests by their order on the
			// connection, so the copy's correlation id only has to be
			// valid; -1 makes it easy to spot in a capture.
			return wire.AppendRequest(nil, -1, clientID, copyReq)
		}
	}
	return nil
}

// reorderBatches swaps the chosen pair of batches where both are in raw,
// adjacent, choosing the first adjacent pair of data batches it sees.
func (p *Proxy) reorderBatches(topic string, partition int32, raw []byte) ([]byte, bool) {
	type span struct {
		first int64
		n     int32
		start int
		end   int
	}
	var spans []span
	for at := 0; len(raw)-at >= batchHeaderBytes; {
		size := 12 + int(int32(binary.BigEndian.Uint32(raw[at+lengthAt:])))
		if size < batchHeaderBytes || at+size > len(raw) {
			break
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(raw[at : at+size]); err != nil {
			break
		}
		spans = append(spans, span{batch.FirstOffset, batch.NumRecords, at, at + size})
		at += size
	}
	for i := 0; i+1 < len(spans); i++ {
		a, b := spans[i], spans[i+1]
		if p.inj == nil {
			if a.n < 1 || b.n < 1 {
				continue
			}
			p.inj = &Injection{Fault: ReorderBatches, Topic: topic, Partition: partition, Offset: a.first, Records: int(a.n), Next: b.first}
		}
		if p.inj.Topic != topic || p.inj.Partition != partition || p.inj.Offset != a.first || p.inj.Next != b.first {
			continue
		}
		out := make([]byte, 0, len(raw))
		out = append(out, raw[:a.start]...)
		out = append(out, raw[b.start:b.end]...)
		out = append(out, raw[a.start:a.end]...)
		out = append(out, raw[b.end:]...)
		p.inj.Applied++
		return out, true
	}
	return nil, false
}

// moveCommit moves every offset of a commit one down (RewindCommits, for
// offsets above 0) or one up (AdvanceCommits), and says whether it
// changed any.
func (p *Proxy) moveCommit(req *kmsg.OffsetCommitRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var by int64
	switch p.fault {
	case RewindCommits:
		by = -1
	case AdvanceCommits:
		by = 1
	default:
		return false
	}
	changed := false
	for ti := range req.Topics {
		t := &req.Topics[ti]
		for pi := range t.Partitions {
			part := &t.Partitions[pi]
			if part.Offset+by < 0 {
				continue
			}
			if p.inj == nil {
				p.inj = &Injection{Fault: p.fault, Topic: p.topicName(t.Topic, t.TopicID), Partition: part.Partition, Offset: part.Offset}
			}
			part.Offset += by
			p.inj.Applied++
			changed = true
		}
	}
	return changed
}

// hideAborts empties every aborted transactions list of resp (HideAborts).
func (p *Proxy) hideAborts(resp *kmsg.FetchResponse) bool {
	changed := false
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			part := &t.Partitions[pi]
			if len(part.AbortedTransactions) == 0 {
				continue
			}
			if p.inj == nil {
				p.inj = &Injection{Fault: HideAborts, Topic: p.topicName(t.Topic, t.TopicID), Partition: part.Partition, Offset: part.AbortedTransactions[0].FirstOffset}
			}
			part.AbortedTransactions = part.AbortedTransactions[:0]
			p.inj.Applied++
			changed = true
		}
	}
	return changed
}

// uncommit turns a read_committed fetch into a read_uncommitted one
// (ReadUncommitted), and says whether it did.
func (p *Proxy) uncommit(req *kmsg.FetchRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fault != ReadUncommitted || req.IsolationLevel == 0 {
		return false
	}
	req.IsolationLevel = 0
	if p.inj == nil {
		p.inj = &Injection{Fault: ReadUncommitted, Offset: -1}
	}
	p.inj.Applied++
	return true
}
