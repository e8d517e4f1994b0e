// Package control is `floe control`: the metadata store served over the
// network for many isolated virtual clusters. Each vcluster is a state
// machine whose commands are journaled in PostgreSQL (internal/journal)
// before they are applied to an in-memory state and answered; agents
// reach it with internal/metastore/remote. docs/control-plane.md has the
// design.
//
// A session is bound to one vcluster by its key and can never name
// another's state: each vcluster has a store of its own.
package control

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// MaxConnections bounds a server's connections, authenticated or not.
const MaxConnections = 4096

// Options configure a Server.
type Options struct {
	Journal *journal.Journal
	// Dir holds the vclusters' state files; "" is a new temporary
	// directory, removed by Close.
	Dir string
	// TLS, when set, is required of every connection.
	TLS    *tls.Config
	Logger *slog.Logger
	// LeaseTTL is how long a vcluster's leader lease lasts unless renewed
	// (default DefaultLeaseTTL): how long a vcluster is unavailable when
	// its leader dies without releasing it.
	LeaseTTL time.Duration
	// ScheduleGrace is how long the jobs of an agent whose session ended
	// without withdrawing stay assigned to it (default
	// DefaultScheduleGrace; negative: none): an agent that reconnects
	// within it keeps them (docs/control-plane.md, Scheduling).
	ScheduleGrace time.Duration
	// StandbyInterval is how often a warm standby of a vcluster this
	// process does not lead reads the journal rows appended since
	// (default DefaultStandbyInterval; negative: no warm standbys, a
	// takeover replays the whole journal). With a Backup bucket, a
	// standby starts from the newest snapshot there (standby.go).
	StandbyInterval time.Duration
	// StandbyMaxLag is how many batches a warm standby that caught up
	// once may fall behind the journal before it drops its state
	// (default DefaultStandbyMaxLag).
	StandbyMaxLag int64
	// Backup, with a bucket, writes every vcluster's snapshots and log
	// tail there, and opens vclusters from their newest snapshot
	// (backup.go).
	Backup BackupOptions
}

// DefaultLeaseTTL is Options.LeaseTTL's default.
const DefaultLeaseTTL = 10 * time.Second

// Server serves the vclusters of one journal.
type Server struct {
	journal *journal.Journal
	dir     string
	ownDir  bool
	tls     *tls.Config
	log     *slog.Logger
	holder  string
	ttl     time.Duration
	grace   time.Duration // Options.ScheduleGrace
	backup  *BackupOptions
	// standbyEvery and standbyLag: Options.StandbyInterval (0: no warm
	// standbys) and StandbyMaxLag.
	standbyEvery time.Duration
	standbyLag   int64

	mu        sync.Mutex
	vclusters map[string]*vcluster
	keys      map[string]journal.VCluster
	listeners []net.Listener
	conns     map[net.Conn]bool
	opening   map[string]bool // vclusters being taken over
	standbys  map[string]*standby
	// standbyAfter: no new warm standby of the vcluster before then (one
	// dropped its state not long ago).
	standbyAfter map[string]time.Time
	requests     *budget // request bytes in flight, all sessions
	closed       bool
	stop         chan struct{} // closed by Close: stops the takeover loop
	ctx          context.Context
	cancel       context.CancelFunc // cancelled by Close: stops takeovers in progress
	wg           sync.WaitGroup
}

