package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestHeartbeat(t *testing.T) {
	f := start(t)
	member, gen := f.stableGroup("g")
	for _, tc := range []struct {
		name       string
		group      string
		member     string
		generation int32
		wantCode   int16
	}{
		{name: "member", group: "g", member: member, generation: gen},
		{name: "old generation", group: "g", member: member, generation: gen + 5, wantCode: kerr.IllegalGeneration.Code},
		{name: "unknown member", group: "g", member: "ghost", generation: gen, wantCode: kerr.UnknownMemberID.Code},
		// Kafka 4 answers a group it does not know UNKNOWN_MEMBER_ID.
		{name: "unknown group", group: "nope", member: member, generation: gen, wantCode: kerr.UnknownMemberID.Code},
		{name: "empty group id", group: "", member: member, generation: gen, wantCode: kerr.InvalidGroupID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID, req.Generation = tc.group, tc.member, tc.generation
			expectCode(t, "heartbeat", do[*kmsg.HeartbeatResponse](f, 4, req).ErrorCode, tc.wantCode)
		})
	}
}
