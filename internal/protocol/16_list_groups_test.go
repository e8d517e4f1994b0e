package protocol_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestListGroups(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.stableGroup("stable")
	f.commit(9, "simple", -1, "", "t", 0, 5)
	f.consumerHeartbeat(1, "new", "m1", 0, "t")

	for _, tc := range []struct {
		name    string
		version int16
		states  []string
		types   []string
		want    []string // group@state@type (state from v4, type from v5)
	}{
		{name: "v0", version: 0, want: []string{"new@@", "simple@@", "stable@@"}},
		{name: "v5", version: 5, want: []string{"new@Stable@consumer", "simple@Empty@classic", "stable@Stable@classic"}},
		{name: "by state (case-insensitive)", version: 4, states: []string{"empty"}, want: []string{"simple@Empty@"}},
		{name: "by type", version: 5, types: []string{"consumer"}, want: []string{"new@Stable@consumer"}},
		{name: "by state and type", version: 5, states: []string{"Stable"}, types: []string{"classic"}, want: []string{"stable@Stable@classic"}},
		{name: "no match", version: 5, states: []string{"Dead"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrListGroupsRequest()
			req.StatesFilter, req.TypesFilter = tc.states, tc.types
			r := do[*kmsg.ListGroupsResponse](f, tc.version, req)
			expectCode(t, "list groups", r.ErrorCode, 0)
			var got []string
			for _, g := range r.Groups {
				got = append(got, g.Group+"@"+g.GroupState+"@"+g.GroupType)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("groups %v, want %v", got, tc.want)
			}
		})
	}
}
