package metastoretest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

func testGroups(t *testing.T, open func(t *testing.T) groupStore) {
	t.Run("OffsetsRoundTrip", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 3)
		b := createTopic(t, s, "b", 1)
		at := msTime(time.Now().Add(-time.Hour))
		in := []metastore.CommittedOffset{
			{TopicID: b.ID, Partition: 0, Offset: 42, LeaderEpoch: 7, Metadata: "consumer-1 was here", CommittedAt: at},
			{TopicID: a.ID, Partition: 2, Offset: 0, LeaderEpoch: -1},
			{TopicID: a.ID, Partition: 0, Offset: 1 << 40, LeaderEpoch: 0, Metadata: "ünïcödé"},
		}
		commitOffsets(t, s, "g", in...)
		sameOffsets(t, `FetchOffsets("g")`, fetchOffsets(t, s, "g"), sortedOffsets(in))

		// Names that share a prefix, and the empty name Kafka accepts for
		// offset commits, are groups of their own.
		commitOffsets(t, s, "gg", offset(a.ID, 1, 5))
		commitOffsets(t, s, "", offset(b.ID, 0, 6))
		sameOffsets(t, `FetchOffsets("g") after other groups`, fetchOffsets(t, s, "g"), sortedOffsets(in))
		sameOffsets(t, `FetchOffsets("gg")`, fetchOffsets(t, s, "gg"), []metastore.CommittedOffset{offset(a.ID, 1, 5)})
		sameOffsets(t, `FetchOffsets("")`, fetchOffsets(t, s, ""), []metastore.CommittedOffset{offset(b.ID, 0, 6)})

		// An empty commit is allowed and changes nothing.
		commitOffsets(t, s, "g")
		sameOffsets(t, "FetchOffsets after empty commit", fetchOffsets(t, s, "g"), sortedOffsets(in))
	})

	t.Run("OffsetsOverwrite", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 2)
		first := metastore.CommittedOffset{TopicID: a.ID, Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "old"}
		commitOffsets(t, s, "g", first, offset(a.ID, 1, 7))
		second := metastore.CommittedOffset{TopicID: a.ID, Partition: 0, Offset: 3, LeaderEpoch: -1}
		commitOffsets(t, s, "g", second)
		// Every field is replaced, metadata and epoch included, even by a
		// lower offset (a consumer may seek back).
		sameOffsets(t, "FetchOffsets", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{second, offset(a.ID, 1, 7)})
	})

	t.Run("OffsetsUnknownPartition", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 2)
		gone := createTopic(t, s, "gone", 1)
		if _, err := s.DeleteTopic(t.Context(), "gone"); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		before := []metastore.CommittedOffset{offset(a.ID, 0, 1)}
		commitOffsets(t, s, "g", before...)
		cases := []struct {
			name      string
			id        metastore.TopicID
			partition int32
		}{
			{"unknown topic", metastore.TopicID{9, 9, 9}, 0},
			{"deleted topic", gone.ID, 0},
			{"partition past the count", a.ID, 2},
			{"negative partition", a.ID, -1},
		}
		for _, tc := range cases {
			// The bad partition sits between good ones: nothing of the
			// call may be written, before it or after it.
			call := []metastore.CommittedOffset{offset(a.ID, 0, 100), offset(tc.id, tc.partition, 100), offset(a.ID, 1, 100)}
			for _, group := range []string{"g", "new"} {
				err := s.CommitOffsets(t.Context(), group, call)
				wantErr(t, fmt.Sprintf("%s: CommitOffsets(%q)", tc.name, group), err, metastore.ErrUnknownTopicOrPartition)
			}
			sameOffsets(t, tc.name+": existing group", fetchOffsets(t, s, "g"), before)
			sameOffsets(t, tc.name+": new group", fetchOffsets(t, s, "new"), nil)
		}
		if names := groupNames(listGroups(t, s)); !slices.Equal(names, []string{"g"}) {
			t.Errorf("ListGroups after failed commits: %q, want [g]", names)
		}
	})

	t.Run("FetchUnknownGroup", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 1)
		commitOffsets(t, s, "other", offset(a.ID, 0, 1))
		got, err := s.FetchOffsets(t.Context(), "nope")
		wantErr(t, "FetchOffsets of an unknown group", err, nil)
		if len(got) != 0 {
			t.Fatalf("FetchOffsets of an unknown group: %+v, want none", got)
		}
	})

	t.Run("DeleteOffsets", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 3)
		b := createTopic(t, s, "b", 1)
		commitOffsets(t, s, "g", offset(a.ID, 0, 1), offset(a.ID, 1, 2), offset(b.ID, 0, 3))
		commitOffsets(t, s, "h", offset(a.ID, 0, 4))
		err := s.DeleteOffsets(t.Context(), "g", []metastore.TopicPartition{
			{TopicID: a.ID, Partition: 0},
			{TopicID: b.ID, Partition: 0},
			{TopicID: a.ID, Partition: 2},                 // never committed
			{TopicID: metastore.TopicID{7}, Partition: 0}, // no such topic
		})
		wantErr(t, "DeleteOffsets", err, nil)
		sameOffsets(t, "g after DeleteOffsets", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(a.ID, 1, 2)})
		sameOffsets(t, "h after DeleteOffsets of g", fetchOffsets(t, s, "h"), []metastore.CommittedOffset{offset(a.ID, 0, 4)})

		err = s.DeleteOffsets(t.Context(), "nope", []metastore.TopicPartition{{TopicID: a.ID, Partition: 1}})
		wantErr(t, "DeleteOffsets of an unknown group", err, nil)
		wantErr(t, "DeleteOffsets of no partitions", s.DeleteOffsets(t.Context(), "g", nil), nil)
		sameOffsets(t, "g at the end", fetchOffsets(t, s, "g"), []metastore.CommittedOffset{offset(a.ID, 1, 2)})
	})

	t.Run("ExpireOffsets", func(t *testing.T) { testExpireOffsets(t, open(t)) })
	t.Run("OffsetsOfDeletedTopic", func(t *testing.T) { testOffsetsOfDeletedTopic(t, open(t)) })
	t.Run("SaveGroupVersions", func(t *testing.T) { testSaveGroupVersions(t, open(t)) })
	t.Run("GroupChangesProtocol", func(t *testing.T) { testGroupChangesProtocol(t, open(t)) })

	t.Run("LoadUnknownGroup", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 1)
		commitOffsets(t, s, "offsets-only", offset(a.ID, 0, 1))
		for _, name := range []string{"nope", "offsets-only", ""} {
			g, found, err := s.LoadGroup(t.Context(), name)
			wantErr(t, fmt.Sprintf("LoadGroup(%q)", name), err, nil)
			if found {
				t.Errorf("LoadGroup(%q) found %+v, want no record", name, g)
			}
		}
	})

	t.Run("ListGroups", func(t *testing.T) { testListGroups(t, open(t)) })
	t.Run("DeleteGroup", func(t *testing.T) { testDeleteGroup(t, open(t)) })
	t.Run("ConcurrentSave", func(t *testing.T) { testConcurrentSaveGroup(t, open) })
}