// New opens every registered vcluster, replaying its journal.
func New(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		journal: opts.Journal, dir: opts.Dir, tls: opts.TLS, log: log,
		holder:    "control-" + uuid.NewString(),
		vclusters: map[string]*vcluster{}, keys: map[string]journal.VCluster{}, conns: map[net.Conn]bool{},
		opening: map[string]bool{}, stop: make(chan struct{}), ttl: opts.LeaseTTL,
		standbys: map[string]*standby{}, standbyAfter: map[string]time.Time{},
		requests: newBudget(serverRequestBytes),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.ttl <= 0 {
		s.ttl = DefaultLeaseTTL
	}
	switch s.grace = opts.ScheduleGrace; {
	case s.grace == 0:
		s.grace = DefaultScheduleGrace
	case s.grace < 0:
		s.grace = 0
	}
	if opts.Backup.Bucket != nil {
		b := opts.Backup.withDefaults()
		s.backup = &b
	}
	switch s.standbyEvery, s.standbyLag = opts.StandbyInterval, opts.StandbyMaxLag; {
	case s.standbyEvery < 0:
		s.standbyEvery = 0
	case s.standbyEvery == 0:
		s.standbyEvery = DefaultStandbyInterval
	}
	if s.standbyLag <= 0 {
		s.standbyLag = DefaultStandbyMaxLag
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "floe-control-")
		if err != nil {
			return nil, err
		}
		s.dir, s.ownDir = d, true
	}
	vcs, err := s.journal.VClusters(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	for _, vc := range vcs {
		s.keys[vc.Name] = vc
		v, err := s.open(ctx, vc.Name)
		if errors.Is(err, journal.ErrLeaseHeld) {
			s.log.Info("virtual cluster led by another control process; standing by", "vcluster", vc.Name, "err", err)
			continue
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open virtual cluster %s: %w", vc.Name, err)
		}
		s.vclusters[vc.Name] = v
	}
	s.wg.Add(1)
	go s.takeoverLoop()
	return s, nil
}

// open opens a vcluster that the server rebuilds when its journal fails.
func (s *Server) open(ctx context.Context, name string) (*vcluster, error) {
	v, err := openVCluster(ctx, name, s.journal, s.holder, s.dir, s.ttl, s.backup, s.failed, s.log)
	if err != nil {
		return nil, err
	}
	s.serving(v)
	return v, nil
}

// serving readies a vcluster about to be served, before any session can
// reach it.
func (s *Server) serving(v *vcluster) {
	v.serverRequests = s.requests
	v.sched.grace = s.grace
}

// takeVCluster takes a vcluster this process does not serve, once its
// lease is free: through its warm standby if it has a usable one (only
// the journal rows after the standby's state are replayed), otherwise
// by opening it. While the lease is held elsewhere it starts a warm
// standby of it (journal.ErrLeaseHeld is returned either way). The
// caller marks name as opening.
func (s *Server) takeVCluster(ctx context.Context, name string) (*vcluster, error) {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb != nil {
		v, err := sb.promote(ctx, s.holder)
		if err == nil {
			s.removeStandby(name, sb)
			s.serving(v)
			return v, nil
		}
		if _, usable := sb.status(); usable {
			return nil, err // the lease is held, or the journal failed
		}
		s.log.Warn("warm standby unusable; opening from the journal", "vcluster", name, "err", err)
		s.removeStandby(name, sb)
		s.mu.Lock()
		s.standbyAfter[name] = time.Now().Add(10 * s.ttl) // do not rebuild one at once
		s.mu.Unlock()
	}
	v, err := s.open(ctx, name)
	if !errors.Is(err, journal.ErrLeaseHeld) || s.standbyEvery == 0 {
		return v, err
	}
	s.mu.Lock()
	wait := time.Now().Before(s.standbyAfter[name]) || s.standbys[name] != nil
	s.mu.Unlock()
	if wait {
		return nil, err
	}
	sb, serr := openStandby(ctx, name, s.journal, s.dir, s.ttl, s.standbyEvery, s.standbyLag, s.backup, s.failed, s.log)
	if serr != nil {
		s.log.Warn("starting a warm standby failed", "vcluster", name, "err", serr)
		s.mu.Lock()
		s.standbyAfter[name] = time.Now().Add(10 * s.ttl)
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sb.close()
		return nil, err
	}
	s.standbys[name] = sb
	s.mu.Unlock()
	return nil, err
}

// removeStandby closes a vcluster's standby (its state, unless promoted)
// and forgets it.
func (s *Server) removeStandby(name string, sb *standby) {
	s.mu.Lock()
	if s.standbys[name] == sb {
		delete(s.standbys, name)
	}
	s.mu.Unlock()
	sb.close()
}

