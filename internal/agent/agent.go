// Package agent runs one Floe agent: the Kafka listener, the open segment
// writer, the read path and the admin HTTP server (metrics and health),
// wired to a bucket and a metadata store that the caller opens.
//
// An agent keeps no durable state of its own: everything it acknowledges
// is in the bucket and the metadata store before the client hears back, so
// it can be stopped or killed at any time.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/wire"
)

// Config configures an agent. Zero values take the documented defaults.
type Config struct {
	// Listen is the Kafka listener address (default 127.0.0.1:9092; port 0
	// picks a free port).
	Listen string
	// Advertise is the host:port clients are told to connect to
	// (default: the bound listener address).
	Advertise string
	// AdminListen serves /metrics and /healthz; empty disables it.
	AdminListen string

	// NodeID asks for a fixed broker id; -1 lets the metadata store
	// assign one.
	NodeID    int32
	ClusterID string // default "floe"
	// Zone is the agent's availability zone ("" if unknown).
	Zone string
	// Roles this agent takes: produce, fetch, jobs (default: all).
	Roles []string

	Linger          time.Duration // default 250ms
	SegmentMaxBytes int           // default 8 MiB
	MaxFrameBytes   int32         // default 100 MiB
	CacheBytes      int64         // default 256 MiB
	// CacheBlockBytes is the block cache's unit of fetching and caching,
	// and of ownership in the zone's shared cache (default 4 MiB).
	CacheBlockBytes int64

	AutoCreateTopics  bool
	DefaultPartitions int32 // default 1

	// ShutdownTimeout bounds the graceful drain (default 10s).
	ShutdownTimeout time.Duration

	// Groups configures the consumer-group coordinator (zero values take
	// Kafka's defaults; Owns, Registerer and Logger are set by Start).
	Groups coordinator.Options

	// Jobs configures the background jobs (retention, cleaner) of an
	// agent with the jobs role (zero values take the defaults; Holder,
	// Logger and Registerer are set by Start).
	Jobs jobs.Config

	Logger *slog.Logger

	// Registry, if set, is the registry /metrics serves and the agent
	// registers its metrics with, so that metrics of parts the caller
	// builds before the agent (the bucket's retries and hedges) show up
	// there too. It must not hold Go or process collectors, which the
	// agent adds. Default: a new registry.
	Registry *prometheus.Registry
}

// Agent is a running agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	admin    *http.Server
	adminLn  net.Listener
	writer   *produce.Writer
	handler  *protocol.Handler
	reg      *prometheus.Registry
	metrics  *metrics
	store    metastore.Store
	ctx      context.Context // cancelled at the end of Close
	cancel   context.CancelFunc
	draining chan struct{}

	members     *cluster.Membership
	peers       *peers
	groups      *coordinator.Coordinator
	stopMembers context.CancelFunc
	membersDone chan struct{}
	stopWatch   func()
	stopJobs    func()

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// Start opens the listeners and starts serving. The caller owns store and
// bucket and closes them after Close returns.
func Start(cfg Config, store metastore.Store, bucket objstore.Bucket) (*Agent, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9092"
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = "floe"
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = wire.DefaultMaxFrameBytes
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = AllRoles
	}
	for _, r := range cfg.Roles {
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	log := cfg.Logger

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	self, err := advertised(cfg, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	joinCtx, cancelJoin := context.WithTimeout(context.Background(), 10*time.Second)
	members, err := cluster.Join(joinCtx, store, cluster.Options{
		Host: self.Host, Port: self.Port, Zone: cfg.Zone, Roles: cfg.Roles, NodeID: cfg.NodeID, Logger: log,
	})
	cancelJoin()
	if err != nil {
		ln.Close()
		return nil, err
	}

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bucket = objstore.Instrument(bucket, objstore.NewMetrics(reg))
	peers := newPeers(members, bucket, log, reg)
	blocks := cache.New(bucket, cache.Options{Capacity: cfg.CacheBytes, BlockSize: cfg.CacheBlockBytes, Fetch: peers.fetch}, reg)
	peers.blocks = blocks
	notify := fetch.NewNotifier()
	reader := fetch.NewReader(store, blocks)
	writer := produce.NewWriter(bucket, store, produce.Options{
		Linger:          cfg.Linger,
		MaxSegmentBytes: cfg.SegmentMaxBytes,
		Logger:          log,
		Metrics:         produce.NewMetrics(reg),
		// Write-through: consumers at the live edge read the new object
		// from memory, never from the bucket.
		Uploaded: blocks.Insert,
	})
	// Every commit, through this agent or another, drops the cached
	// extents of its partitions and wakes waiting fetches.
	stopWatch := store.WatchCommits(func(n metastore.CommitNotice) {
		if n.Partitions == nil { // "anything may have changed"
			reader.InvalidateAll()
		}
		for _, tp := range n.Partitions {
			reader.Invalidate(tp.TopicID, tp.Partition)
		}
		notify.Broadcast()
	})
	view := clusterView{m: members}
	groupOpts := cfg.Groups
	groupOpts.Owns = func(group string) bool { return protocol.OwnsGroup(view, group) }
	groupOpts.Registerer, groupOpts.Logger = reg, log
	groupCoord := coordinator.New(store, groupOpts)
	handler := protocol.NewHandler(protocol.Config{
		ClusterID:         cfg.ClusterID,
		Cluster:           view,
		Groups:            groupCoord,
		AutoCreateTopics:  cfg.AutoCreateTopics,
		DefaultPartitions: cfg.DefaultPartitions,
	}, store, writer, reader, notify, log)

	ctx, cancel := context.WithCancel(context.Background())
	membersCtx, stopMembers := context.WithCancel(context.Background())
	a := &Agent{
		cfg: cfg, log: log, ln: ln, writer: writer, handler: handler, reg: reg,
		metrics: newMetrics(reg), store: store, ctx: ctx, cancel: cancel,
		draining: make(chan struct{}), conns: map[*conn]struct{}{},
		members: members, peers: peers, stopMembers: stopMembers, stopWatch: stopWatch, groups: groupCoord,
	}
	if cfg.AdminListen != "" {
		if err := a.startAdmin(); err != nil {
			ln.Close()
			cancel()
			stopMembers()
			stopWatch()
			groupCoord.Close()
			members.Leave(context.Background())
			return nil, err
		}
	}
	a.membersDone = make(chan struct{})
	go func() {
		defer close(a.membersDone)
		members.Run(membersCtx)
	}()
	a.stopJobs = startJobs(cfg, store, bucket, members.Self().ID, reg, log)
	a.wg.Add(1)
	go a.accept()
	log.Info("agent listening", "kafka", ln.Addr().String(), "advertised", net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))),
		"admin", a.AdminAddr(), "node_id", members.Self().NodeID, "linger", writer.Linger())
	return a, nil
}

