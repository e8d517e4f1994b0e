package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListOffsets(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 3, 1000) // offsets 0-2, timestamps 1000-1002
	f.produce("t", 0, 2, 2000) // offsets 3-4, timestamps 2000-2001

	for _, tc := range []struct {
		name       string
		version    int16
		topic      string
		partition  int32
		timestamp  int64
		epoch      int32 // current leader epoch; 0 means -1 (none)
		wantCode   int16
		wantOffset int64
		wantTS     int64
	}{
		{name: "latest", version: 8, topic: "t", timestamp: -1, wantOffset: 5, wantTS: -1},
		{name: "earliest", version: 8, topic: "t", timestamp: -2, wantOffset: 0, wantTS: -1},
		{name: "latest v1", version: 1, topic: "t", timestamp: -1, wantOffset: 5, wantTS: -1},
		{name: "max timestamp", version: 7, topic: "t", timestamp: -3, wantOffset: 4, wantTS: 2001},
		{name: "earliest local", version: 8, topic: "t", timestamp: -4, wantOffset: 0, wantTS: -1},
		{name: "exact timestamp", version: 8, topic: "t", timestamp: 1001, wantOffset: 1, wantTS: 1001},
		{name: "timestamp between batches", version: 8, topic: "t", timestamp: 1500, wantOffset: 3, wantTS: 2000},
		{name: "timestamp before all", version: 8, topic: "t", timestamp: 0, wantOffset: 0, wantTS: 1000},
		{name: "timestamp after all", version: 8, topic: "t", timestamp: 5000, wantOffset: -1, wantTS: -1},
		{name: "empty partition latest", version: 8, topic: "t", partition: 1, timestamp: -1, wantOffset: 0, wantTS: -1},
		{name: "empty partition by timestamp", version: 8, topic: "t", partition: 1, timestamp: 1000, wantOffset: -1, wantTS: -1},
		{name: "unknown topic", version: 8, topic: "nope", timestamp: -1, wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown partition", version: 8, topic: "t", partition: 2, timestamp: -1, wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "leader epoch ahead", version: 8, topic: "t", timestamp: -1, epoch: 4, wantCode: kerr.UnknownLeaderEpoch.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID = -1
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = tc.partition, tc.timestamp, -1
			if tc.epoch != 0 {
				rp.CurrentLeaderEpoch = tc.epoch
			}
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := do[*kmsg.ListOffsetsResponse](f, tc.version, req).Topics[0].Partitions[0]
			expectCode(t, "list offsets", p.ErrorCode, tc.wantCode)
			if tc.wantCode != 0 {
				tc.wantOffset, tc.wantTS = -1, -1
			}
			if p.Offset != tc.wantOffset || p.Timestamp != tc.wantTS {
				t.Errorf("offset %d, timestamp %d; want %d, %d", p.Offset, p.Timestamp, tc.wantOffset, tc.wantTS)
			}
			if tc.wantCode == 0 && tc.version >= 4 && tc.wantOffset >= 0 && p.LeaderEpoch != 0 {
				t.Errorf("leader epoch %d, want 0", p.LeaderEpoch)
			}
		})
	}
}

// TestListOffsetsV0: v0 answers lists of offsets (old_style_offsets).
func TestListOffsetsV0(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.produce("t", 0, 3, 1000) // offsets 0-2
	f.produce("t", 0, 2, 2000) // offsets 3-4
	adv := kmsg.NewPtrDeleteRecordsRequest()
	adv.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "t", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	do[*kmsg.DeleteRecordsResponse](f, 2, adv) // log start 1
	for _, tc := range []struct {
		name      string
		timestamp int64
		max       int32
		want      []int64
	}{
		{"latest", -1, 1, []int64{5}},
		{"latest and the oldest boundary", -1, 10, []int64{5, 1}},
		{"earliest", -2, 1, []int64{1}},
		{"by timestamp", 1500, 1, []int64{3}},
		{"after every record", 5000, 1, []int64{}},
		{"none asked", -1, 0, []int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: tc.timestamp, MaxNumOffsets: tc.max}}}}
			p := do[*kmsg.ListOffsetsResponse](f, 0, req).Topics[0].Partitions[0]
			expectCode(t, "partition", p.ErrorCode, 0)
			if len(p.OldStyleOffsets) != len(tc.want) {
				t.Fatalf("offsets %v, want %v", p.OldStyleOffsets, tc.want)
			}
			for i := range tc.want {
				if p.OldStyleOffsets[i] != tc.want[i] {
					t.Fatalf("offsets %v, want %v", p.OldStyleOffsets, tc.want)
				}
			}
		})
	}
}

// TestListOffsetsReadCommitted: with isolation_level 1, latest is the
// last stable offset and a timestamp lookup answering at or past it is
// dropped, as Kafka does; earliest and read_uncommitted are unchanged.
func TestListOffsetsReadCommitted(t *testing.T) {
	f := startTxns(t)
	readCommittedLog(f) // high watermark 10, last stable offset 8

	for _, tc := range []struct {
		name       string
		version    int16
		isolation  int8
		timestamp  int64
		wantOffset int64
		wantTS     int64
	}{
		{"latest", 8, 1, -1, 8, -1},
		{"latest v2", 2, 1, -1, 8, -1},
		{"latest uncommitted", 8, 0, -1, 10, -1},
		{"latest v1 (no isolation level)", 1, 1, -1, 10, -1},
		{"earliest", 8, 1, -2, 0, -1},
		{"earliest local", 8, 1, -4, 0, -1},
		{"timestamp of a stable record", 8, 1, 3000, 6, 3000},
		{"timestamp inside the aborted transaction", 8, 1, 2001, 4, 2001},
		{"timestamp only in the open transaction", 8, 1, 4000, -1, -1},
		{"timestamp only in the open transaction, uncommitted", 8, 0, 4000, 8, 4000},
		// -3 answers the largest timestamp only if its record is stable.
		{"max timestamp in the open transaction", 8, 1, -3, -1, -1},
		{"max timestamp uncommitted", 8, 0, -3, 9, 4001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			req.ReplicaID, req.IsolationLevel = -1, tc.isolation
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, tc.timestamp, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := do[*kmsg.ListOffsetsResponse](f.fixture, tc.version, req).Topics[0].Partitions[0]
			expectCode(t, "list offsets", p.ErrorCode, 0)
			if p.Offset != tc.wantOffset || p.Timestamp != tc.wantTS {
				t.Errorf("offset %d, timestamp %d; want %d, %d", p.Offset, p.Timestamp, tc.wantOffset, tc.wantTS)
			}
		})
	}

	// Once the transaction ends, its records answer read_committed too.
	tp := f.partition("t", 0)
	f.commit(tp, markerBatch(8, true, 3500)) // 10
	f.txns.end(tp)
	// (One request per timestamp: Kafka answers a partition named twice
	// INVALID_REQUEST.)
	var ps []kmsg.ListOffsetsResponseTopicPartition
	for _, ts := range []int64{-1, -3} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = 1
		req.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "t", Partitions: []kmsg.ListOffsetsRequestTopicPartition{
			{Partition: 0, Timestamp: ts, CurrentLeaderEpoch: -1}}}}
		ps = append(ps, do[*kmsg.ListOffsetsResponse](f.fixture, 8, req).Topics[0].Partitions[0])
	}
	if ps[0].Offset != 11 || ps[1].Offset != 9 || ps[1].Timestamp != 4001 {
		t.Errorf("after the commit: latest %d, max timestamp %d at %d; want 11, 9 at 4001", ps[0].Offset, ps[1].Offset, ps[1].Timestamp)
	}
}
