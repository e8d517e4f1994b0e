// Package inspect turns what Floe stores into JSON for operators: segment
// objects with the offsets the metadata store assigned their batches, and
// consumer groups with their committed offsets and lag. `floe inspect`,
// `floe groups` and the agent's admin API share it, so that a running
// agent answers what the commands print offline. It only reads.
package inspect

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
)

// Segment is a segment object as `floe inspect segment` prints it.
type Segment struct {
	Object     string      `json:"object"`
	Size       int         `json:"size"`
	Version    uint8       `json:"version"`
	Flags      uint16      `json:"flags"`
	IndexBytes uint32      `json:"index_bytes"`
	IndexCRC   string      `json:"index_crc32c"`
	DataBytes  uint64      `json:"data_bytes"`
	Committed  *bool       `json:"committed,omitempty"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one partition's part of a segment.
type Partition struct {
	Topic        string  `json:"topic"`
	TopicID      string  `json:"topic_id"`
	Partition    int32   `json:"partition"`
	DataOffset   uint64  `json:"data_offset"`
	DataLength   uint64  `json:"data_length"`
	BatchCount   uint32  `json:"batch_count"`
	OffsetCount  uint64  `json:"offset_count"`
	MinTimestamp int64   `json:"min_timestamp"`
	MaxTimestamp int64   `json:"max_timestamp"`
	Batches      []Batch `json:"batches"`
}

// Batch is one record batch, with the offsets the metadata store
// assigned it when it is committed.
type Batch struct {
	ByteOffset     int64    `json:"byte_offset"`
	Length         int      `json:"length"`
	BaseOffset     *int64   `json:"base_offset,omitempty"`
	LastOffset     *int64   `json:"last_offset,omitempty"`
	Committed      *bool    `json:"committed,omitempty"`
	Records        int32    `json:"record_count"`
	Compression    string   `json:"compression"`
	FirstTimestamp int64    `json:"first_timestamp"`
	MaxTimestamp   int64    `json:"max_timestamp"`
	ProducerID     int64    `json:"producer_id"`
	ProducerEpoch  int16    `json:"producer_epoch"`
	BaseSequence   int32    `json:"base_sequence"`
	CRC            string   `json:"crc32c"`
	RecordList     []Record `json:"records,omitempty"`
}

// Record is one decoded record.
type Record struct {
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp"`
	Key       *Bytes   `json:"key"`
	Value     *Bytes   `json:"value"`
	Headers   []Header `json:"headers,omitempty"`
}

// Header is one record header.
type Header struct {
	Key   string `json:"key"`
	Value *Bytes `json:"value"`
}

// Bytes shows bytes as text when they are UTF-8, base64 otherwise.
type Bytes struct {
	Text   *string `json:"text,omitempty"`
	Base64 *string `json:"base64,omitempty"`
}

func showBytes(b []byte) *Bytes {
	if b == nil {
		return nil
	}
	s := string(b)
	if utf8.ValidString(s) {
		return &Bytes{Text: &s}
	}
	enc := base64.StdEncoding.EncodeToString(b)
	return &Bytes{Base64: &enc}
}

// ExtentReader is the part of the metadata store DecodeSegment reads.
type ExtentReader interface {
	Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error)
}

// DecodeSegment decodes object, stored under key. With store (non-nil),
// each batch shows whether it is committed and at which offsets; with
// withRecords, every record is decoded.
func DecodeSegment(ctx context.Context, key string, object []byte, store ExtentReader, withRecords bool) (*Segment, error) {
	seg, err := segment.Decode(object)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	out := Segment{
		Object: key, Size: len(object), Version: seg.Header.Version, Flags: seg.Header.Flags,
		IndexBytes: seg.Header.IndexLength, IndexCRC: fmt.Sprintf("%08x", seg.Header.IndexCRC), DataBytes: seg.Header.DataLength,
	}
	anyCommitted := false
	for _, p := range seg.Partitions {
		pj := Partition{
			Topic: p.Topic, TopicID: hex.EncodeToString(p.TopicID[:]), Partition: p.Partition,
			DataOffset: p.DataOffset, DataLength: p.DataLength, BatchCount: p.BatchCount, OffsetCount: p.OffsetCount,
			MinTimestamp: p.MinTimestamp, MaxTimestamp: p.MaxTimestamp,
		}
		var extents []metastore.Extent
		if store != nil {
			all, err := store.Extents(ctx, p.TopicID, p.Partition, 0, 0)
			if err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				return nil, err
			}
			for _, e := range all {
				if e.Object == key {
					extents = append(extents, e)
				}
			}
		}
		for _, b := range p.Batches {
			bj := Batch{
				ByteOffset: b.ByteOffset, Length: len(b.Data), Records: b.Header.NumRecords,
				Compression: b.Header.Compression().String(), FirstTimestamp: b.Header.FirstTimestamp,
				MaxTimestamp: b.Header.MaxTimestamp, ProducerID: b.Header.ProducerID,
				ProducerEpoch: b.Header.ProducerEpoch, BaseSequence: b.Header.BaseSequence,
				CRC: fmt.Sprintf("%08x", b.Header.CRC),
			}
			base, committed := offsetOf(extents, p.Batches, b)
			if store != nil {
				bj.Committed = &committed
				anyCommitted = anyCommitted || committed
			}
			if committed {
				last := base + int64(b.Header.LastOffsetDelta)
				bj.BaseOffset, bj.LastOffset = &base, &last
			}
			if withRecords {
				data := append([]byte(nil), b.Data...)
				recordbatch.SetBaseOffset(data, max(base, 0))
				recs, err := recordbatch.Records(data)
				if err != nil {
					return nil, fmt.Errorf("batch at byte %d: %w", b.ByteOffset, err)
				}
				for _, r := range recs {
					rj := Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: showBytes(r.Key), Value: showBytes(r.Value)}
					for _, h := range r.Headers {
						rj.Headers = append(rj.Headers, Header{Key: h.Key, Value: showBytes(h.Value)})
					}
					bj.RecordList = append(bj.RecordList, rj)
				}
			}
			pj.Batches = append(pj.Batches, bj)
		}
		out.Partitions = append(out.Partitions, pj)
	}
	if store != nil {
		out.Committed = &anyCommitted
	}
	return &out, nil
}

// offsetOf finds the offset the metadata store assigned to batch b, which
// lies in one of extents (all of the same partition and object) unless it
// was never committed (an orphaned object, or a duplicate the sequence
// checks dropped).
func offsetOf(extents []metastore.Extent, batches []segment.Batch, b segment.Batch) (int64, bool) {
	for _, e := range extents {
		if b.ByteOffset < e.ByteOffset || b.ByteOffset >= e.ByteOffset+e.ByteLength {
			continue
		}
		off := e.BaseOffset
		for _, o := range batches {
			if o.ByteOffset >= e.ByteOffset && o.ByteOffset < b.ByteOffset {
				off += int64(o.Header.LastOffsetDelta) + 1
			}
		}
		return off, true
	}
	return -1, false
}
