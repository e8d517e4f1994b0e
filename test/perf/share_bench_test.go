package perf

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// A share group against a classic consumer group reading the same topic.
const (
	sharePartitions  = 8
	shareRecords     = 1_000_000
	shareRecordBytes = 100
	shareDeadline    = 2 * time.Minute // per case; a case that misses it prints as incomplete
	// shareBigPoll is the ShareMaxRecords of the third case of each
	// consumer count: the 10,000 records each PollRecords asks for.
	shareBigPoll = 10_000
)

// BenchmarkShareGroupThroughput reads one topic (8 partitions, 1,000,000
// records of 100 bytes, produced beforehand) on one in-process agent
// (embedded metadata store, local-directory bucket) to the end, first
// with a classic consumer group (franz-go, eager assignor, offsets
// committed when done), then with a share group (franz-go share
// consumers accepting every record; each acknowledgement is stored
// before it is answered), with 1, 2 and 4 consumers each. It prints
// records per second of each case and the share/classic ratio for the
// same number of consumers, measured in the same run, with the load
// average before and after. Records per second are given twice: over the
// whole read (from creating the clients to the last record, joining the
// group included: seconds for a classic group, whose coordinator waits
// for more members before the first assignment) and from the first
// record delivered to the last (a classic consumer has by then fetched
// ahead). Each b.N iteration is one full run.
func BenchmarkShareGroupThroughput(b *testing.B) {
	for range b.N {
		runShareBench(b)
	}
}

type shareCase struct {
	consumers int
	share     bool
	// maxRecords is the share consumers' ShareMaxRecords (their
	// max.poll.records; 0: franz-go's default, 500).
	maxRecords int32
	received   int64 // records delivered, duplicates included
	distinct   int
	first      time.Duration // start → first record delivered
	elapsed    time.Duration // first record → every record delivered
}

func (c shareCase) perSec() float64 { return float64(c.distinct) / c.elapsed.Seconds() }

func (c shareCase) totalPerSec() float64 {
	return float64(c.distinct) / (c.first + c.elapsed).Seconds()
}

func runShareBench(b *testing.B) {
	b.StopTimer()
	loadBefore := loadAvg()
	a := agenttest.Start(b, agenttest.Options{Config: func(c *agent.Config) {
		c.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		c.Shares.Group.HeartbeatInterval = time.Second
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const topic = "share-bench"
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, sharePartitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, shareRecordBytes)
	var failed atomic.Int64
	for range shareRecords {
		prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil || failed.Load() > 0 {
		b.Fatalf("produce: %v, %d failed", err, failed.Load())
	}

	b.StartTimer()
	var cases []shareCase
	for _, n := range []int{1, 2, 4} {
		for _, c := range []shareCase{{consumers: n}, {consumers: n, share: true}, {consumers: n, share: true, maxRecords: shareBigPoll}} {
			readAll(ctx, b, a.Addr(), topic, fmt.Sprintf("g-%d-%v-%d", n, c.share, c.maxRecords), &c)
			cases = append(cases, c)
		}
	}
	b.StopTimer()

	fmt.Fprintf(os.Stdout, "\nshare group vs classic consumer group: %d partitions, %d records of %d B; load average before %s, after %s\n",
		sharePartitions, shareRecords, shareRecordBytes, loadBefore, loadAvg())
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "consumers\tgroup\trecords/s whole read\trecords/s after the first\tfirst record s\tthen s\tdelivered\tdistinct\t")
	for _, c := range cases {
		kind := "classic"
		switch {
		case c.share && c.maxRecords > 0:
			kind = fmt.Sprintf("share, max records %d", c.maxRecords)
		case c.share:
			kind = "share"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%d\t\n", c.consumers, kind, c.totalPerSec(), c.perSec(),
			c.first.Seconds(), c.elapsed.Seconds(), c.received, c.distinct)
	}
	tw.Flush()
	fmt.Fprintln(os.Stdout, "share / classic records/s, same consumers (whole read; after the first record), default then big polls:")
	for i := 0; i+2 < len(cases); i += 3 {
		fmt.Fprintf(os.Stdout, "  %d consumers: %.2fx; %.3fx    %.2fx; %.3fx\n", cases[i].consumers,
			cases[i+1].totalPerSec()/cases[i].totalPerSec(), cases[i+1].perSec()/cases[i].perSec(),
			cases[i+2].totalPerSec()/cases[i].totalPerSec(), cases[i+2].perSec()/cases[i].perSec())
	}
}

// readAll reads the whole topic with c.consumers clients of one group
// and records how long it took until every record was delivered.
func readAll(ctx context.Context, b *testing.B, addr, topic, group string, c *shareCase) {
	var (
		mu   sync.Mutex
		seen = make([]map[int64]bool, sharePartitions)
		done = make(chan struct{})
		once sync.Once
	)
	for i := range seen {
		seen[i] = map[int64]bool{}
	}
	ctx, cancel := context.WithTimeout(ctx, shareDeadline)
	defer cancel()
	// Polls end when every record is in, not at the deadline.
	pollCtx, pollCancel := context.WithCancel(ctx)
	defer pollCancel()
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(500 * time.Millisecond)}
	if c.share {
		opts = append(opts, kgo.ShareGroup(group))
		if c.maxRecords > 0 {
			opts = append(opts, kgo.ShareMaxRecords(c.maxRecords))
		}
	} else {
		opts = append(opts, kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit())
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range c.consumers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for {
				select {
				case <-done:
					if !c.share {
						cl.CommitUncommittedOffsets(context.Background())
					}
					return
				case <-ctx.Done():
					return
				default:
				}
				fs := cl.PollRecords(pollCtx, 10_000)
				var n int64
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					n++
					seen[r.Partition][r.Offset] = true
					if c.share {
						r.Ack(kgo.AckAccept)
					}
				})
				if n > 0 && c.first == 0 {
					c.first = time.Since(start)
				}
				c.received += n
				total := 0
				for _, s := range seen {
					total += len(s)
				}
				if total >= shareRecords {
					once.Do(func() { c.elapsed = time.Since(start) - c.first; close(done); pollCancel() })
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, s := range seen {
		c.distinct += len(s)
	}
	if c.elapsed == 0 {
		c.elapsed = time.Since(start) - c.first
		b.Logf("%s: incomplete after %v: %d of %d records", group, shareDeadline, c.distinct, shareRecords)
	}
}
