package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// subscription is the "consumer" protocol's member metadata for topics.
func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// joinRequest is a JoinGroup of the "consumer" protocol type with one
// protocol, "range", subscribing to topic "t".
func joinRequest(group, member string) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 10_000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: subscription("t")}}
	return req
}

// stableGroup makes group Stable with one member, the leader, assigned
// nothing, and returns the member id and generation.
func (f *fixture) stableGroup(group string) (string, int32) {
	f.t.Helper()
	first := do[*kmsg.JoinGroupResponse](f, 9, joinRequest(group, ""))
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		f.t.Fatalf("first join of %s: %s, want MEMBER_ID_REQUIRED", group, codeName(first.ErrorCode))
	}
	join := do[*kmsg.JoinGroupResponse](f, 9, joinRequest(group, first.MemberID))
	if join.ErrorCode != 0 {
		f.t.Fatalf("join %s: %s", group, codeName(join.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = group, join.MemberID, join.Generation
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: join.MemberID, MemberAssignment: []byte("assigned")}}
	if code := do[*kmsg.SyncGroupResponse](f, 5, sync).ErrorCode; code != 0 {
		f.t.Fatalf("sync %s: %s", group, codeName(code))
	}
	return join.MemberID, join.Generation
}

func TestJoinGroup(t *testing.T) {
	f := start(t)
	f.stableGroup("stable")

	for _, tc := range []struct {
		name     string
		version  int16
		req      func() *kmsg.JoinGroupRequest
		wantCode int16
		check    func(t *testing.T, r *kmsg.JoinGroupResponse)
	}{
		{name: "new member needs an id (KIP-394)", version: 5, req: func() *kmsg.JoinGroupRequest { return joinRequest("g1", "") },
			wantCode: kerr.MemberIDRequired.Code, check: func(t *testing.T, r *kmsg.JoinGroupResponse) {
				if r.MemberID == "" || r.Generation != -1 {
					t.Errorf("member id %q, generation %d; want an id and -1", r.MemberID, r.Generation)
				}
			}},
		{name: "before v4 the id is given at once", version: 3, req: func() *kmsg.JoinGroupRequest { return joinRequest("g2", "") },
			check: func(t *testing.T, r *kmsg.JoinGroupResponse) {
				if r.MemberID == "" || r.LeaderID != r.MemberID || r.Generation != 1 || r.Protocol == nil || *r.Protocol != "range" || len(r.Members) != 1 {
					t.Errorf("lone member: %+v; want the leader of generation 1 with protocol range and itself as member", r)
				}
			}},
		{name: "static member (KIP-345)", version: 5, req: func() *kmsg.JoinGroupRequest {
			r := joinRequest("g3", "")
			r.InstanceID = kmsg.StringPtr("instance-1")
			return r
		}, check: func(t *testing.T, r *kmsg.JoinGroupResponse) {
			if r.MemberID == "" || r.LeaderID != r.MemberID || len(r.Members) != 1 || r.Members[0].InstanceID == nil || *r.Members[0].InstanceID != "instance-1" {
				t.Errorf("static member: %+v", r)
			}
		}},
		{name: "empty group id", version: 9, req: func() *kmsg.JoinGroupRequest { return joinRequest("", "") }, wantCode: kerr.InvalidGroupID.Code},
		{name: "session timeout below the minimum", version: 9, req: func() *kmsg.JoinGroupRequest {
			r := joinRequest("g4", "")
			r.SessionTimeoutMillis = 1000
			return r
		}, wantCode: kerr.InvalidSessionTimeout.Code},
		{name: "unknown member id", version: 9, req: func() *kmsg.JoinGroupRequest { return joinRequest("stable", "ghost") }, wantCode: kerr.UnknownMemberID.Code},
		{name: "other protocol type", version: 9, req: func() *kmsg.JoinGroupRequest {
			r := joinRequest("stable", "")
			r.ProtocolType = "connect"
			return r
		}, wantCode: kerr.InconsistentGroupProtocol.Code},
		{name: "no protocols", version: 9, req: func() *kmsg.JoinGroupRequest {
			r := joinRequest("g5", "")
			r.Protocols = nil
			return r
		}, wantCode: kerr.InconsistentGroupProtocol.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do[*kmsg.JoinGroupResponse](f, tc.version, tc.req())
			expectCode(t, "join", r.ErrorCode, tc.wantCode)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}
