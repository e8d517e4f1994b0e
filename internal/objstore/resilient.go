package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrTransient marks errors worth another attempt: a backend wraps it
// into failures it knows to be temporary (server errors, throttling,
// dropped connections), and Resilient retries them.
var ErrTransient = errors.New("transient object-store error")

// IsRetriable is the default judgement of Resilient: whether a failed
// request may succeed if sent again. Missing objects and canceled
// contexts never are. Besides ErrTransient it recognises timeouts
// (net.Error, including context.DeadlineExceeded: Resilient itself never
// retries once the caller's own ctx has expired), connection resets and
// refusals, truncated responses, and errors carrying an HTTP status (an
// HTTPStatusCode() int method) of 408, 429 or 5xx.
func IsRetriable(err error) bool {
	var status interface{ HTTPStatusCode() int }
	var netErr net.Error
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrTransient):
		return true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	case errors.As(err, &status):
		code := status.HTTPStatusCode()
		return code == 408 || code == 429 || code >= 500
	}
	return false
}

// ResilientOptions tunes Resilient. The zero value gives the defaults.
type ResilientOptions struct {
	// MaxAttempts bounds the attempts per request, the first included.
	// Default 5; 1 turns retries off.
	MaxAttempts int
	// MaxElapsed bounds the time spent on one request, retries and
	// backoff included: no attempt starts after it. Default 20s.
	MaxElapsed time.Duration
	// BaseDelay is the backoff before the first retry; it doubles for
	// each further retry up to MaxDelay, with random jitter (each wait is
	// between half and all of the nominal delay). Defaults 25ms and 2s.
	BaseDelay, MaxDelay time.Duration
	// AttemptTimeout bounds a single Put, GetRange or Delete attempt, so
	// that a hung connection becomes a retriable timeout. List attempts
	// are not bounded: they include the caller's callback. Default 30s.
	AttemptTimeout time.Duration
	// Retriable decides which errors are retried. Default IsRetriable.
	// Errors of a canceled or expired ctx are never retried.
	Retriable func(error) bool

	// HedgeAfter, if positive, is a fixed hedging threshold: a GetRange
	// attempt that has not answered after it gets a second, identical
	// request, and the first success wins. If zero, the threshold follows
	// the p99 latency of the last HedgeWindow successful GETs, never
	// below HedgeFloor (before HedgeMinSamples GETs, HedgeInitial is
	// used). Negative turns hedging off.
	HedgeAfter time.Duration
	// HedgeFloor is the lowest adaptive threshold. Default 50ms.
	HedgeFloor time.Duration
	// HedgeInitial is the adaptive threshold until there are enough
	// samples. Default 200ms.
	HedgeInitial time.Duration
	// HedgeWindow is the number of recent GET latencies the adaptive
	// threshold looks at. Default 128.
	HedgeWindow int
	// HedgeMinSamples is the number of samples the adaptive threshold
	// needs. Default 20.
	HedgeMinSamples int

	// Metrics counts retries and hedges; nil counts nothing.
	Metrics *ResilienceMetrics
}

func (o *ResilientOptions) setDefaults() {
	setDefault(&o.MaxAttempts, 5)
	setDefault(&o.MaxElapsed, 20*time.Second)
	setDefault(&o.BaseDelay, 25*time.Millisecond)
	setDefault(&o.MaxDelay, 2*time.Second)
	setDefault(&o.AttemptTimeout, 30*time.Second)
	setDefault(&o.HedgeFloor, 50*time.Millisecond)
	setDefault(&o.HedgeInitial, 200*time.Millisecond)
	setDefault(&o.HedgeWindow, 128)
	setDefault(&o.HedgeMinSamples, 20)
	o.HedgeMinSamples = min(o.HedgeMinSamples, o.HedgeWindow)
	if o.Retriable == nil {
		o.Retriable = IsRetriable
	}
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Hedge outcome label values.
const (
	hedgeWon    = "won"    // the hedge answered first
	hedgeLost   = "lost"   // the original request answered first
	hedgeFailed = "failed" // neither succeeded
)

// ResilienceMetrics counts what Resilient does on top of the requests
// Instrument counts. Build it once per registry and share it.
type ResilienceMetrics struct {
	retries *prometheus.CounterVec
	hedges  *prometheus.CounterVec
}

// NewResilienceMetrics creates the metrics and registers them with reg
// (nil leaves them unregistered).
func NewResilienceMetrics(reg prometheus.Registerer) *ResilienceMetrics {
	m := &ResilienceMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_retries_total",
			Help: "Object-store request attempts after the first, by operation.",
		}, []string{"op"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_objstore_hedges_total",
			Help: "Hedged GETs by outcome: won (the hedge answered first), lost (the original did), failed (neither succeeded).",
		}, []string{"outcome"}),
	}
	for _, op := range []string{opPut, opGet, opDelete, opList} {
		m.retries.WithLabelValues(op)
	}
	for _, o := range []string{hedgeWon, hedgeLost, hedgeFailed} {
		m.hedges.WithLabelValues(o)
	}
	if reg != nil {
		reg.MustRegister(m.retries, m.hedges)
	}
	return m
}

