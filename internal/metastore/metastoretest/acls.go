package metastoretest

import (
	"slices"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// testACLs covers ACL bindings: a set that moves its version on every
// change and only then.
func testACLs(t *testing.T, open func(t *testing.T) metastore.ACLStore) {
	read := func(t *testing.T, s metastore.ACLStore) ([]metastore.ACL, int64) {
		t.Helper()
		acls, v, err := s.ACLs(t.Context())
		if err != nil {
			t.Fatalf("ACLs: %v", err)
		}
		if v2, err := s.ACLVersion(t.Context()); err != nil || v2 != v {
			t.Fatalf("ACLVersion = %d, %v; ACLs said %d", v2, err, v)
		}
		return acls, v
	}
	alice := metastore.ACL{ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}
	bobPrefix := metastore.ACL{ResourceType: 2, ResourceName: "logs-", PatternType: 4, Principal: "User:bob", Host: "10.0.0.1", Operation: 4, Permission: 3}
	denyAll := metastore.ACL{ResourceType: 3, ResourceName: "*", PatternType: 3, Principal: "User:*", Host: "*", Operation: 2, Permission: 2}

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		if acls, v := read(t, s); len(acls) != 0 || v != 0 {
			t.Fatalf("new store: %v at version %d, want none at 0", acls, v)
		}
		if got, err := s.DeleteACLs(t.Context(), []metastore.ACL{alice}); err != nil || len(got) != 0 {
			t.Fatalf("DeleteACLs on an empty store: %v, %v", got, err)
		}
		if _, v := read(t, s); v != 0 {
			t.Fatalf("version %d after deleting nothing, want 0", v)
		}
	})

	t.Run("CreateDelete", func(t *testing.T) {
		s := open(t)
		if err := s.CreateACLs(t.Context(), []metastore.ACL{denyAll, alice, bobPrefix, alice}); err != nil {
			t.Fatalf("CreateACLs: %v", err)
		}
		want := metastore.SortACLs([]metastore.ACL{alice, bobPrefix, denyAll})
		acls, v1 := read(t, s)
		if !slices.Equal(acls, want) || v1 <= 0 {
			t.Fatalf("ACLs = %v at %d, want %v at > 0", acls, v1, want)
		}
		// Creating what exists changes nothing, not even the version.
		if err := s.CreateACLs(t.Context(), []metastore.ACL{alice}); err != nil {
			t.Fatalf("CreateACLs again: %v", err)
		}
		if acls, v := read(t, s); !slices.Equal(acls, want) || v != v1 {
			t.Fatalf("after a repeated create: %v at %d, want %v at %d", acls, v, want, v1)
		}
		// A binding differing in one field is another binding.
		aliceDeny := alice
		aliceDeny.Permission = 2
		gone, err := s.DeleteACLs(t.Context(), []metastore.ACL{aliceDeny, bobPrefix})
		if err != nil || !slices.Equal(gone, []metastore.ACL{bobPrefix}) {
			t.Fatalf("DeleteACLs = %v, %v; want [%v]", gone, err, bobPrefix)
		}
		acls, v2 := read(t, s)
		if want := metastore.SortACLs([]metastore.ACL{alice, denyAll}); !slices.Equal(acls, want) || v2 <= v1 {
			t.Fatalf("after delete: %v at %d, want %v after %d", acls, v2, want, v1)
		}
	})

	t.Run("Text", func(t *testing.T) {
		s := open(t)
		odd := metastore.ACL{ResourceType: 5, ResourceName: "tx-é/ü", PatternType: 3, Principal: "User:CN=a,O=b", Host: "::1", Operation: 12, Permission: 3}
		empty := metastore.ACL{ResourceType: 4, ResourceName: "kafka-cluster", PatternType: 3, Principal: "User:", Host: "*", Operation: 7, Permission: 3}
		if err := s.CreateACLs(t.Context(), []metastore.ACL{odd, empty}); err != nil {
			t.Fatalf("CreateACLs: %v", err)
		}
		if acls, _ := read(t, s); !slices.Equal(acls, metastore.SortACLs([]metastore.ACL{odd, empty})) {
			t.Fatalf("ACLs = %+v", acls)
		}
	})

	t.Run("ConcurrentChanges", func(t *testing.T) {
		s := open(t)
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			wg.Go(func() {
				a := alice
				a.ResourceName = string(rune('a' + i))
				errs[i] = s.CreateACLs(t.Context(), []metastore.ACL{a})
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("CreateACLs: %v", err)
			}
		}
		acls, v := read(t, s)
		if len(acls) != writers || v < writers {
			t.Fatalf("%d acls at version %d after %d concurrent creates", len(acls), v, writers)
		}
	})
}
