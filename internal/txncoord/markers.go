package txncoord

import (
	"context"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
	"github.com/floe-io/floe/internal/txn"
)

// end ends a transaction: it uploads one segment object holding a control
// batch per partition (the segment format, so that fetch, the jobs and
// floe inspect read it like any segment) and commits it with the next
// record in one TxnStore.EndTxn step. If the step fails, the object stays
// unreferenced and the cleaner deletes it. It returns the new version.
func (c *Coordinator) end(ctx context.Context, id string, e *txn.Ending) (int64, error) {
	start := time.Now()
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	te := metastore.TxnEnd{Next: e.Next, ProducerID: e.ProducerID, Commit: e.Commit, Groups: e.Groups}
	if len(e.Partitions) > 0 {
		object, commit := c.markers(e)
		if err := c.bucket.Put(wctx, commit.Object, object); err != nil {
			return 0, fmt.Errorf("upload the markers of transaction %q: %w", id, err)
		}
		if c.opts.Uploaded != nil {
			c.opts.Uploaded(commit.Object, object)
		}
		te.Markers = commit
	}
	res, err := c.store.EndTxn(wctx, te)
	if err != nil {
		return 0, fmt.Errorf("end transaction %q at version %d: %w", id, e.Next.Version, err)
	}
	c.metrics.ended(e.Reason, time.Since(start))
	level := slogLevel(e.Reason)
	c.log.Log(ctx, level, "transaction ended", "transactional_id", id, "reason", e.Reason, "commit", e.Commit,
		"producer_id", e.ProducerID, "marker_epoch", e.MarkerEpoch, "partitions", len(e.Partitions), "groups", len(e.Groups),
		"markers", te.Markers.Object, "next_producer_id", e.Next.ProducerID, "next_epoch", e.Next.ProducerEpoch)
	return res.Version, nil
}

// markers builds the object of e's control batches and its commit, one
// batch per partition in e.Partitions' order.
func (c *Coordinator) markers(e *txn.Ending) ([]byte, metastore.SegmentCommit) {
	ts := c.opts.Now().UnixMilli()
	b := segment.NewBuilder()
	for _, tp := range e.Partitions {
		name := ""
		if c.opts.TopicName != nil {
			name = c.opts.TopicName(tp.TopicID)
		}
		b.Add(tp.TopicID, name, tp.Partition, recordbatch.BuildMarker(recordbatch.Marker{
			ProducerID: e.ProducerID, ProducerEpoch: e.MarkerEpoch, Commit: e.Commit, Timestamp: ts,
		}))
	}
	object, placements := b.Build()
	commit := metastore.SegmentCommit{Object: segment.NewKey(), Size: int64(len(object)), Batches: make([]metastore.BatchCommit, len(placements))}
	for i, p := range placements {
		commit.Batches[i] = metastore.BatchCommit{
			TopicID: p.TopicID, Partition: p.Partition, ByteOffset: p.ByteOffset, ByteLength: p.ByteLength,
			OffsetCount: 1, MaxTimestamp: ts,
			ProducerID: e.ProducerID, ProducerEpoch: e.MarkerEpoch, BaseSequence: -1, Transactional: true,
		}
	}
	return object, commit
}
