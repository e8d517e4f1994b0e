package protocol_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

func TestProduce(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.createTopic("small", 1, "max.message.bytes", "100")
	corrupt := batch(1, 1000)
	corrupt[len(corrupt)-1] ^= 0xff
	big := recordbatch.Build(recordbatch.BuildOptions{}, recordbatch.Record{Value: make([]byte, 200), Timestamp: 1000})
	txn := recordbatch.Build(recordbatch.BuildOptions{ProducerID: 7, Transactional: true}, recordbatch.Record{Value: []byte("x"), Timestamp: 1000})
	txnNoPID := recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, Transactional: true}, recordbatch.Record{Value: []byte("x"), Timestamp: 1000})
	control := recordbatch.Build(recordbatch.BuildOptions{ProducerID: 7, Transactional: true, Control: true}, recordbatch.Record{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}, Timestamp: 1000})
	magic1 := batch(1, 1000)
	magic1[16] = 1 // the magic byte: record batch format v2 is 2
	txnRequest := produceRequest("t", 0, batch(1, 1000))
	txnRequest.TransactionID = kmsg.StringPtr("tx")

	for _, tc := range []struct {
		name       string
		version    int16
		req        *kmsg.ProduceRequest
		acks       int16 // 0 keeps -1 (all)
		wantCode   int16
		wantOffset int64 // base offset when no error
	}{
		{name: "first batch", version: 9, req: produceRequest("t", 0, batch(3, 1000)), wantOffset: 0},
		{name: "next batch follows", version: 9, req: produceRequest("t", 0, batch(2, 1003)), wantOffset: 3},
		{name: "other partition from 0", version: 11, req: produceRequest("t", 1, batch(1, 1000)), wantOffset: 0},
		{name: "v3, the oldest accepted", version: 3, req: produceRequest("t", 1, batch(1, 1000)), wantOffset: 1},
		{name: "acks 1", version: 9, acks: 1, req: produceRequest("t", 1, batch(1, 1000)), wantOffset: 2},
		{name: "unknown topic", version: 9, req: produceRequest("nope", 0, batch(1, 1000)), wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown partition", version: 9, req: produceRequest("t", 2, batch(1, 1000)), wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "negative partition", version: 9, req: produceRequest("t", -1, batch(1, 1000)), wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "v2 unsupported", version: 2, req: produceRequest("t", 0, batch(1, 1000)), wantCode: kerr.UnsupportedVersion.Code},
		{name: "v0 unsupported", version: 0, req: produceRequest("t", 0, batch(1, 1000)), wantCode: kerr.UnsupportedVersion.Code},
		{name: "acks 2", version: 9, acks: 2, req: produceRequest("t", 0, batch(1, 1000)), wantCode: kerr.InvalidRequiredAcks.Code},
		{name: "bad CRC", version: 9, req: produceRequest("t", 0, corrupt), wantCode: kerr.CorruptMessage.Code},
		// Kafka 4 checks these first (ProduceRequest.validateRecords).
		{name: "no batches", version: 9, req: produceRequest("t", 0, []byte{}), wantCode: kerr.InvalidRecord.Code},
		{name: "magic 1", version: 9, req: produceRequest("t", 0, magic1), wantCode: kerr.InvalidRecord.Code},
		{name: "two batches", version: 9, req: produceRequest("t", 0, append(batch(1, 1000), batch(1, 1001)...)), wantCode: kerr.InvalidRecord.Code},
		{name: "batch above max.message.bytes", version: 9, req: produceRequest("small", 0, big), wantCode: kerr.MessageTooLarge.Code},
		// A transactional batch outside an ongoing transaction holding
		// its partition (KIP-890's server-side check), a control batch
		// from a client, a transactional batch without a producer id.
		{name: "transactional batch outside a transaction", version: 9, req: produceRequest("t", 0, txn), wantCode: kerr.InvalidTxnState.Code},
		{name: "control batch", version: 9, req: produceRequest("t", 0, control), wantCode: kerr.InvalidRecord.Code},
		{name: "transactional batch without producer", version: 9, req: produceRequest("t", 0, txnNoPID), wantCode: kerr.InvalidRecord.Code},
		// A transactional id on a request of plain batches changes nothing.
		{name: "transactional id", version: 9, req: txnRequest, wantOffset: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.acks != 0 {
				tc.req.Acks = tc.acks
			}
			p := do[*kmsg.ProduceResponse](f, tc.version, tc.req).Topics[0].Partitions[0]
			expectCode(t, "produce", p.ErrorCode, tc.wantCode)
			want := tc.wantOffset
			if tc.wantCode != 0 {
				want = -1
			}
			if p.BaseOffset != want {
				t.Errorf("base offset %d, want %d", p.BaseOffset, want)
			}
		})
	}
	// Only the accepted batches were written.
	if got := f.listOffset("t", 0, -1).Offset; got != 6 {
		t.Errorf("t/0 high watermark %d, want 6", got)
	}
}

// TestProduceAcksZero checks that acks=0 gets no response but is written:
// the next request's response is the next frame.
func TestProduceAcksZero(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	req := produceRequest("t", 0, batch(2, 1000))
	req.Acks = 0
	req.SetVersion(9)
	f.c.Send(req)
	// Produces on one connection are committed in order, so this one
	// lands after the acks=0 batch.
	if off := f.produce("t", 0, 1, 1002); off != 2 {
		t.Errorf("base offset after an acks=0 batch of 2: %d, want 2", off)
	}
}

