package perf

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/faulty"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Transactional produce against idempotent produce of the same work.
const (
	txnPartitions   = 100
	txnBatchRecords = 16   // records per batch: one batch per partition
	txnRecordBytes  = 1024 // bytes of value per record
	txnProducers    = 4    // concurrent producer clients
	txnPutLatency   = 35 * time.Millisecond
)

// BenchmarkTransactions runs, on one in-process agent (embedded metadata
// store, local-directory bucket whose PUTs each take 35 ms, the middle of
// floe bench's 20–50 ms), units of B batches for B = 1, 10 and 100: a
// batch is 16 records of 1 KiB to one partition, and a unit writes one
// batch to each of B partitions. Each unit runs either as a transaction
// (BeginTransaction, produce, flush, EndTransaction(commit)) or, for the
// reference, as idempotent produce (produce, wait for every
// acknowledgement), by four concurrent franz-go clients for a fixed time.
// It prints throughput, unit latency (from the first produce to the
// commit or the last acknowledgement), the EndTxn latency of
// transactions (after the flush) and PUTs per second, and the ratios of
// each transactional case to the idempotent one of the same B, measured
// in the same run. The transactions run again on a second agent whose
// every EndTxn uploads its own markers object (MarkerGather off), for the
// ratios of sharing one PUT among EndTxns that come together. Each b.N
// iteration is one full run per agent linger.
func BenchmarkTransactions(b *testing.B) {
	for _, linger := range []time.Duration{250 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("linger=%v", linger), func(b *testing.B) {
			for range b.N {
				runTxnBench(b, linger, time.Second, 8*time.Second)
			}
		})
	}
}

// txnCase is one workload's figures.
type txnCase struct {
	name     string
	txn      bool
	batches  int
	units    int
	elapsed  time.Duration
	unit     []time.Duration // begin (or first produce) → commit (or last ack)
	commit   []time.Duration // flush done → EndTransaction returned
	puts     int
	failures int
}

func (c *txnCase) mibPerSec() float64 {
	bytes := float64(c.units * c.batches * txnBatchRecords * txnRecordBytes)
	return bytes / (1 << 20) / c.elapsed.Seconds()
}

func (c *txnCase) unitsPerSec() float64 { return float64(c.units) / c.elapsed.Seconds() }

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// startTxnBenchAgent starts an agent on a bucket whose PUTs take
// txnPutLatency, with the txn-perf topic; gather is its
// txncoord.Options.MarkerGather.
func startTxnBenchAgent(ctx context.Context, b *testing.B, linger, gather time.Duration) (string, *faulty.Bucket) {
	var fb *faulty.Bucket
	a := agenttest.Start(b, agenttest.Options{
		Linger: linger,
		Wrap: func(bk objstore.Bucket) objstore.Bucket {
			fb = faulty.New(bk)
			fb.SetLatency(faulty.Put, txnPutLatency)
			return fb
		},
		Config: func(cfg *agent.Config) { cfg.Transactions.MarkerGather = gather },
	})
	admin, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	resp, err := kadm.NewClient(admin).CreateTopics(ctx, txnPartitions, 1, nil, "txn-perf")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		b.Fatal(err)
	}
	return a.Addr(), fb
}

