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
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/cache"
	"github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/console"
	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/features"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/quota"
	"github.com/floe-io/floe/internal/sasl"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/topiccache"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
	"github.com/floe-io/floe/internal/zonecache"
)

// Config configures an agent. Zero values take the documented defaults.
type Config struct {
	// Listen is the Kafka listener address (default 127.0.0.1:9092; port 0
	// picks a free port).
	Listen string
	// Advertise is the host:port clients are told to connect to
	// (default: the bound listener address).
	Advertise string
	// Listeners, when set, replaces Listen and Advertise: Kafka listeners
	// with their security protocols (see Listener). The first is the
	// one the membership's Host and Port name.
	Listeners []Listener
	// TLS serves the SSL and SASL_SSL listeners (see ServerTLS).
	TLS *tls.Config
	// PrincipalRules map client certificates' subjects to user names on
	// SSL listeners (ssl.principal.mapping.rules).
	PrincipalRules PrincipalRules
	// SASLMechanisms are what SASL_PLAINTEXT and SASL_SSL listeners
	// offer (sasl.enabled.mechanisms): PLAIN, SCRAM-SHA-256 and
	// SCRAM-SHA-512 check the metadata store's users, OAUTHBEARER
	// tokens are checked by OAuth.
	SASLMechanisms []string
	OAuth          *sasl.TokenVerifier
	// MaxReauth is connections.max.reauth.ms (KIP-368): a SASL session
	// lasts at most this long (and no longer than its token), then the
	// client must authenticate again on the same connection or be
	// disconnected. 0: sessions last as long as the connection.
	MaxReauth time.Duration
	// AdminListen serves /metrics and /healthz; empty disables it.
	AdminListen string
	// AdminTLS, if set, serves the admin listener over TLS.
	AdminTLS *tls.Config
	// AdminToken, if set, is the bearer token every admin request but
	// /healthz must carry (the console also takes it from a login form,
	// docs/console.md).
	AdminToken string
	// NoConsole leaves the web console (internal/console) off the admin
	// listener; by default it is served at / beside /metrics.
	NoConsole bool
	// AdminAdvertise is the base URL (http://HOST:PORT or
	// https://HOST:PORT) other agents' consoles use for this agent's
	// admin API; default: the bound admin address, its host replaced by
	// the advertised Kafka host when it is unspecified (0.0.0.0, ::).
	AdminAdvertise string
	// AdminClientTLS is what this agent's console trusts when it asks
	// other agents' https admin APIs (nil: the system's roots).
	AdminClientTLS *tls.Config
	// ConsoleSampleInterval is how often the console samples counters
	// for its rates (default 5s; tests shorten it).
	ConsoleSampleInterval time.Duration
	// MetastoreName is what the console shows of the metadata store (its
	// URL without credentials); "" shows nothing.
	MetastoreName string

	// PeerListen is the peer listener, where the agents of a zone ask
	// each other for cache blocks (default: the Kafka listener's host,
	// port 0). Kafka clients are never served there.
	PeerListen string
	// PeerAdvertise is the HOST:PORT other agents dial for PeerListen
	// (default: the advertised Kafka host with the bound peer port).
	PeerAdvertise string
	// PeerSecret is the cluster secret agents prove to each other on the
	// peer listeners; nil takes the metadata store's (ClusterSecret).
	PeerSecret []byte
	// PeerServerTLS and PeerClientTLS, if set, wrap peer connections in
	// TLS on the serving and the asking side (mTLS when the server
	// requires client certificates).
	PeerServerTLS *tls.Config
	PeerClientTLS *tls.Config
	// StoreNotices keeps commit notices on the metadata store's channel
	// (PostgreSQL's LISTEN/NOTIFY) instead of relaying them to the other
	// agents over the peer listeners (notices.go).
	StoreNotices bool

	// NodeID asks for a fixed broker id; -1 lets the metadata store
	// assign one.
	NodeID    int32
	ClusterID string // default "floe"
	// Zone is the agent's availability zone ("" if unknown).
	Zone string
	// Roles this agent takes: produce, fetch, jobs (default: all).
	Roles []string

	// LogDir names the agent's one virtual log dir, the bucket, in
	// DescribeLogDirs and the log.dirs broker config (the commands pass
	// the bucket URL without its query; default "bucket://" + ClusterID).
	LogDir string

	Linger          time.Duration // default 250ms
	SegmentMaxBytes int           // default 8 MiB
	// DisableEarlyFlush and FlushMinInterval: see produce.Options
	// (early flush when every sender's window waits on the open segment,
	// at most once per FlushMinInterval, default Linger / 2).
	DisableEarlyFlush bool
	FlushMinInterval  time.Duration
	// DisableCommitGroups: see produce.Options (segments queued behind a
	// commit folded into its transaction).
	DisableCommitGroups bool
	// FlushWindowReserve: see produce.Options.
	FlushWindowReserve int
	// FlushObserver, when set, sees every flushed segment
	// (produce.Options.Observe): a measurement hook for floe bench.
	FlushObserver func(produce.FlushTrace)
	// FlushTimeout bounds one segment's PUT and commit (default 30s).
	FlushTimeout time.Duration
	// Outage, when set, keeps producing while the metadata store is
	// unreachable (produce.Options.Outage; docs/design.md). Off (nil) by
	// default.
	Outage        *produce.OutageOptions
	MaxFrameBytes int32 // default 100 MiB
	CacheBytes    int64 // default 256 MiB
	// CacheBlockBytes is the block cache's unit of fetching and caching,
	// and of ownership in the zone's shared cache (default 4 MiB).
	CacheBlockBytes int64
	// ReadAheadBytes bounds read-ahead for consumers reading history:
	// the bytes of blocks fetched ahead of them, in flight and waiting
	// to be read, all partitions together (default half of CacheBytes;
	// negative disables read-ahead). ReadAheadGets bounds its GETs in
	// flight (default 16). See internal/fetch/readahead.go.
	ReadAheadBytes int64
	ReadAheadGets  int

	AutoCreateTopics  bool
	DefaultPartitions int32 // default 1

	// Limits bound what clients may create (topics, partitions) and ask
	// for (fetch sizes), and their controller mutation and producer id
	// rates; zero values take protocol's defaults.
	Limits protocol.Limits
	// QuotaSamples and QuotaSampleWindow make the window client quotas
	// are measured over (Kafka's quota.window.num, default 11, and
	// quota.window.size.seconds, default 1s).
	QuotaSamples      int
	QuotaSampleWindow time.Duration

	// FetchSessions bound the incremental fetch sessions (KIP-227) the
	// agent keeps for its clients (zero values: the defaults of package
	// fetchsession, Kafka's 1,000 slots; Slots < 0 keeps none).
	// Registerer is set by Start.
	FetchSessions fetchsession.Options

	// ShutdownTimeout bounds the graceful drain (default 10s).
	ShutdownTimeout time.Duration

	// Groups configures the consumer-group coordinator (zero values take
	// Kafka's defaults; Owns, Registerer and Logger are set by Start).
	Groups coordinator.Options
	// Shares configures share groups (KIP-932; zero values take Kafka's
	// defaults; Owns, Logger and Now are set by Start).
	Shares sharecoord.Options
	// Transactions configure the transaction coordinator (zero values:
	// Kafka's defaults; Owns, Uploaded, Registerer and Logger are set by
	// Start).
	Transactions txncoord.Options
	// TransactionVersion is the transaction.version level a new cluster
	// finalizes (protocol.Config.TransactionVersion: 0 for the highest,
	// 2; 1 pins transaction version 1; -1 for level 0). Once finalized,
	// the level is cluster state in the metadata store, changed by
	// UpdateFeatures; with a store that does not keep feature levels it
	// is what this agent finalizes.
	TransactionVersion int16

	// ACL, if set, enables authorization with Kafka ACLs (--authorizer
	// acl); Logger and Registerer are set by Start. Without it every
	// request is allowed and the ACL APIs answer SECURITY_DISABLED.
	ACL *acl.AuthorizerOptions
	// TestPrincipal, for tests only, names the principal of each request
	// (protocol.Config.TestPrincipal). Never set from configuration.
	TestPrincipal func(req *wire.Request) string

	// ClientTelemetry configures what clients are asked to push about
	// themselves (KIP-714) and the bounds on what is exposed of it
	// (zero values: the defaults; Registerer is set by Start).
	ClientTelemetry telemetry.Options

	// Jobs configures the background jobs (retention, cleaner) of an
	// agent with the jobs role (zero values take the defaults; Holder,
	// Logger and Registerer are set by Start).
	Jobs jobs.Config

	Logger *slog.Logger

	// Clock is the wall clock the agent reads where it compares the
	// time with a time set elsewhere: record timestamps
	// (message.timestamp.*.max.ms), the metadata store's lease and
	// commit times (background jobs, offsets.retention.minutes),
	// transactions' start times (transaction.timeout.ms), token expiry
	// and SASL session lifetimes. Default time.Now. floe agent
	// --clock-skew offsets it, so that floe torture can give one agent a
	// wrong clock (docs/correctness.md: what a skew does and does not
	// reach). Durations the agent measures on its own (linger, timeouts,
	// group session timers, quota windows) do not change under a
	// constant offset, whichever clock measures them.
	Clock func() time.Time

	// Registry, if set, is the registry /metrics serves and the agent
	// registers its metrics with, so that metrics of parts the caller
	// builds before the agent (the bucket's retries and hedges) show up
	// there too. It must not hold Go or process collectors, which the
	// agent adds. Default: a new registry.
	Registry *prometheus.Registry
}