// failed handles a vcluster that stopped serving: a vcluster whose lease
// is lost (fenced by a newer leader, or not renewed in time) is dropped,
// for the takeover loop to take again if its lease becomes free; one
// whose journal failed otherwise is rebuilt.
func (s *Server) failed(v *vcluster, err error) {
	// Counted in wg, so that Close waits for a rebuild in progress; none
	// starts once Close began.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	if errors.Is(err, journal.ErrFenced) || errors.Is(err, errLeaseLost) {
		select {
		case <-v.failed:
			if !errors.Is(v.failErr, journal.ErrFenced) && !errors.Is(v.failErr, errLeaseLost) {
				// Being rebuilt after a failed append: the rebuild took
				// the lease at a new epoch (fencing this one's renewals),
				// or gives up if another process took it.
				return
			}
		default:
		}
		s.drop(v)
		return
	}
	s.rebuild(v)
}

// drop stops serving v, if it is still the one served.
func (s *Server) drop(v *vcluster) {
	s.mu.Lock()
	current := s.vclusters[v.name] == v
	if current {
		delete(s.vclusters, v.name)
	}
	s.mu.Unlock()
	if current {
		v.close()
		s.log.Info("virtual cluster no longer served here", "vcluster", v.name, "epoch", v.epoch)
	}
}

// takeoverLoop takes the vclusters of the registry that this process
// does not serve, once their leases are free (expired or released),
// until Close.
func (s *Server) takeoverLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.ttl / 4)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.takeOver(s.ctx)
	}
}

func (s *Server) takeOver(ctx context.Context) {
	vcs, err := s.journal.VClusters(ctx)
	if err != nil {
		s.log.Warn("listing virtual clusters failed", "err", err)
		return
	}
	registered := make(map[string]bool, len(vcs))
	for _, vc := range vcs {
		registered[vc.Name] = true
	}
	s.mu.Lock()
	for name := range s.keys {
		if _, served := s.vclusters[name]; !served && !registered[name] && !s.opening[name] {
			delete(s.keys, name) // deleted by another process
		}
	}
	var gone []*standby
	for name, sb := range s.standbys {
		if !registered[name] && !s.opening[name] {
			delete(s.standbys, name)
			gone = append(gone, sb)
		}
	}
	s.mu.Unlock()
	for _, sb := range gone {
		sb.close()
	}
	for _, vc := range vcs {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		_, served := s.vclusters[vc.Name]
		if k, known := s.keys[vc.Name]; !known || k.ID != vc.ID {
			s.keys[vc.Name] = vc // new, or deleted and created again elsewhere: a new key
		}
		if served || s.opening[vc.Name] {
			s.mu.Unlock()
			continue
		}
		s.opening[vc.Name] = true
		s.mu.Unlock()
		v, err := s.takeVCluster(ctx, vc.Name)
		s.mu.Lock()
		delete(s.opening, vc.Name)
		switch {
		case errors.Is(err, journal.ErrLeaseHeld):
		case err != nil:
			s.log.Warn("taking over a virtual cluster failed", "vcluster", vc.Name, "err", err)
		case s.closed || s.vclusters[vc.Name] != nil || s.keys[vc.Name].Name == "":
			s.mu.Unlock()
			v.close()
			v.release(ctx)
			s.mu.Lock()
		default:
			s.vclusters[vc.Name] = v
			s.log.Info("virtual cluster taken over", "vcluster", vc.Name, "epoch", v.epoch)
		}
		s.mu.Unlock()
	}
}

