package cluster

// Reading transactional topics back and judging them: every data record
// gets the fate that the first marker of its producer after it on its
// partition gives it (committed, aborted, or none yet: unfinished), and
// the checks every transaction test makes of that:
//
//   - no record is left without a marker once every transaction ended;
//   - every record of one transaction (a label the test wrote into its
//     values) has the same fate on every partition: all committed or all
//     aborted;
//   - what a read_committed consumer reads is exactly the committed
//     records, in log order, and nothing of an aborted or unfinished
//     transaction.

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fate is what became of a transactional record.
type fate int

const (
	unfinished fate = iota // no marker of its producer follows it (yet)
	committed
	aborted
)

func (f fate) String() string {
	return [...]string{"unfinished", "committed", "aborted"}[f]
}

// txnRecord is one data record of a transactional topic.
type txnRecord struct {
	tp            tp
	offset        int64
	value         string
	producerID    int64
	epoch         int16
	transactional bool
	fate          fate
}

// txnLog is a transactional topic read back at both isolation levels.
type txnLog struct {
	records []txnRecord // data records, by partition, in offset order
	markers map[tp]int  // control records per partition
	// readCommitted holds the values a read_committed consumer read, per
	// partition in order.
	readCommitted map[tp][]string
	stable, end   map[tp]int64 // last stable offsets and high watermarks
}