func (m *ResilienceMetrics) retry(op string) {
	if m != nil {
		m.retries.WithLabelValues(op).Inc()
	}
}

func (m *ResilienceMetrics) hedge(outcome string) {
	if m != nil {
		m.hedges.WithLabelValues(outcome).Inc()
	}
}

// ResilientBucket retries failed requests and hedges slow GETs. Make one
// with Resilient.
type ResilientBucket struct {
	b Bucket
	o ResilientOptions

	mu        sync.Mutex
	latencies []time.Duration // ring of recent successful GET latencies
	next      int             // where the next sample goes
	threshold time.Duration   // cached adaptive threshold; 0: recompute
}

var _ Bucket = (*ResilientBucket)(nil)

// Resilient wraps b so that requests failing with retriable errors are
// retried with exponential backoff and jitter, within bounded attempts and
// time, and GETs slower than a threshold are hedged. Every request to b is
// idempotent (keys are never reused), which makes both safe. Wrap the
// result in Instrument to count requests as callers see them.
func Resilient(b Bucket, o ResilientOptions) *ResilientBucket {
	o.setDefaults()
	return &ResilientBucket{b: b, o: o}
}

// Unwrap returns the wrapped bucket.
func (r *ResilientBucket) Unwrap() Bucket { return r.b }

// Put stores data, retrying retriable failures.
func (r *ResilientBucket) Put(ctx context.Context, key string, data []byte) error {
	return r.do(ctx, opPut, key, true, func(ctx context.Context) error {
		return r.b.Put(ctx, key, data)
	})
}

// Delete removes key, retrying retriable failures.
func (r *ResilientBucket) Delete(ctx context.Context, key string) error {
	return r.do(ctx, opDelete, key, true, func(ctx context.Context) error {
		return r.b.Delete(ctx, key)
	})
}

// GetRange reads a range, hedging each attempt and retrying retriable
// failures.
func (r *ResilientBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	var data []byte
	err := r.do(ctx, opGet, key, true, func(ctx context.Context) error {
		var err error
		data, err = r.hedgedGet(ctx, key, offset, length)
		return err
	})
	return data, err
}

// List lists keys, retrying retriable failures. A retry resumes after the
// last key already passed to fn, so fn never sees a key twice; an error
// returned by fn ends the listing at once.
func (r *ResilientBucket) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var last string
	var delivered bool
	err := r.do(ctx, opList, prefix, false, func(ctx context.Context) error {
		var fnErr error
		err := r.b.List(ctx, prefix, func(oi ObjectInfo) error {
			if delivered && oi.Key <= last {
				return nil // passed to fn by an earlier attempt
			}
			if fnErr = fn(oi); fnErr != nil {
				return fnErr
			}
			last, delivered = oi.Key, true
			return nil
		})
		if fnErr != nil {
			return &callbackError{fnErr}
		}
		return err
	})
	if cbErr, ok := errors.AsType[*callbackError](err); ok {
		return cbErr.err
	}
	return err
}

// callbackError carries an error returned by a List callback through the
// retry loop, which must never retry it.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// do runs attempt until it succeeds, fails for good, or the attempts or
// time run out. timeout says whether AttemptTimeout bounds each attempt.
func (r *ResilientBucket) do(ctx context.Context, op, key string, timeout bool, attempt func(context.Context) error) error {
	start := time.Now()
	delay := r.o.BaseDelay
	for n := 1; ; n++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if timeout {
			actx, cancel = context.WithTimeout(ctx, r.o.AttemptTimeout)
		}
		err := attempt(actx)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return err // the caller gave up; err says why
		case !r.retriable(err, timedOut):
			return err
		case n >= r.o.MaxAttempts:
			return fmt.Errorf("%s %s: giving up after %d attempts: %w", op, key, n, err)
		}
		// Wait between half and all of delay: jitter spreads retries of
		// many agents hit by the same outage.
		wait := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, r.o.MaxDelay)
		if time.Since(start)+wait > r.o.MaxElapsed {
			return fmt.Errorf("%s %s: giving up after %d attempts in %v: %w",
				op, key, n, time.Since(start).Round(time.Millisecond), err)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s %s: no time left to retry after %d attempts: %w", op, key, n, err)
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s %s: %w while waiting to retry after: %w", op, key, ctx.Err(), err)
		}
		r.o.Metrics.retry(op)
	}
}

