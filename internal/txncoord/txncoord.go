// Package txncoord runs the transaction coordinator on an agent: it
// serialises the requests of each transactional id, loads and saves its
// record in the metadata store (compare-and-swap on the record's
// version), lets the pure state machine of internal/txn decide, allocates
// producer ids, ends transactions by uploading one object of COMMIT/ABORT
// control batches and committing it with TxnStore.EndTxn, and aborts the
// transactions that outlive their timeout (docs/transactions.md).
//
// An agent coordinates the transactional ids it owns (Options.Owns, keyed
// "txn:"+id, the rendezvous rule groups use). It keeps nothing in memory
// between requests that the store does not have: a new owner loads the
// record and carries on, and two agents that both believe they own an id
// cannot overwrite each other, because every write names the version it
// replaces. A conflict means another agent wrote: the request is decided
// again on the new record, a bounded number of times.
//
// It never holds a mutex across store or bucket I/O; an id's turn (a
// one-slot channel) is held across that id's own I/O only, so no other
// id waits for it (docs/locking.md).
package txncoord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/txn"
)

// Store is what the coordinator needs from the metadata store.
type Store interface {
	metastore.TxnStore
	// InitProducerID is called with (-1, -1) to allocate producer ids.
	metastore.ProducerStore
}

// Bucket receives the objects of control batches. objstore.Bucket is one.
type Bucket interface {
	// Put stores data under key, a new key never reused.
	Put(ctx context.Context, key string, data []byte) error
}

// KeyPrefix prefixes the ownership key of a transactional id.
const KeyPrefix = "txn:"

// Key is the ownership key of a transactional id, which Options.Owns and
// FindCoordinator (key type 1) hash: "txn:" + id.
func Key(transactionalID string) string { return KeyPrefix + transactionalID }

