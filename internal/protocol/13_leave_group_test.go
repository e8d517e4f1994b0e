package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestLeaveGroup(t *testing.T) {
	f := start(t)
	m1, _ := f.stableGroup("g1")
	m2, _ := f.stableGroup("g2")
	for _, tc := range []struct {
		name        string
		version     int16
		group       string
		members     []string
		wantCode    int16
		wantMembers []int16 // v3+: per member
	}{
		{name: "v0 member", version: 0, group: "g1", members: []string{m1}},
		{name: "v0 gone already", version: 0, group: "g1", members: []string{m1}, wantCode: kerr.UnknownMemberID.Code},
		{name: "v5 member and stranger", version: 5, group: "g2", members: []string{m2, "ghost"}, wantMembers: []int16{0, kerr.UnknownMemberID.Code}},
		{name: "empty group id", version: 5, group: "", members: []string{"x"}, wantCode: kerr.InvalidGroupID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group = tc.group
			if tc.version < 3 {
				req.MemberID = tc.members[0]
			} else {
				for _, m := range tc.members {
					req.Members = append(req.Members, kmsg.LeaveGroupRequestMember{MemberID: m})
				}
			}
			r := do[*kmsg.LeaveGroupResponse](f, tc.version, req)
			expectCode(t, "leave", r.ErrorCode, tc.wantCode)
			if len(r.Members) != len(tc.wantMembers) {
				t.Fatalf("%d member results, want %d", len(r.Members), len(tc.wantMembers))
			}
			for i, want := range tc.wantMembers {
				expectCode(t, "member "+r.Members[i].MemberID, r.Members[i].ErrorCode, want)
			}
		})
	}
	// Both groups are empty now.
	for _, g := range []string{"g1", "g2"} {
		if state := f.describeGroup(5, g).State; state != "Empty" {
			t.Errorf("group %s is %s after its member left, want Empty", g, state)
		}
	}
}