// testExpireOffsets expires one group's offsets step by step. Commit times
// are given explicitly, far apart, so that neither the store's clock nor its
// time precision matters.
func testExpireOffsets(t *testing.T, s groupStore) {
	a := createTopic(t, s, "a", 3)
	b := createTopic(t, s, "b", 1)
	now := msTime(time.Now())
	at := func(d time.Duration, id metastore.TopicID, partition int32) metastore.CommittedOffset {
		o := offset(id, partition, int64(partition)+10)
		o.CommittedAt = now.Add(d)
		return o
	}
	a0, a1, a2 := at(-3*time.Hour, a.ID, 0), at(-2*time.Hour, a.ID, 1), at(-time.Hour, a.ID, 2)
	b0 := offset(b.ID, 0, 20) // committed now, by the store's clock
	commitOffsets(t, s, "g", a0, a1, a2, b0)
	other := at(-3*time.Hour, a.ID, 0)
	commitOffsets(t, s, "h", other)

	steps := []struct {
		group     string
		olderThan time.Time
		removed   int
		left      []metastore.CommittedOffset
	}{
		// Strictly before: an offset committed at olderThan stays.
		{"g", now.Add(-2 * time.Hour), 1, []metastore.CommittedOffset{a1, a2, b0}},
		{"g", now.Add(-2 * time.Hour), 0, []metastore.CommittedOffset{a1, a2, b0}},
		{"g", now.Add(-90 * time.Minute), 1, []metastore.CommittedOffset{a2, b0}},
		{"g", now.Add(-clockSlack), 1, []metastore.CommittedOffset{b0}},
		{"nope", now.Add(time.Hour), 0, nil},
	}
	for i, step := range steps {
		what := fmt.Sprintf("step %d: ExpireOffsets(%q, %v)", i, step.group, step.olderThan)
		n, err := s.ExpireOffsets(t.Context(), step.group, step.olderThan)
		wantErr(t, what, err, nil)
		if n != step.removed {
			t.Errorf("%s removed %d offsets, want %d", what, n, step.removed)
		}
		sameOffsets(t, what, fetchOffsets(t, s, step.group), sortedOffsets(step.left))
	}
	sameOffsets(t, "other group", fetchOffsets(t, s, "h"), []metastore.CommittedOffset{other})

	// A later cut takes the rest, and the group is gone with its offsets.
	n, err := s.ExpireOffsets(t.Context(), "g", time.Now().Add(clockSlack))
	wantErr(t, "ExpireOffsets of the rest", err, nil)
	if n != 1 || len(fetchOffsets(t, s, "g")) != 0 {
		t.Errorf("ExpireOffsets of the rest removed %d, left %+v; want 1 removed, none left", n, fetchOffsets(t, s, "g"))
	}
	if names := groupNames(listGroups(t, s)); !slices.Equal(names, []string{"h"}) {
		t.Errorf("ListGroups after expiring all of g: %q, want [h]", names)
	}
}

