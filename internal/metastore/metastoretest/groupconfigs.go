package metastoretest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func testGroupConfigs(t *testing.T, open func(t *testing.T) metastore.GroupConfigStore) {
	str := func(s string) *string { return &s }
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		if got, err := s.GroupConfigs(ctx, "g"); err != nil || len(got) != 0 {
			t.Fatalf("configs of a group with none: %v, %v", got, err)
		}
		got, err := s.AlterGroupConfigs(ctx, "g", []metastore.ConfigChange{
			{Name: "share.record.lock.duration.ms", Value: str("20000")},
			{Name: "share.delivery.count.limit", Value: str("3")},
			{Name: "share.delivery.count.limit", Value: str("4")},
		})
		want := map[string]string{"share.record.lock.duration.ms": "20000", "share.delivery.count.limit": "4"}
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("after setting: %v, %v; want %v", got, err, want)
		}
		if got, err := s.GroupConfigs(ctx, "g"); err != nil || !maps.Equal(got, want) {
			t.Fatalf("read back: %v, %v; want %v", got, err, want)
		}
		if got, err := s.GroupConfigs(ctx, "other"); err != nil || len(got) != 0 {
			t.Fatalf("another group: %v, %v", got, err)
		}
		got, err = s.AlterGroupConfigs(ctx, "g", []metastore.ConfigChange{{Name: "share.delivery.count.limit"}, {Name: "unset.one"}})
		want = map[string]string{"share.record.lock.duration.ms": "20000"}
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("after deleting: %v, %v; want %v", got, err, want)
		}
		if _, err := s.AlterGroupConfigs(ctx, "g", []metastore.ConfigChange{{Name: "share.record.lock.duration.ms"}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GroupConfigs(ctx, "g"); err != nil || len(got) != 0 {
			t.Fatalf("after deleting all: %v, %v", got, err)
		}
	})
	t.Run("Bounds", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		long := strings.Repeat("x", metastore.MaxGroupConfigBytes+1)
		for _, c := range []metastore.ConfigChange{{Name: long, Value: str("1")}, {Name: "a", Value: &long}, {Name: "", Value: str("1")}} {
			if _, err := s.AlterGroupConfigs(ctx, "g", []metastore.ConfigChange{{Name: "kept", Value: str("1")}, c}); !errors.Is(err, metastore.ErrInvalidGroupConfig) {
				t.Fatalf("a name of %d bytes, value %v: %v, want ErrInvalidGroupConfig", len(c.Name), c.Value != nil, err)
			}
		}
		var many []metastore.ConfigChange
		for i := range metastore.MaxGroupConfigs + 1 {
			many = append(many, metastore.ConfigChange{Name: fmt.Sprintf("c%d", i), Value: str("v")})
		}
		if _, err := s.AlterGroupConfigs(ctx, "g", many); !errors.Is(err, metastore.ErrInvalidGroupConfig) {
			t.Fatalf("%d configs: %v, want ErrInvalidGroupConfig", len(many), err)
		}
		if got, err := s.GroupConfigs(ctx, "g"); err != nil || len(got) != 0 {
			t.Fatalf("refused changes left %v, %v", got, err)
		}
	})
	t.Run("GroupsWithConfigs", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		list := func(limit int) []string {
			t.Helper()
			got, err := s.GroupsWithConfigs(ctx, limit)
			if err != nil {
				t.Fatalf("GroupsWithConfigs(%d): %v", limit, err)
			}
			return got
		}
		if got := list(10); len(got) != 0 {
			t.Fatalf("a store without configs lists %q", got)
		}
		for _, g := range []string{"bb", "b", "ab", "a\x00", "\xff", "c"} {
			if _, err := s.AlterGroupConfigs(ctx, g, []metastore.ConfigChange{{Name: "share.delivery.count.limit", Value: str("3")}}); err != nil {
				t.Fatal(err)
			}
		}
		// A change that deletes a config the group does not have
		// leaves it without configs, and unlisted.
		if _, err := s.AlterGroupConfigs(ctx, "none", []metastore.ConfigChange{{Name: "share.delivery.count.limit"}}); err != nil {
			t.Fatal(err)
		}
		// Shorter names first, one length's names in byte order.
		all := []string{"b", "c", "\xff", "a\x00", "ab", "bb"}
		if got := list(10); !slices.Equal(got, all) {
			t.Fatalf("listed %q, want %q", got, all)
		}
		if got := list(len(all)); !slices.Equal(got, all) {
			t.Fatalf("limit %d: %q, want %q", len(all), got, all)
		}
		if got := list(4); !slices.Equal(got, all[:4]) {
			t.Fatalf("limit 4: %q, want %q", got, all[:4])
		}
		for _, limit := range []int{0, -1} {
			if got := list(limit); len(got) != 0 {
				t.Fatalf("limit %d: %q", limit, got)
			}
		}
		// Deleting a group's last config unlists it; deleting one of
		// two does not.
		if _, err := s.AlterGroupConfigs(ctx, "c", []metastore.ConfigChange{{Name: "share.delivery.count.limit"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AlterGroupConfigs(ctx, "b", []metastore.ConfigChange{{Name: "share.record.lock.duration.ms", Value: str("20000")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AlterGroupConfigs(ctx, "b", []metastore.ConfigChange{{Name: "share.delivery.count.limit"}}); err != nil {
			t.Fatal(err)
		}
		want := []string{"b", "\xff", "a\x00", "ab", "bb"}
		if got := list(10); !slices.Equal(got, want) {
			t.Fatalf("after deleting c's only config: %q, want %q", got, want)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		// Changes of different configs of one group, all at once, all
		// kept: each change reads and writes the group atomically.
		s := open(t)
		ctx := t.Context()
		const n = 8
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AlterGroupConfigs(ctx, "g", []metastore.ConfigChange{{Name: fmt.Sprintf("c%d", i), Value: str("v")}}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got, err := s.GroupConfigs(ctx, "g"); err != nil || len(got) != n {
			t.Fatalf("after %d concurrent changes: %v, %v", n, got, err)
		}
	})
}
