package protocol

// Produce v0-v13; v0-v2 are answered UNSUPPORTED_VERSION.
//
// v3 is the first version with record batch format v2 (magic 2), which is
// all Floe stores; librdkafka only uses v2 batches, idempotence and headers
// when Produce >= 3 is advertised. The range still starts at v0 because
// librdkafka also reads a minimum above 0 as "no compression support" and
// silently sends gzip, snappy and lz4 batches uncompressed (Apache Kafka 4
// does the same, KAFKA-18659): older versions are refused per partition. v9+ are flexible; v10 and v11 add only
// fields Floe leaves empty (KIP-951 leader hints). v12 is the version
// of transaction version 2 (KIP-890), which changes nothing while the
// transaction.version feature is not finalized (ApiVersions lists none).
// v13 names topics by ID (KIP-516): an ID the agent's topic cache does
// not know is UNKNOWN_TOPIC_ID for each of its partitions.
//
// Every batch goes into the agent's open segment before Handle returns, so
// batches from one connection are committed in the order they were sent,
// even when the client pipelines requests. The reply waits for the
// segment's commit. acks=0 takes the same path and sends nothing back.
//
// Transactional batches are committed only into their producer's ongoing
// transaction, on partitions added to it (the metadata store checks, in
// the commit itself: INVALID_TXN_STATE otherwise, INVALID_PRODUCER_EPOCH
// for a fenced epoch). Control batches from clients are refused.
// v12 is transaction version 2 (KIP-890 part 2): its transactional
// batches' partitions join their producer's transaction without
// AddPartitionsToTxn (produce_txn.go).
//
// A topic's compression.type and message.timestamp.type may make the agent
// recompress or stamp a batch before it is stored (produce.Rewrite), as
// Kafka's log validator does; the size is checked again afterwards.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(0, 0, 13, (*Handler).produce) }

// producePartition tracks one partition of a produce request.
type producePartition struct {
	resp    *kmsg.ProduceResponseTopicPartition
	pending []*produce.Pending
}