func runTxnBench(b *testing.B, linger, warmup, duration time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The agent as configured (EndTxns that come together share their
	// markers' PUT), and one whose every EndTxn uploads its own.
	addr, fb := startTxnBenchAgent(ctx, b, linger, 0)
	soloAddr, soloFB := startTxnBenchAgent(ctx, b, linger, -1)
	load := loadAvg()
	var cases []*txnCase
	for _, batches := range []int{1, 10, 100} {
		for _, kind := range []string{"idempotent", "transaction", "unshared"} {
			c := &txnCase{txn: kind != "idempotent", batches: batches, name: fmt.Sprintf("idempotent, %d batches", batches)}
			switch kind {
			case "transaction":
				c.name = fmt.Sprintf("transaction of %d batches", batches)
				runTxnCase(ctx, b, addr, fb, c, warmup, duration)
			case "unshared":
				c.name = fmt.Sprintf("  markers unshared, %d", batches)
				runTxnCase(ctx, b, soloAddr, soloFB, c, warmup, duration)
			default:
				runTxnCase(ctx, b, addr, fb, c, warmup, duration)
			}
			cases = append(cases, c)
		}
	}
	load += " → " + loadAvg()

	var out strings.Builder
	tw := tabwriter.NewWriter(&out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "case\tunits/s\tMiB/s\tunit p50 ms\tunit p99 ms\tEndTxn p50 ms\tEndTxn p99 ms\tPUT/s\t\n")
	for _, c := range cases {
		commit50, commit99 := "-", "-"
		if c.txn {
			commit50, commit99 = ms(pct(c.commit, 0.5)), ms(pct(c.commit, 0.99))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%.2f\t\n", c.name, c.unitsPerSec(), c.mibPerSec(),
			ms(pct(c.unit, 0.5)), ms(pct(c.unit, 0.99)), commit50, commit99, float64(c.puts)/c.elapsed.Seconds())
	}
	fmt.Fprintf(tw, "\n")
	fmt.Fprintf(tw, "transaction / idempotent\tunits/s\tMiB/s\tunit p50\tunit p99\t\t\tPUT/s\t\n")
	ratio := func(x, y float64) string { return fmt.Sprintf("%.2f×", x/y) }
	putRate := func(c *txnCase) float64 { return float64(c.puts) / c.elapsed.Seconds() }
	for i := 0; i+2 < len(cases); i += 3 {
		idem, txn := cases[i], cases[i+1]
		fmt.Fprintf(tw, "%d batches\t%s\t%s\t%s\t%s\t\t\t%s\t\n", txn.batches,
			ratio(txn.unitsPerSec(), idem.unitsPerSec()), ratio(txn.mibPerSec(), idem.mibPerSec()),
			ratio(float64(pct(txn.unit, 0.5)), float64(pct(idem.unit, 0.5))),
			ratio(float64(pct(txn.unit, 0.99)), float64(pct(idem.unit, 0.99))),
			ratio(putRate(txn), putRate(idem)))
		b.ReportMetric(txn.mibPerSec()/idem.mibPerSec(), fmt.Sprintf("txn%d/idem-MiB/s", txn.batches))
	}
	fmt.Fprintf(tw, "\n")
	fmt.Fprintf(tw, "markers shared / unshared\tunits/s\t\tunit p50\tunit p99\tEndTxn p50\tEndTxn p99\tPUT/s\t\n")
	for i := 0; i+2 < len(cases); i += 3 {
		txn, solo := cases[i+1], cases[i+2]
		fmt.Fprintf(tw, "%d batches\t%s\t\t%s\t%s\t%s\t%s\t%s\t\n", txn.batches,
			ratio(txn.unitsPerSec(), solo.unitsPerSec()),
			ratio(float64(pct(txn.unit, 0.5)), float64(pct(solo.unit, 0.5))),
			ratio(float64(pct(txn.unit, 0.99)), float64(pct(solo.unit, 0.99))),
			ratio(float64(pct(txn.commit, 0.5)), float64(pct(solo.commit, 0.5))),
			ratio(float64(pct(txn.commit, 0.99)), float64(pct(solo.commit, 0.99))),
			ratio(putRate(txn), putRate(solo)))
		b.ReportMetric(putRate(txn)/putRate(solo), fmt.Sprintf("txn%d-shared/unshared-PUT/s", txn.batches))
	}
	tw.Flush()
	failures := 0
	for _, c := range cases {
		failures += c.failures
	}
	// The table goes to stdout whole: a benchmark's log is cut to its
	// first lines.
	fmt.Printf("\n%s: agent linger %v, PUT latency %v, %d producers, batches of %d × %d B records, %v measured per case after %v; load average %s; %d failed units\n\n%s\n",
		b.Name(), linger, txnPutLatency, txnProducers, txnBatchRecords, txnRecordBytes, duration, warmup, load, failures, out.String())
	if failures > 0 {
		b.Errorf("%d units failed", failures)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// loadAvg is the 1-minute load average, or "?".
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// runTxnCase runs c's units with txnProducers clients for warmup and
// then duration, counting the units that end in the measured window.
func runTxnCase(ctx context.Context, b *testing.B, addr string, fb *faulty.Bucket, c *txnCase, warmup, duration time.Duration) {
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		measure = time.Now().Add(warmup)
		stop    = measure.Add(duration)
		putsAt  int
		value   = make([]byte, txnRecordBytes)
	)
	for p := range txnProducers {
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("txn-perf"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1 << 20)}
		if c.txn {
			opts = append(opts, kgo.TransactionalID(fmt.Sprintf("perf-%d-%d-%d", c.batches, p, time.Now().UnixNano())),
				kgo.TransactionTimeout(time.Minute))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := 0; time.Now().Before(stop); u++ {
				start := time.Now()
				if c.txn {
					if err := cl.BeginTransaction(); err != nil {
						b.Error(err)
						return
					}
				}
				first := (p*txnPartitions/txnProducers + u*c.batches) % txnPartitions
				var (
					errMu     sync.Mutex
					recordErr error
				)
				for i := range c.batches {
					for range txnBatchRecords {
						cl.Produce(ctx, &kgo.Record{Partition: int32((first + i) % txnPartitions), Value: value}, func(_ *kgo.Record, err error) {
							if err != nil {
								errMu.Lock()
								recordErr = err
								errMu.Unlock()
							}
						})
					}
				}
				err := cl.Flush(ctx)
				errMu.Lock()
				if err == nil {
					err = recordErr
				}
				errMu.Unlock()
				produced := time.Now()
				if err == nil && c.txn {
					err = cl.EndTransaction(ctx, kgo.TryCommit)
				}
				end := time.Now()
				mu.Lock()
				switch {
				case err != nil:
					c.failures++
					b.Error(err)
				case !end.Before(measure) && !end.After(stop):
					c.units++
					c.unit = append(c.unit, end.Sub(start))
					if c.txn {
						c.commit = append(c.commit, end.Sub(produced))
					}
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(time.Until(measure))
	putsAt = fb.Calls(faulty.Put)
	time.Sleep(time.Until(stop))
	c.puts = fb.Calls(faulty.Put) - putsAt
	c.elapsed = duration
	wg.Wait()
}
