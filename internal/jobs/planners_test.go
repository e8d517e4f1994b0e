package jobs_test

import (
	"testing"
	"time"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

var now = time.UnixMilli(1_700_000_100_000)

// ext is an extent [base, end) of n bytes whose newest record is age old.
func ext(base, end, n int64, age time.Duration) metastore.Extent {
	return metastore.Extent{BaseOffset: base, EndOffset: end, ByteLength: n, MaxTimestamp: now.Add(-age).UnixMilli()}
}

func usage(logStart, hwm int64, es []metastore.Extent) metastore.PartitionUsage {
	u := metastore.PartitionUsage{PartitionOffsets: metastore.PartitionOffsets{LogStartOffset: logStart, HighWatermark: hwm}, Extents: int64(len(es))}
	for _, e := range es {
		u.Bytes += e.ByteLength
	}
	if len(es) > 0 {
		u.First = es[0]
	}
	return u
}

func TestPlanRetention(t *testing.T) {
	three := []metastore.Extent{ext(0, 10, 100, 3*time.Hour), ext(10, 20, 100, 2*time.Hour), ext(20, 30, 100, time.Hour)}
	hour := int64(time.Hour / time.Millisecond)
	cases := []struct {
		name     string
		logStart int64
		extents  []metastore.Extent
		policy   jobs.RetentionPolicy
		want     jobs.RetentionDecision
		due      bool
	}{
		{"unlimited", 0, three, jobs.RetentionPolicy{Delete: true, Ms: -1, Bytes: -1}, jobs.RetentionDecision{LogStart: 0}, false},
		{"compact only", 0, three, jobs.RetentionPolicy{Delete: false, Ms: 0, Bytes: 0}, jobs.RetentionDecision{LogStart: 0}, false},
		{"by time", 0, three, jobs.RetentionPolicy{Delete: true, Ms: 90 * 60 * 1000, Bytes: -1}, jobs.RetentionDecision{LogStart: 20, Extents: 2, Bytes: 200}, true},
		{"exactly retention.ms old stays", 0, three, jobs.RetentionPolicy{Delete: true, Ms: 3 * hour, Bytes: -1}, jobs.RetentionDecision{LogStart: 0}, false},
		{"everything expired", 0, three, jobs.RetentionPolicy{Delete: true, Ms: 1, Bytes: -1}, jobs.RetentionDecision{LogStart: 30, Extents: 3, Bytes: 300}, true},
		{"stops at the first young extent", 0, []metastore.Extent{ext(0, 10, 100, 3*time.Hour), ext(10, 20, 100, 0), ext(20, 30, 100, 3*time.Hour)},
			jobs.RetentionPolicy{Delete: true, Ms: hour, Bytes: -1}, jobs.RetentionDecision{LogStart: 10, Extents: 1, Bytes: 100}, true},
		{"by size keeps at least retention.bytes", 0, three, jobs.RetentionPolicy{Delete: true, Ms: -1, Bytes: 150}, jobs.RetentionDecision{LogStart: 10, Extents: 1, Bytes: 100}, true},
		{"size exactly at the limit stays", 0, three, jobs.RetentionPolicy{Delete: true, Ms: -1, Bytes: 300}, jobs.RetentionDecision{LogStart: 0}, false},
		{"size 0 drops all", 0, three, jobs.RetentionPolicy{Delete: true, Ms: -1, Bytes: 0}, jobs.RetentionDecision{LogStart: 30, Extents: 3, Bytes: 300}, true},
		{"time then size", 0, three, jobs.RetentionPolicy{Delete: true, Ms: 150 * 60 * 1000, Bytes: 100}, jobs.RetentionDecision{LogStart: 20, Extents: 2, Bytes: 200}, true},
		{"straddling log start counts whole", 15, three[1:], jobs.RetentionPolicy{Delete: true, Ms: 90 * 60 * 1000, Bytes: -1}, jobs.RetentionDecision{LogStart: 20, Extents: 1, Bytes: 100}, true},
		{"young straddling extent keeps the log start", 15, three[2:], jobs.RetentionPolicy{Delete: true, Ms: 90 * 60 * 1000, Bytes: -1}, jobs.RetentionDecision{LogStart: 15}, false},
		{"empty", 30, nil, jobs.RetentionPolicy{Delete: true, Ms: 0, Bytes: 0}, jobs.RetentionDecision{LogStart: 30}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := usage(tc.logStart, 30, tc.extents)
			if got := jobs.PlanRetention(u, tc.extents, tc.policy, now); got != tc.want {
				t.Errorf("PlanRetention = %+v, want %+v", got, tc.want)
			}
			if due, _ := jobs.RetentionDue(u, tc.policy, now); due != tc.due {
				t.Errorf("RetentionDue = %v, want %v", due, tc.due)
			}
		})
	}
}

