package protocol

// Helpers shared by the share-group APIs (76-79; KIP-932).

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/sharecoord"
)

// sharesOrErr returns the share-group runtime, or the code to answer when
// the agent runs none.
func (h *Handler) sharesOrErr() (*sharecoord.Coordinator, int16) {
	if h.cfg.Shares == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	return h.cfg.Shares, 0
}

// topicImage is the cluster's topics as share-group assignment sees them.
func (h *Handler) topicImage(ctx context.Context) (consumer.Image, error) {
	topics, err := h.store.Topics(ctx)
	if err != nil {
		return consumer.Image{}, err
	}
	image := make([]consumer.Topic, len(topics))
	for i, t := range topics {
		image[i] = consumer.Topic{ID: consumer.TopicID(t.ID), Name: t.Name, Partitions: t.Partitions}
	}
	return consumer.NewImage(image), nil
}

// batchesEnd is the offset after the last record of whole record batches
// (v2 format: base offset at 0, length at 8, last offset delta at 23), or
// from when there are none. A truncated trailing batch is ignored.
func batchesEnd(records []byte, from int64) int64 {
	end := from
	for len(records) >= 27 {
		size := int64(binary.BigEndian.Uint32(records[8:])) + 12
		if size < 27 || size > int64(len(records)) {
			break
		}
		base := int64(binary.BigEndian.Uint64(records))
		last := base + int64(int32(binary.BigEndian.Uint32(records[23:])))
		end = max(end, last+1)
		records = records[size:]
	}
	return end
}