// testOffsetsOfDeletedTopic checks that deleting a topic takes every
// group's offsets for it, and only those.
func testOffsetsOfDeletedTopic(t *testing.T, s groupStore) {
	ctx := t.Context()
	gone := createTopic(t, s, "gone", 2)
	kept := createTopic(t, s, "kept", 1)
	commitOffsets(t, s, "mixed", offset(gone.ID, 0, 1), offset(gone.ID, 1, 2), offset(kept.ID, 0, 3))
	commitOffsets(t, s, "only-gone", offset(gone.ID, 1, 4))
	commitOffsets(t, s, "with-record", offset(gone.ID, 0, 5))
	saveGroup(t, s, metastore.Group{Name: "with-record", ProtocolType: "consumer", State: "Stable"})

	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	sameOffsets(t, "mixed", fetchOffsets(t, s, "mixed"), []metastore.CommittedOffset{offset(kept.ID, 0, 3)})
	sameOffsets(t, "only-gone", fetchOffsets(t, s, "only-gone"), nil)
	sameOffsets(t, "with-record", fetchOffsets(t, s, "with-record"), nil)
	// A group left with neither offsets nor a record is no longer listed.
	want := []metastore.GroupSummary{
		{Name: "mixed", ProtocolType: "consumer", State: "Empty"},
		{Name: "with-record", ProtocolType: "consumer", State: "Stable"},
	}
	if got := listGroups(t, s); !slices.Equal(got, want) {
		t.Errorf("ListGroups after DeleteTopic: %+v, want %+v", got, want)
	}

	// A new incarnation of the name starts without offsets, and the old
	// ID cannot be committed to.
	again := createTopic(t, s, "gone", 2)
	err := s.CommitOffsets(ctx, "mixed", []metastore.CommittedOffset{offset(gone.ID, 0, 9)})
	wantErr(t, "CommitOffsets to the deleted topic ID", err, metastore.ErrUnknownTopicOrPartition)
	commitOffsets(t, s, "mixed", offset(again.ID, 1, 7))
	sameOffsets(t, "mixed after re-create", fetchOffsets(t, s, "mixed"),
		sortedOffsets([]metastore.CommittedOffset{offset(kept.ID, 0, 3), offset(again.ID, 1, 7)}))
}

