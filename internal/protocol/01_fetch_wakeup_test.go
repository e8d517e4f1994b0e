package protocol_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
)

// waitWatching waits until the agent's long-polling fetches watch n
// partitions: the fetch sent last has read them and waits.
func waitWatching(t *testing.T, f *fixture, n float64) {
	t.Helper()
	testutil.WaitFor(t, within, "the long poll watching its partitions", func() bool {
		return metric(t, f.a.Registry(), "floe_fetch_watched_partitions") == n
	})
}

// TestFetchWokenOnlyByItsPartitions: a long-polling fetch on t/0 is not
// woken by commits on t/1 (the agent counts wake-ups), and is answered
// as soon as its own partition gets data, long before its MaxWait.
func TestFetchWokenOnlyByItsPartitions(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	reg := f.a.Registry()

	req := fetchRequest("t", 0, 0)
	req.MaxWaitMillis = int32(2 * within / time.Millisecond)
	req.SetVersion(12)
	begin := time.Now()
	corr := f.c.Send(req)
	waitWatching(t, f, 1)

	producer := &fixture{t: t, a: f.a, c: dial(t, f)}
	for i := range 20 {
		producer.produce("t", 1, 1, int64(1000+i)) // answered after the commit is announced
	}
	if n := metric(t, reg, "floe_fetch_wakeups_total"); n != 0 {
		t.Errorf("the fetch on t/0 was woken %v times by 20 commits on t/1, want 0", n)
	}

	producer.produce("t", 0, 2, 2000)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	if took := time.Since(begin); took > within {
		t.Errorf("answered after %v: the commit on its partition did not wake it", took)
	}
	if got := recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); !slices.Equal(got, []int64{0, 1}) {
		t.Errorf("woken fetch returned offsets %v, want [0 1]", got)
	}
	// Woken once, or not at all if its read already saw the commit.
	if n := metric(t, reg, "floe_fetch_wakeups_total"); n > 1 {
		t.Errorf("%v wake-ups, want at most 1", n)
	}
	waitWatching(t, f, 0)
}

// TestFetchReadCommittedWokenByItsTransactionEnd: a read_committed fetch
// waiting at t/0's last stable offset is not woken when a transaction
// ends on t/1, and is answered when the one on t/0 ends.
func TestFetchReadCommittedWokenByItsTransactionEnd(t *testing.T) {
	f := startTxns(t)
	f.createTopic("t", 2)
	reg := f.a.Registry()
	tp0, tp1 := f.partition("t", 0), f.partition("t", 1)
	f.txns.open(tp0, 0)
	f.txns.open(tp1, 0)
	f.commit(tp0, txnBatch(7, 2, 1000))
	f.commit(tp1, txnBatch(8, 2, 1000))

	req := fetchRequest("t", 0, 0)
	req.IsolationLevel = 1
	req.MaxWaitMillis = int32(2 * within / time.Millisecond)
	req.SetVersion(12)
	begin := time.Now()
	corr := f.c.Send(req)
	waitWatching(t, f.fixture, 1)

	f.commit(tp1, markerBatch(8, true, 1002))
	f.txns.end(tp1)
	if n := metric(t, reg, "floe_fetch_wakeups_total"); n != 0 {
		t.Errorf("the read_committed fetch on t/0 was woken %v times by t/1's transaction, want 0", n)
	}

	f.commit(tp0, markerBatch(7, true, 1002))
	f.txns.end(tp0)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	if took := time.Since(begin); took > within {
		t.Errorf("answered after %v: the end of its transaction did not wake it", took)
	}
	p := resp.Topics[0].Partitions[0]
	if p.LastStableOffset != 3 {
		t.Errorf("last stable offset %d, want 3", p.LastStableOffset)
	}
	if got := recordOffsets(t, p.RecordBatches); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Errorf("record offsets %v, want [0 1 2]", got)
	}
}

// TestFetchWokenByAnyOfItsPartitions: a long poll on t/0 and t/1 is
// answered when t/1, its second partition, gets data.
func TestFetchWokenByAnyOfItsPartitions(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	req := fetchTwo(0, 0, 1<<20, 0)
	req.MaxWaitMillis = int32(2 * within / time.Millisecond)
	req.SetVersion(12)
	begin := time.Now()
	corr := f.c.Send(req)
	waitWatching(t, f, 2)

	producer := &fixture{t: t, a: f.a, c: dial(t, f)}
	producer.produce("t", 1, 3, 1000)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	if took := time.Since(begin); took > within {
		t.Errorf("answered after %v: the commit on its second partition did not wake it", took)
	}
	for _, p := range resp.Topics[0].Partitions {
		want := []int64(nil)
		if p.Partition == 1 {
			want = []int64{0, 1, 2}
		}
		if got := recordOffsets(t, p.RecordBatches); !slices.Equal(got, want) {
			t.Errorf("t/%d: offsets %v, want %v", p.Partition, got, want)
		}
	}
}