// rebuild replaces a vcluster whose journal append failed (the database
// restarted, say) by a new one replayed from the journal, retrying with
// backoff until it succeeds, the vcluster is deleted or the server
// closes. The old one's sessions are closed, so that agents reconnect to
// the new one. An append whose answer was lost may or may not be in the
// journal; the replay decides, as a database would after a lost commit
// acknowledgement.
func (s *Server) rebuild(old *vcluster) {
	backoff := 100 * time.Millisecond
	for {
		s.mu.Lock()
		current := !s.closed && s.vclusters[old.name] == old
		s.mu.Unlock()
		if !current {
			return
		}
		select {
		case <-time.After(backoff):
		case <-s.stop:
			return
		}
		backoff = min(2*backoff, 5*time.Second)
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		v, err := s.open(ctx, old.name)
		cancel()
		if errors.Is(err, journal.ErrLeaseHeld) {
			// Another process took over meanwhile.
			s.drop(old)
			return
		}
		if err != nil {
			s.log.Warn("rebuilding virtual cluster failed; retrying", "vcluster", old.name, "err", err, "backoff", backoff)
			continue
		}
		s.mu.Lock()
		if s.closed || s.vclusters[old.name] != old {
			s.mu.Unlock()
			v.close()
			return
		}
		s.vclusters[old.name] = v
		s.mu.Unlock()
		old.close()
		s.log.Info("virtual cluster rebuilt from its journal", "vcluster", old.name, "epoch", v.epoch)
		return
	}
}

// NewKey returns a fresh agent key.
func NewKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateVCluster registers a new, empty vcluster and returns its agent
// key.
func (s *Server) CreateVCluster(ctx context.Context, name string) (string, error) {
	key := NewKey()
	// The takeover loop leaves a vcluster being opened alone.
	s.mu.Lock()
	if s.opening[name] {
		s.mu.Unlock()
		return "", fmt.Errorf("virtual cluster %s is being opened", name)
	}
	s.opening[name] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.opening, name)
		s.mu.Unlock()
	}()
	if err := s.journal.CreateVCluster(ctx, name, key); err != nil {
		return "", err
	}
	v, err := s.open(ctx, name)
	if err != nil {
		return "", fmt.Errorf("open virtual cluster %s: %w", name, err)
	}
	vcs, err := s.journal.VClusters(ctx)
	if err != nil {
		v.close()
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		v.close()
		return "", metastore.ErrClosed
	}
	for _, vc := range vcs {
		if vc.Name == name {
			s.keys[name] = vc
		}
	}
	s.vclusters[name] = v
	s.log.Info("virtual cluster created", "vcluster", name)
	return key, nil
}

// VClusterInfo is what the admin API lists of a vcluster.
type VClusterInfo struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Sessions  int       `json:"sessions"`
	Epoch     int64     `json:"epoch"`
}

// VClusters lists the vclusters this server serves, sorted by name.
func (s *Server) VClusters() []VClusterInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]VClusterInfo, 0, len(s.vclusters))
	for name, v := range s.vclusters {
		out = append(out, VClusterInfo{Name: name, CreatedAt: s.keys[name].CreatedAt, Sessions: len(v.sessionList()), Epoch: v.epoch})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stats returns a vcluster's counters.
func (s *Server) Stats(name string) (Stats, bool) {
	s.mu.Lock()
	v := s.vclusters[name]
	s.mu.Unlock()
	if v == nil {
		return Stats{}, false
	}
	return v.statsNow(), true
}

// Standby returns the counters of this process's warm standby of a
// vcluster (ok false: none with a state).
func (s *Server) Standby(name string) (StandbyStats, bool) {
	s.mu.Lock()
	sb := s.standbys[name]
	s.mu.Unlock()
	if sb == nil {
		return StandbyStats{}, false
	}
	return sb.stats()
}

// standbyNames lists the vclusters this process keeps a standby of.
func (s *Server) standbyNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.standbys))
	for name := range s.standbys {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// DeleteVCluster stops a vcluster, ends its sessions and deletes its
// journal.
func (s *Server) DeleteVCluster(ctx context.Context, name string) error {
	s.mu.Lock()
	v := s.vclusters[name]
	sb := s.standbys[name]
	delete(s.vclusters, name)
	delete(s.keys, name)
	s.mu.Unlock()
	if v != nil {
		v.close()
	}
	if sb != nil {
		s.removeStandby(name, sb)
	}
	if err := s.journal.DeleteVCluster(ctx, name); err != nil {
		return err
	}
	s.log.Info("virtual cluster deleted", "vcluster", name)
	return nil
}

// Serve accepts connections on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return metastore.ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		if len(s.conns) >= MaxConnections {
			s.mu.Unlock()
			s.log.Warn("too many connections; refusing one", "remote", nc.RemoteAddr(), "max", MaxConnections)
			nc.Close()
			continue
		}
		s.conns[nc] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(nc)
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
	}
}