// Options configure a Coordinator. Zero values take Kafka's defaults.
type Options struct {
	// Txn are the state machine's settings (transaction.max.timeout.ms).
	Txn txn.Config
	// Owns reports whether this agent coordinates the key
	// Key(transactionalID) (default: all). It is called with no lock
	// held.
	Owns func(key string) bool
	// AbortInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms: how
	// often owned transactions are checked for timeouts (default 10s).
	// Requests find a transaction past its timeout themselves, so it
	// bounds only how long an abandoned transaction holds back the last
	// stable offset.
	AbortInterval time.Duration
	// IDExpiration is transactional.id.expiration.ms: the record of an id
	// with no ongoing transaction and no request for this long is deleted
	// (default 7 days; negative: never).
	IDExpiration time.Duration
	// MaxConflicts bounds how many times one request is decided again
	// after a version conflict (default 5). Past it, the request is
	// answered NOT_COORDINATOR, so the client finds the coordinator again.
	MaxConflicts int
	// WriteTimeout bounds each write of a decision (a producer id, a
	// markers upload, a record), which runs to its end even if the
	// client goes away (default 30s).
	WriteTimeout time.Duration
	// TopicName names topics in the markers objects' index, for humans
	// (floe inspect); nil or "" leaves the name empty.
	TopicName func(metastore.TopicID) string
	// Uploaded is called after every markers object is uploaded, before
	// the commits that make it visible, as produce.Options.Uploaded.
	Uploaded func(key string, object []byte)
	// MarkerGather is how long the first EndTxn of a markers object waits
	// for others to share its PUT (default 2ms; negative: none, one
	// object per end). Ends that come together, such as those of
	// producers acknowledged by one segment commit, then cost one PUT.
	MarkerGather time.Duration
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Coordinator coordinates the transactional ids this agent owns. Safe for
// concurrent use.
type Coordinator struct {
	store   Store
	bucket  Bucket
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	// gatherMu guards gathering, the markers object that ends are
	// joining (uploadMarkers); never held across I/O.
	gatherMu  sync.Mutex
	gathering *markerRound

	mu       sync.Mutex
	turns    map[string]*turn
	closed   bool
	inflight sync.WaitGroup

	stop chan struct{}
	done chan struct{}
}

// turn is one transactional id's turn: a one-slot channel whose holder
// alone decides and writes for the id, across the id's store and bucket
// I/O (each decision names the version it read, and the turn keeps this
// agent's decisions for the id in one order). refs counts the requests
// holding or waiting for it, under Coordinator.mu, so that idle ids leave
// the map.
type turn struct {
	ch   chan struct{}
	refs int
}

// Errors of the runtime, answered as the codes in errCode.
var (
	// ErrNotCoordinator: this agent does not own the id, or is closing.
	ErrNotCoordinator = errors.New("not the coordinator of this transactional id")
	// errConflicts: other agents kept writing the record.
	errConflicts = errors.New("transaction record kept changing")
)

// New starts a coordinator and its timeout loop; Close stops it.
func New(store Store, bucket Bucket, opts Options) *Coordinator {
	opts.Txn = opts.Txn.WithDefaults()
	if opts.Owns == nil {
		opts.Owns = func(string) bool { return true }
	}
	if opts.AbortInterval <= 0 {
		opts.AbortInterval = 10 * time.Second
	}
	if opts.IDExpiration == 0 {
		opts.IDExpiration = 7 * 24 * time.Hour
	}
	if opts.MaxConflicts <= 0 {
		opts.MaxConflicts = 5
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.MarkerGather == 0 {
		opts.MarkerGather = 2 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Coordinator{
		store: store, bucket: bucket, opts: opts, log: opts.Logger, metrics: NewMetrics(opts.Registerer),
		turns: map[string]*turn{}, stop: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run()
	return c
}

// Close stops the timeout loop and waits for requests in flight on the
// store to end; later requests are answered NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	c.inflight.Wait()
}

// Owns reports whether this agent coordinates transactionalID.
func (c *Coordinator) Owns(transactionalID string) bool {
	return c.opts.Owns(Key(transactionalID))
}

// acquire takes id's turn, waiting with ctx; release gives it back. A
// free turn is taken even if ctx has ended.
func (c *Coordinator) acquire(ctx context.Context, id string) (release func(), err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrNotCoordinator
	}
	t := c.turns[id]
	if t == nil {
		t = &turn{ch: make(chan struct{}, 1)}
		c.turns[id] = t
	}
	t.refs++
	c.inflight.Add(1)
	c.mu.Unlock()
	drop := func() {
		c.mu.Lock()
		if t.refs--; t.refs == 0 {
			delete(c.turns, id)
		}
		c.mu.Unlock()
		c.inflight.Done()
	}
	select {
	case t.ch <- struct{}{}:
	default:
		select {
		case t.ch <- struct{}{}:
		case <-ctx.Done():
			drop()
			return nil, ctx.Err()
		}
	}
	return func() {
		<-t.ch
		drop()
	}, nil
}

// decider is a decision of the state machine for one request, capturing
// its typed response; it is called again after every write that was not
// the request's own and every conflict.
type decider func(cur metastore.Txn, found bool, in txn.Input) txn.Effect

// decide loads id's record and carries out decisions until one answers,
// with id's turn held: it allocates producer ids, writes, and on a
// version conflict loads the record again and decides again. It returns
// the record as stored after the last write.
func (c *Coordinator) decide(ctx context.Context, id string, d decider) (metastore.Txn, bool, error) {
	rec, found, err := c.store.LoadTxn(ctx, id)
	if err != nil {
		return rec, found, fmt.Errorf("load transaction %q: %w", id, err)
	}
	in := txn.Input{Now: c.opts.Now(), NewProducerID: -1}
	conflicts := 0
	for {
		eff := d(rec, found, in)
		if eff.NeedProducerID {
			if in.NewProducerID >= 0 {
				return rec, found, fmt.Errorf("transaction %q: a second producer id asked for one decision", id)
			}
			if in.NewProducerID, err = c.allocate(ctx); err != nil {
				return rec, found, err
			}
			continue
		}
		var (
			next    metastore.Txn
			version int64
			wrote   bool
		)
		switch {
		case eff.Save != nil:
			next, wrote = *eff.Save, true
			version, err = c.save(ctx, next)
		case eff.End != nil:
			next, wrote = eff.End.Next, true
			version, err = c.end(ctx, id, eff.End)
		}
		if errors.Is(err, metastore.ErrTxnVersionConflict) || errors.Is(err, metastore.ErrUnknownTxn) {
			conflicts++
			c.metrics.conflicts.Inc()
			if conflicts > c.opts.MaxConflicts {
				c.log.Warn("transaction record kept changing; giving the request up", "transactional_id", id, "conflicts", conflicts)
				return rec, found, errConflicts
			}
			c.log.Debug("transaction changed by another coordinator; deciding again", "transactional_id", id)
			if rec, found, err = c.store.LoadTxn(ctx, id); err != nil {
				return rec, found, fmt.Errorf("load transaction %q: %w", id, err)
			}
			in.Now = c.opts.Now()
			continue
		}
		if err != nil {
			return rec, found, err
		}
		if wrote {
			rec, found = next, true
			rec.Version = version
			if rec.ProducerID == in.NewProducerID {
				in.NewProducerID = -1
			}
		}
		if !eff.Again {
			return rec, found, nil
		}
		in.Now = c.opts.Now()
	}
}

// writeCtx is the context of a decision's writes: they run to their end
// whatever the client does, within WriteTimeout.
func (c *Coordinator) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.opts.WriteTimeout)
}

