// Package protocol answers Kafka requests. There is one file per API, named
// by its key (00_produce.go, 01_fetch.go, …); each registers the versions
// it handles, and ApiVersions is built from that registry, so the agent
// advertises exactly what it implements.
//
// Errors a client can recover from are answered as Kafka error codes in
// the response. A Go error returned from Handle means the connection must
// be closed (unknown API, unsupported version, malformed request).
package protocol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/coordinator"
	"github.com/floe-io/floe/internal/features"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/quota"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/telemetry"
	"github.com/floe-io/floe/internal/topiccache"
	"github.com/floe-io/floe/internal/txncoord"
	"github.com/floe-io/floe/internal/wire"
)

// Broker is an agent as clients see it.
type Broker struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// Config is what the handlers need to know about the cluster.
type Config struct {
	ClusterID string
	// Cluster tells who the agents are and who owns what.
	Cluster Cluster
	// AutoCreateTopics enables auto.create.topics.enable.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions for auto-created topics and
	// CreateTopics with NumPartitions -1.
	DefaultPartitions int32
	// MaxMessageBytes is message.max.bytes, the default for a topic's
	// max.message.bytes.
	MaxMessageBytes int32
	// Groups coordinates the consumer groups this agent owns; nil answers
	// every group request COORDINATOR_NOT_AVAILABLE.
	Groups *coordinator.Coordinator
	// Shares runs the share groups and share partitions this agent owns;
	// nil answers share-group requests COORDINATOR_NOT_AVAILABLE.
	Shares *sharecoord.Coordinator
	// Transactions coordinates transactional ids; nil answers every
	// transaction request COORDINATOR_NOT_AVAILABLE.
	Transactions *txncoord.Coordinator
	// TransactionVersion is the transaction.version level ApiVersions
	// finalizes (18_api_versions.go): 0 means MaxTransactionVersion (2,
	// what Kafka 4 finalizes for a new cluster), 1 pins transaction
	// version 1, -1 finalizes none (level 0). Requests are served by their
	// versions whatever it is; it decides which versions clients use.
	TransactionVersion int16
	// Features are the cluster's finalized feature levels, kept in the
	// metadata store and changed by UpdateFeatures (the flags, including
	// TransactionVersion, are then only a new cluster's levels); nil
	// finalizes TransactionVersion and group.version 1 on this agent
	// alone, and UpdateFeatures changes nothing.
	Features *features.Levels
	// Authorizer decides with Kafka ACLs (--authorizer acl); nil allows
	// everything and answers the ACL APIs SECURITY_DISABLED.
	Authorizer *acl.Authorizer
	// TestPrincipal, for tests only, replaces each request's principal,
	// so that a test can act as several users without authenticating.
	// Never set from configuration.
	TestPrincipal func(req *wire.Request) string
	// Limits bound what requests may create (limits.go).
	Limits Limits
	// Broker lists broker configs DescribeConfigs reports beside the ones
	// the handler knows (advertised.listeners, group bounds, …), with the
	// agent's values.
	Broker []BrokerConfig
	// Quotas, if set, is re-read after AlterClientQuotas, so that this
	// agent enforces a change at once.
	Quotas *quota.Manager
	// LogDir names the agent's one virtual log dir (DescribeLogDirs,
	// AlterReplicaLogDirs, the log.dirs broker config): the bucket every
	// partition's data lives in. Default "bucket://" + ClusterID.
	LogDir string
	// Telemetry takes what clients push (GetTelemetrySubscriptions,
	// PushTelemetry); nil builds one with the defaults whose metrics
	// are registered nowhere.
	Telemetry *telemetry.Receiver
	// FetchSessions keeps the agent's incremental fetch sessions
	// (KIP-227), shared by every listener; nil answers every fetch
	// without a session.
	FetchSessions *fetchsession.Cache
	// FetchServed counts the records and bytes Fetch answers per topic
	// (fetch_served.go); nil counts nothing.
	FetchServed *FetchServed
	// Users keeps the SASL users' SCRAM credentials
	// (DescribeUserScramCredentials, AlterUserScramCredentials); nil
	// answers those APIs with an error.
	Users metastore.UserStore
	// Now is the agent's wall clock, which record timestamps are
	// checked against (default time.Now).
	Now func() time.Time
	// Topics is the agent's topic cache, which every handler looks
	// topics up in; nil builds one on the store (loaded on first use).
	Topics *topiccache.Cache
}

// Store is what the handlers read and change in the metadata store
// themselves; produce, fetch and groups go through the writer, the reader
// and the coordinator.
type Store interface {
	// Metadata, CreateTopics, DeleteTopics, CreatePartitions and the
	// config APIs; lookups go through the topic cache, which watches.
	metastore.TopicStore
	metastore.TopicWatcher
	// InitProducerId.
	metastore.ProducerStore
	// OffsetForLeaderEpoch and ListOffsets v0's oldest boundary; Fetch
	// and ListOffsets read the other bounds through the reader, which
	// keeps the last stable offset as reads use it.
	Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error)
	// CreateAcls, DescribeAcls, DeleteAcls.
	metastore.ACLStore
	// DeleteRecords.
	AdvanceLogStart(ctx context.Context, id metastore.TopicID, partition int32, offset int64) (metastore.PartitionOffsets, error)
	// DescribeClientQuotas, AlterClientQuotas.
	metastore.QuotaStore
	// DescribeProducers.
	ActiveProducers(ctx context.Context, id metastore.TopicID, partition int32) ([]metastore.ActiveProducer, error)
	// DescribeLogDirs.
	PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error)
	// ListConfigResources; groups' configs are otherwise read and
	// changed through the share coordinator (Config.Shares).
	GroupsWithConfigs(ctx context.Context, limit int) ([]string, error)
}

