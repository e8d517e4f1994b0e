package protocol_test

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