// startJobs runs the background jobs when the agent has the jobs role,
// and returns what stops them.
func startJobs(cfg Config, store metastore.Store, bucket objstore.Bucket, holder string, reg prometheus.Registerer, log *slog.Logger) func() {
	if !slices.Contains(cfg.Roles, protocol.RoleJobs) {
		return func() {}
	}
	jc := cfg.Jobs
	jc.Holder, jc.Logger, jc.Registerer = holder, log, reg
	sched := jobs.Standard(store, bucket, jc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sched.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func advertised(cfg Config, bound net.Addr) (protocol.Broker, error) {
	addr := cfg.Advertise
	if addr == "" {
		addr = bound.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return protocol.Broker{}, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return protocol.Broker{}, fmt.Errorf("advertised port %q: %w", port, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return protocol.Broker{Host: host, Port: int32(p)}, nil
}

// Addr is the bound Kafka listener address.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the bound admin address, or "" without one.
func (a *Agent) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// NodeID is the agent's broker id.
func (a *Agent) NodeID() int32 { return a.members.Self().NodeID }

// Registry is the agent's metrics registry.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

func (a *Agent) accept() {
	defer a.wg.Done()
	for {
		nc, err := a.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Error("accept failed", "err", err)
			}
			return
		}
		c := newConn(a, nc)
		a.mu.Lock()
		a.conns[c] = struct{}{}
		a.mu.Unlock()
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			c.serve()
			a.mu.Lock()
			delete(a.conns, c)
			a.mu.Unlock()
		}()
	}
}

func (a *Agent) startAdmin() error {
	ln, err := net.Listen("tcp", a.cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", a.cfg.AdminListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", a.health)
	mux.HandleFunc("/jobs", a.jobsStatus)
	a.adminLn = ln
	a.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := a.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server failed", "err", err)
		}
	}()
	return nil
}

// health answers 200 while the agent serves and its metadata store
// answers, 503 while it drains or when the store fails.
func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	select {
	case <-a.draining:
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	default:
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := a.store.Topics(ctx); err != nil {
		http.Error(w, "metadata store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// jobsStatus answers the job leases and the bucket's use per topic as
// JSON (floe jobs reads it).
func (a *Agent) jobsStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := jobs.ReadStatus(ctx, a.store)
	if err != nil {
		http.Error(w, "metadata store: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// Close drains the agent: it stops accepting connections and reading
// requests, flushes the open segment, answers the requests in flight, and
// closes the connections, all within ShutdownTimeout.
func (a *Agent) Close() error {
	close(a.draining)
	// Leave the cluster first, so other agents take over this agent's
	// groups and clients are routed elsewhere while it drains.
	a.stopMembers()
	<-a.membersDone
	// Jobs stop and release their leases, so another agent takes them
	// at once.
	a.stopJobs()
	leaveCtx, cancelLeave := context.WithTimeout(context.Background(), 2*time.Second)
	if err := a.members.Leave(leaveCtx); err != nil {
		a.log.Warn("deregister failed; the registration will expire", "err", err)
	}
	cancelLeave()
	a.ln.Close()
	a.mu.Lock()
	for c := range a.conns {
		c.stopReading()
	}
	a.mu.Unlock()
	a.writer.Close()
	// Members waiting in a rebalance are told to find the next
	// coordinator instead of waiting for the drain deadline.
	a.groups.Close()

	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	// Long-polling fetches have nothing more to wait for.
	a.cancel()
	select {
	case <-done:
	case <-time.After(a.cfg.ShutdownTimeout):
		a.log.Warn("shutdown timeout: closing connections with requests in flight")
		a.mu.Lock()
		for c := range a.conns {
			c.nc.Close()
		}
		a.mu.Unlock()
		<-done
	}
	a.stopWatch()
	a.peers.close()
	if a.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.admin.Shutdown(ctx)
	}
	a.log.Info("agent stopped")
	return nil
}
