package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// headerBytes start every record value: the intended send time in Unix
// nanoseconds, big-endian. Consumers subtract it from the time they
// receive the record for the end-to-end latency, so producers and
// consumers must share a clock (they run in this process).
const headerBytes = 8

// stats is what producers and consumers of one run record, shared by all
// of them. Records count in the latency figures when their intended send
// time falls in the measured window, and in the throughput figures when
// they are acknowledged (or consumed) inside it.
type stats struct {
	measureStart int64        // Unix ns; fixed before any record is sent
	measureEnd   atomic.Int64 // Unix ns; MaxInt64 until the window closes
	e2e          bool         // record end-to-end latency (not for history)

	produceLat *Histogram
	e2eLat     *Histogram

	sent, acked, failed atomic.Int64
	ackedBytes          atomic.Int64
	winAcked, winBytes  atomic.Int64
	missed              atomic.Int64

	winConsumed, winConsumedBytes atomic.Int64
	consumeErrors                 atomic.Int64

	errMu    sync.Mutex
	firstErr string
}

func newStats(measureStart time.Time, e2e bool) *stats {
	s := &stats{measureStart: measureStart.UnixNano(), e2e: e2e, produceLat: NewHistogram(), e2eLat: NewHistogram()}
	s.measureEnd.Store(1<<63 - 1)
	return s
}

func (s *stats) inWindow(ns int64) bool {
	return ns >= s.measureStart && ns < s.measureEnd.Load()
}

func (s *stats) noteErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

func (s *stats) firstError() string {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.firstErr
}

// clientOpts are the options every client of a run shares.
func clientOpts(cfg *Config, brokers []string, id string) []kgo.Opt {
	return append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(id)}, cfg.ClientOpts...)
}

// producer sends records on a Pacer's schedule through one client.
type producer struct {
	cl      *kgo.Client
	cfg     *Config
	st      *stats
	pacer   *Pacer
	topics  []string
	keys    [][]byte
	zipf    *rand.Zipf
	rng     *rand.Rand
	filler  []byte
	offset  int   // spreads producers over partitions
	i       int64 // records handed out
	limit   int64 // stop after this many records (0: no limit)
	keyNext int
}