// Handler answers requests. It is safe for concurrent use by many
// connections.
type Handler struct {
	cfg    Config
	store  Store
	writer *produce.Writer
	reader *fetch.Reader
	notify *fetch.Notifier
	topics *topiccache.Cache
	log    *slog.Logger
	// mutations and producerIDs are the clients' quotas (limits.go).
	mutations, producerIDs *quotas
	// creating is the agent's turn to create topics and partitions
	// (limits.go: creationTurn).
	creating chan struct{}
}

// NewHandler returns a Handler.
func NewHandler(cfg Config, store Store, writer *produce.Writer, reader *fetch.Reader, notify *fetch.Notifier, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1048588
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Telemetry == nil {
		cfg.Telemetry = telemetry.New(telemetry.Options{})
	}
	if cfg.LogDir == "" {
		cfg.LogDir = "bucket://" + cfg.ClusterID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Topics == nil {
		cfg.Topics = topiccache.New(store, topiccache.Options{Logger: log})
	}
	return &Handler{
		cfg: cfg, store: store, writer: writer, reader: reader, notify: notify, log: log, topics: cfg.Topics,
		mutations:   newQuotas(cfg.Limits.ControllerMutationRate, time.Now),
		producerIDs: newQuotas(cfg.Limits.ProducerIDRate, time.Now),
		creating:    make(chan struct{}, 1),
	}
}

// ForCluster returns a handler for another listener of the same agent: it
// shows clients cluster (the agents' addresses on that listener) and
// shares everything else with h, the clients' mutation and producer-id
// quotas and the agent's turn to create topics included, so that a
// client gains nothing by using several listeners.
func (h *Handler) ForCluster(cluster Cluster) *Handler {
	other := *h
	other.cfg.Cluster = cluster
	return &other
}

// Reply produces a request's response. It runs after every earlier
// request's reply on the same connection, so it may block (a produce
// waiting for its commit, a fetch long-polling) without reordering
// answers. A nil response means no response is sent (acks=0).
type Reply func(ctx context.Context) kmsg.Response

// api is one registered API: its version range and handler.
type api struct {
	key      int16
	min, max int16
	handle   func(h *Handler, ctx context.Context, req *wire.Request) (Reply, error)
}

// apis is the registry, filled by each API file's init and read-only after.
var apis = map[int16]api{}

func register(key, min, max int16, handle func(h *Handler, ctx context.Context, req *wire.Request) (Reply, error)) {
	if _, dup := apis[key]; dup {
		panic(fmt.Sprintf("api %d registered twice", key))
	}
	apis[key] = api{key: key, min: min, max: max, handle: handle}
}

// Supported lists the registered APIs, sorted by key.
func Supported() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(apis))
	for _, a := range apis {
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// ErrUnsupported reports a request for an API or version the agent does
// not handle. Kafka closes the connection in that case, and so do we.
var ErrUnsupported = errors.New("unsupported api")

// Handle starts handling one request. Work whose order matters relative
// to later requests on the connection (appending produce batches, creating
// topics) is done before Handle returns; the returned Reply finishes it.
func (h *Handler) Handle(ctx context.Context, req *wire.Request) (Reply, error) {
	a, ok := apis[req.Key]
	if !ok || req.Req == nil {
		return nil, fmt.Errorf("%w: key %d (%s) v%d", ErrUnsupported, req.Key, kmsg.NameForKey(req.Key), req.Version)
	}
	if req.Version < a.min || req.Version > a.max {
		if req.Key == wire.ApiVersionsKey {
			return unsupportedApiVersions(), nil
		}
		return nil, fmt.Errorf("%w: %s v%d (handled: v%d-v%d)", ErrUnsupported, kmsg.NameForKey(req.Key), req.Version, a.min, a.max)
	}
	if h.cfg.TestPrincipal != nil {
		req.Principal = h.cfg.TestPrincipal(req)
	}
	if err := h.checkNamed(req.Req); err != nil {
		return nil, err
	}
	return a.handle(h, ctx, req)
}

// now wraps a response that is already complete.
func now(resp kmsg.Response) Reply {
	return func(context.Context) kmsg.Response { return resp }
}

// errorCode maps store and writer errors to Kafka error codes.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case isUnknownTopicID(err):
		return kerr.UnknownTopicID.Code
	case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metastore.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metastore.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, metastore.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, metastore.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, metastore.ErrUnknownProducerID):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, metastore.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, fetch.ErrOffsetOutOfRange), errors.Is(err, metastore.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, produce.ErrClosed):
		// The agent is shutting down: the client refreshes metadata and
		// retries elsewhere.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

// kafkaCode is the Kafka error code of an error that wraps a
// *kerr.Error, 0 for nil, and UNKNOWN_SERVER_ERROR otherwise.
func kafkaCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage returns a pointer to err's text for responses that carry an
// error message, or nil.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