func (c *Coordinator) allocate(ctx context.Context) (int64, error) {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	id, _, err := c.store.InitProducerID(wctx, -1, -1)
	if err != nil {
		return -1, fmt.Errorf("allocate a producer id: %w", err)
	}
	return id, nil
}

func (c *Coordinator) save(ctx context.Context, t metastore.Txn) (int64, error) {
	wctx, cancel := c.writeCtx(ctx)
	defer cancel()
	v, err := c.store.SaveTxn(wctx, t)
	if err != nil {
		return 0, fmt.Errorf("save transaction %q at version %d: %w", t.TransactionalID, t.Version, err)
	}
	return v, nil
}

// errCode maps the runtime's and the store's failures to Kafka codes, all
// retriable: the client finds the coordinator again or retries.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotCoordinator), errors.Is(err, errConflicts):
		return kerr.NotCoordinator.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}

// serve runs one request: ownership (if owned), the id's turn, the
// decisions. It returns the code of a failure of the runtime or the
// store, 0 when the decisions answered.
func (c *Coordinator) serve(ctx context.Context, api, id string, owned bool, d decider) int16 {
	return c.serveThen(ctx, api, id, owned, d, nil)
}

// serveThen is serve, then runs then (if not nil) with the turn still
// held and returns its code.
func (c *Coordinator) serveThen(ctx context.Context, api, id string, owned bool, d decider, then func() int16) int16 {
	if id == "" {
		// No record to load: the state machine answers INVALID_REQUEST.
		d(metastore.Txn{}, false, txn.Input{Now: c.opts.Now(), NewProducerID: -1})
		return 0
	}
	if owned && !c.Owns(id) {
		c.metrics.request(api, kerr.NotCoordinator.Code)
		return kerr.NotCoordinator.Code
	}
	release, err := c.acquire(ctx, id)
	if err != nil {
		code := errCode(err)
		c.metrics.request(api, code)
		return code
	}
	defer release()
	if _, _, err := c.decide(ctx, id, d); err != nil {
		if !errors.Is(err, errConflicts) && !errors.Is(err, context.Canceled) {
			c.log.Warn("transaction request failed", "api", api, "transactional_id", id, "err", err)
		}
		code := errCode(err)
		c.metrics.request(api, code)
		return code
	}
	if then != nil {
		return then()
	}
	return 0
}

// InitProducerID handles an InitProducerId with a transactional id: a new
// id gets a producer id, a known one a bumped epoch (an ongoing
// transaction is aborted first, fencing its producer), KIP-360 recovery
// included. An empty transactional id is INVALID_REQUEST; one this agent
// does not own NOT_COORDINATOR. Store failures give
// COORDINATOR_NOT_AVAILABLE and an ended ctx REQUEST_TIMED_OUT, both
// retriable.
func (c *Coordinator) InitProducerID(ctx context.Context, r txn.InitProducerIDRequest) txn.InitProducerIDResponse {
	var resp txn.InitProducerIDResponse
	code := c.serve(ctx, "InitProducerId", r.TransactionalID, true, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		var eff txn.Effect
		resp, eff = txn.InitProducerID(c.opts.Txn, cur, found, r, in)
		return eff
	})
	if code != 0 {
		return txn.InitProducerIDResponse{Err: code, ProducerID: -1, ProducerEpoch: -1}
	}
	c.metrics.request("InitProducerId", resp.Err)
	if resp.Err == 0 {
		c.log.Debug("producer initialised", "transactional_id", r.TransactionalID, "producer_id", resp.ProducerID, "epoch", resp.ProducerEpoch)
	}
	return resp
}

// AddPartitions handles AddPartitionsToTxn for one transactional id (a
// v4+ request is one call per transaction). Errors of the transaction
// apply to every partition; a verify-only request answers each partition
// alone.
func (c *Coordinator) AddPartitions(ctx context.Context, r txn.AddPartitionsRequest) txn.AddPartitionsResponse {
	return c.addPartitions(ctx, "AddPartitionsToTxn", true, r)
}

