package protocol

import (
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

// zstdTopic reports whether a Fetch below v10 (KIP-110) of the topic's
// partitions is answered UNSUPPORTED_COMPRESSION_TYPE with no records, as
// Kafka does: its compression.type is zstd. Like Kafka, it looks at the
// topic's config, not at the batches: a topic of compression.type
// producer may hold zstd batches, which are returned at any version
// (kafka-python 2.0.2 fetches at v4 and reads the zstd it produced).
func zstdTopic(t metastore.Topic) bool {
	codec, _ := config.TopicValue(t.Configs, "compression.type")
	return codec == "zstd"
}