// Agent is a running agent.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	listeners []*kafkaListener
	sasl      *sasl.Server // nil without SASL listeners
	admin     *http.Server
	adminLn   net.Listener
	writer    *produce.Writer
	handler   *protocol.Handler
	reg       *prometheus.Registry
	metrics   *metrics
	store     metastore.Store
	bucket    objstore.Bucket // instrumented; read by the admin API
	ctx       context.Context // of requests; cancelled when the drain ends long polls
	cancel    context.CancelFunc
	draining  chan struct{} // closed when Close begins

	members    *cluster.Membership
	schedule   *scheduleView // nil unless the store schedules (floe://)
	peerServer *zonecache.Server
	groups     *coordinator.Coordinator
	shares     *sharecoord.Coordinator
	txns       *txncoord.Coordinator
	quotas     *quota.Manager
	actors     *actors
	closeOnce  sync.Once

	// fetchSessions are the clients' incremental fetch sessions, shared
	// by every listener.
	fetchSessions *fetchsession.Cache
	connIDs       atomic.Uint64

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup

	// consoleListener serves the console's in-process connections
	// (dialConsole); serving is set once the agent takes requests.
	consoleListener *kafkaListener
	serving         atomic.Bool
	started         time.Time
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
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = AllRoles
	}
	for _, r := range cfg.Roles {
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger, store: store, draining: make(chan struct{}), conns: map[*conn]struct{}{},
		actors: &actors{log: cfg.Logger},
	}
	if err := a.start(bucket); err != nil {
		a.actors.stopAll()
		return nil, err
	}
	return a, nil
}