func newProducer(cfg *Config, brokers []string, id int, topics []string, st *stats, pacer *Pacer, keys [][]byte, limit int64, hooks ...kgo.Hook) (*producer, error) {
	opts := append(clientOpts(cfg, brokers, "floe-bench-producer-"+strconv.Itoa(id)),
		kgo.WithHooks(hooks...),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedBytes(int(cfg.MaxBuffered)),
		kgo.MaxBufferedRecords(int(max(cfg.MaxBuffered/int64(cfg.RecordSize), 1))),
		kgo.ProducerBatchCompression(codec(cfg.Compression)),
		kgo.RecordRetries(10),
	)
	switch cfg.Acks {
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	if cfg.Keys == KeysNone {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else {
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("producer client: %w", err)
	}
	rng := rand.New(rand.NewPCG(uint64(id), 0x666c6f65))
	filler := make([]byte, cfg.RecordSize-headerBytes)
	for i := range filler {
		filler[i] = byte(rng.Uint32())
	}
	p := &producer{cl: cl, cfg: cfg, st: st, pacer: pacer, topics: topics, keys: keys, rng: rng, filler: filler,
		offset: id * 7919, limit: limit}
	if cfg.Keys == KeysZipf {
		p.zipf = rand.NewZipf(rng, 1.1, 1, uint64(len(keys)-1))
	}
	return p, nil
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// run sends until end (paced: until every record scheduled before end is
// sent, unless the sender is more than a second behind), until limit
// records, or until stop is cancelled. sendCtx bounds blocked sends and
// unsent buffered records; it outlives stop so that a Ctrl-C still lets
// buffered records finish. Records due before end that were never sent are
// counted as missed, with the time they had waited by end as their
// latency: a lower bound, better than leaving them out.
func (p *producer) run(stop, sendCtx context.Context, end time.Time) {
	const grace = time.Second
	paced := p.pacer.Paced()
	for stop.Err() == nil {
		now := time.Now()
		if p.limit > 0 && p.i >= p.limit {
			return
		}
		if paced {
			if !p.pacer.Intended(p.pacer.next).Before(end) || now.After(end.Add(grace)) {
				break
			}
		} else if !now.Before(end) {
			return
		}
		first, n := p.pacer.Due(minTime(now, end.Add(-1)))
		for j := range n {
			if paced && time.Now().After(end.Add(grace)) {
				for k := j; k < n; k++ {
					p.miss(p.pacer.Intended(first+k), end)
				}
				break
			}
			intended := now
			if paced {
				intended = p.pacer.Intended(first + j)
			} else {
				intended = time.Now()
			}
			p.send(sendCtx, intended)
			if p.limit > 0 && p.i >= p.limit {
				return
			}
		}
		if w := p.pacer.Wait(time.Now()); w > 0 {
			sleep(stop, w)
		}
	}
	// Interrupted, only the records due before now were missed; the rest
	// of the schedule never came.
	if stop.Err() != nil {
		end = minTime(end, time.Now())
	}
	p.pacer.Missed(end, func(intended time.Time) { p.miss(intended, end) })
}

func (p *producer) miss(intended, end time.Time) {
	p.st.missed.Add(1)
	if intended.UnixNano() >= p.st.measureStart {
		p.st.produceLat.Record(end.Sub(intended))
	}
}

func (p *producer) send(ctx context.Context, intended time.Time) {
	value := make([]byte, p.cfg.RecordSize)
	binary.BigEndian.PutUint64(value, uint64(intended.UnixNano()))
	copy(value[headerBytes:], p.filler)
	r := &kgo.Record{Value: value, Timestamp: intended}
	idx := int(p.i) + p.offset
	p.i++
	r.Topic = p.topics[idx%len(p.topics)]
	switch p.cfg.Keys {
	case KeysNone:
		r.Partition = int32((idx / len(p.topics)) % p.cfg.Partitions)
	case KeysUniform:
		r.Key = p.keys[p.rng.IntN(len(p.keys))]
	case KeysZipf:
		r.Key = p.keys[p.zipf.Uint64()]
	case KeysSequential:
		r.Key = p.keys[p.keyNext]
		p.keyNext = (p.keyNext + 1) % len(p.keys)
	}
	p.st.sent.Add(1)
	p.cl.Produce(ctx, r, p.acked)
}

// acked is the produce promise: latency from the intended send time.
func (p *producer) acked(r *kgo.Record, err error) {
	now := time.Now()
	if err != nil {
		p.st.failed.Add(1)
		p.st.noteErr(fmt.Errorf("produce: %w", err))
		return
	}
	p.st.acked.Add(1)
	p.st.ackedBytes.Add(int64(len(r.Value)))
	intended := int64(binary.BigEndian.Uint64(r.Value))
	if intended >= p.st.measureStart {
		p.st.produceLat.Record(now.Sub(time.Unix(0, intended)))
	}
	if p.st.inWindow(now.UnixNano()) {
		p.st.winAcked.Add(1)
		p.st.winBytes.Add(int64(len(r.Value)))
	}
}

// makeKeys returns the key space for keyed distributions.
func makeKeys(cfg *Config) [][]byte {
	if cfg.Keys == KeysNone {
		return nil
	}
	keys := make([][]byte, cfg.KeyCount)
	for i := range keys {
		keys[i] = strconv.AppendInt([]byte("key-"), int64(i), 10)
	}
	return keys
}

// consumer reads every partition of every topic from the start with one
// client, as one consumer group would, but without group coordination:
// partitions are assigned directly (Floe has no consumer groups yet, and a
// benchmark does not need rebalancing).
type consumer struct {
	cl       *kgo.Client
	st       *stats
	consumed atomic.Int64
	bytes    atomic.Int64
	// lastAt is when the consumer last received records (Unix ns): the
	// end of a catch-up read, to the fetch rather than to a poll tick.
	lastAt atomic.Int64
}

func newConsumer(cfg *Config, brokers []string, id int, topics []string, partitions int, st *stats) (*consumer, error) {
	assign := make(map[string]map[int32]kgo.Offset, len(topics))
	for _, t := range topics {
		m := make(map[int32]kgo.Offset, partitions)
		for p := range partitions {
			m[int32(p)] = kgo.NewOffset().AtStart()
		}
		assign[t] = m
	}
	cl, err := kgo.NewClient(append(clientOpts(cfg, brokers, "floe-bench-consumer-"+strconv.Itoa(id)),
		kgo.ConsumePartitions(assign),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("consumer client: %w", err)
	}
	return &consumer{cl: cl, st: st}, nil
}

func (c *consumer) run(ctx context.Context) {
	for ctx.Err() == nil {
		fetches := c.cl.PollFetches(ctx)
		now := time.Now()
		nowNs := now.UnixNano()
		fetches.EachError(func(_ string, _ int32, err error) {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			c.st.consumeErrors.Add(1)
			c.st.noteErr(fmt.Errorf("consume: %w", err))
		})
		var n, b int64
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			b += int64(len(r.Value))
			if c.st.e2e && len(r.Value) >= headerBytes {
				intended := int64(binary.BigEndian.Uint64(r.Value))
				if intended >= c.st.measureStart {
					c.st.e2eLat.Record(time.Duration(nowNs - intended))
				}
			}
		})
		if n > 0 {
			c.lastAt.Store(nowNs)
		}
		c.consumed.Add(n)
		c.bytes.Add(b)
		if c.st.inWindow(nowNs) {
			c.st.winConsumed.Add(n)
			c.st.winConsumedBytes.Add(b)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
