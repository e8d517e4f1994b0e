package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// OpSchedule is the session operation by which an agent joins its
// vcluster's schedule (metastore.Scheduler). It is not a metastore
// method and is never journaled: the membership is the session itself,
// and ends with it. Its arguments are a metastore.ScheduleMember (an
// empty Agent.ID withdraws the session's member), its result the
// current metastore.Schedule; later schedules come as KindSchedule
// frames, to subscribed sessions only.
const OpSchedule = "_schedule"

// MaxScheduleArgs bounds OpSchedule's arguments.
const MaxScheduleArgs = 64 << 10

var scheduleOp = &Op{Name: OpSchedule}

var _ metastore.Scheduler = (*Client)(nil)

// scheduleRetry bounds the wait between two subscriptions after a lost
// connection or a refused subscription.
const scheduleRetry = 5 * time.Second

// scheduleWatch is a WatchSchedule in progress: it subscribes on every
// connection and hands the newest schedule received to fn.
type scheduleWatch struct {
	c      *Client
	member metastore.ScheduleMember
	fn     func(metastore.Schedule)

	stop     chan struct{}
	stopOnce sync.Once
	loops    sync.WaitGroup

	mu      sync.Mutex
	newest  metastore.Schedule // the newest received, or the last marked lost
	pending bool               // newest not yet delivered
	wake    chan struct{}
}

// WatchSchedule implements metastore.Scheduler. A client has at most one
// watch at a time. fn must not call stop.
func (c *Client) WatchSchedule(m metastore.ScheduleMember, fn func(metastore.Schedule)) (func(), error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	w := &scheduleWatch{c: c, member: m, fn: fn, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
	if !c.schedule.CompareAndSwap(nil, w) {
		return nil, errors.New("remote: the client already watches the schedule")
	}
	// The first subscription is made now, to tell a control plane that
	// does not schedule; any other failure is retried by the loop.
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	cc, err := c.connection(ctx)
	if err == nil {
		err = w.subscribe(ctx, cc, m)
	}
	cancel()
	if errors.Is(err, metastore.ErrScheduleUnsupported) || errors.Is(err, metastore.ErrClosed) {
		c.schedule.CompareAndSwap(w, nil)
		return nil, err
	}
	if err != nil {
		c.log.Warn("joining the control plane's schedule failed; retrying", "err", err)
		cc = nil
	}
	w.loops.Add(2)
	go w.deliverLoop()
	go w.sessionLoop(cc)
	return w.end, nil
}

// end stops the watch: no call of fn starts after it returns, and the
// member is withdrawn from the schedule (best effort: the session's end
// withdraws it anyway).
func (w *scheduleWatch) end() {
	w.stopOnce.Do(func() {
		close(w.stop)
		w.loops.Wait()
		w.c.schedule.CompareAndSwap(w, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		w.c.mu.Lock()
		cc := w.c.conn
		w.c.mu.Unlock()
		if cc != nil && !cc.dead() {
			w.subscribe(ctx, cc, metastore.ScheduleMember{})
		}
	})
}

// subscribe sends the member on cc and offers the schedule it answers.
func (w *scheduleWatch) subscribe(ctx context.Context, cc *clientConn, m metastore.ScheduleMember) error {
	raw, err := Marshal(m)
	if err != nil {
		return err
	}
	id, ch, err := cc.send(scheduleOp, raw)
	if err != nil {
		return err
	}
	var resp Response
	select {
	case resp = <-ch:
	case <-cc.gone:
		return cc.err
	case <-ctx.Done():
		cc.forget(id)
		return ctx.Err()
	}
	if resp.Err != nil {
		if resp.Err.Code == "" && strings.Contains(resp.Err.Msg, "unknown op") {
			return fmt.Errorf("%w: %s", metastore.ErrScheduleUnsupported, resp.Err.Msg)
		}
		return resp.Err.Err()
	}
	if m.Agent.ID == "" {
		return nil
	}
	var s metastore.Schedule
	if err := Unmarshal(resp.Result, &s); err != nil {
		return fmt.Errorf("%s: malformed schedule: %w", OpSchedule, err)
	}
	w.offer(s)
	return nil
}

// sessionLoop keeps the member subscribed: it waits for the subscribed
// connection to end, marks the schedule lost, and subscribes again on a
// new connection (dialling one if no call has).
func (w *scheduleWatch) sessionLoop(cc *clientConn) {
	defer w.loops.Done()
	retry := 100 * time.Millisecond
	for {
		if cc != nil {
			select {
			case <-cc.gone:
				w.offerLost()
				cc = nil
				retry = 100 * time.Millisecond
			case <-w.stop:
				return
			case <-w.c.done:
				return
			}
		}
		select {
		case <-time.After(retry):
		case <-w.stop:
			return
		case <-w.c.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
		conn, err := w.c.connection(ctx)
		if err == nil {
			err = w.subscribe(ctx, conn, w.member)
		}
		cancel()
		if err != nil {
			if !w.c.closed.Load() {
				w.c.log.Debug("joining the control plane's schedule failed; retrying", "err", err, "in", retry)
			}
			retry = min(2*retry, scheduleRetry)
			continue
		}
		cc = conn
	}
}

// offer records s if it is newer than the newest known, or the newest
// again after it was marked lost (the control plane still stands by it).
func (w *scheduleWatch) offer(s metastore.Schedule) {
	w.mu.Lock()
	defer w.mu.Unlock()
	same := s.Epoch == w.newest.Epoch && s.Version == w.newest.Version
	if !s.Newer(w.newest) && !(same && w.newest.Lost) {
		return
	}
	w.newest, w.pending = s, true
	w.signal()
}

// offerLost marks the newest schedule lost.
func (w *scheduleWatch) offerLost() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.newest.Lost {
		return
	}
	w.newest.Lost, w.pending = true, true
	w.signal()
}

func (w *scheduleWatch) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// deliverLoop calls fn with the newest schedule, one call at a time: a
// schedule superseded while fn ran is skipped, never delivered late.
func (w *scheduleWatch) deliverLoop() {
	defer w.loops.Done()
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		case <-w.c.done:
			return
		}
		w.mu.Lock()
		s, pending := w.newest, w.pending
		w.pending = false
		w.mu.Unlock()
		if pending {
			w.fn(s)
		}
	}
}

// offerSchedule hands a pushed schedule to the watch, if any.
func (c *Client) offerSchedule(s metastore.Schedule) {
	if w := c.schedule.Load(); w != nil {
		w.offer(s)
	}
}