// start starts the agent's parts in order, registering each with what
// stops it (see actors).
func (a *Agent) start(bucket objstore.Bucket) error {
	cfg, log, store := a.cfg, a.log, a.store
	specs, err := cfg.listeners()
	if err != nil {
		return err
	}
	if slices.ContainsFunc(specs, Listener.sasl) {
		if a.sasl, err = sasl.NewServer(sasl.Config{Mechanisms: cfg.SASLMechanisms, Users: store, OAuth: cfg.OAuth}); err != nil {
			return err
		}
	}
	var advertisedListeners map[string]string
	if len(cfg.Listeners) > 0 {
		advertisedListeners = map[string]string{}
	}
	for _, spec := range specs {
		ln, err := net.Listen("tcp", spec.Addr)
		if err != nil {
			return fmt.Errorf("listen %s (%s): %w", spec.Addr, spec.Name, err)
		}
		a.actors.add("kafka listener "+spec.Name, func() { ln.Close() })
		if spec.tls() {
			tc := cfg.TLS
			if spec.Protocol == SASLSSL {
				// SASL authenticates these clients; client certificates
				// are asked for on SSL listeners only (as Kafka does
				// without a listener-prefixed ssl.client.auth, KIP-684).
				tc = tc.Clone()
				tc.ClientAuth, tc.ClientCAs = tls.NoClientCert, nil
			}
			ln = tls.NewListener(ln, tc)
		}
		adv, err := advertisedAddr(spec.Advertise, ln.Addr())
		if err != nil {
			return fmt.Errorf("listener %s: %w", spec.Name, err)
		}
		a.listeners = append(a.listeners, &kafkaListener{Listener: spec, ln: ln, advertise: adv})
		if advertisedListeners != nil {
			advertisedListeners[spec.Name] = net.JoinHostPort(adv.Host, strconv.Itoa(int(adv.Port)))
		}
	}
	self := a.listeners[0].advertise
	peerLn, peerAddr, err := listenPeers(cfg, specs[0].Addr, self)
	if err != nil {
		return err
	}
	a.actors.add("peer listener", func() { peerLn.Close() })

	joinCtx, cancelJoin := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelJoin()
	secret := cfg.PeerSecret
	if secret == nil {
		if secret, err = store.ClusterSecret(joinCtx); err != nil {
			return err
		}
	}
	// The outage manifest name is held in the registration before the
	// manifests are loaded (LoadOutageManifests below): a name another
	// live agent holds fails the start. Join may wait a TTL for the
	// registration of this agent's previous run to lapse, so it has a
	// deadline of its own.
	var manifestName string
	if cfg.Outage != nil {
		manifestName = cfg.Outage.ManifestName
	}
	memberCtx, cancelMember := context.WithTimeout(context.Background(), 20*time.Second)
	members, err := cluster.Join(memberCtx, store, cluster.Options{
		Host: self.Host, Port: self.Port, Listeners: advertisedListeners, PeerAddr: peerAddr, Zone: cfg.Zone, Roles: cfg.Roles, NodeID: cfg.NodeID, Logger: log,
		Version: console.BuildVersion(), OutageManifest: manifestName,
	})
	cancelMember()
	if err != nil {
		if manifestName != "" && errors.Is(err, metastore.ErrOutageManifestTaken) {
			return fmt.Errorf("--outage-manifest-name %s: %w", manifestName, err)
		}
		return err
	}
	a.members = members
	a.actors.add("membership", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := members.Leave(ctx); err != nil {
			log.Warn("deregister failed; the registration will expire", "err", err)
		}
	})

	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	a.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = newMetrics(reg)
	probe := newStoreProbe(reg)
	a.actors.add("metadata store probe", runUntilStopped(func(ctx context.Context) { probe.run(ctx, a) }))
	bucket = objstore.Instrument(bucket, objstore.NewMetrics(reg))
	a.bucket = bucket
	blockSize := cfg.CacheBlockBytes
	if blockSize <= 0 {
		blockSize = cache.DefaultBlockSize
	}
	// On a store that schedules (floe://), the ring is the control
	// plane's and the jobs run where it assigns them (schedule.go).
	var ringMembers zonecache.Members = members
	schedule := newScheduleView(store, members, log)
	if schedule != nil {
		ringMembers = schedule
		a.schedule = schedule
	}
	ring := zonecache.NewRing(ringMembers, bucket, zonecache.RingOptions{
		BlockSize: blockSize, Role: protocol.RoleFetch, Secret: secret, TLS: cfg.PeerClientTLS,
		Logger: log, Registerer: reg,
	})
	a.actors.add("cache ring", ring.Close)
	cacheBytes := cfg.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = cache.DefaultCapacity
	}
	readAhead := cfg.ReadAheadBytes
	if readAhead == 0 {
		readAhead = cacheBytes / 2
	}
	blocks := cache.New(bucket, cache.Options{
		Capacity: cacheBytes, BlockSize: blockSize, Fetch: ring.Fetch,
		ReadAheadBytes: readAhead, ReadAheadGets: cfg.ReadAheadGets,
	}, reg)
	// Stopped after the requests (actors stop in reverse): cancels the
	// read-ahead GETs still in flight and waits for them.
	a.actors.add("read-ahead", blocks.Close)
	relay := a.relayNotices(secret)
	peerServer, err := zonecache.Serve(peerLn, zonecache.ServerOptions{
		Secret: secret, TLS: cfg.PeerServerTLS, Sizes: store, Blocks: blocks, Logger: log, Registerer: reg,
		Notices: relay,
	})
	if err != nil {
		return err
	}
	a.peerServer = peerServer
	a.actors.add("peer server", func() { peerServer.Close() })

	notify := fetch.NewNotifier(reg)
	reader := fetch.NewReader(store, store, blocks)
	reader.SetReadAhead(fetch.ReadAheadOptions{Budget: max(readAhead, 0)})
	sessionOpts := cfg.FetchSessions
	sessionOpts.Registerer = reg
	a.fetchSessions = fetchsession.New(sessionOpts)
	a.writer = produce.NewWriter(bucket, store, produce.Options{
		Linger:              cfg.Linger,
		MaxSegmentBytes:     cfg.SegmentMaxBytes,
		DisableEarlyFlush:   cfg.DisableEarlyFlush,
		DisableCommitGroups: cfg.DisableCommitGroups,
		FlushMinInterval:    cfg.FlushMinInterval,
		FlushWindowReserve:  cfg.FlushWindowReserve,
		FlushTimeout:        cfg.FlushTimeout,
		Outage:              cfg.Outage,
		Observe:             cfg.FlushObserver,
		Logger:              log,
		Metrics:             produce.NewMetrics(reg),
		// Write-through: consumers at the live edge read the new object
		// from memory, never from the bucket.
		Uploaded: blocks.Insert,
	})
	a.actors.add("writer", a.writer.Close)
	loadCtx, cancelLoad := context.WithTimeout(context.Background(), 2*time.Minute)
	n, err := a.writer.LoadOutageManifests(loadCtx)
	cancelLoad()
	if err != nil {
		return fmt.Errorf("outage queue: %w", err)
	} else if n > 0 {
		log.Warn("replaying commits a previous run of this agent acknowledged during a metadata store outage", "segments", n)
	}
	// Every commit, through this agent or another, drops the cached
	// extents of its partitions and then wakes the fetches waiting on
	// them (not before: a woken fetch must not read the stale tail).
	a.actors.add("commit watch", store.WatchCommits(func(n metastore.CommitNotice) {
		if n.Partitions == nil { // "anything may have changed"
			reader.InvalidateAll()
			notify.NotifyAll()
			return
		}
		for i, tp := range n.Partitions {
			if seen, ok := n.SeenAt(i); ok {
				reader.InvalidateUnlessAt(tp.TopicID, tp.Partition, seen)
			} else {
				reader.Invalidate(tp.TopicID, tp.Partition)
			}
		}
		notify.Notify(n.Partitions)
	}))
	view := clusterView{m: members}
	groupOpts := cfg.Groups
	groupOpts.Owns = func(group string) bool { return protocol.OwnsGroup(view, group) }
	groupOpts.Racks = view.readRacks
	groupOpts.Registerer, groupOpts.Logger = reg, log
	if groupOpts.Now == nil {
		groupOpts.Now = cfg.Clock
	}
	a.groups = coordinator.New(store, groupOpts)
	a.actors.add("group coordinator", a.groups.Close)
	shareOpts := cfg.Shares
	shareOpts.Owns = func(group string) bool { return protocol.OwnsGroup(view, group) }
	shareOpts.ViewGeneration = members.Generation
	shareOpts.Logger, shareOpts.Registerer = log, reg
	if shareOpts.Now == nil {
		shareOpts.Now = cfg.Clock
	}
	a.shares = sharecoord.New(store, shareOpts)
	txnOpts := cfg.Transactions
	txnOpts.Owns = func(key string) bool { return protocol.OwnsKey(view, key) }
	txnOpts.Registerer, txnOpts.Logger = reg, log
	if txnOpts.Now == nil {
		txnOpts.Now = cfg.Clock
	}
	// Markers objects go to the block cache as segments do, so that
	// consumers at the live edge read them from memory.
	txnOpts.Uploaded = blocks.Insert
	a.txns = txncoord.New(store, bucket, txnOpts)
	a.actors.add("transaction coordinator", a.txns.Close)
	var authorizer *acl.Authorizer
	if cfg.ACL != nil {
		opts := *cfg.ACL
		opts.Logger, opts.Registerer = log, reg
		if authorizer, err = acl.NewAuthorizer(joinCtx, store, opts); err != nil {
			return err
		}
		a.actors.add("acl refresh", runUntilStopped(authorizer.Run))
	}
	a.quotas = quota.New(store, quota.Options{
		Samples: cfg.QuotaSamples, SampleWindow: cfg.QuotaSampleWindow,
		Agents: func(k quota.Kind) int { return livePeersWith(members, quotaRole(k)) },
		Logger: log, Registerer: reg,
	})
	if err := a.quotas.Refresh(joinCtx); err != nil {
		return err
	}
	a.actors.add("quotas", runUntilStopped(a.quotas.Run))
	telemetryOpts := cfg.ClientTelemetry
	telemetryOpts.Registerer = reg
	clientTelemetry := telemetry.New(telemetryOpts)
	// The finalized feature levels are cluster state when the store
	// keeps them (the flags are a new cluster's levels).
	var featureLevels *features.Levels
	if fs, ok := store.(metastore.FeatureStore); ok {
		featureLevels = features.New(fs, protocol.DefaultFeatureLevels(cfg.TransactionVersion), features.Options{Logger: log})
		if err := featureLevels.Init(joinCtx); err != nil {
			return fmt.Errorf("feature levels: %w", err)
		}
		a.actors.add("feature levels", runUntilStopped(featureLevels.Run))
	}
	// Every handler looks topics up in one cache that follows the
	// store's topic notices (internal/topiccache).
	topics := topiccache.New(store, topiccache.Options{Logger: log, Registerer: reg})
	a.actors.add("topic cache", topics.Close)
	if err := topics.Load(joinCtx); err != nil {
		return err
	}
	a.actors.add("topic cache resync", runUntilStopped(topics.Run))
	// One handler per listener: each tells its clients the agents'
	// addresses on that listener.
	// They share the clients' mutation and producer-id quotas and the
	// agent's turn to create topics (Handler.ForCluster).
	var handler *protocol.Handler
	for _, l := range a.listeners {
		view := clusterView{m: members, listener: l.Name}
		if handler == nil {
			handler = protocol.NewHandler(protocol.Config{
				ClusterID:         cfg.ClusterID,
				Cluster:           view,
				Groups:            a.groups,
				Shares:            a.shares,
				Transactions:      a.txns,
				Users:             store,
				Authorizer:        authorizer,
				TestPrincipal:     cfg.TestPrincipal,
				Quotas:            a.quotas,
				AutoCreateTopics:  cfg.AutoCreateTopics,
				DefaultPartitions: cfg.DefaultPartitions,
				Limits:            cfg.Limits,
				Broker:            a.brokerConfigs(),
				LogDir:            cfg.LogDir,
				Telemetry:         clientTelemetry,
				FetchSessions:     a.fetchSessions,
				FetchServed:       protocol.NewFetchServed(reg, 0),
				Now:               cfg.Clock,

				TransactionVersion: cfg.TransactionVersion,
				Features:           featureLevels,
				Topics:             topics,
			}, store, a.writer, reader, notify, log)
			l.handler = handler
			continue
		}
		l.handler = handler.ForCluster(view)
	}
	a.consoleListener = &kafkaListener{
		Listener:  Listener{Name: "CONSOLE", Protocol: Plaintext},
		advertise: a.listeners[0].advertise, handler: a.listeners[0].handler,
	}

	if cfg.AdminListen != "" {
		if err := a.startAdmin(); err != nil {
			return err
		}
	}
	heartbeats := runUntilStopped(members.Run)
	a.actors.add("heartbeats", heartbeats)
	var assignment *jobs.Assignment
	if schedule != nil {
		var stop func()
		if assignment, stop, err = schedule.watch(cfg.Roles, slices.Contains(cfg.Roles, protocol.RoleJobs)); err != nil {
			return fmt.Errorf("join the control plane's schedule: %w", err)
		}
		a.actors.add("schedule", stop)
	}
	if slices.Contains(cfg.Roles, protocol.RoleJobs) {
		jc := cfg.Jobs
		jc.Holder, jc.Logger, jc.Registerer = members.Self().ID, log, reg
		jc.Assignment = assignment
		if jc.Clock == nil {
			jc.Clock = cfg.Clock
		}
		// Stopping the jobs releases their leases, so another agent
		// takes them at once.
		sched := jobs.Standard(store, bucket, jc)
		a.actors.add("jobs", runUntilStopped(func(ctx context.Context) {
			if err := sched.Run(ctx); err != nil {
				log.Error("background jobs failed", "err", err)
			}
		}))
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.actors.add("requests", a.cancel)
	for _, l := range a.listeners {
		a.wg.Add(1)
		go a.accept(l)
		if len(a.listeners) > 1 {
			log.Info("kafka listener", "name", l.Name, "protocol", l.Protocol, "addr", l.ln.Addr().String(),
				"advertised", net.JoinHostPort(l.advertise.Host, strconv.Itoa(int(l.advertise.Port))))
		}
	}
	a.actors.add("connections", a.closeConnections)
	a.started = time.Now()
	a.serving.Store(true)
	a.announce(joinCtx)
	log.Info("agent listening", "kafka", a.Addr(), "advertised", net.JoinHostPort(self.Host, strconv.Itoa(int(self.Port))),
		"peer", peerServer.Addr().String(), "peer_advertised", peerAddr, "admin", a.AdminAddr(), "node_id", members.Self().NodeID, "linger", a.writer.Linger())
	return nil
}

