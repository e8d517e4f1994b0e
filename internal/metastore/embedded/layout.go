package embedded

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/sequence"
)

// On-disk layout. Every bucket is flat; composite keys are big-endian so
// that bbolt's byte order is numeric order and a partition's extents are one
// contiguous key range.
//
//	topics      topicID(16)                                 → topicRecord (JSON)
//	names       topic name                                  → topicID(16)
//	partstates  topicID(16)                                 → every partition's state (see partstate.go)
//	partitions  topicID(16) partition(4)                    → 0xff: a guard against older binaries (see partstate.go)
//	extents     topicID(16) partition(4) baseOffset(8)      → extent value (see encodeExtent), once folded from extentlog
//	seqstates   topicID(16) producerID(8)                   → the producer's sequence state on each partition (see seqstate.go)
//	sequences   topicID(16) partition(4) producerID(8)      → the layout before seqstates: empty once Open has run
//	producers   producerID(8)                               → epoch(2)
//	objects     object key                                  → object size(8) refs(8)
//	unreferenced object key                                 → since (Unix ns, 8) object size(8)
//	leases      lease name                                  → leaseRecord (JSON)
//	offsets     groupKey topicID(16) partition(4)           → committed offset (see encodeOffset)
//	groups      groupKey                                    → groupRecord (JSON)
//	agents      agent ID                                    → agentRecord (JSON)
//	quotas      QuotaEntity.Key()                           → metastore.ClientQuota (JSON)
//	scram       user name, 0, mechanism(1)                  → scramRecord (JSON)
//	txns        txnKey                                      → txnRecord (JSON)
//	txnproducers producerID(8)                              → txnKey of the record whose current producer it is
//	txnopen     topicID(16) partition(4) producerID(8)      → first offset of its open transaction (8)
//	txnaborted  topicID(16) partition(4) lastOffset(8)      → producerID(8) firstOffset(8) stableOffset(8)
//	txnoffsets  txnKey groupKey topicID(16) partition(4)    → pending offset (see encodeOffset)
//	meta        "next-producer-id"                          → producer id(8)
//	            "next-node-id"                              → node id(8)
//	            "objects-format"                            → 2 (8): objects values carry refs
//	            "sequences-format"                          → 1 (8): written by older code (sequences values binary); unused since seqstates
//	            "partitions-format"                         → 3 (8): partition states are per topic (partstates),
//	                                                          sequence states per topic and producer (seqstates)
//	            "extentlog-entries"                         → entries in the extent log's records (8)
//	            "cluster-secret"                            → the peer listeners' secret (32)
//	extentlog   seq(8)                                      → one commit's extents (see extentlog.go)
//
// Partitions, offsets and producer ids are never negative, so encoding them
// as unsigned keeps the order.
//
// A groupKey is the group name's length(2) followed by the name: one
// group's keys are then a prefix range that no other group shares ("a" and
// "ab"), and the empty name, which Kafka accepts for offset commits, is a
// valid bbolt key. Groups therefore iterate by name length first; callers
// that list them sort by name.
//
// refs counts the extents that name an object; an object whose count
// falls to zero is copied to unreferenced, which the cleaner lists, until
// it is forgotten. Files written before the ledger existed have 8-byte
// objects values; Open counts their references once (upgradeObjects).
//
// A txnKey is the transactional id's length(2) followed by the id, as a
// groupKey is: one id's pending offsets are a prefix range of their own.
// txnproducers indexes the records by current producer id, so that a
// commit finds the transaction of a transactional batch without a scan;
// SaveTxn, EndTxn and DeleteTxn keep it in step with the records. An
// aborted entry's stableOffset bounds AbortedTxns' scan (see
// metastore.AbortedScanDone). Files written before transactions simply
// lack these buckets (Open creates them empty) and the last timestamp of
// their sequences values (read as -1).
//
// Offsets are keyed by group first because commits and fetches are per
// group and frequent; DeleteTopic, which is rare, scans the whole offsets
// bucket for the topic's ID instead of keeping a second index up to date on
// every commit.
const (
	bucketTopics     = "topics"
	bucketNames      = "names"
	bucketPartitions = "partitions"
	// bucketPartStates: see partstate.go.
	bucketPartStates = "partstates"
	bucketExtents    = "extents"
	// bucketSequences: the layout before bucketSeqStates, read only by
	// Open's upgrade (seqstate.go).
	bucketSequences  = "sequences"
	bucketSeqStates  = "seqstates"
	bucketProducers  = "producers"
	bucketObjects    = "objects"
	bucketOffsets    = "offsets"
	bucketGroups     = "groups"
	bucketAgents     = "agents"
	bucketMeta       = "meta"
	bucketUnref      = "unreferenced"
	bucketLeases     = "leases"
	bucketQuotas     = "quotas"
	bucketScram      = "scram"
	bucketTxns       = "txns"
	bucketTxnIndex   = "txnproducers"
	bucketTxnOpen    = "txnopen"
	bucketTxnAborted = "txnaborted"
	bucketTxnOffsets = "txnoffsets"
	bucketShares     = "shares"
	// bucketExtentLog: see extentlog.go. Files written before it lack
	// the bucket; Open creates it empty.
	bucketExtentLog = "extentlog"
	// bucketGroupConfigs: key groupKey, value the group's configs as a
	// JSON object of strings. Files written before group configs lack the
	// bucket; Open creates it empty.
	bucketGroupConfigs = "groupconfigs"
	// bucketShareGroups: key groupKey, value a share group's membership
	// record: version(8) updatedAt(8, Unix ns) data, big-endian. Files
	// written before it lack the bucket; Open creates it empty.
	bucketShareGroups = "sharegroups"

	keyNextProducerID   = "next-producer-id"
	keyNextNodeID       = "next-node-id"
	keyObjectsFormat    = "objects-format"
	keySequencesFmt     = "sequences-format"
	keyPartitionsFormat = "partitions-format"
	keyExtentLogEntries = "extentlog-entries"
	keyExtentLogSeq     = "extentlog-seq"
	keyClusterSecret    = "cluster-secret"
)

