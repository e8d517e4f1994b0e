package protocol_test

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/recordbatch"
)

// TestProduceTopicRewrites: a LogAppendTime topic answers the time it
// stamped (log_append_time_ms) and ignores the timestamp bounds, as Kafka
// does; a CreateTime topic answers -1. A batch whose CRC is right but
// whose records do not decode is CORRUPT_MESSAGE on a topic that
// recompresses it.
func TestProduceTopicRewrites(t *testing.T) {
	f := start(t)
	f.createTopic("create-time", 1)
	f.createTopic("append-time", 1, "message.timestamp.type", "LogAppendTime", "message.timestamp.before.max.ms", "1000")
	f.createTopic("zstd", 1, "compression.type", "zstd")
	before := time.Now().UnixMilli()
	p := do[*kmsg.ProduceResponse](f, 9, produceRequest("append-time", 0, batch(3, 1000))).Topics[0].Partitions[0]
	expectCode(t, "append-time", p.ErrorCode, 0)
	if p.LogAppendTime < before || p.LogAppendTime > time.Now().UnixMilli() {
		t.Errorf("log_append_time_ms %d, want the agent's time around %d", p.LogAppendTime, before)
	}
	p = do[*kmsg.ProduceResponse](f, 9, produceRequest("create-time", 0, batch(3, 1000))).Topics[0].Partitions[0]
	expectCode(t, "create-time", p.ErrorCode, 0)
	if p.LogAppendTime != -1 {
		t.Errorf("CreateTime topic: log_append_time_ms %d, want -1", p.LogAppendTime)
	}
	// Two records claimed, bytes for one: the CRC is recomputed, so only
	// decoding the records finds it.
	bad := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Gzip},
		recordbatch.Record{Value: []byte("a")}, recordbatch.Record{Value: []byte("b")})
	short := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Gzip}, recordbatch.Record{Value: []byte("a")})
	copy(bad[recordbatch.HeaderSize:], short[recordbatch.HeaderSize:])
	bad = bad[:len(short)]
	binary.BigEndian.PutUint32(bad[8:], uint32(len(bad)-12))
	binary.BigEndian.PutUint32(bad[17:], crc32.Checksum(bad[21:], crc32.MakeTable(crc32.Castagnoli)))
	p = do[*kmsg.ProduceResponse](f, 9, produceRequest("zstd", 0, bad)).Topics[0].Partitions[0]
	expectCode(t, "zstd topic, records short of their count", p.ErrorCode, kerr.CorruptMessage.Code)
	if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "recompress") {
		t.Errorf("error message %v, want it to come from recompression", p.ErrorMessage)
	}
}

// TestProduceZstdNeedsV7: zstd batches in Produce v3-v6 are
// UNSUPPORTED_COMPRESSION_TYPE, as in Kafka (KIP-110); v7 takes them.
func TestProduceZstdNeedsV7(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	zstd := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Zstd}, recordbatch.Record{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	lz4 := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.LZ4}, recordbatch.Record{Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	for _, tc := range []struct {
		version int16
		records []byte
		want    int16
	}{
		{6, zstd, kerr.UnsupportedCompressionType.Code},
		{3, zstd, kerr.UnsupportedCompressionType.Code},
		{6, lz4, 0},
		{7, zstd, 0},
	} {
		p := do[*kmsg.ProduceResponse](f, tc.version, produceRequest("t", 0, tc.records)).Topics[0].Partitions[0]
		expectCode(t, "produce v"+strconv.Itoa(int(tc.version)), p.ErrorCode, tc.want)
	}
}