// stableOffsets lists the last stable offset and the high watermark of
// every partition of topics.
func stableOffsets(t *testing.T, seeds []string, topics ...string) (stable, end map[tp]int64) {
	t.Helper()
	cl := client{}.newClient(t, seeds)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stable, end = map[tp]int64{}, map[tp]int64{}
	for _, list := range []struct {
		fn  func(context.Context, ...string) (kadm.ListedOffsets, error)
		out map[tp]int64
	}{{adm.ListCommittedOffsets, stable}, {adm.ListEndOffsets, end}} {
		var offs kadm.ListedOffsets
		for {
			var err error
			offs, err = list.fn(ctx, topics...)
			if err == nil {
				err = offs.Error()
			}
			if err == nil {
				break
			}
			// A retriable error (the store unavailable for a moment, as
			// while a control process takes the vcluster over) is asked
			// again, as a client would, until the deadline.
			if !kerr.IsRetriable(err) || ctx.Err() != nil {
				t.Fatalf("list offsets: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		offs.Each(func(o kadm.ListedOffset) { list.out[tp{o.Topic, o.Partition}] = o.Offset })
	}
	return stable, end
}

// waitStable waits until every partition's last stable offset reaches
// its high watermark (no transaction is open on it) and returns them.
func waitStable(t *testing.T, seeds []string, timeout time.Duration, topics ...string) map[tp]int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		stable, end := stableOffsets(t, seeds, topics...)
		open := 0
		for x, e := range end {
			if stable[x] < e {
				open++
			}
		}
		if open == 0 {
			return end
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d partitions still hold open transactions %v after all clients ended theirs: last stable offsets %v, high watermarks %v", open, timeout, stable, end)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readPartitions reads every partition of topics from offset 0 until it
// has seen offset end-1 (control records are kept, so that each read
// reaches the end even when it ends with a marker or aborted records).
func readPartitions(t *testing.T, seeds []string, isolation kgo.IsolationLevel, end map[tp]int64, timeout time.Duration) map[tp][]*kgo.Record {
	t.Helper()
	assign := map[string]map[int32]kgo.Offset{}
	out := map[tp][]*kgo.Record{}
	remaining := 0
	for x, e := range end {
		if assign[x.topic] == nil {
			assign[x.topic] = map[int32]kgo.Offset{}
		}
		assign[x.topic][x.partition] = kgo.NewOffset().At(0)
		if e > 0 {
			remaining++
		}
	}
	cl := client{}.newClient(t, seeds, kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(isolation),
		kgo.KeepControlRecords(), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			for x, e := range end {
				if rs := out[x]; e > 0 && (len(rs) == 0 || rs[len(rs)-1].Offset < e-1) {
					t.Errorf("%s: read up to %d of %d in %v", x, len(rs), e, timeout)
				}
			}
			t.FailNow()
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			x := tp{r.Topic, r.Partition}
			if r.Offset >= end[x] {
				return
			}
			out[x] = append(out[x], r)
			if r.Offset == end[x]-1 {
				remaining--
			}
		})
	}
	return out
}

// readTxnLog reads topics, whose transactions must all have ended, at
// read_uncommitted and read_committed, and gives every data record its
// fate.
func readTxnLog(t *testing.T, seeds []string, topics ...string) *txnLog {
	t.Helper()
	start := time.Now()
	l := &txnLog{markers: map[tp]int{}, readCommitted: map[tp][]string{}}
	l.stable, l.end = stableOffsets(t, seeds, topics...)
	raw := readPartitions(t, seeds, kgo.ReadUncommitted(), l.end, 60*time.Second)
	rc := readPartitions(t, seeds, kgo.ReadCommitted(), l.end, 60*time.Second)
	for _, x := range sortedTPs(l.end) {
		pending := map[int64][]int{} // producer id → indexes in l.records
		next := int64(0)
		for _, r := range raw[x] {
			if r.Offset != next {
				t.Errorf("%s: offset %d follows %d at read_uncommitted (offsets must be contiguous from 0)", x, r.Offset, next-1)
			}
			next = r.Offset + 1
			if r.Attrs.IsControl() {
				l.markers[x]++
				f := aborted
				if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1 {
					f = committed
				}
				for _, i := range pending[r.ProducerID] {
					l.records[i].fate = f
				}
				delete(pending, r.ProducerID)
				continue
			}
			l.records = append(l.records, txnRecord{tp: x, offset: r.Offset, value: string(r.Value),
				producerID: r.ProducerID, epoch: r.ProducerEpoch, transactional: r.Attrs.IsTransactional()})
			if r.Attrs.IsTransactional() {
				pending[r.ProducerID] = append(pending[r.ProducerID], len(l.records)-1)
			} else {
				l.records[len(l.records)-1].fate = committed
			}
		}
		for _, r := range rc[x] {
			if !r.Attrs.IsControl() {
				l.readCommitted[x] = append(l.readCommitted[x], string(r.Value))
			}
		}
	}
	t.Logf("read back %d data records and %d markers of %v in %v", len(l.records), sumMarkers(l.markers), topics, time.Since(start).Round(time.Millisecond))
	return l
}

func sumMarkers(m map[tp]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// check judges the log: label names the transaction of a value. It
// returns each transaction's fate.
func (l *txnLog) check(t *testing.T, label func(value string) string) map[string]fate {
	t.Helper()
	var p problems
	for x, e := range l.end {
		if l.stable[x] != e {
			p.add("%s: last stable offset %d, high watermark %d: a transaction is still open", x, l.stable[x], e)
		}
	}
	fates := map[string]fate{}
	where := map[string]txnRecord{}
	want := map[tp][]string{}
	for _, r := range l.records {
		if !r.transactional {
			p.add("%s@%d: %.40q is not transactional", r.tp, r.offset, r.value)
		}
		if r.fate == unfinished {
			p.add("%s@%d: %.40q (producer %d) has no marker after it: its transaction never ended there", r.tp, r.offset, r.value, r.producerID)
		}
		if r.fate == committed {
			want[r.tp] = append(want[r.tp], r.value)
		}
		id := label(r.value)
		if f, ok := fates[id]; ok && f != r.fate {
			first := where[id]
			p.add("transaction %s is %s on %s (offset %d) but %s on %s (offset %d)", id, f, first.tp, first.offset, r.fate, r.tp, r.offset)
			continue
		}
		fates[id], where[id] = r.fate, r
	}
	for _, x := range sortedTPs(l.end) {
		got := l.readCommitted[x]
		if !slices.Equal(got, want[x]) {
			extra, missing := diff(got, want[x]), diff(want[x], got)
			p.add("%s: read_committed returned %d records, the committed ones are %d: %d it should not have returned (first %.60q), %d it missed (first %.60q)",
				x, len(got), len(want[x]), len(extra), first(extra), len(missing), first(missing))
		}
	}
	for _, s := range p.list {
		t.Errorf("transactional log: %s", s)
	}
	return fates
}

// diff returns the values of a that b lacks (as multisets).
func diff(a, b []string) []string {
	n := map[string]int{}
	for _, v := range b {
		n[v]++
	}
	var out []string
	for _, v := range a {
		if n[v] > 0 {
			n[v]--
			continue
		}
		out = append(out, v)
	}
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// committedTail is a read_committed consumer of topics that records every
// value it is given while the test runs, so that a record of a
// transaction that later aborts, or that was read before its
// transaction's end, shows up.
type committedTail struct {
	cl   *kgo.Client
	done chan struct{}
	mu   sync.Mutex
	seen map[string]time.Time // value → when it was read
	errs []error
}

func startCommittedTail(t *testing.T, seeds []string, topics ...string) *committedTail {
	t.Helper()
	c := &committedTail{done: make(chan struct{}), seen: map[string]time.Time{}}
	c.cl = client{}.newClient(t, seeds, kgo.ConsumeTopics(topics...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(2*time.Second))
	go func() {
		defer close(c.done)
		for {
			fs := c.cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			now := time.Now()
			c.mu.Lock()
			fs.EachRecord(func(r *kgo.Record) { c.seen[string(r.Value)] = now })
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *committedTail) stop() {
	c.cl.Close()
	<-c.done
}

// sawAny returns the values of vs the consumer has read.
func (c *committedTail) sawAny(vs []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, v := range vs {
		if _, ok := c.seen[v]; ok {
			out = append(out, v)
		}
	}
	return out
}

// check reports every value the consumer read that is not a committed
// record of the log.
func (c *committedTail) check(t *testing.T, l *txnLog) {
	t.Helper()
	ok := map[string]bool{}
	for _, r := range l.records {
		if r.fate == committed {
			ok[r.value] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := 0
	for v := range c.seen {
		if !ok[v] {
			if bad++; bad <= 5 {
				t.Errorf("a read_committed consumer read %.60q, which is not a committed record", v)
			}
		}
	}
	t.Logf("the read_committed tail consumer read %d records while the test ran; %d of them are not committed", len(c.seen), bad)
}

// txnBackoff is the retry backoff of the tests' transactional clients:
// 100 ms more per try, at most 1 s, so that franz-go's 20 tries of a
// request outlast a dead agent's lease (5 s), after which its
// coordinators and partitions move.
func txnBackoff(tries int) time.Duration {
	return min(time.Duration(tries+1)*100*time.Millisecond, time.Second)
}
