package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteRecords(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.produce("t", 0, 5, 1000)

	// The cases run in order: each starts where the one before left the
	// log start offset.
	for _, tc := range []struct {
		name      string
		topic     string
		partition int32
		offset    int64
		wantCode  int16
		wantLow   int64
	}{
		{name: "up to 2", topic: "t", offset: 2, wantLow: 2},
		{name: "below the log start changes nothing", topic: "t", offset: 1, wantLow: 2},
		{name: "beyond the high watermark", topic: "t", offset: 6, wantCode: kerr.OffsetOutOfRange.Code},
		{name: "negative other than -1", topic: "t", offset: -2, wantCode: kerr.OffsetOutOfRange.Code},
		{name: "unknown topic", topic: "nope", offset: 1, wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown partition", topic: "t", partition: 1, offset: 1, wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "up to 3", topic: "t", offset: 3, wantLow: 3},
		{name: "-1 is the high watermark", topic: "t", offset: -1, wantLow: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.TimeoutMillis = 10_000
			rt := kmsg.NewDeleteRecordsRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition, rp.Offset = tc.partition, tc.offset
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := do[*kmsg.DeleteRecordsResponse](f, 2, req).Topics[0].Partitions[0]
			expectCode(t, "delete records", p.ErrorCode, tc.wantCode)
			if tc.wantCode != 0 {
				tc.wantLow = -1
			}
			if p.LowWatermark != tc.wantLow {
				t.Errorf("low watermark %d, want %d", p.LowWatermark, tc.wantLow)
			}
		})
	}

	// The deleted records are gone for readers.
	if got := f.listOffset("t", 0, -2).Offset; got != 5 {
		t.Errorf("earliest offset %d, want 5", got)
	}
	p := do[*kmsg.FetchResponse](f, 12, fetchRequest("t", 0, 0)).Topics[0].Partitions[0]
	expectCode(t, "fetch below the log start", p.ErrorCode, kerr.OffsetOutOfRange.Code)
}