func (h *Handler) produce(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	lookup := h.lookup(ctx)
	var parts []*producePartition
	var appends []produceAppend // validated, appended once all are

	acksOK := r.Acks == 0 || r.Acks == 1 || r.Acks == -1
	// The writer tracks each connection's requests waiting on the open
	// segment, to flush it early when nothing more can arrive.
	preq := h.writer.Begin(req.Conn, r.Acks != 0)
	writer := h.cfg.Cluster.Serves(RoleProduce)
	// A transactional producer needs WRITE on its transactional id; the
	// metadata store checks that each transactional batch belongs to
	// its producer's ongoing transaction (docs/transactions.md).
	txnWritable := r.TransactionID == nil || h.allowed(req, acl.Write, acl.TransactionalID, *r.TransactionID)
	for _, rt := range r.Topics {
		t, terr := lookup.named(r.Version >= 13, rt.Topic, rt.TopicID)
		// An unknown topic ID is UNKNOWN_TOPIC_ID: there is no name to
		// authorize (partitionErr answers it).
		writable := isUnknownTopicID(terr) || h.allowed(req, acl.Write, acl.Topic, t.Name)
		respTopic := kmsg.NewProduceResponseTopic()
		respTopic.Topic, respTopic.TopicID = rt.Topic, rt.TopicID
		respTopic.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			pr := &respTopic.Partitions[i]
			*pr = kmsg.NewProduceResponseTopicPartition()
			pr.Partition = rp.Partition
			pp := &producePartition{resp: pr}
			parts = append(parts, pp)
			switch {
			case r.Version < 3:
				pr.ErrorCode = kerr.UnsupportedVersion.Code
			case !acksOK:
				pr.ErrorCode = kerr.InvalidRequiredAcks.Code
			case !writer:
				// A reader-only agent: the client refreshes its metadata,
				// which lists only agents of this agent's pool, and should
				// have been given a writer's bootstrap address.
				pr.ErrorCode = kerr.NotLeaderForPartition.Code
				pr.ErrorMessage = strPtr("this agent does not have the produce role")
			case r.TransactionID != nil && !txnWritable:
				pr.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			case !writable:
				pr.ErrorCode = kerr.TopicAuthorizationFailed.Code
			default:
				if code := partitionErr(t, terr, rp.Partition); code != 0 {
					pr.ErrorCode = code
					continue
				}
				if r.Version < 7 && zstdBatch(rp.Records) {
					pr.ErrorCode = kerr.UnsupportedCompressionType.Code
					continue
				}
				batches, code, err := h.validateBatches(t, rp.Records)
				if code != 0 {
					pr.ErrorCode = code
					pr.ErrorMessage = errMessage(err)
					var re *recordErrors
					if errors.As(err, &re) {
						for _, i := range re.indexes {
							pr.ErrorRecords = append(pr.ErrorRecords, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: i, ErrorMessage: &re.msg})
						}
					}
					h.log.Debug("produce batch rejected", "topic", rt.Topic, "partition", rp.Partition, "client", req.ClientID, "err", err)
					continue
				}
				pr.LogAppendTime = produce.TopicRewrite(t.Configs).AppendTime(batches)
				appends = append(appends, produceAppend{pp: pp, topic: t, partition: rp.Partition, batches: batches})
			}
		}
		resp.Topics = append(resp.Topics, respTopic)
	}
	if r.Version >= 12 {
		h.addProducedToTxn(ctx, r, appends)
	}
	for _, a := range appends {
		if a.pp.resp.ErrorCode != 0 {
			continue
		}
		for _, b := range a.batches {
			a.pp.pending = append(a.pp.pending, preq.AppendWithin(latencyTarget(a.topic), a.topic.ID, a.topic.Name, a.partition, b))
		}
	}
	preq.Parked()

	return func(ctx context.Context) kmsg.Response {
		defer preq.End()
		if r.Acks == 0 {
			return nil
		}
		for _, pp := range parts {
			for i, p := range pp.pending {
				res, err := p.Wait(ctx)
				if err == nil {
					err = res.Err
				}
				if err != nil {
					if pp.resp.ErrorCode == 0 {
						pp.resp.ErrorCode = errorCode(err)
						pp.resp.ErrorMessage = errMessage(err)
					}
					continue
				}
				if i == 0 {
					pp.resp.BaseOffset = res.BaseOffset
					pp.resp.LogStartOffset = res.LogStartOffset
				}
			}
			if pp.resp.ErrorCode != 0 {
				pp.resp.BaseOffset = -1
			}
		}
		return resp
	}, nil
}

// validateBatches splits and checks the record batch of one partition.
func (h *Handler) validateBatches(t metastore.Topic, records []byte) ([][]byte, int16, error) {
	// Kafka 4 answers INVALID_RECORD for a partition without batches,
	// with a batch that is not record batch format v2, or with more than
	// one batch, before any other check (ProduceRequest.validateRecords).
	if len(records) == 0 {
		return nil, kerr.InvalidRecord.Code, errors.New("no record batches")
	}
	batches, err := recordbatch.Split(records)
	if err != nil {
		if errors.Is(err, recordbatch.ErrUnsupportedMagic) {
			return nil, kerr.InvalidRecord.Code, err
		}
		return nil, kerr.CorruptMessage.Code, err
	}
	if len(batches) > 1 {
		return nil, kerr.InvalidRecord.Code, fmt.Errorf("%d record batches for one partition; produce requests carry exactly one", len(batches))
	}
	max := h.maxMessageBytes(t)
	rewrite := produce.TopicRewrite(t.Configs)
	nowMs := h.now()
	for i, b := range batches {
		hdr, err := recordbatch.Validate(b)
		if err != nil {
			if errors.Is(err, recordbatch.ErrUnsupportedMagic) {
				return nil, kerr.InvalidRecord.Code, err
			}
			return nil, kerr.CorruptMessage.Code, err
		}
		if int64(len(b)) > max {
			return nil, kerr.MessageTooLarge.Code, fmt.Errorf("batch of %d bytes exceeds max.message.bytes %d", len(b), max)
		}
		if hdr.IsControl() {
			return nil, kerr.InvalidRecord.Code, errors.New("control batches are written by transaction coordinators, not producers")
		}
		if hdr.IsTransactional() && hdr.ProducerID < 0 {
			return nil, kerr.InvalidRecord.Code, errors.New("transactional batch without a producer id")
		}
		if compacted(t) {
			if err := checkKeys(t, b); err != nil {
				return nil, kerr.InvalidRecord.Code, err
			}
		}
		if !rewrite.LogAppendTime {
			if err := checkTimestamps(t, hdr, b, nowMs); err != nil {
				return nil, kerr.InvalidTimestamp.Code, err
			}
		}
		// compression.type and message.timestamp.type (produce.Rewrite);
		// a batch that grew past max.message.bytes is refused, as Kafka
		// checks the size again after recompressing.
		if rewrite.Needed() {
			nb, err := rewrite.Apply(b, hdr, nowMs)
			if err != nil {
				return nil, kerr.CorruptMessage.Code, err
			}
			if int64(len(nb)) > max {
				return nil, kerr.MessageTooLarge.Code, fmt.Errorf("batch of %d bytes after recompression to %s exceeds max.message.bytes %d", len(nb), rewrite.Codec, max)
			}
			batches[i] = nb
		}
	}
	return batches, 0, nil
}