// testSaveGroupVersions walks one group through a sequence of saves, each
// either accepted with the next version or rejected without a trace.
func testSaveGroupVersions(t *testing.T, s groupStore) {
	explicit := msTime(time.Now().Add(-time.Minute))
	steps := []struct {
		name    string
		g       metastore.Group
		version int64 // wanted new version; 0 for a conflict
	}{
		{"create", metastore.Group{ProtocolType: "consumer", State: "Stable", Data: []byte{1, 2, 3}}, 1},
		{"create twice", metastore.Group{ProtocolType: "consumer", State: "Empty", Data: []byte{9}}, 0},
		{"update", metastore.Group{ProtocolType: "consumer", State: "PreparingRebalance", Data: []byte{4}, Version: 1}, 2},
		{"stale", metastore.Group{ProtocolType: "consumer", State: "Dead", Data: []byte{9}, Version: 1}, 0},
		{"ahead", metastore.Group{State: "Dead", Version: 7}, 0},
		{"negative", metastore.Group{State: "Dead", Version: -1}, 0},
		{"empty fields", metastore.Group{State: "Empty", Version: 2}, 3},
		// A zero UpdatedAt is set by the store's clock; a given one is kept.
		{"given UpdatedAt", metastore.Group{ProtocolType: "connect", State: "Stable", Data: []byte{5}, Version: 3, UpdatedAt: explicit}, 4},
	}
	var stored metastore.Group // the last accepted save
	for _, step := range steps {
		g := step.g
		g.Name = "g"
		v, err := s.SaveGroup(t.Context(), g)
		if step.version == 0 {
			wantErr(t, step.name+": SaveGroup", err, metastore.ErrGroupVersionConflict)
		} else {
			wantErr(t, step.name+": SaveGroup", err, nil)
			if v != step.version {
				t.Fatalf("%s: SaveGroup returned version %d, want %d", step.name, v, step.version)
			}
			stored = g
			stored.Data = bytes.Clone(g.Data)
			stored.Version = v
			// The store must not keep the caller's slice.
			for i := range g.Data {
				g.Data[i] = 0xff
			}
		}
		got, found, err := s.LoadGroup(t.Context(), "g")
		wantErr(t, step.name+": LoadGroup", err, nil)
		if !found {
			t.Fatalf("%s: LoadGroup found no record", step.name)
		}
		sameGroup(t, step.name+": LoadGroup", got, stored)
	}
}

func testListGroups(t *testing.T, s groupStore) {
	if got := listGroups(t, s); len(got) != 0 {
		t.Fatalf("ListGroups of a new store: %+v", got)
	}
	a := createTopic(t, s, "a", 1)
	for _, g := range []metastore.Group{
		{Name: "b", ProtocolType: "consumer", State: "Stable"},
		{Name: "d", ProtocolType: "connect", State: "Empty"},
		{Name: "c", ProtocolType: "", State: "Dead"},
		{Name: "B", ProtocolType: "consumer", State: "CompletingRebalance"},
	} {
		saveGroup(t, s, g)
	}
	for _, name := range []string{"bb", "c", "", "a", "b", "gone"} {
		commitOffsets(t, s, name, offset(a.ID, 0, 1))
	}
	if err := s.DeleteOffsets(t.Context(), "gone", []metastore.TopicPartition{{TopicID: a.ID}}); err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	// A record's fields win over offsets; groups with offsets only are
	// Empty consumer groups; a group with neither is not listed. The order
	// is byte order, as for topics.
	want := []metastore.GroupSummary{
		{Name: "", ProtocolType: "consumer", State: "Empty"},
		{Name: "B", ProtocolType: "consumer", State: "CompletingRebalance"},
		{Name: "a", ProtocolType: "consumer", State: "Empty"},
		{Name: "b", ProtocolType: "consumer", State: "Stable"},
		{Name: "bb", ProtocolType: "consumer", State: "Empty"},
		{Name: "c", ProtocolType: "", State: "Dead"},
		{Name: "d", ProtocolType: "connect", State: "Empty"},
	}
	if got := listGroups(t, s); !slices.Equal(got, want) {
		t.Fatalf("ListGroups:\n got %+v\nwant %+v", got, want)
	}
}

func testDeleteGroup(t *testing.T, s groupStore) {
	ctx := t.Context()
	a := createTopic(t, s, "a", 2)
	keepOffsets := []metastore.CommittedOffset{offset(a.ID, 0, 1), offset(a.ID, 1, 2)}
	commitOffsets(t, s, "keep", keepOffsets...)
	keep := metastore.Group{Name: "keep", ProtocolType: "consumer", State: "Stable", Data: []byte("k")}
	keep.Version = saveGroup(t, s, keep)

	cases := []struct {
		name            string
		record, offsets bool
		err             error
	}{
		{"record-and-offsets", true, true, nil},
		{"record-only", true, false, nil},
		{"offsets-only", false, true, nil},
		{"neither", false, false, metastore.ErrUnknownGroup},
		{"kee", false, false, metastore.ErrUnknownGroup}, // a prefix of another group
	}
	for _, tc := range cases {
		if tc.record {
			saveGroup(t, s, metastore.Group{Name: tc.name, ProtocolType: "consumer", State: "Empty"})
		}
		if tc.offsets {
			commitOffsets(t, s, tc.name, offset(a.ID, 0, 5), offset(a.ID, 1, 6))
		}
		wantErr(t, tc.name+": DeleteGroup", s.DeleteGroup(ctx, tc.name), tc.err)

		if _, found, err := s.LoadGroup(ctx, tc.name); err != nil || found {
			t.Errorf("%s: LoadGroup after delete: found %v, %v", tc.name, found, err)
		}
		sameOffsets(t, tc.name+": FetchOffsets after delete", fetchOffsets(t, s, tc.name), nil)
		if slices.Contains(groupNames(listGroups(t, s)), tc.name) {
			t.Errorf("%s: still listed after delete", tc.name)
		}
		wantErr(t, tc.name+": second DeleteGroup", s.DeleteGroup(ctx, tc.name), metastore.ErrUnknownGroup)
		// The name can be used again from scratch.
		if v, err := s.SaveGroup(ctx, metastore.Group{Name: tc.name, State: "Empty"}); err != nil || v != 1 {
			t.Errorf("%s: SaveGroup with version 0 after delete: version %d, %v; want 1", tc.name, v, err)
		}
		wantErr(t, tc.name+": cleanup", s.DeleteGroup(ctx, tc.name), nil)
	}

	got, found, err := s.LoadGroup(ctx, "keep")
	wantErr(t, "LoadGroup(keep)", err, nil)
	if !found {
		t.Fatal("the other group's record was deleted")
	}
	sameGroup(t, "other group", got, keep)
	sameOffsets(t, "other group's offsets", fetchOffsets(t, s, "keep"), keepOffsets)
}

