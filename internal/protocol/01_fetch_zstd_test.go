package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/recordbatch"
)

// TestFetchZstdBelowV10: below v10 (KIP-110) a partition of a topic whose
// compression.type is zstd answers UNSUPPORTED_COMPRESSION_TYPE with no
// records; v10+ reads it. As in Kafka, the check is the topic's config:
// zstd batches a producer sent to a topic of compression.type producer
// are returned at every version.
func TestFetchZstdBelowV10(t *testing.T) {
	f := start(t)
	f.createTopic("mixed", 1)
	f.createTopic("zstd-config", 1, "compression.type", "zstd")
	f.createTopic("plain", 1)
	build := func(c recordbatch.Codec) []byte {
		return recordbatch.Build(recordbatch.BuildOptions{Codec: c, FirstTimestamp: 1000},
			recordbatch.Record{Value: []byte("aaaaaaaaaaaaaaaa"), Timestamp: 1000}, recordbatch.Record{Value: []byte("bbbbbbbbbbbbbbbb"), Timestamp: 1001})
	}
	produce := func(topic string, c recordbatch.Codec) {
		t.Helper()
		resp := do[*kmsg.ProduceResponse](f, 9, produceRequest(topic, 0, build(c)))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %s to %s: %s", c, topic, codeName(code))
		}
	}
	produce("mixed", recordbatch.Gzip) // offsets 0-1
	produce("mixed", recordbatch.Zstd) // offsets 2-3
	produce("zstd-config", recordbatch.None)
	produce("plain", recordbatch.LZ4)

	for _, tc := range []struct {
		topic    string
		offset   int64
		version  int16
		wantCode int16
	}{
		{"mixed", 0, 9, 0}, // the zstd batch is in the answer
		{"mixed", 2, 4, 0},
		{"mixed", 0, 10, 0},
		{"mixed", 2, 12, 0},
		{"zstd-config", 0, 9, kerr.UnsupportedCompressionType.Code},
		{"zstd-config", 0, 4, kerr.UnsupportedCompressionType.Code},
		{"zstd-config", 0, 10, 0},
		{"plain", 0, 4, 0},
		{"plain", 0, 9, 0},
	} {
		req := fetchRequest(tc.topic, 0, tc.offset)
		resp := do[*kmsg.FetchResponse](f, tc.version, req)
		p := resp.Topics[0].Partitions[0]
		expectCode(t, tc.topic+" partition", p.ErrorCode, tc.wantCode)
		if tc.wantCode != 0 {
			if len(p.RecordBatches) != 0 || p.HighWatermark != -1 {
				t.Errorf("%s v%d: %d bytes of records and high watermark %d with the error, want none and -1", tc.topic, tc.version, len(p.RecordBatches), p.HighWatermark)
			}
			continue
		}
		if len(p.RecordBatches) == 0 {
			t.Errorf("%s v%d from %d: no records", tc.topic, tc.version, tc.offset)
		}
	}
}
