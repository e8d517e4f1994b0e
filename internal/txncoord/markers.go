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

// end ends a transaction: it has the control batches of every partition
// uploaded (one segment object, in the segment format, so that fetch, the
// jobs and floe inspect read it like any segment; shared with other ends
// that come together, see uploadMarkers) and commits them with the next
// record in one TxnStore.EndTxn step. If the step fails, the markers stay
// unreferenced bytes of their object, which the cleaner deletes once no
// end refers to it. It returns the new version.
func (c *Coordinator) end(ctx context.Context, id string, e *txn.Ending) (int64, error) {
	start := time.Now()
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	te := metastore.TxnEnd{Next: e.Next, ProducerID: e.ProducerID, Commit: e.Commit, Groups: e.Groups}
	if len(e.Partitions) > 0 {
		commit, err := c.uploadMarkers(e)
		if err != nil {
			return 0, fmt.Errorf("upload the markers of transaction %q: %w", id, err)
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

// maxRoundMarkers bounds the control batches of one markers object; an
// end that would pass it starts the next object.
const maxRoundMarkers = 10_000

// markerRound is one markers object being gathered and uploaded: the
// ends that joined it, and once done, each one's commit (the shared
// object, its own batches) or the upload's error.
type markerRound struct {
	ends    []*txn.Ending
	markers int
	commits []metastore.SegmentCommit
	err     error
	done    chan struct{} // closed when uploaded (or failed)
}

// uploadMarkers uploads e's control batches in one object with those of
// the other ends that arrive within Options.MarkerGather of the first:
// ends that come together (the producers acknowledged by one segment
// commit, which send their EndTxn at once) cost one PUT, not one each.
// The first end of a round waits the window, then uploads; the others
// wait for it. Each end still commits its own markers in its own store
// step: the object is shared, the atomicity of each end is not.
func (c *Coordinator) uploadMarkers(e *txn.Ending) (metastore.SegmentCommit, error) {
	c.gatherMu.Lock()
	r := c.gathering
	lead := r == nil || r.markers+len(e.Partitions) > maxRoundMarkers
	if lead {
		r = &markerRound{done: make(chan struct{})}
		c.gathering = r
	}
	i := len(r.ends)
	r.ends = append(r.ends, e)
	r.markers += len(e.Partitions)
	c.gatherMu.Unlock()
	if lead {
		if d := c.opts.MarkerGather; d > 0 {
			time.Sleep(d)
		}
		c.gatherMu.Lock()
		if c.gathering == r {
			c.gathering = nil
		}
		c.gatherMu.Unlock()
		c.putRound(r)
	}
	// The leader's upload runs under WriteTimeout: this wait is bounded.
	<-r.done
	if r.err != nil {
		return metastore.SegmentCommit{}, r.err
	}
	return r.commits[i], nil
}

// putRound builds and uploads the object of r's control batches and
// gives each end its commit.
func (c *Coordinator) putRound(r *markerRound) {
	defer close(r.done)
	object, commits := c.markers(r.ends)
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.WriteTimeout)
	defer cancel()
	if err := c.bucket.Put(ctx, commits[0].Object, object); err != nil {
		r.err = err
		return
	}
	c.metrics.markerObject(len(r.ends))
	if c.opts.Uploaded != nil {
		c.opts.Uploaded(commits[0].Object, object)
	}
	r.commits = commits
}

// markers builds one object of the control batches of ends, each end's
// in its Partitions' order, and each end's commit: the object's key and
// size, and its own batches.
func (c *Coordinator) markers(ends []*txn.Ending) ([]byte, []metastore.SegmentCommit) {
	ts := c.opts.Now().UnixMilli()
	b := segment.NewBuilder()
	for _, e := range ends {
		for _, tp := range e.Partitions {
			name := ""
			if c.opts.TopicName != nil {
				name = c.opts.TopicName(tp.TopicID)
			}
			b.Add(tp.TopicID, name, tp.Partition, recordbatch.BuildMarker(recordbatch.Marker{
				ProducerID: e.ProducerID, ProducerEpoch: e.MarkerEpoch, Commit: e.Commit, Timestamp: ts,
			}))
		}
	}
	object, placements := b.Build()
	key := segment.NewKey()
	commits := make([]metastore.SegmentCommit, len(ends))
	k := 0
	for i, e := range ends {
		commits[i] = metastore.SegmentCommit{Object: key, Size: int64(len(object)), Batches: make([]metastore.BatchCommit, len(e.Partitions))}
		for j := range e.Partitions {
			p := placements[k]
			k++
			commits[i].Batches[j] = metastore.BatchCommit{
				TopicID: p.TopicID, Partition: p.Partition, ByteOffset: p.ByteOffset, ByteLength: p.ByteLength,
				OffsetCount: 1, MaxTimestamp: ts,
				ProducerID: e.ProducerID, ProducerEpoch: e.MarkerEpoch, BaseSequence: -1, Transactional: true,
			}
		}
	}
	return object, commits
}
