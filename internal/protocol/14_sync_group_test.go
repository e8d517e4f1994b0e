package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSyncGroup(t *testing.T) {
	f := start(t)
	member, gen := f.stableGroup("g")
	for _, tc := range []struct {
		name       string
		version    int16
		group      string
		member     string
		generation int32
		protocol   string
		wantCode   int16
	}{
		// A member of a Stable group syncing again gets its assignment.
		{name: "member", version: 5, group: "g", member: member, generation: gen, protocol: "range"},
		{name: "v0", version: 0, group: "g", member: member, generation: gen},
		{name: "old generation", version: 5, group: "g", member: member, generation: gen + 1, protocol: "range", wantCode: kerr.IllegalGeneration.Code},
		{name: "unknown member", version: 5, group: "g", member: "ghost", generation: gen, protocol: "range", wantCode: kerr.UnknownMemberID.Code},
		{name: "unknown group", version: 5, group: "nope", member: member, generation: gen, protocol: "range", wantCode: kerr.UnknownMemberID.Code},
		{name: "other protocol (v5)", version: 5, group: "g", member: member, generation: gen, protocol: "roundrobin", wantCode: kerr.InconsistentGroupProtocol.Code},
		{name: "empty group id", version: 5, group: "", member: member, generation: gen, protocol: "range", wantCode: kerr.InvalidGroupID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.MemberID, req.Generation = tc.group, tc.member, tc.generation
			if tc.version >= 5 {
				req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr(tc.protocol)
			}
			r := do[*kmsg.SyncGroupResponse](f, tc.version, req)
			expectCode(t, "sync", r.ErrorCode, tc.wantCode)
			if tc.wantCode == 0 && string(r.MemberAssignment) != "assigned" {
				t.Errorf("assignment %q, want the leader's", r.MemberAssignment)
			}
			if tc.wantCode == 0 && tc.version >= 5 && (r.ProtocolType == nil || *r.ProtocolType != "consumer" || r.Protocol == nil || *r.Protocol != "range") {
				t.Errorf("protocol type %v, protocol %v; want consumer, range", r.ProtocolType, r.Protocol)
			}
		})
	}
}
