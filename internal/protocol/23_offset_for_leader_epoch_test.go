package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetForLeaderEpoch: every partition has leader epoch 0 forever, so
// epoch 0 ends at the high watermark and a later epoch is undefined.
func TestOffsetForLeaderEpoch(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.produce("t", 0, 4, 1000)

	for _, tc := range []struct {
		name          string
		version       int16
		topic         string
		partition     int32
		current       int32
		epoch         int32
		wantCode      int16
		wantEpoch     int32
		wantEndOffset int64
	}{
		{name: "epoch 0", version: 4, topic: "t", current: -1, epoch: 0, wantEpoch: 0, wantEndOffset: 4},
		{name: "epoch 0 with current epoch 0", version: 4, topic: "t", current: 0, epoch: 0, wantEpoch: 0, wantEndOffset: 4},
		{name: "epoch 0 v0", version: 0, topic: "t", current: -1, epoch: 0, wantEpoch: -1, wantEndOffset: 4},
		{name: "later epoch undefined", version: 4, topic: "t", current: -1, epoch: 3, wantEpoch: -1, wantEndOffset: -1},
		{name: "current epoch ahead", version: 4, topic: "t", current: 2, epoch: 0, wantCode: kerr.UnknownLeaderEpoch.Code, wantEpoch: -1, wantEndOffset: -1},
		{name: "unknown topic", version: 4, topic: "nope", current: -1, wantCode: kerr.UnknownTopicOrPartition.Code, wantEpoch: -1, wantEndOffset: -1},
		{name: "unknown partition", version: 4, topic: "t", partition: 1, current: -1, wantCode: kerr.UnknownTopicOrPartition.Code, wantEpoch: -1, wantEndOffset: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tc.partition, tc.current, tc.epoch
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			p := do[*kmsg.OffsetForLeaderEpochResponse](f, tc.version, req).Topics[0].Partitions[0]
			expectCode(t, "offset for leader epoch", p.ErrorCode, tc.wantCode)
			if tc.version >= 1 && p.LeaderEpoch != tc.wantEpoch {
				t.Errorf("leader epoch %d, want %d", p.LeaderEpoch, tc.wantEpoch)
			}
			if p.EndOffset != tc.wantEndOffset {
				t.Errorf("end offset %d, want %d", p.EndOffset, tc.wantEndOffset)
			}
		})
	}
}