// retriable says whether an attempt that failed with err is worth
// another; timedOut says the attempt ran out of AttemptTimeout.
func (r *ResilientBucket) retriable(err error, timedOut bool) bool {
	if _, ok := errors.AsType[*callbackError](err); ok {
		return false
	}
	if timedOut && errors.Is(err, context.DeadlineExceeded) {
		return true // the attempt timed out, not the caller's ctx
	}
	return r.o.Retriable(err)
}

// getResult is the answer of one of the requests of a hedged GET.
type getResult struct {
	data  []byte
	err   error
	hedge bool
	took  time.Duration
}

// hedgedGet sends one GET and, if it has not answered within the hedging
// threshold, a second one; the first success wins and the other request
// is canceled. A definite failure (one not worth a retry, such as
// ErrNotFound) also ends the wait; a retriable one waits for the other
// request.
func (r *ResilientBucket) hedgedGet(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the request that lost
	// Buffered for both requests, so the loser never blocks and its
	// goroutine ends as soon as the wrapped bucket returns.
	results := make(chan getResult, 2)
	send := func(hedge bool) {
		go func() {
			start := time.Now()
			data, err := r.b.GetRange(ctx, key, offset, length)
			results <- getResult{data: data, err: err, hedge: hedge, took: time.Since(start)}
		}()
	}
	send(false)

	threshold := r.HedgeThreshold()
	if threshold < 0 {
		res := <-results
		if res.err == nil {
			r.observe(res.took)
		}
		return res.data, res.err
	}
	timer := time.NewTimer(threshold)
	defer timer.Stop()

	pending, hedged := 1, false
	var firstErr error
	for {
		select {
		case <-timer.C:
			// The original request is still running: had it answered,
			// we would have returned.
			hedged = true
			pending++
			send(true)
		case res := <-results:
			pending--
			if res.err == nil {
				r.observe(res.took)
				switch {
				case res.hedge:
					r.o.Metrics.hedge(hedgeWon)
				case hedged:
					r.o.Metrics.hedge(hedgeLost)
				}
				return res.data, nil
			}
			if firstErr == nil || errors.Is(firstErr, context.Canceled) {
				firstErr = res.err
			}
			definite := !r.o.Retriable(res.err) && !errors.Is(res.err, context.DeadlineExceeded)
			if pending == 0 || definite {
				if hedged {
					r.o.Metrics.hedge(hedgeFailed)
				}
				if definite {
					return nil, res.err
				}
				return nil, firstErr
			}
			// Retriable failure while the other request (or the hedge
			// still to come) may succeed: wait for it. A primary that
			// failed before the threshold has no hedge running, so
			// pending is 0 and we returned above.
		}
	}
}

// HedgeThreshold returns the current hedging threshold; negative means
// hedging is off.
func (r *ResilientBucket) HedgeThreshold() time.Duration {
	if r.o.HedgeAfter != 0 {
		return r.o.HedgeAfter
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.latencies) < r.o.HedgeMinSamples {
		return max(r.o.HedgeInitial, r.o.HedgeFloor)
	}
	if r.threshold == 0 {
		sorted := slices.Clone(r.latencies)
		slices.Sort(sorted)
		p99 := sorted[(len(sorted)*99+99)/100-1]
		r.threshold = max(p99, r.o.HedgeFloor)
	}
	return r.threshold
}

// observe records the latency of a successful GET request for the
// adaptive threshold.
func (r *ResilientBucket) observe(d time.Duration) {
	if r.o.HedgeAfter != 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.latencies) < r.o.HedgeWindow {
		r.latencies = append(r.latencies, d)
	} else {
		r.latencies[r.next] = d
		r.next = (r.next + 1) % r.o.HedgeWindow
	}
	r.threshold = 0
}