// brokerConfigs are the broker configs DescribeConfigs reports that only
// the agent knows: its listeners and the bounds of its groups and quotas.
func (a *Agent) brokerConfigs() []protocol.BrokerConfig {
	var listeners, advertised, protocols []string
	for _, l := range a.listeners {
		listeners = append(listeners, l.Name+"://"+l.ln.Addr().String())
		advertised = append(advertised, l.Name+"://"+net.JoinHostPort(l.advertise.Host, strconv.Itoa(int(l.advertise.Port))))
		protocols = append(protocols, l.Name+":"+l.Protocol)
	}
	g := a.groups.Config()
	retention := a.cfg.Groups.OffsetsRetention
	if retention <= 0 {
		retention = 7 * 24 * time.Hour // the coordinator's default
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 0), 10) }
	out := []protocol.BrokerConfig{
		{Name: "listeners", Value: strings.Join(listeners, ","), Type: config.String},
		{Name: "advertised.listeners", Value: strings.Join(advertised, ","), Type: config.String},
		{Name: "listener.security.protocol.map", Value: strings.Join(protocols, ","), Type: config.String},
		{Name: "group.min.session.timeout.ms", Value: ms(g.MinSessionTimeout), Type: config.Int},
		{Name: "group.max.session.timeout.ms", Value: ms(g.MaxSessionTimeout), Type: config.Int},
		{Name: "group.initial.rebalance.delay.ms", Value: ms(g.InitialRebalanceDelay), Type: config.Int},
		{Name: "offsets.retention.minutes", Value: strconv.FormatInt(int64(retention/time.Minute), 10), Type: config.Int},
		{Name: "socket.request.max.bytes", Value: strconv.Itoa(int(a.cfg.MaxFrameBytes)), Type: config.Int},
		{Name: "quota.window.num", Value: strconv.Itoa(quotaSamples(a.cfg.QuotaSamples)), Type: config.Int},
		{Name: "max.incremental.fetch.session.cache.slots", Value: strconv.Itoa(a.fetchSessions.Slots()), Type: config.Int},
	}
	// --file-delete-delay is the default of file.delete.delay.ms, as
	// Kafka's log.segment.delete.delay.ms is.
	deleteDelay := a.cfg.Jobs.DeleteDelay
	if deleteDelay <= 0 {
		deleteDelay = jobs.DefaultDeleteDelay
	}
	out = append(out, protocol.BrokerConfig{Name: "log.segment.delete.delay.ms", Value: ms(deleteDelay), Type: config.Long})
	if len(a.cfg.SASLMechanisms) > 0 {
		out = append(out, protocol.BrokerConfig{Name: "sasl.enabled.mechanisms", Value: strings.Join(a.cfg.SASLMechanisms, ","), Type: config.List})
	}
	if a.cfg.ACL != nil {
		out = append(out, protocol.BrokerConfig{Name: "authorizer.class.name", Value: "floe acl", Type: config.String})
	}
	return out
}