func TestRetentionWithoutTimestamps(t *testing.T) {
	// Batches without timestamps (-1) age from their commit.
	e := metastore.Extent{BaseOffset: 0, EndOffset: 1, ByteLength: 10, MaxTimestamp: -1, CommittedAt: now.Add(-time.Hour)}
	p := jobs.RetentionPolicy{Delete: true, Ms: 1000, Bytes: -1}
	if d := jobs.PlanRetention(usage(0, 1, []metastore.Extent{e}), []metastore.Extent{e}, p, now); d.LogStart != 1 {
		t.Errorf("extent without timestamps committed an hour ago: %+v, want dropped", d)
	}
}

func TestTopicRetention(t *testing.T) {
	cases := []struct {
		configs map[string]string
		want    jobs.RetentionPolicy
	}{
		{nil, jobs.RetentionPolicy{Delete: true, Ms: 604800000, Bytes: -1}},
		{map[string]string{"retention.ms": "1000", "retention.bytes": "5"}, jobs.RetentionPolicy{Delete: true, Ms: 1000, Bytes: 5}},
		{map[string]string{"cleanup.policy": "compact"}, jobs.RetentionPolicy{Delete: false, Ms: 604800000, Bytes: -1}},
		{map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "-1"}, jobs.RetentionPolicy{Delete: true, Ms: -1, Bytes: -1}},
	}
	for _, tc := range cases {
		if got := jobs.TopicRetention(tc.configs); got != tc.want {
			t.Errorf("TopicRetention(%v) = %+v, want %+v", tc.configs, got, tc.want)
		}
	}
}

func TestDeleteDelay(t *testing.T) {
	topic := func(delay string) metastore.Topic {
		if delay == "" {
			return metastore.Topic{}
		}
		return metastore.Topic{Configs: map[string]string{"file.delete.delay.ms": delay}}
	}
	cases := []struct {
		name   string
		topics []metastore.Topic
		want   time.Duration
	}{
		{"no topics: the default", nil, time.Minute},
		{"every topic short", []metastore.Topic{topic("1000"), topic("500")}, time.Second},
		{"one topic on the default", []metastore.Topic{topic("1000"), topic("")}, time.Minute},
		{"longer than the default", []metastore.Topic{topic("120000")}, 2 * time.Minute},
	}
	for _, tc := range cases {
		if got := jobs.DeleteDelay(tc.topics, time.Minute); got != tc.want {
			t.Errorf("%s: DeleteDelay = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPlanOrphans(t *testing.T) {
	listed := []objstore.ObjectInfo{
		{Key: "segments/known-old", Modified: now.Add(-2 * time.Hour)},
		{Key: "segments/orphan-old", Modified: now.Add(-2 * time.Hour)},
		{Key: "segments/orphan-young", Modified: now.Add(-time.Minute)},
		{Key: "segments/orphan-at-grace", Modified: now.Add(-time.Hour)},
		{Key: "other/old", Modified: now.Add(-2 * time.Hour)},
	}
	known := map[string]bool{"segments/known-old": true}
	del, pending := jobs.PlanOrphans(listed, known, []string{"segments/"}, now, time.Hour)
	if len(del) != 1 || del[0].Key != "segments/orphan-old" || pending != 2 {
		t.Errorf("PlanOrphans = %v, %d pending; want only segments/orphan-old, 2 pending", del, pending)
	}
}

func TestDirtyRatio(t *testing.T) {
	bases := []int64{0, 10, 20, 30}
	sizes := []int64{100, 100, 300, 500}
	for _, tc := range []struct {
		cleanEnd int64
		want     float64
	}{
		{0, 1}, {10, 0.9}, {20, 0.8}, {30, 0.5}, {40, 0},
	} {
		if got := jobs.DirtyRatio(bases, sizes, tc.cleanEnd); got != tc.want {
			t.Errorf("clean to %d: %v, want %v", tc.cleanEnd, got, tc.want)
		}
	}
	if got := jobs.DirtyRatio(nil, nil, 0); got != 0 {
		t.Errorf("empty range: %v", got)
	}
}

// TestPlanKeyCompactionDirtyRatio: the rewrite is due by the share of
// bytes not yet cleaned (Kafka's min.cleanable.dirty.ratio), not by the
// share of records to drop.
func TestPlanKeyCompactionDirtyRatio(t *testing.T) {
	now := time.Now()
	recs := []jobs.KeyedRecord{
		{Offset: 0, Key: []byte("a"), Committed: now}, {Offset: 1, Key: []byte("b"), Committed: now},
		{Offset: 2, Key: []byte("c"), Committed: now}, {Offset: 3, Key: []byte("a"), Committed: now},
	}
	p := jobs.TopicKeyPolicy(map[string]string{"cleanup.policy": "compact"})
	if d := jobs.PlanKeyCompaction(recs, p, now, 0.6); !d.Due || len(d.Remove) != 1 {
		t.Errorf("dirty 0.6 over ratio 0.5: %+v", d)
	}
	if d := jobs.PlanKeyCompaction(recs, p, now, 0.4); d.Due || len(d.Remove) != 1 {
		t.Errorf("dirty 0.4 under ratio 0.5: %+v", d)
	}
	p = jobs.TopicKeyPolicy(map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.3"})
	if d := jobs.PlanKeyCompaction(recs, p, now, 0.4); !d.Due {
		t.Errorf("dirty 0.4 over ratio 0.3: %+v", d)
	}
}
