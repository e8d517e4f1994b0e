package protocol_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
)

func TestFetch(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 3, 1000)
	f.produce("t", 0, 2, 2000)

	for _, tc := range []struct {
		name        string
		version     int16
		topic       string
		partition   int32
		offset      int64
		adjust      func(*kmsg.FetchRequest)
		wantCode    int16
		wantOffsets []int64 // records returned (nil: none)
		wantHWM     int64   // checked without an error
	}{
		{name: "from 0", version: 12, topic: "t", offset: 0, wantOffsets: []int64{0, 1, 2, 3, 4}, wantHWM: 5},
		{name: "v4 from 0", version: 4, topic: "t", offset: 0, wantOffsets: []int64{0, 1, 2, 3, 4}, wantHWM: 5},
		// The whole batch holding the offset is returned, as Kafka does;
		// clients skip the records before their offset.
		{name: "inside the second batch", version: 12, topic: "t", offset: 4, wantOffsets: []int64{3, 4}, wantHWM: 5},
		{name: "at the high watermark", version: 12, topic: "t", offset: 5, wantHWM: 5},
		{name: "empty partition", version: 12, topic: "t", partition: 1, offset: 0, wantHWM: 0},
		{name: "beyond the high watermark", version: 12, topic: "t", offset: 6, wantCode: kerr.OffsetOutOfRange.Code},
		{name: "negative offset", version: 12, topic: "t", offset: -1, wantCode: kerr.OffsetOutOfRange.Code},
		{name: "unknown topic", version: 12, topic: "nope", wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown partition", version: 12, topic: "t", partition: 2, wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "leader epoch ahead", version: 12, topic: "t", adjust: func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = 3 },
			wantCode: kerr.UnknownLeaderEpoch.Code},
		{name: "current leader epoch 0", version: 12, topic: "t", adjust: func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = 0 },
			wantOffsets: []int64{0, 1, 2, 3, 4}, wantHWM: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := fetchRequest(tc.topic, tc.partition, tc.offset)
			if tc.adjust != nil {
				tc.adjust(req)
			}
			resp := do[*kmsg.FetchResponse](f, tc.version, req)
			expectCode(t, "top level", resp.ErrorCode, 0)
			p := resp.Topics[0].Partitions[0]
			expectCode(t, "partition", p.ErrorCode, tc.wantCode)
			// On errors Kafka answers -1 offsets; Floe may answer the
			// partition's, which clients ignore, so they are not checked.
			if tc.wantCode == 0 && p.HighWatermark != tc.wantHWM {
				t.Errorf("high watermark %d, want %d", p.HighWatermark, tc.wantHWM)
			}
			if tc.wantCode == 0 && p.LastStableOffset != tc.wantHWM {
				t.Errorf("last stable offset %d, want %d", p.LastStableOffset, tc.wantHWM)
			}
			if tc.wantCode == 0 && tc.version >= 5 && p.LogStartOffset != 0 { // v5+
				t.Errorf("log start offset %d, want 0", p.LogStartOffset)
			}
			if got := recordOffsets(t, p.RecordBatches); !slices.Equal(got, tc.wantOffsets) {
				t.Errorf("record offsets %v, want %v", got, tc.wantOffsets)
			}
		})
	}
}

// TestFetchSessions: Floe keeps no fetch sessions (KIP-227), so a request
// naming one is FETCH_SESSION_ID_NOT_FOUND and answers carry session 0.
func TestFetchSessions(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	req := fetchRequest("t", 0, 0)
	req.SessionEpoch = 0 // asks for a new session
	if resp := do[*kmsg.FetchResponse](f, 12, req); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Errorf("new session: error %s, session id %d; want NONE, 0", codeName(resp.ErrorCode), resp.SessionID)
	}
	req = fetchRequest("t", 0, 0)
	req.SessionID, req.SessionEpoch = 42, 1
	expectCode(t, "unknown session", do[*kmsg.FetchResponse](f, 12, req).ErrorCode, kerr.FetchSessionIDNotFound.Code)
	// Epoch -1 closes a session (or asks for none) and epoch 0 opens a
	// new one: both are full fetches whatever the id, as in Kafka.
	f.produce("t", 0, 3, 1000)
	for _, epoch := range []int32{-1, 0} {
		req = fetchRequest("t", 0, 0)
		req.SessionID, req.SessionEpoch = 42, epoch
		resp := do[*kmsg.FetchResponse](f, 12, req)
		if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Errorf("session 42, epoch %d: error %s, session id %d, %d bytes; want a full fetch with data", epoch,
				codeName(resp.ErrorCode), resp.SessionID, len(resp.Topics[0].Partitions[0].RecordBatches))
		}
	}
}

