package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// budgetUnit is the share of a session's request budget one unit is:
// MaxInFlight units, so MaxInFlight small requests or one of MaxFrame
// bytes at a time.
const budgetUnit = remote.MaxFrame / remote.MaxInFlight

// outQueue bounds the frames waiting to be written to a session; beyond
// it notices collapse into "everything changed" (responses wait).
const outQueue = 1024

// pongQueue bounds the pings waiting for their answer (a client has one
// in flight at a time); beyond it pings are dropped.
const pongQueue = 4

// session is one agent connection, bound to one vcluster.
type session struct {
	v   *vcluster
	nc  net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	out          chan remote.Frame
	pongs        chan uint64 // ids of pings to answer, ahead of out
	lostCommits  atomic.Bool // a commit notice did not fit in out
	lostTopics   atomic.Bool
	closeOnce    sync.Once
	writerDone   chan struct{}
	inFlight     chan struct{} // budget of MaxInFlight units, taken by the reader only
	requestsDone sync.WaitGroup
}

func newSession(v *vcluster, nc net.Conn, r *bufio.Reader, w *bufio.Writer, log *slog.Logger) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		v: v, nc: nc, r: r, w: w, log: log.With("vcluster", v.name, "remote", nc.RemoteAddr().String()),
		ctx: ctx, cancel: cancel,
		out: make(chan remote.Frame, outQueue), pongs: make(chan uint64, pongQueue), writerDone: make(chan struct{}),
		inFlight: make(chan struct{}, remote.MaxInFlight),
	}
}

// serve reads requests until the connection ends.
func (s *session) serve() {
	go s.writeLoop()
	defer func() {
		s.close()
		s.requestsDone.Wait()
		<-s.writerDone
	}()
	for {
		f, err := remote.ReadFrame(s.r)
		if err != nil {
			return
		}
		if f.Kind == remote.KindPing {
			// Answered as it is read, whatever the requests wait for
			// (the applier, the journal): the client asks whether this
			// process runs, not whether its vcluster keeps up.
			select {
			case s.pongs <- f.ID:
			default:
			}
			continue
		}
		if f.Kind != remote.KindRequest {
			s.log.Warn("unexpected frame kind; closing", "kind", f.Kind)
			return
		}
		// Every request takes a share of the session's budget in
		// proportion to its size (at least one unit): the requests being
		// decoded and run are bounded in number and in bytes.
		units := min(max(len(f.Payload)/budgetUnit, 1), remote.MaxInFlight)
		for range units {
			select {
			case s.inFlight <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
		}
		// Then its share of the vcluster's and the server's budgets
		// (taken in that order by every session: no cycle).
		bytes := int64(max(len(f.Payload), budgetUnit))
		if s.v.requests.take(s.ctx, bytes) != nil {
			return
		}
		if s.v.serverRequests != nil && s.v.serverRequests.take(s.ctx, bytes) != nil {
			s.v.requests.give(bytes)
			return
		}
		s.requestsDone.Add(1)
		go func() {
			defer s.requestsDone.Done()
			defer func() {
				if s.v.serverRequests != nil {
					s.v.serverRequests.give(bytes)
				}
				s.v.requests.give(bytes)
				for range units {
					<-s.inFlight
				}
			}()
			resp := s.handle(f.Payload)
			payload, err := remote.Marshal(resp)
			if err == nil && len(payload) > remote.MaxFrame-64 {
				err = fmt.Errorf("response of %d bytes is over the frame limit of %d; ask for less (a limit)", len(payload), remote.MaxFrame)
			}
			if err != nil {
				payload, _ = remote.Marshal(remote.Response{Err: remote.EncodeError(err)})
			}
			select {
			case s.out <- remote.Frame{Kind: remote.KindResponse, ID: f.ID, Payload: payload}:
			case <-s.ctx.Done():
			}
		}()
	}
}

// handle answers one request: reads from the state, mutations through the
// journal.
func (s *session) handle(payload []byte) remote.Response {
	req, err := remote.DecodeRequest(payload)
	if err != nil {
		return remote.Response{Err: &remote.WireError{Msg: fmt.Sprintf("malformed request: %v", err)}}
	}
	if req.Op == remote.OpSchedule {
		// Not a store method: the session joins the schedule.
		if err := s.v.checkLease(); err != nil {
			return unavailable(err)
		}
		return s.v.sched.subscribe(s, req.Args)
	}
	op, ok := remote.Lookup(req.Op)
	if !ok {
		return remote.Response{Err: &remote.WireError{Msg: fmt.Sprintf("unknown op %q", req.Op)}}
	}
	args, err := op.Decode(req.Args)
	if err != nil {
		return remote.Response{Err: remote.EncodeError(err)}
	}
	if err := s.v.checkLease(); err != nil {
		// Past its lease another process may lead the vcluster: this
		// state may be stale.
		return unavailable(err)
	}
	if !op.Mutates {
		res, err := op.Apply(s.ctx, s.v.store, args)
		if errors.Is(err, metastore.ErrClosed) {
			// The vcluster is closing (deleted, or the server stops):
			// the agent's store is not closed, this one is unavailable.
			return unavailable(err)
		}
		return remote.Response{Result: res, Err: remote.EncodeError(err)}
	}
	return s.v.submit(s.ctx, &command{Command: Command{Op: op.Name, Args: req.Args}, op: op, args: args, origin: s})
}

// pushNotice queues an encoded notice (its frames share payload) without
// ever blocking the applier: when the queue is full, or the notice could
// not be encoded, the session is sent "everything changed" later.
func (s *session) pushNotice(kind byte, payload []byte, err error) {
	if err == nil {
		select {
		case s.out <- remote.Frame{Kind: kind, Payload: payload}:
			return
		default:
		}
	}
	if kind == remote.KindCommitNotice {
		s.lostCommits.Store(true)
	} else {
		s.lostTopics.Store(true)
	}
}

// writeLoop writes queued frames, flushing when the queue is empty.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	var buf []byte
	write := func(f remote.Frame) bool {
		var err error
		buf, err = remote.AppendFrame(buf[:0], f)
		if err == nil {
			_, err = s.w.Write(buf)
		}
		if err != nil {
			s.close()
			return false
		}
		return true
	}
	for {
		var f remote.Frame
		select {
		case f = <-s.out:
		case id := <-s.pongs:
			f = remote.Frame{Kind: remote.KindPong, ID: id}
		case <-s.ctx.Done():
			return
		}
		if !write(f) {
			return
		}
		// Then whatever else is queued, and once more after letting the
		// goroutines that run go first: the answers of one applied batch
		// come from as many goroutines, woken together, and share a
		// flush when they are written together.
		for yielded := false; ; yielded = true {
		drain:
			for {
				select {
				case id := <-s.pongs:
					f = remote.Frame{Kind: remote.KindPong, ID: id}
				default:
					select {
					case f = <-s.out:
					default:
						break drain
					}
				}
				if !write(f) {
					return
				}
			}
			if yielded {
				break
			}
			runtime.Gosched()
		}
		if s.lostCommits.Swap(false) {
			p, _ := remote.Marshal(metastore.CommitNotice{})
			if !write(remote.Frame{Kind: remote.KindCommitNotice, Payload: p}) {
				return
			}
		}
		if s.lostTopics.Swap(false) {
			p, _ := remote.Marshal(metastore.TopicNotice{})
			if !write(remote.Frame{Kind: remote.KindTopicNotice, Payload: p}) {
				return
			}
		}
		if err := s.w.Flush(); err != nil {
			s.close()
			return
		}
	}
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.nc.Close()
	})
}
