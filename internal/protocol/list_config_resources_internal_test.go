package protocol

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

// manyConfiguredGroups is a Store whose only working method lists n
// groups with configs, as a store does: at most the limit asked for.
type manyConfiguredGroups struct {
	Store
	n      int
	limits []int
}

func (s *manyConfiguredGroups) GroupsWithConfigs(_ context.Context, limit int) ([]string, error) {
	s.limits = append(s.limits, limit)
	var out []string
	for i := range min(s.n, limit) {
		out = append(out, fmt.Sprintf("g%06d", i))
	}
	return out, nil
}

// TestListConfigResourcesGroupsBound: past maxListedGroups groups with
// configs, a response lists the first maxListedGroups and the agent
// logs a warning; at maxListedGroups, all are listed and nothing is
// logged. Building that many groups in a real store takes too long for
// a unit test.
func TestListConfigResourcesGroupsBound(t *testing.T) {
	for _, tc := range []struct {
		groups   int
		warnings int
	}{{maxListedGroups, 0}, {maxListedGroups + 1, 1}, {3 * maxListedGroups, 1}} {
		t.Run(fmt.Sprint(tc.groups), func(t *testing.T) {
			var logged bytes.Buffer
			store := &manyConfiguredGroups{n: tc.groups}
			h := &Handler{store: store, log: slog.New(slog.NewTextHandler(&logged, nil))}
			r := kmsg.NewPtrListConfigResourcesRequest()
			r.SetVersion(1)
			r.ResourceTypes = []int8{resourceGroup}
			reply, err := h.listConfigResources(t.Context(), &wire.Request{Req: r})
			if err != nil {
				t.Fatal(err)
			}
			resp := reply(t.Context()).(*kmsg.ListConfigResourcesResponse)
			if resp.ErrorCode != 0 || len(resp.ConfigResources) != maxListedGroups {
				t.Fatalf("code %d, %d resources, want %d", resp.ErrorCode, len(resp.ConfigResources), maxListedGroups)
			}
			if last := resp.ConfigResources[maxListedGroups-1]; last.Name != fmt.Sprintf("g%06d", maxListedGroups-1) || last.Type != resourceGroup {
				t.Fatalf("last listed %+v", last)
			}
			if len(store.limits) != 1 || store.limits[0] != maxListedGroups+1 {
				t.Fatalf("asked the store for %v groups, want one more than listed", store.limits)
			}
			if n := strings.Count(logged.String(), "level=WARN"); n != tc.warnings {
				t.Fatalf("%d warnings, want %d: %s", n, tc.warnings, logged.String())
			}
		})
	}
}