// TestFetchLongPoll: a fetch with nothing to read waits MaxWaitMillis and
// answers empty; one that waits is answered when records arrive.
func TestFetchLongPoll(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)

	req := fetchRequest("t", 0, 0)
	req.MaxWaitMillis = 200
	begin := time.Now()
	p := do[*kmsg.FetchResponse](f, 12, req).Topics[0].Partitions[0]
	if took := time.Since(begin); took < 150*time.Millisecond || took > within {
		t.Errorf("empty long poll answered after %v, want about 200ms", took)
	}
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Errorf("empty long poll: error %s, %d bytes", codeName(p.ErrorCode), len(p.RecordBatches))
	}

	// A second connection produces while the first waits.
	req = fetchRequest("t", 0, 0)
	req.MaxWaitMillis = int32(within / time.Millisecond)
	req.SetVersion(12)
	corr := f.c.Send(req)
	producer := &fixture{t: t, a: f.a, c: dial(t, f)}
	producer.produce("t", 0, 2, 1000)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	if got := recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); !slices.Equal(got, []int64{0, 1}) {
		t.Errorf("woken fetch returned offsets %v, want [0 1]", got)
	}
}

// readCommittedLog writes t/0 as: 0-2 plain, 3-4 producer 7's aborted
// transaction and 5 its ABORT marker, 6-7 plain, 8-9 producer 8's
// transaction, still open: high watermark 10, last stable offset 8.
// Timestamps: 1000-1002, 2000-2001, 2002, 3000-3001, 4000-4001.
func readCommittedLog(f *txnFixture) (tp metastore.TopicPartition, aborted metastore.AbortedTxn) {
	f.createTopic("t", 1)
	f.produce("t", 0, 3, 1000)
	tp = f.partition("t", 0)
	f.txns.open(tp, 3)
	f.commit(tp, txnBatch(7, 2, 2000), markerBatch(7, false, 2002))
	aborted = metastore.AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 5}
	f.txns.end(tp, aborted)
	f.produce("t", 0, 2, 3000)
	f.txns.open(tp, 8)
	f.commit(tp, txnBatch(8, 2, 4000))
	return tp, aborted
}