// testConcurrentSaveGroup races coordinators that all believe they own a
// group at the same version: exactly one may win.
func testConcurrentSaveGroup(t *testing.T, open func(t *testing.T) groupStore) {
	const writers = 8
	cases := []struct {
		name  string
		prior int // saves before the race, so the racers expect this version
	}{
		{"create", 0},
		{"update", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			for i := range tc.prior {
				saveGroup(t, s, metastore.Group{Name: "g", State: "Stable", Version: int64(i)})
			}
			expected := int64(tc.prior)
			var (
				start   = make(chan struct{})
				wg      sync.WaitGroup
				mu      sync.Mutex
				winners []int
			)
			for w := range writers {
				wg.Go(func() {
					<-start
					v, err := s.SaveGroup(t.Context(), metastore.Group{
						Name: "g", State: "Stable", Data: []byte{byte(w)}, Version: expected,
					})
					switch {
					case err == nil && v == expected+1:
						mu.Lock()
						winners = append(winners, w)
						mu.Unlock()
					case err == nil:
						t.Errorf("writer %d: SaveGroup returned version %d, want %d", w, v, expected+1)
					default:
						wantErrNoFatal(t, fmt.Sprintf("writer %d: SaveGroup", w), err, metastore.ErrGroupVersionConflict)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(winners) != 1 {
				t.Fatalf("%d writers won (%v), want exactly 1", len(winners), winners)
			}
			got, found, err := s.LoadGroup(t.Context(), "g")
			wantErr(t, "LoadGroup", err, nil)
			if !found || got.Version != expected+1 || !bytes.Equal(got.Data, []byte{byte(winners[0])}) {
				t.Fatalf("LoadGroup: found %v, %+v; want version %d with writer %d's data", found, got, expected+1, winners[0])
			}
		})
	}
}

// offset is a committed offset without leader epoch or metadata.
func offset(id metastore.TopicID, partition int32, off int64) metastore.CommittedOffset {
	return metastore.CommittedOffset{TopicID: id, Partition: partition, Offset: off, LeaderEpoch: -1}
}

// msTime truncates to milliseconds, which every backend stores exactly.
func msTime(ts time.Time) time.Time {
	return ts.Truncate(time.Millisecond)
}

func commitOffsets(t *testing.T, s metastore.GroupStore, group string, offsets ...metastore.CommittedOffset) {
	t.Helper()
	if err := s.CommitOffsets(t.Context(), group, offsets); err != nil {
		t.Fatalf("CommitOffsets(%q): %v", group, err)
	}
}

func fetchOffsets(t *testing.T, s metastore.GroupStore, group string) []metastore.CommittedOffset {
	t.Helper()
	offsets, err := s.FetchOffsets(t.Context(), group)
	if err != nil {
		t.Fatalf("FetchOffsets(%q): %v", group, err)
	}
	return offsets
}

// saveGroup saves g, which must succeed, and returns the new version.
func saveGroup(t *testing.T, s metastore.GroupStore, g metastore.Group) int64 {
	t.Helper()
	v, err := s.SaveGroup(t.Context(), g)
	if err != nil {
		t.Fatalf("SaveGroup(%q, version %d): %v", g.Name, g.Version, err)
	}
	return v
}

func listGroups(t *testing.T, s metastore.GroupStore) []metastore.GroupSummary {
	t.Helper()
	groups, err := s.ListGroups(t.Context())
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	return groups
}

func groupNames(groups []metastore.GroupSummary) []string {
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	return names
}

// sortedOffsets returns a copy of offsets in FetchOffsets' order.
func sortedOffsets(offsets []metastore.CommittedOffset) []metastore.CommittedOffset {
	sorted := slices.Clone(offsets)
	slices.SortFunc(sorted, func(a, b metastore.CommittedOffset) int {
		return cmp.Or(bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
	})
	return sorted
}

// sameOffsets compares committed offsets in order. A wanted CommittedAt of
// zero means the store's clock set it, so it only has to be recent; any
// other must be returned as the same instant.
func sameOffsets(t *testing.T, what string, got, want []metastore.CommittedOffset) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d offsets %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.TopicID != w.TopicID || g.Partition != w.Partition || g.Offset != w.Offset ||
			g.LeaderEpoch != w.LeaderEpoch || g.Metadata != w.Metadata {
			t.Fatalf("%s: offset %d is %+v, want %+v", what, i, g, w)
		}
		if w.CommittedAt.IsZero() {
			recent(t, fmt.Sprintf("%s: offset %d CommittedAt", what, i), g.CommittedAt)
		} else if !g.CommittedAt.Equal(w.CommittedAt) {
			t.Fatalf("%s: offset %d committed at %v, want %v", what, i, g.CommittedAt, w.CommittedAt)
		}
	}
}

// sameGroup compares group records: nil and empty data are the same, and
// a wanted UpdatedAt of zero only has to be recent.
func sameGroup(t *testing.T, what string, got, want metastore.Group) {
	t.Helper()
	if got.Name != want.Name || got.ProtocolType != want.ProtocolType || got.State != want.State ||
		!bytes.Equal(got.Data, want.Data) || got.Version != want.Version {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
	if want.UpdatedAt.IsZero() {
		recent(t, what+": UpdatedAt", got.UpdatedAt)
	} else if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("%s: UpdatedAt %v, want %v", what, got.UpdatedAt, want.UpdatedAt)
	}
}

// wantErrNoFatal is wantErr for goroutines other than the test's, which
// must not call t.Fatal.
func wantErrNoFatal(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// testGroupChangesProtocol saves the records of a group migrated online
// between the classic and the consumer protocol (KIP-848): the record's
// encoding and state change from one save to the next, a consumer group
// with many classic members is large, and each save compares the version
// the previous one returned. What a restarted coordinator loads is the
// last record, byte for byte.
func testGroupChangesProtocol(t *testing.T, s groupStore) {
	big := bytes.Repeat([]byte(`{"id":"member","classic":{"protocols":[{"name":"range","metadata":"AAEAAAABAAF0"}]}},`), 4000)
	steps := []metastore.Group{
		{ProtocolType: "consumer", State: "Stable", Data: []byte(`{"state":"Stable","generation":3}`)},
		{ProtocolType: "consumer", State: "Reconciling", Data: append([]byte(`{"group_type":"consumer","members":[`), big...)},
		{ProtocolType: "consumer", State: "PreparingRebalance", Data: []byte(`{"state":"PreparingRebalance","generation":9}`)},
	}
	var version int64
	for i, g := range steps {
		g.Name, g.Version = "migrating", version
		v, err := s.SaveGroup(t.Context(), g)
		wantErr(t, fmt.Sprintf("step %d: SaveGroup", i), err, nil)
		if v != version+1 {
			t.Fatalf("step %d: SaveGroup returned version %d, want %d", i, v, version+1)
		}
		version = v
		got, found, err := s.LoadGroup(t.Context(), "migrating")
		wantErr(t, fmt.Sprintf("step %d: LoadGroup", i), err, nil)
		if !found || got.Version != v || got.State != g.State || got.ProtocolType != g.ProtocolType || !bytes.Equal(got.Data, g.Data) {
			t.Fatalf("step %d: LoadGroup found %v: version %d state %q type %q, %d bytes (want %d)",
				i, found, got.Version, got.State, got.ProtocolType, len(got.Data), len(g.Data))
		}
	}
	// A coordinator that loaded the consumer record before the downgrade
	// cannot save over it.
	stale := steps[1]
	stale.Name, stale.Version = "migrating", 2
	_, err := s.SaveGroup(t.Context(), stale)
	wantErr(t, "stale SaveGroup", err, metastore.ErrGroupVersionConflict)
}