// buckets lists every bucket, created when the file is opened.
func buckets() []string {
	return []string{
		bucketTopics, bucketNames, bucketPartitions, bucketExtents,
		bucketSequences, bucketProducers, bucketObjects,
		bucketOffsets, bucketGroups, bucketAgents, bucketMeta,
		bucketUnref, bucketLeases, bucketQuotas, bucketScram,
		bucketTxns, bucketTxnIndex, bucketTxnOpen, bucketTxnAborted, bucketTxnOffsets,
		bucketShares, bucketGroupConfigs, bucketShareGroups, bucketExtentLog, bucketPartStates,
		bucketSeqStates,
	}
}

// firstProducerID is the first id InitProducerID hands out.
const firstProducerID = 1000

// firstNodeID is the first node id Heartbeat hands out.
const firstNodeID = 1

// errCorrupt marks a stored value that cannot be decoded.
var errCorrupt = errors.New("corrupt metadata value")

// topicRecord is a topic as stored; its ID is the key.
type topicRecord struct {
	Name       string            `json:"name"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	CreatedAt  time.Time         `json:"created_at"`
}

func (r *topicRecord) topic(id metastore.TopicID) metastore.Topic {
	configs := make(map[string]string, len(r.Configs))
	for k, v := range r.Configs {
		configs[k] = v
	}
	return metastore.Topic{
		ID:         id,
		Name:       r.Name,
		Partitions: r.Partitions,
		Configs:    configs,
		CreatedAt:  r.CreatedAt,
	}
}

func decodeTopic(v []byte) (*topicRecord, error) {
	var r topicRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("topic: %w: %v", errCorrupt, err)
	}
	return &r, nil
}

// partitionKey names one partition of one topic incarnation.
type partitionKey struct {
	id        metastore.TopicID
	partition int32
}

func (pk partitionKey) bytes() []byte {
	k := make([]byte, 0, 20)
	k = append(k, pk.id[:]...)
	return binary.BigEndian.AppendUint32(k, uint32(pk.partition))
}

// String formats a partition for errors and logs: topic UUID/partition.
func (pk partitionKey) String() string {
	return fmt.Sprintf("%s/%d", uuid.UUID(pk.id), pk.partition)
}

func (pk partitionKey) extentKey(baseOffset int64) []byte {
	return pk.appendExtentKey(make([]byte, 0, extentKeyLen), baseOffset)
}

// extentKeyLen is the length of an extent's key: its partition's, then
// its base offset.
const extentKeyLen = 20 + 8

// appendExtentKey appends the key of the partition's extent at
// baseOffset to dst.
func (pk partitionKey) appendExtentKey(dst []byte, baseOffset int64) []byte {
	dst = append(dst, pk.id[:]...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(pk.partition))
	return binary.BigEndian.AppendUint64(dst, uint64(baseOffset))
}

// extentPair is an extent's key and value in one array (kv.PutPair),
// one allocation.
func (pk partitionKey) extentPair(e *metastore.Extent) []byte {
	kv := make([]byte, 0, extentKeyLen+extentValueHeader+len(e.Object))
	return appendExtent(pk.appendExtentKey(kv, e.BaseOffset), e)
}

// sequenceKey names one producer's state on one partition.
type sequenceKey struct {
	partitionKey
	producerID int64
}

func (sk sequenceKey) key() []byte {
	return binary.BigEndian.AppendUint64(sk.partitionKey.bytes(), uint64(sk.producerID))
}

func producerKey(producerID int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(producerID))
}

// extentValueHeader is the fixed part of an extent value: endOffset,
// byteOffset, byteLength, maxTimestamp, committedAt (Unix nanoseconds) and
// objectSize, 8 bytes each, followed by the object key.
const extentValueHeader = 6 * 8

func encodeExtent(e *metastore.Extent) []byte { return appendExtent(nil, e) }

// appendExtent appends an extent's value to dst.
func appendExtent(dst []byte, e *metastore.Extent) []byte {
	v := slices.Grow(dst, extentValueHeader+len(e.Object))
	for _, n := range []int64{e.EndOffset, e.ByteOffset, e.ByteLength, e.MaxTimestamp, e.CommittedAt.UnixNano(), e.ObjectSize} {
		v = binary.BigEndian.AppendUint64(v, uint64(n))
	}
	return append(v, e.Object...)
}

// decodeExtent rebuilds an extent from its key and value; it copies
// everything, so the result outlives the transaction.
func decodeExtent(k, v []byte) (metastore.Extent, error) {
	if len(k) != extentKeyLen || len(v) < extentValueHeader {
		return metastore.Extent{}, fmt.Errorf("extent: %w: key %d bytes, value %d bytes", errCorrupt, len(k), len(v))
	}
	n := func(i int) int64 { return int64(binary.BigEndian.Uint64(v[i*8:])) }
	var e metastore.Extent
	copy(e.TopicID[:], k)
	e.Partition = int32(binary.BigEndian.Uint32(k[16:]))
	e.BaseOffset = int64(binary.BigEndian.Uint64(k[20:]))
	e.EndOffset = n(0)
	e.ByteOffset = n(1)
	e.ByteLength = n(2)
	e.MaxTimestamp = n(3)
	e.CommittedAt = time.Unix(0, n(4)).UTC()
	e.ObjectSize = n(5)
	e.Object = string(v[extentValueHeader:])
	return e, nil
}

// A value of the sequences bucket, the layout before seqstates (read
// only to convert it), is binary (sequenceFormatBinary), the producer's
// sequence.State and the max timestamp of its last batch:
//
//	format(1)=1 epoch(2) lastSeq(4) lastTimestamp(8) n(1)
//	n × [ firstSeq(4) lastSeq(4) baseOffset(8) ]      n <= sequence.RecentBatches
//
// Files written before it hold JSON values (storedSequence), which begin
// with '{'; both are read by Open's conversion (upgradeSeqStates).
const (
	sequenceFormatBinary = 1
	sequenceHeader       = 1 + 2 + 4 + 8 + 1
	sequenceBatch        = 4 + 4 + 8
)

// storedSequence is a sequences value as JSON, the layout before the
// binary one; values written before transactions lack the last timestamp.
type storedSequence struct {
	sequence.State
	LastTimestamp *int64 `json:"last_timestamp,omitempty"`
}

func encodeSequence(st *sequence.State, lastTimestamp int64) ([]byte, error) {
	if len(st.Recent) > sequence.RecentBatches {
		return nil, fmt.Errorf("producer sequence state: %d recent batches, at most %d", len(st.Recent), sequence.RecentBatches)
	}
	v := make([]byte, 0, sequenceHeader+sequenceBatch*len(st.Recent))
	v = append(v, sequenceFormatBinary)
	v = binary.BigEndian.AppendUint16(v, uint16(st.Epoch))
	v = binary.BigEndian.AppendUint32(v, uint32(st.LastSeq))
	v = binary.BigEndian.AppendUint64(v, uint64(lastTimestamp))
	v = append(v, byte(len(st.Recent)))
	for _, b := range st.Recent {
		v = binary.BigEndian.AppendUint32(v, uint32(b.FirstSeq))
		v = binary.BigEndian.AppendUint32(v, uint32(b.LastSeq))
		v = binary.BigEndian.AppendUint64(v, uint64(b.BaseOffset))
	}
	return v, nil
}

// decodeSequence decodes a sequences value, binary or JSON: nil (no
// state) for none, and the last timestamp, -1 when unknown. Every length
// is checked against the value: the file is input too.
func decodeSequence(v []byte) (*sequence.State, int64, error) {
	switch {
	case v == nil:
		return nil, -1, nil
	case len(v) > 0 && v[0] == '{':
		return decodeSequenceJSON(v)
	case len(v) < sequenceHeader || v[0] != sequenceFormatBinary:
		return nil, 0, fmt.Errorf("producer sequence state: %w: %d bytes", errCorrupt, len(v))
	}
	n := int(v[sequenceHeader-1])
	if n > sequence.RecentBatches || len(v) != sequenceHeader+n*sequenceBatch {
		return nil, 0, fmt.Errorf("producer sequence state: %w: %d recent batches in %d bytes", errCorrupt, n, len(v))
	}
	st := &sequence.State{
		Epoch:   int16(binary.BigEndian.Uint16(v[1:])),
		LastSeq: int32(binary.BigEndian.Uint32(v[3:])),
	}
	ts := int64(binary.BigEndian.Uint64(v[7:]))
	if n > 0 {
		st.Recent = make([]sequence.Batch, n)
		for i := range st.Recent {
			b := v[sequenceHeader+i*sequenceBatch:]
			st.Recent[i] = sequence.Batch{
				FirstSeq:   int32(binary.BigEndian.Uint32(b)),
				LastSeq:    int32(binary.BigEndian.Uint32(b[4:])),
				BaseOffset: int64(binary.BigEndian.Uint64(b[8:])),
			}
		}
	}
	return st, ts, nil
}

// decodeSequenceJSON decodes a sequences value of the layout before the
// binary one.
func decodeSequenceJSON(v []byte) (*sequence.State, int64, error) {
	var st storedSequence
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, 0, fmt.Errorf("producer sequence state: %w: %v", errCorrupt, err)
	}
	if len(st.Recent) > sequence.RecentBatches {
		st.Recent = st.Recent[len(st.Recent)-sequence.RecentBatches:]
	}
	ts := int64(-1)
	if st.LastTimestamp != nil {
		ts = *st.LastTimestamp
	}
	return &st.State, ts, nil
}

func decodeInt64(v []byte, what string) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%s: %w: %d bytes", what, errCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// groupKey is the prefix of every key of a group (see the layout above).
// The result is freshly allocated: bbolt keeps the keys it is given until
// the transaction ends.
func groupKey(group string) ([]byte, error) {
	if len(group) > math.MaxUint16 {
		return nil, fmt.Errorf("group name of %d bytes is longer than %d", len(group), math.MaxUint16)
	}
	k := make([]byte, 0, 2+len(group))
	k = binary.BigEndian.AppendUint16(k, uint16(len(group)))
	return append(k, group...), nil
}

// decodeGroupKey splits a key of the groups or offsets bucket into the
// group name and the rest of the key.
func decodeGroupKey(k []byte) (string, []byte, error) {
	if len(k) < 2 || len(k) < 2+int(binary.BigEndian.Uint16(k)) {
		return "", nil, fmt.Errorf("group key: %w: %d bytes", errCorrupt, len(k))
	}
	n := 2 + int(binary.BigEndian.Uint16(k))
	return string(k[2:n]), k[n:], nil
}

// offsetKey names one committed offset of a group; gk is the group's
// groupKey.
func offsetKey(gk []byte, pk partitionKey) []byte {
	k := make([]byte, 0, len(gk)+20)
	k = append(k, gk...)
	return append(k, pk.bytes()...)
}

// offsetValueHeader is the fixed part of a committed offset's value:
// offset(8), leaderEpoch(4) and committedAt (Unix nanoseconds, 8), followed
// by the client's metadata string.
const offsetValueHeader = 8 + 4 + 8

func encodeOffset(o *metastore.CommittedOffset) []byte {
	v := make([]byte, 0, offsetValueHeader+len(o.Metadata))
	v = binary.BigEndian.AppendUint64(v, uint64(o.Offset))
	v = binary.BigEndian.AppendUint32(v, uint32(o.LeaderEpoch))
	v = binary.BigEndian.AppendUint64(v, uint64(o.CommittedAt.UnixNano()))
	return append(v, o.Metadata...)
}

// decodeOffset rebuilds a committed offset from the part of its key after
// the groupKey and its value; it copies everything, so the result outlives
// the transaction.
func decodeOffset(pk, v []byte) (metastore.CommittedOffset, error) {
	if len(pk) != 20 || len(v) < offsetValueHeader {
		return metastore.CommittedOffset{}, fmt.Errorf("committed offset: %w: key %d bytes, value %d bytes", errCorrupt, len(pk), len(v))
	}
	var o metastore.CommittedOffset
	copy(o.TopicID[:], pk)
	o.Partition = int32(binary.BigEndian.Uint32(pk[16:]))
	o.Offset = int64(binary.BigEndian.Uint64(v))
	o.LeaderEpoch = int32(binary.BigEndian.Uint32(v[8:]))
	o.CommittedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[12:]))).UTC()
	o.Metadata = string(v[offsetValueHeader:])
	return o, nil
}

// groupRecord is a group's durable record as stored; its name is the key.
type groupRecord struct {
	ProtocolType string    `json:"protocol_type,omitempty"`
	State        string    `json:"state"`
	Data         []byte    `json:"data,omitempty"`
	Version      int64     `json:"version"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (r *groupRecord) group(name string) metastore.Group {
	return metastore.Group{
		Name:         name,
		ProtocolType: r.ProtocolType,
		State:        r.State,
		Data:         r.Data, // decoded afresh for every call, so not shared
		Version:      r.Version,
		UpdatedAt:    r.UpdatedAt,
	}
}

func decodeGroup(v []byte) (*groupRecord, error) {
	var r groupRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("group: %w: %v", errCorrupt, err)
	}
	return &r, nil
}