// TestFetchReadCommitted: isolation_level 1 returns whole batches below
// the last stable offset and the aborted transactions overlapping what it
// returns (an empty list when none, null for read_uncommitted); every
// answer carries the last stable offset.
func TestFetchReadCommitted(t *testing.T) {
	f := startTxns(t)
	_, aborted := readCommittedLog(f)
	abortedTxn := kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: aborted.ProducerID, FirstOffset: aborted.FirstOffset}
	none := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}

	for _, tc := range []struct {
		name        string
		version     int16
		isolation   int8
		offset      int64
		wantCode    int16
		wantOffsets []int64 // record offsets, control records included
		wantAborted []kmsg.FetchResponseTopicPartitionAbortedTransaction
	}{
		{name: "committed from 0", version: 12, isolation: 1, offset: 0,
			wantOffsets: []int64{0, 1, 2, 3, 4, 5, 6, 7}, wantAborted: []kmsg.FetchResponseTopicPartitionAbortedTransaction{abortedTxn}},
		{name: "committed v4", version: 4, isolation: 1, offset: 0,
			wantOffsets: []int64{0, 1, 2, 3, 4, 5, 6, 7}, wantAborted: []kmsg.FetchResponseTopicPartitionAbortedTransaction{abortedTxn}},
		{name: "committed from the abort marker", version: 12, isolation: 1, offset: 5,
			wantOffsets: []int64{5, 6, 7}, wantAborted: []kmsg.FetchResponseTopicPartitionAbortedTransaction{abortedTxn}},
		{name: "committed past the aborted transaction", version: 12, isolation: 1, offset: 6,
			wantOffsets: []int64{6, 7}, wantAborted: none},
		{name: "committed at the last stable offset", version: 12, isolation: 1, offset: 8, wantAborted: none},
		{name: "committed inside the open transaction", version: 12, isolation: 1, offset: 9, wantAborted: none},
		{name: "committed at the high watermark", version: 12, isolation: 1, offset: 10, wantAborted: none},
		{name: "committed past the high watermark", version: 12, isolation: 1, offset: 11, wantCode: kerr.OffsetOutOfRange.Code},
		{name: "uncommitted from 0", version: 12, offset: 0, wantOffsets: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{name: "uncommitted v4", version: 4, offset: 6, wantOffsets: []int64{6, 7, 8, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := fetchRequest("t", 0, tc.offset)
			req.IsolationLevel = tc.isolation
			p := do[*kmsg.FetchResponse](f.fixture, tc.version, req).Topics[0].Partitions[0]
			expectCode(t, "partition", p.ErrorCode, tc.wantCode)
			if tc.wantCode != 0 {
				return
			}
			if p.HighWatermark != 10 || p.LastStableOffset != 8 {
				t.Errorf("high watermark %d, last stable offset %d; want 10, 8", p.HighWatermark, p.LastStableOffset)
			}
			if got := recordOffsets(t, p.RecordBatches); !slices.Equal(got, tc.wantOffsets) {
				t.Errorf("record offsets %v, want %v", got, tc.wantOffsets)
			}
			// null decodes as nil, an empty list as empty.
			if (p.AbortedTransactions == nil) != (tc.wantAborted == nil) || !slices.EqualFunc(p.AbortedTransactions, tc.wantAborted, sameAborted) {
				t.Errorf("aborted transactions %#v, want %#v", p.AbortedTransactions, tc.wantAborted)
			}
		})
	}
}

func sameAborted(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) bool {
	return a.ProducerID == b.ProducerID && a.FirstOffset == b.FirstOffset
}

// TestFetchReadCommittedLongPoll: a read_committed fetch at the last
// stable offset waits for it to move, not for the high watermark: records
// committed past it do not answer it, the end of the transaction does.
func TestFetchReadCommittedLongPoll(t *testing.T) {
	f := startTxns(t)
	tp, _ := readCommittedLog(f)

	req := fetchRequest("t", 0, 8)
	req.IsolationLevel = 1
	req.MaxWaitMillis = int32(within / time.Millisecond)
	req.SetVersion(12)
	begin := time.Now()
	corr := f.c.Send(req)
	// More records past the last stable offset, from another connection:
	// their commits wake the fetch, which finds nothing stable and waits.
	producer := &fixture{t: t, a: f.a, c: dial(t, f.fixture)}
	producer.produce("t", 0, 2, 5000) // 10-11
	time.Sleep(200 * time.Millisecond)
	f.commit(tp, markerBatch(8, true, 5002)) // 12
	f.txns.end(tp)

	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	p := resp.Topics[0].Partitions[0]
	if took := time.Since(begin); took < 200*time.Millisecond {
		t.Errorf("answered after %v, before the transaction ended", took)
	}
	if p.LastStableOffset != 13 || p.HighWatermark != 13 {
		t.Errorf("last stable offset %d, high watermark %d; want 13, 13 (answered before the end of the transaction?)", p.LastStableOffset, p.HighWatermark)
	}
	if got := recordOffsets(t, p.RecordBatches); !slices.Equal(got, []int64{8, 9, 10, 11, 12}) {
		t.Errorf("record offsets %v, want [8 9 10 11 12]", got)
	}
	if p.AbortedTransactions == nil || len(p.AbortedTransactions) != 0 {
		t.Errorf("aborted transactions %#v, want []", p.AbortedTransactions)
	}
}
