package protocol

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
)

// zstdBatch reports whether records start with a zstd batch: Kafka
// refuses zstd in Produce before v7 (KIP-110) with
// UNSUPPORTED_COMPRESSION_TYPE, since a client that old could not have
// asked for it knowingly. Only the header is read; whatever else is wrong
// with the batch is validateBatches' to find.
func zstdBatch(records []byte) bool {
	h, err := recordbatch.ParseHeader(records)
	return err == nil && h.Compression() == recordbatch.Zstd
}

// zstdForOldFetch answers a Fetch below v10 (KIP-110) for a partition
// that would give zstd to a client too old to read it:
// UNSUPPORTED_COMPRESSION_TYPE and no records, as Kafka does for a topic
// whose compression.type is zstd. Floe stores batches as producers sent
// them, so a topic of compression.type producer can hold zstd batches
// too: those are refused the same way, when one is in the answer.
func zstdForOldFetch(t metastore.Topic, pr *kmsg.FetchResponseTopicPartition) {
	if pr.ErrorCode != 0 {
		return
	}
	if codec, _ := config.TopicValue(t.Configs, "compression.type"); codec != "zstd" && !anyZstd(pr.RecordBatches) {
		return
	}
	pr.ErrorCode = kerr.UnsupportedCompressionType.Code
	pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = -1, -1, -1
	pr.RecordBatches, pr.AbortedTransactions = nil, nil
}

// anyZstd reports whether a zstd batch is among records, concatenated
// batches whose last may be cut short. Only headers are read; each step
// moves past one whole batch, so the loop ends.
func anyZstd(records []byte) bool {
	for len(records) >= recordbatch.HeaderSize {
		h, err := recordbatch.ParseHeader(records)
		if err != nil {
			return false
		}
		if h.Compression() == recordbatch.Zstd {
			return true
		}
		if h.Size() > len(records) {
			return false
		}
		records = records[h.Size():]
	}
	return false
}