// quotaSamples is quota.window.num as the quota manager applies it.
func quotaSamples(n int) int {
	if n <= 1 {
		return quota.DefaultSamples
	}
	return n
}

// quotaRole is the role of the agents that share quotas of kind k.
func quotaRole(k quota.Kind) string {
	if k == quota.Produce {
		return protocol.RoleProduce
	}
	return protocol.RoleFetch
}

// livePeersWith counts the live agents with role.
func livePeersWith(m *cluster.Membership, role string) int {
	n := 0
	for _, a := range m.Live() {
		if slices.Contains(a.Roles, role) {
			n++
		}
	}
	return n
}

// runUntilStopped runs fn in a goroutine until the returned stop cancels
// its context; stop waits for fn to return.
func runUntilStopped(fn func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// listenPeers opens the peer listener and returns it with the address
// other agents dial.
func listenPeers(cfg Config, kafkaAddr string, self protocol.Broker) (net.Listener, string, error) {
	addr := cfg.PeerListen
	if addr == "" {
		host, _, err := net.SplitHostPort(kafkaAddr)
		if err != nil {
			return nil, "", fmt.Errorf("listener address %q: %w", kafkaAddr, err)
		}
		addr = net.JoinHostPort(host, "0")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("peer listen %s: %w", addr, err)
	}
	adv := cfg.PeerAdvertise
	if adv == "" {
		adv = net.JoinHostPort(self.Host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	if _, _, err := net.SplitHostPort(adv); err != nil {
		ln.Close()
		return nil, "", fmt.Errorf("peer advertised address %q: %w", adv, err)
	}
	return ln, adv, nil
}

// PeerAddr is the bound peer listener address.
func (a *Agent) PeerAddr() string { return a.peerServer.Addr().String() }

// Addr is the bound address of the first Kafka listener.
func (a *Agent) Addr() string { return a.listeners[0].ln.Addr().String() }

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

func (a *Agent) accept(l *kafkaListener) {
	defer a.wg.Done()
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Error("accept failed", "err", err)
			}
			return
		}
		c := newConn(a, l, nc)
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
	if a.cfg.AdminTLS != nil {
		ln = tls.NewListener(ln, a.cfg.AdminTLS)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", a.authorized(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{})))
	mux.HandleFunc("/healthz", a.health)
	// JSON for floe inspect segment and floe groups --admin; more specific
	// than the console's "/".
	mux.Handle("GET /api/segment", a.authorized(http.HandlerFunc(a.inspectSegment)))
	mux.Handle("GET /api/groups", a.authorized(http.HandlerFunc(a.inspectGroups)))
	mux.Handle("GET /api/status", a.authorized(a.statusHandler()))
	if a.cfg.NoConsole {
		mux.Handle("/jobs", a.authorized(http.HandlerFunc(a.jobsStatus)))
	} else if err := a.mountConsole(mux); err != nil { // also /jobs
		ln.Close()
		return err
	}
	a.adminLn = ln
	a.admin = &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server failed", "err", err)
		}
	}()
	a.actors.add("admin server", func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if a.admin.Shutdown(ctx) != nil {
			a.admin.Close()
		}
		<-done
	})
	return nil
}

