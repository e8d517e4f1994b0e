package protocol

import "github.com/floe-io/floe/internal/recordbatch"

// zstdBatch reports whether records start with a zstd batch: Kafka
// refuses zstd in Produce before v7 (KIP-110) with
// UNSUPPORTED_COMPRESSION_TYPE, since a client that old could not have
// asked for it knowingly. Only the header is read; whatever else is wrong
// with the batch is validateBatches' to find.
func zstdBatch(records []byte) bool {
	h, err := recordbatch.ParseHeader(records)
	return err == nil && h.Compression() == recordbatch.Zstd
}
