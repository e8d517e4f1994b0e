package control

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// BatchVersion is the version of the journal's batch encoding.
const BatchVersion = 1

// Command is one mutating operation as the journal keeps it: everything
// needed to apply it again and get the same result.
type Command struct {
	Op   string            `cbor:"op"`
	At   int64             `cbor:"at"`             // leader's clock, Unix nanoseconds
	Rand []byte            `cbor:"rand,omitempty"` // the random bytes the op reads
	Args remote.RawMessage `cbor:"args"`
}

// Batch is one journal row.
type Batch struct {
	V        int       `cbor:"v"`
	Commands []Command `cbor:"cmds"`
}

// Bounds of one batch, so that a journal row stays well under
// journal.MaxBatchBytes and a batch does not hold callers too long.
const (
	maxBatchCommands = 1024
	maxBatchBytes    = 16 << 20
	queueLength      = 4096
	// appendTimeout bounds one journal append: a database that does not
	// answer stops the vcluster rather than holding its callers forever.
	appendTimeout = 30 * time.Second
)

// ErrUnavailable reports a vcluster that stopped serving: its journal
// refused an append (a newer leader, or the database failed).
var ErrUnavailable = remote.ErrUnavailable

// command is a Command in flight: its decoded arguments, who sent it and
// where its answer goes.
type command struct {
	Command
	op     *remote.Op
	args   any
	origin *session
	resp   remote.Response
	done   chan struct{}
}

// vcluster is one virtual cluster's state machine: the embedded store
// holding its state, and the loops that journal and apply its commands.
type vcluster struct {
	name    string
	log     *slog.Logger
	journal *journal.Journal
	dir     string
	store   *embedded.Store
	epoch   int64

	applyAt atomic.Int64 // stamped time of the command being applied; 0 between commands
	randBuf []byte       // its random bytes; touched only by the applier
	current *command     // the command being applied, for its notices; applier only
	lastAt  int64        // the latest stamped time; batcher (after replay) only

	queue    chan *command
	stopOnce sync.Once
	stop     chan struct{} // closed by close
	failed   chan struct{} // closed when the journal refused an append
	failErr  error
	loops    sync.WaitGroup

	mu       sync.Mutex
	sessions map[*session]bool

	stopWatch []func()
}

// openVCluster takes the vcluster's lease and rebuilds its state from the
// journal, in a new directory under dir.
func openVCluster(ctx context.Context, name string, j *journal.Journal, holder, dir string, log *slog.Logger) (*vcluster, error) {
	vdir, err := os.MkdirTemp(dir, "vcluster-"+name+"-")
	if err != nil {
		return nil, err
	}
	v := &vcluster{
		name: name, log: log.With("vcluster", name), journal: j, dir: vdir,
		queue: make(chan *command, queueLength), stop: make(chan struct{}), failed: make(chan struct{}),
		sessions: map[*session]bool{},
	}
	v.store, err = embedded.Open(filepath.Join(vdir, "state.db"), embedded.Options{
		Logger: v.log, Now: v.now, Rand: randSource{v}, NoSync: true,
	})
	if err != nil {
		os.RemoveAll(vdir)
		return nil, err
	}
	if v.epoch, err = j.TakeLease(ctx, name, holder); err != nil {
		v.closeStore()
		return nil, err
	}
	start := time.Now()
	var seq, commands int64
	err = j.Read(ctx, name, 1, func(e journal.Entry) error {
		var b Batch
		if err := remote.Unmarshal(e.Batch, &b); err != nil {
			return fmt.Errorf("journal %s #%d: %w", name, e.Seq, err)
		}
		if b.V != BatchVersion {
			return fmt.Errorf("journal %s #%d: batch version %d, this build reads %d", name, e.Seq, b.V, BatchVersion)
		}
		for _, c := range b.Commands {
			op, ok := remote.Lookup(c.Op)
			if !ok {
				return fmt.Errorf("journal %s #%d: unknown op %q (written by a newer build?)", name, e.Seq, c.Op)
			}
			cmd := &command{Command: c, op: op}
			cmd.args, err = op.Decode(c.Args)
			if err == nil {
				v.apply(cmd)
			}
			v.lastAt = max(v.lastAt, c.At)
			commands++
		}
		seq = e.Seq
		return nil
	})
	if err != nil {
		v.closeStore()
		return nil, err
	}
	v.log.Info("virtual cluster replayed", "epoch", v.epoch, "batches", seq, "commands", commands, "took", time.Since(start).Round(time.Millisecond))
	v.stopWatch = append(v.stopWatch,
		v.store.WatchCommits(v.onCommit),
		v.store.WatchTopics(v.onTopics))
	appended := make(chan []*command, 1) // appending batch N+1 while N is applied
	v.loops.Add(2)
	go v.batchLoop(seq+1, appended)
	go v.applyLoop(appended)
	return v, nil
}

// now is the store's clock: the stamped time while a command is applied.
func (v *vcluster) now() time.Time {
	if at := v.applyAt.Load(); at != 0 {
		return time.Unix(0, at)
	}
	return time.Now()
}

// randSource is the store's random source: the current command's bytes.
type randSource struct{ v *vcluster }

