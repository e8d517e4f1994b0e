package jobs_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// retention.ms: once every record is older, the log start offset reaches
// the high watermark, ListOffsets earliest says so, and the segments
// leave the bucket only after file.delete.delay.ms.
func TestRetentionByTime(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	adm := admin(t, a.Addr())
	createTopic(t, adm, "by-time", 1, map[string]*string{
		"retention.ms": ptr("1500"), "file.delete.delay.ms": ptr("3000"),
	})
	last := produce(t, a.Addr(), "by-time", 5, "old")
	segs := objectsOf(t, a.Bucket)
	if len(segs) != 5 {
		t.Fatalf("%d segments in the bucket, want 5", len(segs))
	}
	waitFor(t, 20*time.Second, "retention by time", func() bool { return offsetsOf(t, a, "by-time").LogStartOffset == last+1 })
	moved := time.Now()
	starts, err := adm.ListStartOffsets(t.Context(), "by-time")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("by-time", 0); o.Err != nil || o.Offset != last+1 {
		t.Fatalf("ListOffsets earliest = %+v, want %d", o, last+1)
	}
	// Unreferenced, not yet deleted: a fetch that read the extents may
	// still be reading them.
	if got := objectsOf(t, a.Bucket); len(got) != 5 {
		t.Fatalf("segments deleted before file.delete.delay.ms: %d left", len(got))
	}
	waitFor(t, 20*time.Second, "segments deleted", func() bool { return len(objectsOf(t, a.Bucket)) == 0 })
	if d := time.Since(moved); d < 2*time.Second {
		t.Errorf("segments deleted %v after retention, before file.delete.delay.ms (3s)", d)
	}
	// The partition goes on from the high watermark.
	if next := produce(t, a.Addr(), "by-time", 1, "new"); next != last+1 {
		t.Errorf("next offset %d, want %d", next, last+1)
	}
}

// retention.bytes: the oldest extents go while the partition would still
// hold at least retention.bytes without them.
func TestRetentionBySize(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	adm := admin(t, a.Addr())
	const limit = 400
	createTopic(t, adm, "by-size", 1, map[string]*string{"retention.bytes": ptr("400")})
	last := produce(t, a.Addr(), "by-size", 15, "sized")
	tp, err := a.Store.Topic(t.Context(), "by-size")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "retention by size", func() bool {
		us, err := a.Store.PartitionUsage(t.Context(), tp.ID)
		if err != nil {
			t.Fatal(err)
		}
		u := us[0]
		return u.LogStartOffset > 0 && u.Bytes-u.First.ByteLength < limit
	})
	us, _ := a.Store.PartitionUsage(t.Context(), tp.ID)
	u := us[0]
	// The log start is in the first extent: at its base, or inside it
	// when segment compaction merged extents between retention's reading
	// and its AdvanceLogStart (the merged extent then counts whole).
	if u.Bytes < limit || u.HighWatermark != last+1 || u.LogStartOffset < u.First.BaseOffset || u.LogStartOffset >= u.First.EndOffset {
		t.Fatalf("after retention.bytes=%d: %+v", limit, u)
	}
	t.Logf("retention.bytes=%d kept %d extents, %d bytes, from offset %d", limit, u.Extents, u.Bytes, u.LogStartOffset)
	// Retention and compaction keep running: a retention decided before
	// a compaction may still move the log start after the state above
	// (into the compacted extent). The consumer starts at the log start
	// of its moment, between the two readings.
	off, _ := consumeFrom(t, a.Addr(), "by-size", 0, kgo.NewOffset().AtStart())
	after, _ := a.Store.PartitionUsage(t.Context(), tp.ID)
	if off < u.LogStartOffset || off > after[0].LogStartOffset {
		t.Errorf("consumer reset to earliest read offset %d, want the log start, %d before and %d after", off, u.LogStartOffset, after[0].LogStartOffset)
	}
}