// authorized requires the admin token, when one is set, as a bearer
// token.
func (a *Agent) authorized(h http.Handler) http.Handler {
	if a.cfg.AdminToken == "" {
		return h
	}
	want := []byte("Bearer " + a.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="floe"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
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
	if err := a.storeHealth(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// storeHealth asks the metadata store for its topics. The store's error
// may name its host: it goes to the log, and the caller gets a sentence.
func (a *Agent) storeHealth(ctx context.Context) error {
	if _, err := a.store.Topics(ctx); err != nil {
		a.log.Warn("health check: metadata store failed", "err", err)
		return errors.New("metadata store unavailable")
	}
	return nil
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

// Close drains the agent (see drain), then stops its parts in the
// reverse order of their start. It may be called more than once.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.drain()
		a.actors.stopAll()
		a.log.Info("agent stopped")
	})
	return nil
}

// drain is the lame-duck phase of Close, bounded by ShutdownTimeout:
//
//  1. /healthz answers 503;
//  2. the agent leaves the cluster, so that other agents take over its
//     groups and clients are routed elsewhere while it drains;
//  3. jobs stop and release their leases, so another agent takes them;
//  4. the Kafka listener stops accepting, and connections stop reading;
//  5. the open segment is flushed and the requests waiting on it answered;
//  6. members waiting in a rebalance are told to find the next
//     coordinator, and long polls end;
//  7. connections close once their requests in flight are answered, or
//     at the deadline.
func (a *Agent) drain() {
	close(a.draining)
	a.actors.stop("heartbeats")
	a.actors.stop("membership")
	a.actors.stop("jobs")
	for _, l := range a.listeners {
		a.actors.stop("kafka listener " + l.Name)
	}
	a.mu.Lock()
	for c := range a.conns {
		c.stopReading()
	}
	a.mu.Unlock()
	a.actors.stop("writer")
	a.actors.stop("group coordinator")
	a.actors.stop("requests")
	a.actors.stop("connections")
}

// closeConnections waits up to ShutdownTimeout for the connections to
// finish, then closes those with requests still in flight.
func (a *Agent) closeConnections() {
	for _, l := range a.listeners {
		l.ln.Close()
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
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
}

// PeerTLS returns the two sides of mutual TLS between agents: each
// presents cert and accepts only peers whose certificate chains to ca.
// Host names are not checked (peers are often dialled by IP): the CA is
// the cluster's identity.
func PeerTLS(cert tls.Certificate, ca *x509.CertPool) (server, client *tls.Config, err error) {
	verify := func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: ca, Intermediates: x509.NewCertPool(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		// The chain is verified by VerifyConnection, without a host name.
		InsecureSkipVerify: true, VerifyConnection: verify,
	}
	return server, client, nil
}