func (r randSource) Read(p []byte) (int, error) {
	n := copy(p, r.v.randBuf)
	r.v.randBuf = r.v.randBuf[n:]
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// apply applies one command to the state, with its stamped time and
// bytes, and records its answer.
func (v *vcluster) apply(c *command) {
	v.applyAt.Store(c.At)
	v.randBuf = c.Rand
	v.current = c
	res, err := c.op.Apply(context.Background(), v.store, c.args)
	v.current = nil
	v.randBuf = nil
	v.applyAt.Store(0)
	c.resp.Result, c.resp.Err = res, remote.EncodeError(err)
}

// submit queues a decoded mutating command and waits for its answer.
func (v *vcluster) submit(ctx context.Context, c *command) remote.Response {
	c.done = make(chan struct{})
	select {
	case v.queue <- c:
	case <-v.failed:
		return unavailable(v.failErr)
	case <-v.stop:
		return unavailable(metastore.ErrClosed)
	case <-ctx.Done():
		return remote.Response{Err: remote.EncodeError(ctx.Err())}
	}
	// Queued: it will be journaled and applied, or failed; wait for it
	// whatever ctx says, so that its answer is the truth.
	<-c.done
	return c.resp
}

func unavailable(err error) remote.Response {
	return remote.Response{Err: remote.EncodeError(fmt.Errorf("%w: %v", ErrUnavailable, err))}
}

// batchLoop takes queued commands, stamps them, and appends them to the
// journal one batch at a time.
func (v *vcluster) batchLoop(seq int64, appended chan<- []*command) {
	defer v.loops.Done()
	defer close(appended)
	for {
		var first *command
		select {
		case first = <-v.queue:
		case <-v.stop:
			v.drainQueue(unavailable(metastore.ErrClosed))
			return
		}
		batch := []*command{first}
		size := len(first.Args)
	more:
		for len(batch) < maxBatchCommands && size < maxBatchBytes {
			select {
			case c := <-v.queue:
				batch = append(batch, c)
				size += len(c.Args)
			default:
				break more
			}
		}
		b := Batch{V: BatchVersion, Commands: make([]Command, len(batch))}
		for i, c := range batch {
			v.lastAt = max(time.Now().UnixNano(), v.lastAt) // never backwards
			c.At = v.lastAt
			if c.op.Entropy > 0 {
				c.Rand = make([]byte, c.op.Entropy)
				rand.Read(c.Rand)
			}
			b.Commands[i] = c.Command
		}
		raw, err := remote.Marshal(b)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
			err = v.journal.Append(ctx, v.name, v.epoch, seq, raw)
			cancel()
		}
		if err != nil {
			v.log.Error("journal append failed: the virtual cluster stops serving", "seq", seq, "err", err)
			v.failErr = err
			close(v.failed)
			for _, c := range batch {
				c.resp = unavailable(err)
				close(c.done)
			}
			v.drainQueue(unavailable(err))
			return
		}
		seq++
		appended <- batch
	}
}

// drainQueue answers every queued command with resp, until stop.
func (v *vcluster) drainQueue(resp remote.Response) {
	for {
		select {
		case c := <-v.queue:
			c.resp = resp
			close(c.done)
		default:
			return
		}
	}
}

// applyLoop applies journaled batches in order and answers their callers.
func (v *vcluster) applyLoop(appended <-chan []*command) {
	defer v.loops.Done()
	for batch := range appended {
		for _, c := range batch {
			v.apply(c)
			close(c.done)
		}
	}
}

// onCommit and onTopics hear the state's notices, on the applier's
// goroutine: the command being applied gets them in its response, every
// other session of the vcluster as pushed frames.
func (v *vcluster) onCommit(n metastore.CommitNotice) {
	var origin *session
	if c := v.current; c != nil {
		c.resp.Commits = append(c.resp.Commits, n)
		origin = c.origin
	}
	for _, s := range v.sessionList() {
		if s != origin {
			s.pushNotice(remote.KindCommitNotice, n)
		}
	}
}

func (v *vcluster) onTopics(n metastore.TopicNotice) {
	var origin *session
	if c := v.current; c != nil {
		c.resp.Topics = append(c.resp.Topics, n)
		origin = c.origin
	}
	for _, s := range v.sessionList() {
		if s != origin {
			s.pushNotice(remote.KindTopicNotice, n)
		}
	}
}

func (v *vcluster) sessionList() []*session {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]*session, 0, len(v.sessions))
	for s := range v.sessions {
		out = append(out, s)
	}
	return out
}

func (v *vcluster) addSession(s *session) {
	v.mu.Lock()
	v.sessions[s] = true
	v.mu.Unlock()
}

func (v *vcluster) removeSession(s *session) {
	v.mu.Lock()
	delete(v.sessions, s)
	v.mu.Unlock()
}

// close stops the loops (queued commands fail), ends the sessions and
// removes the state.
func (v *vcluster) close() {
	v.stopOnce.Do(func() {
		close(v.stop)
		v.loops.Wait()
		for _, s := range v.sessionList() {
			s.close()
		}
		v.closeStore()
	})
}

func (v *vcluster) closeStore() {
	for _, stop := range v.stopWatch {
		stop()
	}
	v.store.Close()
	os.RemoveAll(v.dir)
}
