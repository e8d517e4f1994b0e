package protocol

// Helpers shared by the share-group APIs (76-79; KIP-932).

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/wire"
)

// sharesOrErr returns the share-group runtime, or the code to answer when
// the agent runs none.
func (h *Handler) sharesOrErr() (*sharecoord.Coordinator, int16) {
	if h.cfg.Shares == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	return h.cfg.Shares, 0
}

// shareMember checks what ShareFetch and ShareAcknowledge check before
// anything else: share groups are served here, the group and member ids
// are set (INVALID_REQUEST) and the client may read the group
// (GROUP_AUTHORIZATION_FAILED). A non-zero code, with msg, answers the
// request.
func (h *Handler) shareMember(req *wire.Request, groupID, memberID *string) (co *sharecoord.Coordinator, group, member string, code int16, msg *string) {
	co, code = h.sharesOrErr()
	if code != 0 {
		return nil, "", "", code, nil
	}
	group, member = deref(groupID), deref(memberID)
	switch {
	case group == "" || member == "":
		return nil, "", "", kerr.InvalidRequest.Code, strPtr("GroupId and MemberId must be set.")
	case !h.allowed(req, acl.Read, acl.Group, group):
		return nil, "", "", kerr.GroupAuthorizationFailed.Code, nil
	}
	return co, group, member, 0, nil
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

// batchBounds lists the whole v2 record batches of records: their first
// and last offsets and where each ends. A truncated trailing batch is
// left out, as batchesEnd does.
func batchBounds(records []byte) []sharecoord.Batch {
	var out []sharecoord.Batch
	pos := 0
	for len(records)-pos >= 27 {
		b := records[pos:]
		size := int64(binary.BigEndian.Uint32(b[8:])) + 12
		if size < 27 || size > int64(len(b)) {
			break
		}
		base := int64(binary.BigEndian.Uint64(b))
		last := base + int64(int32(binary.BigEndian.Uint32(b[23:])))
		pos += int(size)
		out = append(out, sharecoord.Batch{First: base, Last: last, End: pos})
	}
	return out
}

// uncommitted lists the offsets of records (whole v2 batches) that a
// read_committed share group must never hand out: transaction markers
// (control batches) and the batches of aborted transactions, a
// transactional batch being aborted when an aborted transaction of its
// producer spans its base offset. aborted is sorted by FirstOffset (as
// fetch.Partition.Aborted); one pass over both, as a consumer does. The
// spans are sorted and merged.
func uncommitted(records []byte, aborted []metastore.AbortedTxn) []sharepart.Span {
	var skip []sharepart.Span
	// open maps a producer to the last offset of its latest aborted
	// transaction begun at or before the current batch.
	open := map[int64]int64{}
	for len(records) >= recordbatch.HeaderSize {
		h, err := recordbatch.ParseHeader(records)
		if err != nil || h.Size() > len(records) {
			break
		}
		records = records[h.Size():]
		for len(aborted) > 0 && aborted[0].FirstOffset <= h.BaseOffset {
			open[aborted[0].ProducerID] = aborted[0].LastOffset
			aborted = aborted[1:]
		}
		last, isOpen := open[h.ProducerID]
		if !h.IsControl() && !(h.IsTransactional() && isOpen && h.BaseOffset <= last) {
			continue
		}
		first, end := h.BaseOffset, h.BaseOffset+int64(h.LastOffsetDelta)
		if n := len(skip); n > 0 && skip[n-1].Last+1 >= first {
			skip[n-1].Last = max(skip[n-1].Last, end)
			continue
		}
		skip = append(skip, sharepart.Span{First: first, Last: end})
	}
	return skip
}
