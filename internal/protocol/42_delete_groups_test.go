package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteGroups(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.commit(9, "empty", -1, "", "t", 0, 5)
	f.stableGroup("busy")

	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{"empty", "busy", "nope"}
	r := do[*kmsg.DeleteGroupsResponse](f, 3, req)
	want := map[string]int16{
		"empty": 0,
		"busy":  kerr.NonEmptyGroup.Code,
		"nope":  kerr.GroupIDNotFound.Code,
	}
	if len(r.Groups) != len(want) {
		t.Fatalf("%d groups answered, want %d", len(r.Groups), len(want))
	}
	for _, g := range r.Groups {
		expectCode(t, "group "+g.Group, g.ErrorCode, want[g.Group])
		if (g.ErrorCode != 0) != (g.ErrorMessage != nil) {
			t.Errorf("group %q: error message %v with error %s (v3 has messages for errors)", g.Group, g.ErrorMessage, codeName(g.ErrorCode))
		}
	}
	// The deleted group's offsets went with it.
	if got := f.fetchOffset("empty", "t", 0).Offset; got != -1 {
		t.Errorf("offset of a deleted group %d, want -1", got)
	}
	if state := f.describeGroup(5, "empty").State; state != "Dead" {
		t.Errorf("deleted group is %s, want Dead", state)
	}
}