// timestampBounds are a topic's message.timestamp.before.max.ms and
// after.max.ms (each narrowed by the deprecated difference.max.ms when
// set), in milliseconds.
func timestampBounds(t metastore.Topic) (before, after int64) {
	get := func(name string) int64 {
		v, _ := config.TopicValue(t.Configs, name)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return math.MaxInt64
		}
		return n
	}
	before, after = get("message.timestamp.before.max.ms"), get("message.timestamp.after.max.ms")
	if _, set := t.Configs["message.timestamp.difference.max.ms"]; set {
		d := get("message.timestamp.difference.max.ms")
		before, after = min(before, d), min(after, d)
	}
	return before, after
}

// checkTimestamps refuses a batch with a record timestamp further than the
// topic allows before or after the agent's clock, as Kafka does
// (INVALID_TIMESTAMP with the records named). The batch header's
// maxTimestamp answers the "after" bound; the "before" bound needs every
// record's timestamp, so records are decoded only when it is set.
func checkTimestamps(t metastore.Topic, hdr recordbatch.Header, b []byte, nowMs int64) error {
	before, after := timestampBounds(t)
	tooNew := after != math.MaxInt64 && hdr.MaxTimestamp-nowMs > after
	if !tooNew && before == math.MaxInt64 {
		return nil
	}
	recs, err := recordbatch.Records(b)
	if err != nil {
		return err
	}
	var bad []int32
	for i, r := range recs {
		ts := r.Timestamp
		if nowMs-ts > before || ts-nowMs > after {
			bad = append(bad, int32(i))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &recordErrors{indexes: bad, msg: fmt.Sprintf("Timestamp out of range: the record is more than %d ms before or %d ms after the broker's time", before, after)}
}

// compacted reports whether t's cleanup.policy includes compact.
func compacted(t metastore.Topic) bool {
	v, _ := config.TopicValue(t.Configs, "cleanup.policy")
	return slices.Contains(config.SplitList(v), "compact")
}

// recordErrors are the records of a batch Kafka refuses one by one
// (ProduceResponse v8+ record_errors, KIP-467).
type recordErrors struct {
	indexes []int32
	msg     string
}

func (e *recordErrors) Error() string {
	shown := e.indexes[:min(len(e.indexes), 3)]
	parts := make([]string, len(shown))
	for i, idx := range shown {
		parts[i] = fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", idx, e.msg)
	}
	return fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		len(e.indexes), strings.Join(parts, ", "))
}

// checkKeys refuses a batch for a compacted topic with records without a
// key, as Kafka does: key compaction keeps the latest record per key, and
// a record without one would have none.
func checkKeys(t metastore.Topic, b []byte) error {
	recs, err := recordbatch.Records(b)
	if err != nil {
		return err
	}
	var bad []int32
	for i, r := range recs {
		if r.Key == nil {
			bad = append(bad, int32(i))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &recordErrors{indexes: bad, msg: "Compacted topic cannot accept message without key in topic " + t.Name + "."}
}

func strPtr(s string) *string { return &s }

// now is the agent's clock in milliseconds, for timestamp bounds.
func (h *Handler) now() int64 { return h.cfg.Now().UnixMilli() }