// DeleteRecords through kadm: the low watermark moves, never backwards,
// not beyond the high watermark; fetches below it are out of range and
// consumers reset as configured.
func TestDeleteRecords(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	adm := admin(t, a.Addr())
	createTopic(t, adm, "dr", 1, nil)
	last := produce(t, a.Addr(), "dr", 10, "v")

	del := func(at int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: at, LeaderEpoch: -1})
		resp, err := adm.DeleteRecords(t.Context(), os)
		if err != nil {
			t.Fatalf("DeleteRecords(%d): %v", at, err)
		}
		r, ok := resp.Lookup("dr", 0)
		if !ok {
			t.Fatalf("DeleteRecords(%d): no answer for dr/0", at)
		}
		return r
	}
	// Another agent reads the partition first, caching its extents and
	// offsets; the deletion must reach its cache too.
	peer := agenttest.StartPeer(t, a, agenttest.Options{})
	rc := testutil.Dial(t, peer.Addr())
	fetch := func(offset int64) kmsg.FetchResponseTopicPartition {
		fr := kmsg.NewPtrFetchRequest()
		fr.SetVersion(11)
		fr.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "dr"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset = offset, 1<<20, -1
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		return rc.Do(fr).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}
	for _, off := range []int64{0, 3} {
		if p := fetch(off); p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
			t.Fatalf("fetch at %d before DeleteRecords: error %d", off, p.ErrorCode)
		}
	}

	if r := del(4); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords(4) = %+v, want low watermark 4", r)
	}
	if r := del(2); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("DeleteRecords(2) after 4 = %+v, want low watermark 4 kept", r)
	}
	if r := del(last + 2); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("DeleteRecords beyond the high watermark = %+v, want OFFSET_OUT_OF_RANGE", r)
	}
	starts, err := adm.ListStartOffsets(t.Context(), "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("dr", 0); o.Offset != 4 {
		t.Fatalf("ListOffsets earliest = %d, want 4", o.Offset)
	}

	// A fetch below the log start: OFFSET_OUT_OF_RANGE with the log
	// start offset; at it: the batch holding it.
	if p := fetch(3); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 4 || p.HighWatermark != last+1 {
		t.Fatalf("fetch at 3 below log start 4: error %d, log start %d, hwm %d", p.ErrorCode, p.LogStartOffset, p.HighWatermark)
	}
	if p := fetch(4); p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.LogStartOffset != 4 {
		t.Fatalf("fetch at 4: error %d, %d bytes, log start %d", p.ErrorCode, len(p.RecordBatches), p.LogStartOffset)
	}

	// Consumers at an expired offset reset as configured.
	if off, val := consumeFrom(t, a.Addr(), "dr", 0, kgo.NewOffset().AtStart()); off != 4 || val != "v-4" {
		t.Errorf("reset to earliest: first record %d %q, want 4 v-4", off, val)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				produce(t, a.Addr(), "dr", 1, "late")
			}
		}
	})
	off, val := consumeFrom(t, a.Addr(), "dr", 1, kgo.NewOffset().AtEnd())
	close(stop)
	wg.Wait()
	if off <= last || val != "late-0" {
		t.Errorf("reset to latest: first record %d %q, want one produced after offset %d", off, val, last)
	}

	// -1: everything up to the high watermark; the segments go after the
	// delete delay, later ones stay.
	before := objectsOf(t, a.Bucket)
	hwm := offsetsOf(t, a, "dr").HighWatermark
	if r := del(-1); r.Err != nil || r.LowWatermark != hwm {
		t.Fatalf("DeleteRecords(-1) = %+v, want low watermark %d", r, hwm)
	}
	waitFor(t, 20*time.Second, "deleted records' segments removed", func() bool {
		return len(objectsOf(t, a.Bucket)) == 0
	})
	produce(t, a.Addr(), "dr", 1, "after")
	after := objectsOf(t, a.Bucket)
	if len(after) != 1 || slices.Contains(before, after[0]) {
		t.Fatalf("bucket after DeleteRecords(-1) and one more record: %v", after)
	}
}
