package produce

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/recordbatch"
)

// Rewrite is what a topic's configs ask the agent to change in a batch
// before it is stored, as a Kafka broker's log validator does:
// compression.type (with its levels) and message.timestamp.type.
type Rewrite struct {
	// Recompress is set when compression.type is not producer; batches
	// of another codec are recompressed to Codec.
	Recompress bool
	Codec      recordbatch.Codec
	Levels     recordbatch.Levels
	// LogAppendTime is message.timestamp.type=LogAppendTime.
	LogAppendTime bool
}

// TopicRewrite reads a topic's configs (validated when they were set).
func TopicRewrite(configs map[string]string) Rewrite {
	var r Rewrite
	codec, _ := config.TopicValue(configs, "compression.type")
	switch codec {
	case "uncompressed":
		r.Recompress, r.Codec = true, recordbatch.None
	case "gzip":
		r.Recompress, r.Codec = true, recordbatch.Gzip
	case "snappy":
		r.Recompress, r.Codec = true, recordbatch.Snappy
	case "lz4":
		r.Recompress, r.Codec = true, recordbatch.LZ4
	case "zstd":
		r.Recompress, r.Codec = true, recordbatch.Zstd
	}
	level := func(name string) int {
		v, _ := config.TopicValue(configs, name)
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		return n
	}
	r.Levels = recordbatch.Levels{Gzip: level("compression.gzip.level"), LZ4: level("compression.lz4.level"), Zstd: level("compression.zstd.level")}
	ts, _ := config.TopicValue(configs, "message.timestamp.type")
	r.LogAppendTime = ts == "LogAppendTime"
	return r
}

// Needed reports whether Apply may change anything.
func (r Rewrite) Needed() bool { return r.Recompress || r.LogAppendTime }

// Apply returns the batch b (validated, with header h) as the topic
// stores it: recompressed when its codec differs from the topic's, and
// stamped with nowMs when the topic uses LogAppendTime. b itself may be
// changed. A batch whose records do not decode is an ErrCorrupt.
func (r Rewrite) Apply(b []byte, h recordbatch.Header, nowMs int64) ([]byte, error) {
	if r.Recompress && h.Compression() != r.Codec {
		nb, err := recordbatch.Recompress(b, r.Codec, r.Levels)
		if err != nil {
			return nil, fmt.Errorf("recompress %s batch to %s: %w", h.Compression(), r.Codec, err)
		}
		b = nb
	}
	if r.LogAppendTime {
		recordbatch.SetLogAppendTime(b, nowMs)
	}
	return b, nil
}

// AppendTime returns the time Apply stamped on the first of batches, or
// -1 when the topic keeps its producers' timestamps: what
// ProduceResponse's log_append_time_ms reports.
func (r Rewrite) AppendTime(batches [][]byte) int64 {
	if !r.LogAppendTime || len(batches) == 0 {
		return -1
	}
	h, err := recordbatch.ParseHeader(batches[0])
	if err != nil || !h.IsLogAppendTime() {
		return -1
	}
	return h.MaxTimestamp
}
