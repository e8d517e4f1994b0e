package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumerHeartbeat sends a KIP-848 heartbeat; topics are set only when
// given (a first heartbeat must give them).
func (f *fixture) consumerHeartbeat(version int16, group, member string, epoch int32, topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	f.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
	req.RebalanceTimeoutMillis = -1
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 10_000
		req.SubscribedTopicNames = topics
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	}
	return do[*kmsg.ConsumerGroupHeartbeatResponse](f, version, req)
}

func TestConsumerGroupHeartbeat(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	joined := f.consumerHeartbeat(1, "g", "m1", 0, "t")
	if joined.ErrorCode != 0 || joined.MemberEpoch < 1 || joined.HeartbeatIntervalMillis <= 0 {
		t.Fatalf("join: error %s, epoch %d, interval %d", codeName(joined.ErrorCode), joined.MemberEpoch, joined.HeartbeatIntervalMillis)
	}
	if joined.Assignment == nil || len(joined.Assignment.Topics) != 1 || len(joined.Assignment.Topics[0].Partitions) != 2 {
		t.Errorf("a lone member's assignment %+v, want both partitions of t", joined.Assignment)
	}
	epoch := joined.MemberEpoch
	f.stableGroup("classic")

	for _, tc := range []struct {
		name     string
		version  int16
		req      func(*kmsg.ConsumerGroupHeartbeatRequest)
		wantCode int16
		check    func(t *testing.T, r *kmsg.ConsumerGroupHeartbeatResponse)
	}{
		{name: "member at its epoch", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch = "g", "m1", epoch
		}, check: func(t *testing.T, r *kmsg.ConsumerGroupHeartbeatResponse) {
			if r.MemberEpoch != epoch {
				t.Errorf("epoch %d, want %d", r.MemberEpoch, epoch)
			}
		}},
		{name: "v0: the coordinator names the member", version: 0, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberEpoch, r.RebalanceTimeoutMillis, r.SubscribedTopicNames = "g0", 0, 10_000, []string{"t"}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}, check: func(t *testing.T, r *kmsg.ConsumerGroupHeartbeatResponse) {
			if r.MemberID == nil || *r.MemberID == "" {
				t.Error("no member id given")
			}
		}},
		{name: "fenced epoch", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch = "g", "m1", epoch+10
		}, wantCode: kerr.FencedMemberEpoch.Code},
		{name: "unknown member", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch = "g", "ghost", 3
		}, wantCode: kerr.UnknownMemberID.Code},
		{name: "empty group id", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch = "", "m2", 0
		}, wantCode: kerr.InvalidRequest.Code},
		{name: "v1 without a member id", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis, r.SubscribedTopicNames = "g", "", 0, 10_000, []string{"t"}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}, wantCode: kerr.InvalidRequest.Code},
		{name: "first heartbeat without a subscription", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", "m3", 0, 10_000
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}, wantCode: kerr.InvalidRequest.Code},
		{name: "unknown assignor", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis, r.SubscribedTopicNames = "g", "m4", 0, 10_000, []string{"t"}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			r.ServerAssignor = kmsg.StringPtr("sticky-ish")
		}, wantCode: kerr.UnsupportedAssignor.Code},
		{name: "bad regular expression", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = "g", "m5", 0, 10_000
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			r.SubscribedTopicRegex = kmsg.StringPtr("t(")
		}, wantCode: kerr.InvalidRegularExpression.Code},
		{name: "leave", version: 1, req: func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Group, r.MemberID, r.MemberEpoch = "g", "m1", -1
		}, check: func(t *testing.T, r *kmsg.ConsumerGroupHeartbeatResponse) {
			if r.MemberEpoch != -1 {
				t.Errorf("epoch after leaving %d, want -1", r.MemberEpoch)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.RebalanceTimeoutMillis = -1
			tc.req(req)
			r := do[*kmsg.ConsumerGroupHeartbeatResponse](f, tc.version, req)
			expectCode(t, "heartbeat", r.ErrorCode, tc.wantCode)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}
