package remote

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Op is one metastore.Store method as the protocol names it. Mutating ops
// are journaled by the server and applied by calling the method on its
// state; the others are answered from the state directly.
type Op struct {
	// Name is stable forever: journals hold it.
	Name string
	// Mutates is true for methods that change the store.
	Mutates bool
	// Entropy is how many random bytes the method reads from the store's
	// random source (embedded.Options.Rand) when it is applied.
	Entropy int
	// Decode checks a request's arguments and decodes them, refusing
	// arguments that would decode into too much memory (checkDecodeCost).
	Decode func(args RawMessage) (any, error)
	// DecodeJournaled decodes arguments read back from the journal,
	// encoded in protocol version v: they passed Decode when they were
	// journaled, and must replay the same way even if the memory bound
	// changed since.
	DecodeJournaled func(args RawMessage, v int) (any, error)
	// Apply calls the method with Decode's value and encodes its result.
	Apply func(ctx context.Context, s metastore.Store, args any) (RawMessage, error)
}

var ops = map[string]*Op{}

// Lookup returns the op named name.
func Lookup(name string) (*Op, bool) {
	o, ok := ops[name]
	return o, ok
}

// OpNames lists every op, sorted.
func OpNames() []string {
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// op ties an Op to its argument and result types, for the client.
type op[A, R any] struct{ *Op }

type opKind struct {
	mutates bool
	entropy int
}

var (
	read   = opKind{}
	mutate = opKind{mutates: true}
)

// entropy is a mutating op that reads n random bytes.
func entropy(n int) opKind { return opKind{mutates: true, entropy: n} }

func define[A, R any](name string, k opKind, fn func(ctx context.Context, s metastore.Store, a A) (R, error)) op[A, R] {
	if _, dup := ops[name]; dup {
		panic("remote: op " + name + " defined twice")
	}
	o := &Op{
		Name:    name,
		Mutates: k.mutates,
		Entropy: k.entropy,
		Decode: func(raw RawMessage) (any, error) {
			if len(raw) > 0 {
				if err := checkDecodeCost(raw, reflect.TypeFor[A]()); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
			return decodeArgs[A](name, raw)
		},
		DecodeJournaled: func(raw RawMessage, v int) (any, error) {
			if old, ok := olderArgs[name]; ok && v < Version {
				return old(raw, v)
			}
			return decodeArgs[A](name, raw)
		},
		Apply: func(ctx context.Context, s metastore.Store, a any) (RawMessage, error) {
			r, err := fn(ctx, s, a.(A))
			if err != nil {
				return nil, err
			}
			return Marshal(r)
		},
	}
	ops[name] = o
	return op[A, R]{o}
}

func decodeArgs[A any](name string, raw RawMessage) (any, error) {
	var a A
	if len(raw) > 0 {
		if err := Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("%s: bad arguments: %w", name, err)
		}
	}
	return a, nil
}

// wireResults are a commit's batch results as they cross the network.
func wireResults(rs []metastore.BatchResult) []batchResult {
	out := make([]batchResult, len(rs))
	for i, r := range rs {
		out[i] = batchResult{BaseOffset: r.BaseOffset, Duplicate: r.Duplicate, LogStartOffset: r.LogStartOffset, Err: EncodeError(r.Err)}
	}
	return out
}

// batchResults turns wireResults back into batch results.
func batchResults(rs []batchResult) []metastore.BatchResult {
	out := make([]metastore.BatchResult, len(rs))
	for i, r := range rs {
		out[i] = metastore.BatchResult{BaseOffset: r.BaseOffset, Duplicate: r.Duplicate, LogStartOffset: r.LogStartOffset, Err: r.Err.Err()}
	}
	return out
}

// none is the result (or the arguments) of a method that has none.
type none struct{}

// Arguments of methods that take more than one, and results of methods
// that return more than one. Field names are in journals: add fields,
// never rename them.
type (
	partitionArgs struct {
		ID        metastore.TopicID
		Partition int32
	}
	createPartitionsArgs struct {
		Name  string
		Total int32
	}
	alterConfigsArgs struct {
		Name    string
		Changes []metastore.ConfigChange
	}
	extentsArgs struct {
		ID        metastore.TopicID
		Partition int32
		From      int64
		Limit     int
	}
	extentAtArgs struct {
		ID        metastore.TopicID
		Partition int32
		TS        int64
	}
	foundExtent struct {
		Extent metastore.Extent
		Found  bool
	}
	producerArgs struct {
		ProducerID int64
		Epoch      int16
	}
	groupOffsetsArgs struct {
		Group   string
		Offsets []metastore.CommittedOffset
	}
	groupPartitionsArgs struct {
		Group      string
		Partitions []metastore.TopicPartition
	}
	expireArgs struct {
		Group     string
		OlderThan time.Time
	}
	foundGroup struct {
		Group metastore.Group
		Found bool
	}
	heartbeatArgs struct {
		Agent metastore.AgentInfo
		TTL   time.Duration
	}
	acquireArgs struct {
		Name, Holder string
		TTL          time.Duration
	}
	acquired struct {
		Lease    metastore.Lease
		Acquired bool
	}
	renewArgs struct {
		Lease metastore.Lease
		TTL   time.Duration
	}
	advanceArgs struct {
		ID        metastore.TopicID
		Partition int32
		Offset    int64
	}
	deletableArgs struct {
		Before time.Time
		Limit  int
	}
	objectSize struct {
		Size  int64
		Known bool
	}
	versionedACLs struct {
		ACLs    []metastore.ACL
		Version int64
	}
	userMechArgs struct {
		User      string
		Mechanism metastore.ScramMechanism
	}
	setScramArgs struct {
		User       string
		Credential metastore.ScramCredential
	}
	foundTxn struct {
		Txn   metastore.Txn
		Found bool
	}
	deleteTxnArgs struct {
		TransactionalID string
		Version         int64
	}
	txnOffsetsArgs struct {
		TransactionalID string
		ProducerID      int64
		Epoch           int16
		Group           string
		Offsets         []metastore.CommittedOffset
	}
	rangeArgs struct {
		ID        metastore.TopicID
		Partition int32
		From, To  int64
	}
	groupConfigArgs struct {
		Group   string
		Changes []metastore.ConfigChange
	}
	updateFeaturesArgs struct {
		Epoch  int64
		Levels map[string]int16
	}
	shareStatesArgs struct {
		Group  string
		States []metastore.ShareState
	}
	shareGroupArgs struct {
		Group  string
		Record metastore.ShareGroupRecord
	}
	foundShareGroup struct {
		Record metastore.ShareGroupRecord
		Found  bool
	}
	// batchResult is metastore.BatchResult with its error in wire form,
	// an array of its fields (version 2).
	batchResult struct {
		_              struct{} `cbor:",toarray"`
		BaseOffset     int64
		Duplicate      bool
		LogStartOffset int64
		Err            *WireError `cbor:",omitempty"`
	}
)

// The ops, one per metastore.Store method (docs/control-plane.md: adding
// a method).
var (
	// TopicStore
	opTopic = define("Topic", read, func(ctx context.Context, s metastore.Store, name string) (metastore.Topic, error) {
		return s.Topic(ctx, name)
	})
	opTopics = define("Topics", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.Topic, error) {
		return s.Topics(ctx)
	})
	opCreateTopic = define("CreateTopic", entropy(16), func(ctx context.Context, s metastore.Store, spec metastore.TopicSpec) (metastore.Topic, error) {
		return s.CreateTopic(ctx, spec)
	})
	opDeleteTopic = define("DeleteTopic", mutate, func(ctx context.Context, s metastore.Store, name string) (metastore.Topic, error) {
		return s.DeleteTopic(ctx, name)
	})
	opCreatePartitions = define("CreatePartitions", mutate, func(ctx context.Context, s metastore.Store, a createPartitionsArgs) (metastore.Topic, error) {
		return s.CreatePartitions(ctx, a.Name, a.Total)
	})
	opAlterTopicConfigs = define("AlterTopicConfigs", mutate, func(ctx context.Context, s metastore.Store, a alterConfigsArgs) (metastore.Topic, error) {
		return s.AlterTopicConfigs(ctx, a.Name, a.Changes)
	})

	// Sequencer
	opCommitSegment = define("CommitSegment", mutate, func(ctx context.Context, s metastore.Store, c metastore.SegmentCommit) ([]batchResult, error) {
		rs, err := s.CommitSegment(ctx, c)
		if err != nil {
			return nil, err
		}
		return wireResults(rs), nil
	})

	opCommitSegments = define("CommitSegments", mutate, func(ctx context.Context, s metastore.Store, cs []metastore.SegmentCommit) ([][]batchResult, error) {
		g, ok := s.(metastore.GroupSequencer)
		if !ok {
			return nil, metastore.ErrGroupsUnsupported
		}
		rs, err := g.CommitSegments(ctx, cs)
		if err != nil {
			return nil, err
		}
		out := make([][]batchResult, len(rs))
		for k, seg := range rs {
			out[k] = wireResults(seg)
		}
		return out, nil
	})

	// ExtentReader
	opOffsets = define("Offsets", read, func(ctx context.Context, s metastore.Store, a partitionArgs) (metastore.PartitionOffsets, error) {
		return s.Offsets(ctx, a.ID, a.Partition)
	})
	opExtents = define("Extents", read, func(ctx context.Context, s metastore.Store, a extentsArgs) ([]metastore.Extent, error) {
		return s.Extents(ctx, a.ID, a.Partition, a.From, a.Limit)
	})
	opExtentAtTimestamp = define("ExtentAtTimestamp", read, func(ctx context.Context, s metastore.Store, a extentAtArgs) (foundExtent, error) {
		e, found, err := s.ExtentAtTimestamp(ctx, a.ID, a.Partition, a.TS)
		return foundExtent{e, found}, err
	})
	opExtentWithMaxTimestamp = define("ExtentWithMaxTimestamp", read, func(ctx context.Context, s metastore.Store, a partitionArgs) (foundExtent, error) {
		e, found, err := s.ExtentWithMaxTimestamp(ctx, a.ID, a.Partition)
		return foundExtent{e, found}, err
	})

	// ProducerStore
	opInitProducerID = define("InitProducerID", mutate, func(ctx context.Context, s metastore.Store, a producerArgs) (producerArgs, error) {
		id, epoch, err := s.InitProducerID(ctx, a.ProducerID, a.Epoch)
		return producerArgs{id, epoch}, err
	})

	// QuotaStore
	opClientQuotas = define("ClientQuotas", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.ClientQuota, error) {
		return s.ClientQuotas(ctx)
	})
	opAlterClientQuotas = define("AlterClientQuotas", mutate, func(ctx context.Context, s metastore.Store, cs []metastore.QuotaChange) (none, error) {
		return none{}, s.AlterClientQuotas(ctx, cs)
	})

	// GroupStore
	opCommitOffsets = define("CommitOffsets", mutate, func(ctx context.Context, s metastore.Store, a groupOffsetsArgs) (none, error) {
		return none{}, s.CommitOffsets(ctx, a.Group, a.Offsets)
	})
	opFetchOffsets = define("FetchOffsets", read, func(ctx context.Context, s metastore.Store, group string) ([]metastore.CommittedOffset, error) {
		return s.FetchOffsets(ctx, group)
	})
	opDeleteOffsets = define("DeleteOffsets", mutate, func(ctx context.Context, s metastore.Store, a groupPartitionsArgs) (none, error) {
		return none{}, s.DeleteOffsets(ctx, a.Group, a.Partitions)
	})
	opExpireOffsets = define("ExpireOffsets", mutate, func(ctx context.Context, s metastore.Store, a expireArgs) (int, error) {
		return s.ExpireOffsets(ctx, a.Group, a.OlderThan)
	})
	opLoadGroup = define("LoadGroup", read, func(ctx context.Context, s metastore.Store, name string) (foundGroup, error) {
		g, found, err := s.LoadGroup(ctx, name)
		return foundGroup{g, found}, err
	})
	opSaveGroup = define("SaveGroup", mutate, func(ctx context.Context, s metastore.Store, g metastore.Group) (int64, error) {
		return s.SaveGroup(ctx, g)
	})
	opListGroups = define("ListGroups", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.GroupSummary, error) {
		return s.ListGroups(ctx)
	})
	opDeleteGroup = define("DeleteGroup", mutate, func(ctx context.Context, s metastore.Store, name string) (none, error) {
		return none{}, s.DeleteGroup(ctx, name)
	})

	// AgentRegistry
	opHeartbeat = define("Heartbeat", mutate, func(ctx context.Context, s metastore.Store, a heartbeatArgs) (metastore.AgentInfo, error) {
		return s.Heartbeat(ctx, a.Agent, a.TTL)
	})
	opLiveAgents = define("LiveAgents", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.AgentInfo, error) {
		return s.LiveAgents(ctx)
	})
	opDeregister = define("Deregister", mutate, func(ctx context.Context, s metastore.Store, id string) (none, error) {
		return none{}, s.Deregister(ctx, id)
	})
	opClusterSecret = define("ClusterSecret", entropy(metastore.ClusterSecretBytes), func(ctx context.Context, s metastore.Store, _ none) ([]byte, error) {
		return s.ClusterSecret(ctx)
	})

	// LeaseStore
	opAcquireLease = define("AcquireLease", mutate, func(ctx context.Context, s metastore.Store, a acquireArgs) (acquired, error) {
		l, ok, err := s.AcquireLease(ctx, a.Name, a.Holder, a.TTL)
		return acquired{l, ok}, err
	})
	opRenewLease = define("RenewLease", mutate, func(ctx context.Context, s metastore.Store, a renewArgs) (metastore.Lease, error) {
		return s.RenewLease(ctx, a.Lease, a.TTL)
	})
	opReleaseLease = define("ReleaseLease", mutate, func(ctx context.Context, s metastore.Store, l metastore.Lease) (none, error) {
		return none{}, s.ReleaseLease(ctx, l)
	})
	opLeases = define("Leases", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.Lease, error) {
		return s.Leases(ctx)
	})

	// RetentionStore, ExtentReplacer
	opAdvanceLogStart = define("AdvanceLogStart", mutate, func(ctx context.Context, s metastore.Store, a advanceArgs) (metastore.PartitionOffsets, error) {
		return s.AdvanceLogStart(ctx, a.ID, a.Partition, a.Offset)
	})
	opPartitionUsage = define("PartitionUsage", read, func(ctx context.Context, s metastore.Store, id metastore.TopicID) ([]metastore.PartitionUsage, error) {
		return s.PartitionUsage(ctx, id)
	})
	opReplaceExtents = define("ReplaceExtents", mutate, func(ctx context.Context, s metastore.Store, rs []metastore.PartitionReplacement) (none, error) {
		return none{}, s.ReplaceExtents(ctx, rs)
	})

	// ObjectLedger
	opListDeletable = define("ListDeletable", read, func(ctx context.Context, s metastore.Store, a deletableArgs) ([]metastore.UnreferencedObject, error) {
		return s.ListDeletable(ctx, a.Before, a.Limit)
	})
	opForgetObject = define("ForgetObject", mutate, func(ctx context.Context, s metastore.Store, key string) (none, error) {
		return none{}, s.ForgetObject(ctx, key)
	})
	opKnownObjects = define("KnownObjects", read, func(ctx context.Context, s metastore.Store, keys []string) (map[string]bool, error) {
		return s.KnownObjects(ctx, keys)
	})
	opObjectUsage = define("ObjectUsage", read, func(ctx context.Context, s metastore.Store, _ none) (metastore.ObjectUsage, error) {
		return s.ObjectUsage(ctx)
	})
	opObjectSize = define("ObjectSize", read, func(ctx context.Context, s metastore.Store, key string) (objectSize, error) {
		n, known, err := s.ObjectSize(ctx, key)
		return objectSize{n, known}, err
	})

	// ACLStore
	opCreateACLs = define("CreateACLs", mutate, func(ctx context.Context, s metastore.Store, acls []metastore.ACL) (none, error) {
		return none{}, s.CreateACLs(ctx, acls)
	})
	opDeleteACLs = define("DeleteACLs", mutate, func(ctx context.Context, s metastore.Store, acls []metastore.ACL) ([]metastore.ACL, error) {
		return s.DeleteACLs(ctx, acls)
	})
	opACLs = define("ACLs", read, func(ctx context.Context, s metastore.Store, _ none) (versionedACLs, error) {
		acls, v, err := s.ACLs(ctx)
		return versionedACLs{acls, v}, err
	})
	opACLVersion = define("ACLVersion", read, func(ctx context.Context, s metastore.Store, _ none) (int64, error) {
		return s.ACLVersion(ctx)
	})

	// UserStore
	opScramCredential = define("ScramCredential", read, func(ctx context.Context, s metastore.Store, a userMechArgs) (metastore.ScramCredential, error) {
		return s.ScramCredential(ctx, a.User, a.Mechanism)
	})
	opScramUsers = define("ScramUsers", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.UserScram, error) {
		return s.ScramUsers(ctx)
	})
	opSetScramCredential = define("SetScramCredential", mutate, func(ctx context.Context, s metastore.Store, a setScramArgs) (none, error) {
		return none{}, s.SetScramCredential(ctx, a.User, a.Credential)
	})
	opDeleteScramCredential = define("DeleteScramCredential", mutate, func(ctx context.Context, s metastore.Store, a userMechArgs) (none, error) {
		return none{}, s.DeleteScramCredential(ctx, a.User, a.Mechanism)
	})

	// TxnStore
	opLoadTxn = define("LoadTxn", read, func(ctx context.Context, s metastore.Store, id string) (foundTxn, error) {
		t, found, err := s.LoadTxn(ctx, id)
		return foundTxn{t, found}, err
	})
	opSaveTxn = define("SaveTxn", mutate, func(ctx context.Context, s metastore.Store, t metastore.Txn) (int64, error) {
		return s.SaveTxn(ctx, t)
	})
	opDeleteTxn = define("DeleteTxn", mutate, func(ctx context.Context, s metastore.Store, a deleteTxnArgs) (none, error) {
		return none{}, s.DeleteTxn(ctx, a.TransactionalID, a.Version)
	})
	opListTxns = define("ListTxns", read, func(ctx context.Context, s metastore.Store, _ none) ([]metastore.Txn, error) {
		return s.ListTxns(ctx)
	})
	opEndTxn = define("EndTxn", mutate, func(ctx context.Context, s metastore.Store, e metastore.TxnEnd) (metastore.TxnEndResult, error) {
		return s.EndTxn(ctx, e)
	})
	opCommitTxnOffsets = define("CommitTxnOffsets", mutate, func(ctx context.Context, s metastore.Store, a txnOffsetsArgs) (none, error) {
		return none{}, s.CommitTxnOffsets(ctx, a.TransactionalID, a.ProducerID, a.Epoch, a.Group, a.Offsets)
	})
	opPendingTxnOffsets = define("PendingTxnOffsets", read, func(ctx context.Context, s metastore.Store, group string) ([]metastore.TopicPartition, error) {
		return s.PendingTxnOffsets(ctx, group)
	})
	opAbortedTxns = define("AbortedTxns", read, func(ctx context.Context, s metastore.Store, a rangeArgs) ([]metastore.AbortedTxn, error) {
		return s.AbortedTxns(ctx, a.ID, a.Partition, a.From, a.To)
	})
	opActiveProducers = define("ActiveProducers", read, func(ctx context.Context, s metastore.Store, a partitionArgs) ([]metastore.ActiveProducer, error) {
		return s.ActiveProducers(ctx, a.ID, a.Partition)
	})

	// ShareStore
	opLoadShareStates = define("LoadShareStates", read, func(ctx context.Context, s metastore.Store, group string) ([]metastore.ShareState, error) {
		return s.LoadShareStates(ctx, group)
	})
	opListShareGroups = define("ListShareGroups", read, func(ctx context.Context, s metastore.Store, _ none) ([]string, error) {
		return s.ListShareGroups(ctx)
	})
	opWriteShareStates = define("WriteShareStates", mutate, func(ctx context.Context, s metastore.Store, a shareStatesArgs) ([]int64, error) {
		return s.WriteShareStates(ctx, a.Group, a.States)
	})
	// FeatureStore (optional in metastore; the control plane's state,
	// the embedded store, has it)
	opFinalizedFeatures = define("FinalizedFeatures", read, func(ctx context.Context, s metastore.Store, _ none) (metastore.FinalizedFeatures, error) {
		fs, err := featureStore(s)
		if err != nil {
			return metastore.FinalizedFeatures{}, err
		}
		return fs.FinalizedFeatures(ctx)
	})
	opUpdateFeatures = define("UpdateFeatures", mutate, func(ctx context.Context, s metastore.Store, a updateFeaturesArgs) (metastore.FinalizedFeatures, error) {
		fs, err := featureStore(s)
		if err != nil {
			return metastore.FinalizedFeatures{}, err
		}
		return fs.UpdateFeatures(ctx, a.Epoch, a.Levels)
	})

	// GroupConfigStore
	opGroupConfigs = define("GroupConfigs", read, func(ctx context.Context, s metastore.Store, group string) (map[string]string, error) {
		return s.GroupConfigs(ctx, group)
	})
	opAlterGroupConfigs = define("AlterGroupConfigs", mutate, func(ctx context.Context, s metastore.Store, a groupConfigArgs) (map[string]string, error) {
		return s.AlterGroupConfigs(ctx, a.Group, a.Changes)
	})
	opGroupsWithConfigs = define("GroupsWithConfigs", read, func(ctx context.Context, s metastore.Store, limit int) ([]string, error) {
		return s.GroupsWithConfigs(ctx, limit)
	})

	opLoadShareGroup = define("LoadShareGroup", read, func(ctx context.Context, s metastore.Store, group string) (foundShareGroup, error) {
		rec, found, err := s.LoadShareGroup(ctx, group)
		return foundShareGroup{rec, found}, err
	})
	opSaveShareGroup = define("SaveShareGroup", mutate, func(ctx context.Context, s metastore.Store, a shareGroupArgs) (int64, error) {
		return s.SaveShareGroup(ctx, a.Group, a.Record)
	})
	opDeleteShareStates = define("DeleteShareStates", mutate, func(ctx context.Context, s metastore.Store, a groupPartitionsArgs) (none, error) {
		return none{}, s.DeleteShareStates(ctx, a.Group, a.Partitions)
	})
)

func featureStore(s metastore.Store) (metastore.FeatureStore, error) {
	fs, ok := s.(metastore.FeatureStore)
	if !ok {
		return nil, errors.New("this store keeps no finalized features")
	}
	return fs, nil
}