// Close stops listening, ends every session, closes every vcluster and
// releases their leases, so that another process can take them at once.
func (s *Server) Close() error { return s.close(true) }

// close is Close; without release, the leases expire by themselves (as
// when the process dies).
func (s *Server) close(release bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.cancel()
	for _, l := range s.listeners {
		l.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	vcs := s.vclusters
	s.vclusters = map[string]*vcluster{}
	sbs := s.standbys
	s.standbys = map[string]*standby{}
	s.mu.Unlock()
	for _, sb := range sbs {
		sb.close()
	}
	for _, v := range vcs {
		v.close()
		if release {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			v.release(ctx)
			cancel()
		}
	}
	s.wg.Wait()
	if s.ownDir {
		os.RemoveAll(s.dir)
	}
	return nil
}

// serveConn authenticates a connection and serves its session.
func (s *Server) serveConn(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(remote.HandshakeTimeout))
	if s.tls != nil {
		tc := tls.Server(nc, s.tls)
		if err := tc.Handshake(); err != nil {
			s.log.Debug("TLS handshake failed", "remote", nc.RemoteAddr(), "err", err)
			return
		}
		nc = tc
	}
	// Small buffers until the peer has proved its key.
	hr := bufio.NewReaderSize(nc, remote.MaxHelloFrame+16)
	f, err := remote.ReadFrameMax(hr, remote.MaxHelloFrame)
	if err != nil {
		return
	}
	var hello remote.Hello
	if f.Kind != remote.KindHello || remote.Unmarshal(f.Payload, &hello) != nil {
		return
	}
	v, err := s.admit(hello)
	welcome := remote.Welcome{Ping: true} // session.serve answers pings
	if err != nil {
		welcome.Err = err.Error()
		welcome.NotLeader = errors.As(err, new(notLeaderError))
	}
	payload, _ := remote.Marshal(welcome)
	b, _ := remote.AppendFrame(nil, remote.Frame{Kind: remote.KindWelcome, Payload: payload})
	if _, err := nc.Write(b); err != nil || v == nil {
		if v == nil {
			s.log.Warn("control plane connection refused", "remote", nc.RemoteAddr(), "vcluster", hello.VCluster, "reason", welcome.Err)
		}
		return
	}
	nc.SetDeadline(time.Time{})
	ss := newSession(v, nc, bufio.NewReaderSize(hr, 64<<10), bufio.NewWriterSize(nc, 64<<10), s.log)
	v.addSession(ss)
	defer v.removeSession(ss)
	ss.serve()
}

// admit checks a hello: the version, the vcluster and its key. The
// answer does not tell an unknown vcluster from a wrong key.
func (s *Server) admit(h remote.Hello) (*vcluster, error) {
	if h.V != remote.Version {
		return nil, fmt.Errorf("protocol version %d, this control plane speaks %d", h.V, remote.Version)
	}
	s.mu.Lock()
	v := s.vclusters[h.VCluster]
	vc, ok := s.keys[h.VCluster]
	s.mu.Unlock()
	if !ok || !vc.CheckKey(h.Key) {
		return nil, errors.New("unknown virtual cluster or wrong key")
	}
	if v == nil {
		return nil, notLeaderError{h.VCluster}
	}
	return v, nil
}

// notLeaderError answers an agent whose key is right but whose vcluster
// this process does not lead.
type notLeaderError struct{ vcluster string }

func (e notLeaderError) Error() string {
	return "virtual cluster " + e.vcluster + " is led by another control process (or is being taken over): try another address"
}