func TestProduceIdempotent(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.ProducerID, init.ProducerEpoch = -1, -1
	ir := do[*kmsg.InitProducerIDResponse](f, 4, init)
	if ir.ErrorCode != 0 {
		t.Fatalf("init producer id: %s", codeName(ir.ErrorCode))
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch
	for _, tc := range []struct {
		name       string
		n          int
		epoch      int16
		seq        int32
		wantCode   int16
		wantOffset int64
	}{
		{name: "first", n: 3, seq: 0, wantOffset: 0},
		{name: "in sequence", n: 2, seq: 3, wantOffset: 3},
		{name: "duplicate answers its first offset", n: 2, seq: 3, wantOffset: 3},
		{name: "gap", n: 1, seq: 9, wantCode: kerr.OutOfOrderSequenceNumber.Code},
		{name: "after the duplicate", n: 1, seq: 5, wantOffset: 5},
		{name: "new epoch from 0", n: 1, epoch: 1, seq: 0, wantOffset: 6},
		{name: "old epoch fenced", n: 1, epoch: 0, seq: 6, wantCode: kerr.InvalidProducerEpoch.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := produceRequest("t", 0, idempotentBatch(tc.n, 1000, pid, epoch+tc.epoch, tc.seq))
			p := do[*kmsg.ProduceResponse](f, 9, req).Topics[0].Partitions[0]
			expectCode(t, "produce", p.ErrorCode, tc.wantCode)
			if tc.wantCode == 0 && p.BaseOffset != tc.wantOffset {
				t.Errorf("base offset %d, want %d", p.BaseOffset, tc.wantOffset)
			}
		})
	}
}

// TestProduceCompactedNeedsKeys: a compacted topic refuses a batch with
// records without a key (INVALID_RECORD, with record_errors naming each,
// KIP-467), as Kafka does; a delete topic takes it.
func TestProduceCompactedNeedsKeys(t *testing.T) {
	f := start(t)
	f.createTopic("compacted", 1, "cleanup.policy", "compact")
	f.createTopic("plain", 1)
	mixed := recordbatch.Build(recordbatch.BuildOptions{Codec: recordbatch.Zstd},
		recordbatch.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: 1},
		recordbatch.Record{Value: []byte("no key"), Timestamp: 2},
		recordbatch.Record{Key: []byte{}, Value: []byte("empty key is a key"), Timestamp: 3},
		recordbatch.Record{Value: []byte("no key either"), Timestamp: 4},
	)
	p := do[*kmsg.ProduceResponse](f, 9, produceRequest("compacted", 0, mixed)).Topics[0].Partitions[0]
	expectCode(t, "compacted", p.ErrorCode, kerr.InvalidRecord.Code)
	if len(p.ErrorRecords) != 2 || p.ErrorRecords[0].RelativeOffset != 1 || p.ErrorRecords[1].RelativeOffset != 3 {
		t.Fatalf("record errors %+v, want records 1 and 3", p.ErrorRecords)
	}
	if p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "without key") {
		t.Fatalf("error message %v", p.ErrorMessage)
	}
	p = do[*kmsg.ProduceResponse](f, 9, produceRequest("plain", 0, mixed)).Topics[0].Partitions[0]
	expectCode(t, "plain", p.ErrorCode, 0)
}

// TestProduceTimestampBounds: message.timestamp.after.max.ms (one hour by
// default, as in Kafka 4) and before.max.ms refuse records too far from
// the agent's clock with INVALID_TIMESTAMP and the records named.
func TestProduceTimestampBounds(t *testing.T) {
	f := start(t)
	f.createTopic("default", 1)
	f.createTopic("recent", 1, "message.timestamp.before.max.ms", "60000")
	f.createTopic("legacy", 1, "message.timestamp.difference.max.ms", "60000")
	now := time.Now().UnixMilli()
	build := func(ts ...int64) []byte {
		var recs []recordbatch.Record
		for _, t := range ts {
			recs = append(recs, recordbatch.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: t})
		}
		return recordbatch.Build(recordbatch.BuildOptions{}, recs...)
	}
	for _, tc := range []struct {
		name, topic string
		ts          []int64
		want        int16
		bad         []int32
	}{
		{"an hour and more ahead", "default", []int64{now, now + 2*3600_000}, kerr.InvalidTimestamp.Code, []int32{1}},
		{"1970 is fine by default", "default", []int64{1000, now}, 0, nil},
		{"older than before.max", "recent", []int64{now - 120_000, now, now - 90_000}, kerr.InvalidTimestamp.Code, []int32{0, 2}},
		{"within before.max", "recent", []int64{now - 30_000}, 0, nil},
		{"difference.max both ways", "legacy", []int64{now - 120_000, now + 120_000, now}, kerr.InvalidTimestamp.Code, []int32{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := do[*kmsg.ProduceResponse](f, 9, produceRequest(tc.topic, 0, build(tc.ts...))).Topics[0].Partitions[0]
			expectCode(t, "partition", p.ErrorCode, tc.want)
			if len(p.ErrorRecords) != len(tc.bad) {
				t.Fatalf("record errors %+v, want %v", p.ErrorRecords, tc.bad)
			}
			for i, r := range p.ErrorRecords {
				if r.RelativeOffset != tc.bad[i] {
					t.Fatalf("record errors %+v, want %v", p.ErrorRecords, tc.bad)
				}
			}
		})
	}
}

// TestProduceTimestampAgentClock: the bounds are checked against the
// agent's Clock (floe agent --clock-skew): an agent two hours behind
// refuses records stamped now as too far ahead.
func TestProduceTimestampAgentClock(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Clock = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("skewed", 1)
	batch := recordbatch.Build(recordbatch.BuildOptions{}, recordbatch.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: time.Now().UnixMilli()})
	p := do[*kmsg.ProduceResponse](f, 9, produceRequest("skewed", 0, batch)).Topics[0].Partitions[0]
	expectCode(t, "partition", p.ErrorCode, kerr.InvalidTimestamp.Code)
}
