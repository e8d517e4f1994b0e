package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (f *fixture) describeGroup(version int16, group string) kmsg.DescribeGroupsResponseGroup {
	f.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	req.IncludeAuthorizedOperations = true
	return do[*kmsg.DescribeGroupsResponse](f, version, req).Groups[0]
}

func TestDescribeGroups(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	member, _ := f.stableGroup("stable")
	// An empty group: offsets committed without members.
	f.commit(9, "simple", -1, "", "t", 0, 5)

	for _, tc := range []struct {
		name         string
		version      int16
		group        string
		wantCode     int16
		wantState    string
		wantProtocol string
		wantMembers  int
	}{
		{name: "stable", version: 5, group: "stable", wantState: "Stable", wantProtocol: "range", wantMembers: 1},
		{name: "stable v0", version: 0, group: "stable", wantState: "Stable", wantProtocol: "range", wantMembers: 1},
		{name: "without members", version: 5, group: "simple", wantState: "Empty"},
		{name: "unknown before v6", version: 5, group: "nope", wantState: "Dead"},
		{name: "unknown v6 (KIP-1043)", version: 6, group: "nope", wantCode: kerr.GroupIDNotFound.Code, wantState: "Dead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := f.describeGroup(tc.version, tc.group)
			expectCode(t, "describe", g.ErrorCode, tc.wantCode)
			if g.Group != tc.group || g.State != tc.wantState || g.Protocol != tc.wantProtocol || len(g.Members) != tc.wantMembers {
				t.Errorf("group %q state %q protocol %q, %d members; want %q %q %q, %d",
					g.Group, g.State, g.Protocol, len(g.Members), tc.group, tc.wantState, tc.wantProtocol, tc.wantMembers)
			}
			if tc.wantMembers > 0 {
				m := g.Members[0]
				if m.MemberID != member || string(m.MemberAssignment) != "assigned" || len(m.ProtocolMetadata) == 0 {
					t.Errorf("member %+v; want %s with its metadata and assignment", m, member)
				}
				if g.ProtocolType != "consumer" {
					t.Errorf("protocol type %q, want consumer", g.ProtocolType)
				}
			}
			if tc.version >= 3 && tc.wantCode == 0 && tc.wantState != "Dead" && g.AuthorizedOperations <= 0 {
				t.Errorf("authorized operations %d, asked for them", g.AuthorizedOperations)
			}
		})
	}
}