// agentRecord is an agent's registration as stored; its ID is the key.
type agentRecord struct {
	NodeID int32    `json:"node_id"`
	Host   string   `json:"host"`
	Port   int32    `json:"port"`
	Zone   string   `json:"zone,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Peer   string   `json:"peer,omitempty"`
	// Listeners: listener name → advertised HOST:PORT.
	Listeners map[string]string `json:"listeners,omitempty"`
	Expires   time.Time         `json:"expires"`
	// Admin, Version and Started came later: records without them
	// decode with them empty.
	Admin   string    `json:"admin,omitempty"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// OutageManifest came later still (absent: "", no name held).
	OutageManifest string `json:"outage_manifest,omitempty"`
}

func (r *agentRecord) agent(id string) metastore.AgentInfo {
	return metastore.AgentInfo{
		ID:       id,
		NodeID:   r.NodeID,
		Host:     r.Host,
		Port:     r.Port,
		Zone:     r.Zone,
		Roles:    slices.Clone(r.Roles),
		PeerAddr: r.Peer,
		Expires:  r.Expires,

		Listeners: maps.Clone(r.Listeners),
		Admin:     r.Admin,
		Version:   r.Version,
		Started:   r.Started,

		OutageManifest: r.OutageManifest,
	}
}

func decodeAgent(v []byte) (*agentRecord, error) {
	var r agentRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("agent: %w: %v", errCorrupt, err)
	}
	return &r, nil
}