// AddProducedPartitions adds the partitions of a Produce v12+ request's
// transactional batches to their producer's transaction (transaction
// version 2, KIP-890 part 2), as a Kafka broker asks the coordinator
// before it appends them. It runs on the agent the produce reached, which
// need not own the transactional id: the record's compare-and-swap keeps
// it right beside the owner's requests, as for TxnOffsetCommit.
func (c *Coordinator) AddProducedPartitions(ctx context.Context, r txn.AddPartitionsRequest) txn.AddPartitionsResponse {
	return c.addPartitions(ctx, "Produce", false, r)
}

func (c *Coordinator) addPartitions(ctx context.Context, api string, owned bool, r txn.AddPartitionsRequest) txn.AddPartitionsResponse {
	var resp txn.AddPartitionsResponse
	code := c.serve(ctx, api, r.TransactionalID, owned, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		var eff txn.Effect
		resp, eff = txn.AddPartitions(cur, found, r, in)
		return eff
	})
	if code != 0 {
		errs := make([]int16, len(r.Partitions))
		for i := range errs {
			errs[i] = code
		}
		return txn.AddPartitionsResponse{Err: code, Errs: errs}
	}
	c.metrics.request(api, resp.Err)
	return resp
}

// AddOffsets handles AddOffsetsToTxn: the group joins the transaction.
func (c *Coordinator) AddOffsets(ctx context.Context, r txn.AddOffsetsRequest) int16 {
	var resp int16
	code := c.serve(ctx, "AddOffsetsToTxn", r.TransactionalID, true, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		var eff txn.Effect
		resp, eff = txn.AddOffsets(cur, found, r, in)
		return eff
	})
	if code != 0 {
		return code
	}
	c.metrics.request("AddOffsetsToTxn", resp)
	return resp
}

// EndTxn handles EndTxn: it writes the markers of every partition of the
// transaction and completes it in one store step, and answers once that
// step is durable. A retried EndTxn of a transaction already ended the
// same way is answered as success.
func (c *Coordinator) EndTxn(ctx context.Context, r txn.EndTxnRequest) txn.EndTxnResponse {
	var resp txn.EndTxnResponse
	code := c.serve(ctx, "EndTxn", r.TransactionalID, true, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		var eff txn.Effect
		resp, eff = txn.EndTxn(cur, found, r, in)
		return eff
	})
	if code != 0 {
		return txn.EndTxnResponse{Err: code, ProducerID: -1, ProducerEpoch: -1}
	}
	c.metrics.request("EndTxn", resp.Err)
	return resp
}

// CommitOffsets handles the transactional side of a TxnOffsetCommit:
// after the group coordinator has checked the group's generation and
// member (coordinator.Coordinator.ValidateTxnCommit), it checks the
// producer and that the group was added to the ongoing transaction, and
// records the offsets as pending in it. The code applies to every
// partition. TxnOffsetCommit goes to the group's coordinator, which need
// not own the transactional id: this does not check ownership (the store
// checks the producer atomically).
func (c *Coordinator) CommitOffsets(ctx context.Context, r txn.OffsetCommitRequest) int16 {
	const api = "TxnOffsetCommit"
	var resp int16
	code := c.serveThen(ctx, api, r.TransactionalID, false, func(cur metastore.Txn, found bool, in txn.Input) txn.Effect {
		var eff txn.Effect
		resp, eff = txn.CommitOffsets(cur, found, r, in)
		return eff
	}, func() int16 {
		if resp == 0 && len(r.Offsets) > 0 {
			resp = c.commitOffsets(ctx, r)
		}
		return 0
	})
	if code != 0 {
		return code
	}
	c.metrics.request(api, resp)
	return resp
}

// commitOffsets records the pending offsets; the store checks the
// producer and the group again, atomically with the write.
func (c *Coordinator) commitOffsets(ctx context.Context, r txn.OffsetCommitRequest) int16 {
	err := c.store.CommitTxnOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, r.Offsets)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, metastore.ErrUnknownTxn):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, metastore.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrInvalidTxnState):
		if r.Version >= 4 {
			return kerr.TransactionAbortable.Code
		}
		return kerr.InvalidTxnState.Code
	case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	}
	if !errors.Is(err, context.Canceled) {
		c.log.Warn("transactional offset commit failed", "transactional_id", r.TransactionalID, "group", r.Group, "err", err)
	}
	return errCode(err)
}
