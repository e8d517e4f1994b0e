package metastoretest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// shareStore writes share-partition states of topics it creates and
// deletes.
type shareStore interface {
	metastore.ShareStore
	metastore.TopicStore
}

func testShares(t *testing.T, open func(t *testing.T) shareStore) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 3)
		b := createTopic(t, s, "b", 1)
		if got := loadShares(t, s, "g"); len(got) != 0 {
			t.Fatalf("LoadShareStates of an unknown group = %+v, want none", got)
		}
		at := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
		in := []metastore.ShareState{
			{TopicID: b.ID, Partition: 0, StateEpoch: 3, StartOffset: 1 << 40, UpdatedAt: at, Batches: []metastore.ShareBatch{
				{First: 1 << 40, Last: 1<<40 + 9, State: metastore.ShareAvailable, DeliveryCount: 2},
				{First: 1<<40 + 10, Last: 1<<40 + 10, State: metastore.ShareAcknowledged, DeliveryCount: 1},
				{First: 1<<40 + 12, Last: 1<<40 + 20, State: metastore.ShareArchived, DeliveryCount: 32767},
			}},
			{TopicID: a.ID, Partition: 2, StartOffset: 0},
			{TopicID: a.ID, Partition: 0, StateEpoch: 1, StartOffset: 7, Batches: []metastore.ShareBatch{
				{First: 8, Last: 8, State: metastore.ShareAcknowledged, DeliveryCount: 1},
			}},
		}
		versions := writeShares(t, s, "g", in...)
		if !slices.Equal(versions, []int64{1, 1, 1}) {
			t.Fatalf("versions %v, want [1 1 1]", versions)
		}
		// Names that share a prefix are groups of their own.
		writeShares(t, s, "gg", metastore.ShareState{TopicID: a.ID, Partition: 1, StartOffset: 5})
		writeShares(t, s, "", metastore.ShareState{TopicID: b.ID, Partition: 0, StartOffset: 6})
		want := slices.Clone(in)
		for i := range want {
			want[i].Version = 1
		}
		metastore.SortShareStates(want)
		sameShares(t, `LoadShareStates("g")`, loadShares(t, s, "g"), want)
		sameShares(t, `LoadShareStates("gg")`, loadShares(t, s, "gg"), []metastore.ShareState{{TopicID: a.ID, Partition: 1, StartOffset: 5, Version: 1}})
		for _, st := range loadShares(t, s, "g") {
			if st.TopicID == b.ID && !st.UpdatedAt.Equal(at) {
				t.Errorf("UpdatedAt %v, want %v kept", st.UpdatedAt, at)
			}
			if st.TopicID == a.ID {
				recent(t, "UpdatedAt set by the store", st.UpdatedAt)
			}
		}
		// An empty write is allowed and changes nothing.
		if v := writeShares(t, s, "g"); len(v) != 0 {
			t.Fatalf("empty write returned %v", v)
		}
		sameShares(t, "after an empty write", loadShares(t, s, "g"), want)
	})

	t.Run("CompareAndSet", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 2)
		p0 := metastore.ShareState{TopicID: a.ID, Partition: 0, StartOffset: 10}
		p1 := metastore.ShareState{TopicID: a.ID, Partition: 1, StartOffset: 20}
		writeShares(t, s, "g", p0, p1)
		// Writing version 0 again: another coordinator created it first.
		_, err := s.WriteShareStates(t.Context(), "g", []metastore.ShareState{p0})
		wantErr(t, "WriteShareStates over version 0 again", err, metastore.ErrShareVersionConflict)
		p0.Version, p0.StartOffset = 1, 11
		if v := writeShares(t, s, "g", p0); v[0] != 2 {
			t.Fatalf("version after second write %d, want 2", v[0])
		}
		// A stale version on one partition fails the whole call: p1's
		// good version is not written either.
		p1.Version, p1.StartOffset = 1, 25
		stale := p0 // version 1, stored 2
		stale.StartOffset = 99
		_, err = s.WriteShareStates(t.Context(), "g", []metastore.ShareState{p1, stale})
		wantErr(t, "WriteShareStates with one stale version", err, metastore.ErrShareVersionConflict)
		sameShares(t, "after the failed write", loadShares(t, s, "g"), []metastore.ShareState{
			{TopicID: a.ID, Partition: 0, StartOffset: 11, Version: 2},
			{TopicID: a.ID, Partition: 1, StartOffset: 20, Version: 1},
		})
		// A version ahead of the store is a conflict too.
		p1.Version = 5
		_, err = s.WriteShareStates(t.Context(), "g", []metastore.ShareState{p1})
		wantErr(t, "WriteShareStates with a future version", err, metastore.ErrShareVersionConflict)
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		// Agents that both believe they own a share partition write over
		// the same version: exactly one wins each round.
		s := open(t)
		a := createTopic(t, s, "a", 1)
		version := writeShares(t, s, "g", metastore.ShareState{TopicID: a.ID, Partition: 0})[0]
		const writers, rounds = 4, 5
		for round := range rounds {
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				wins []int64
			)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					v, err := s.WriteShareStates(t.Context(), "g", []metastore.ShareState{{TopicID: a.ID, Partition: 0, StartOffset: int64(round*writers + w), Version: version}})
					switch {
					case err == nil:
						mu.Lock()
						wins = append(wins, v[0])
						mu.Unlock()
					case !errors.Is(err, metastore.ErrShareVersionConflict):
						t.Errorf("writer %d: %v", w, err)
					}
				}()
			}
			wg.Wait()
			if len(wins) != 1 || wins[0] != version+1 {
				t.Fatalf("round %d: winners' versions %v, want exactly [%d]", round, wins, version+1)
			}
			version = wins[0]
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 2)
		gone := createTopic(t, s, "gone", 1)
		if _, err := s.DeleteTopic(t.Context(), "gone"); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		ok := metastore.ShareState{TopicID: a.ID, Partition: 0, StartOffset: 5}
		for _, c := range []struct {
			name string
			st   metastore.ShareState
			want error
		}{
			{"unknown partition", metastore.ShareState{TopicID: a.ID, Partition: 2}, metastore.ErrUnknownTopicOrPartition},
			{"negative partition", metastore.ShareState{TopicID: a.ID, Partition: -1}, metastore.ErrUnknownTopicOrPartition},
			{"deleted topic", metastore.ShareState{TopicID: gone.ID, Partition: 0}, metastore.ErrUnknownTopicOrPartition},
			{"negative start", metastore.ShareState{TopicID: a.ID, Partition: 1, StartOffset: -1}, metastore.ErrInvalidShareState},
			{"batch below start", metastore.ShareState{TopicID: a.ID, Partition: 1, StartOffset: 5, Batches: []metastore.ShareBatch{{First: 4, Last: 6}}}, metastore.ErrInvalidShareState},
			{"reversed batch", metastore.ShareState{TopicID: a.ID, Partition: 1, Batches: []metastore.ShareBatch{{First: 3, Last: 2}}}, metastore.ErrInvalidShareState},
			{"overlapping", metastore.ShareState{TopicID: a.ID, Partition: 1, Batches: []metastore.ShareBatch{{First: 0, Last: 2}, {First: 2, Last: 3}}}, metastore.ErrInvalidShareState},
			{"acquired state", metastore.ShareState{TopicID: a.ID, Partition: 1, Batches: []metastore.ShareBatch{{First: 0, Last: 0, State: 1}}}, metastore.ErrInvalidShareState},
			{"negative count", metastore.ShareState{TopicID: a.ID, Partition: 1, Batches: []metastore.ShareBatch{{First: 0, Last: 0, DeliveryCount: -1}}}, metastore.ErrInvalidShareState},
			{"window too wide", metastore.ShareState{TopicID: a.ID, Partition: 1, Batches: []metastore.ShareBatch{{First: 0, Last: metastore.MaxShareWindow}}}, metastore.ErrInvalidShareState},
			{"partition twice", ok, metastore.ErrInvalidShareState},
		} {
			t.Run(c.name, func(t *testing.T) {
				// Each call also carries a good state, which must not be
				// written either.
				_, err := s.WriteShareStates(t.Context(), "g", []metastore.ShareState{ok, c.st})
				wantErr(t, fmt.Sprintf("WriteShareStates(%+v)", c.st), err, c.want)
				if err == nil {
					t.Fatal("accepted")
				}
				if got := loadShares(t, s, "g"); len(got) != 0 {
					t.Fatalf("a failed write left %+v", got)
				}
			})
		}
	})

	t.Run("List", func(t *testing.T) { testListShareGroups(t, open) })
	t.Run("Membership", func(t *testing.T) { testShareGroupRecords(t, open(t)) })
	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		a := createTopic(t, s, "a", 3)
		b := createTopic(t, s, "b", 1)
		all := []metastore.ShareState{
			{TopicID: a.ID, Partition: 0}, {TopicID: a.ID, Partition: 1}, {TopicID: a.ID, Partition: 2}, {TopicID: b.ID, Partition: 0},
		}
		writeShares(t, s, "g", all...)
		writeShares(t, s, "h", all...)
		if err := s.DeleteShareStates(t.Context(), "g", []metastore.TopicPartition{{TopicID: a.ID, Partition: 1}, {TopicID: a.ID, Partition: 9}}); err != nil {
			t.Fatalf("DeleteShareStates: %v", err)
		}
		if got := loadShares(t, s, "g"); len(got) != 3 || slices.ContainsFunc(got, func(st metastore.ShareState) bool { return st.TopicID == a.ID && st.Partition == 1 }) {
			t.Fatalf("after deleting a-1: %+v", got)
		}
		if err := s.DeleteShareStates(t.Context(), "g", []metastore.TopicPartition{}); err != nil {
			t.Fatalf("DeleteShareStates(empty): %v", err)
		}
		if got := loadShares(t, s, "g"); len(got) != 3 {
			t.Fatalf("an empty partition list deleted something: %d left", len(got))
		}
		// Deleting a topic deletes every group's states of it.
		if _, err := s.DeleteTopic(t.Context(), "a"); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		for _, g := range []string{"g", "h"} {
			if got := loadShares(t, s, g); len(got) != 1 || got[0].TopicID != b.ID {
				t.Fatalf("%s after DeleteTopic(a): %+v", g, got)
			}
		}
		// A deleted state starts again from version 0.
		if err := s.DeleteShareStates(t.Context(), "g", nil); err != nil {
			t.Fatalf("DeleteShareStates(all): %v", err)
		}
		if got := loadShares(t, s, "g"); len(got) != 0 {
			t.Fatalf("after deleting all: %+v", got)
		}
		if got := loadShares(t, s, "h"); len(got) != 1 {
			t.Fatalf("deleting g's states touched h: %+v", got)
		}
		if v := writeShares(t, s, "g", metastore.ShareState{TopicID: b.ID, Partition: 0}); v[0] != 1 {
			t.Fatalf("version after re-creating %d, want 1", v[0])
		}
	})
}

// testShareGroupRecords checks LoadShareGroup and SaveShareGroup: round
// trip, compare-and-set, delete, bounds, and that records of two groups
// (one name a prefix of the other) are apart.
func testShareGroupRecords(t *testing.T, s metastore.ShareStore) {
	ctx := t.Context()
	load := func(group string) (metastore.ShareGroupRecord, bool) {
		t.Helper()
		rec, found, err := s.LoadShareGroup(ctx, group)
		if err != nil {
			t.Fatalf("LoadShareGroup(%q): %v", group, err)
		}
		return rec, found
	}
	if _, found := load("g"); found {
		t.Fatal("LoadShareGroup of an unknown group found a record")
	}
	at := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: []byte("one"), UpdatedAt: at})
	if err != nil || v != 1 {
		t.Fatalf("first SaveShareGroup = %d, %v; want 1", v, err)
	}
	if rec, found := load("g"); !found || string(rec.Data) != "one" || rec.Version != 1 || !rec.UpdatedAt.Equal(at) {
		t.Fatalf("after the first save: %+v, %v", rec, found)
	}
	if v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: []byte("zero again")}); !errors.Is(err, metastore.ErrShareVersionConflict) {
		t.Fatalf("a second create = %d, %v; want ErrShareVersionConflict", v, err)
	}
	if v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: []byte("future"), Version: 2}); !errors.Is(err, metastore.ErrShareVersionConflict) {
		t.Fatalf("a future version = %d, %v; want ErrShareVersionConflict", v, err)
	}
	if v, err = s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: []byte("two"), Version: 1}); err != nil || v != 2 {
		t.Fatalf("second SaveShareGroup = %d, %v; want 2", v, err)
	}
	if v, err := s.SaveShareGroup(ctx, "gg", metastore.ShareGroupRecord{Data: []byte("other")}); err != nil || v != 1 {
		t.Fatalf("another group's first save = %d, %v", v, err)
	}
	if rec, found := load("g"); !found || string(rec.Data) != "two" || rec.Version != 2 || rec.UpdatedAt.IsZero() {
		t.Fatalf("after the second save: %+v, %v", rec, found)
	}
	big := make([]byte, metastore.MaxShareGroupRecordBytes+1)
	if _, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: big, Version: 2}); !errors.Is(err, metastore.ErrInvalidShareState) {
		t.Fatalf("an oversized record: %v; want ErrInvalidShareState", err)
	}
	// Empty data deletes, at the stored version only.
	if _, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Version: 1}); !errors.Is(err, metastore.ErrShareVersionConflict) {
		t.Fatalf("a stale delete: %v; want ErrShareVersionConflict", err)
	}
	if _, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{}); !errors.Is(err, metastore.ErrShareVersionConflict) {
		t.Fatalf("a delete at version 0 of a stored record: %v; want ErrShareVersionConflict", err)
	}
	if v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Version: 2}); err != nil || v != 0 {
		t.Fatalf("delete = %d, %v", v, err)
	}
	if _, found := load("g"); found {
		t.Fatal("a deleted record is still found")
	}
	if v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{}); err != nil || v != 0 {
		t.Fatalf("deleting a missing record at version 0 = %d, %v", v, err)
	}
	if rec, found := load("gg"); !found || string(rec.Data) != "other" {
		t.Fatalf("deleting g touched gg: %+v, %v", rec, found)
	}
	if v, err := s.SaveShareGroup(ctx, "g", metastore.ShareGroupRecord{Data: []byte("again")}); err != nil || v != 1 {
		t.Fatalf("re-creating after a delete = %d, %v; want 1", v, err)
	}
}

func testListShareGroups(t *testing.T, open func(t *testing.T) shareStore) {
	s := open(t)
	a := createTopic(t, s, "a", 2)
	list := func() []string {
		t.Helper()
		got, err := s.ListShareGroups(t.Context())
		if err != nil {
			t.Fatalf("ListShareGroups: %v", err)
		}
		return got
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("empty store lists %v", got)
	}
	// Names of different lengths, one a prefix of another, and one group
	// with two states, listed once each, sorted by name.
	for _, g := range []string{"queue-b", "q", "queue", "queue-a"} {
		writeShares(t, s, g, metastore.ShareState{TopicID: a.ID, Partition: 0})
	}
	writeShares(t, s, "queue", metastore.ShareState{TopicID: a.ID, Partition: 1})
	if got, want := list(), []string{"q", "queue", "queue-a", "queue-b"}; !slices.Equal(got, want) {
		t.Fatalf("ListShareGroups = %v, want %v", got, want)
	}
	if err := s.DeleteShareStates(t.Context(), "queue-a", nil); err != nil {
		t.Fatal(err)
	}
	if got, want := list(), []string{"q", "queue", "queue-b"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting queue-a: %v, want %v", got, want)
	}
	// A group with only a membership record (members joined, none
	// fetched yet) is listed too, and one with both once.
	save := func(g string, rec metastore.ShareGroupRecord) int64 {
		t.Helper()
		v, err := s.SaveShareGroup(t.Context(), g, rec)
		if err != nil {
			t.Fatalf("SaveShareGroup(%q): %v", g, err)
		}
		return v
	}
	v := save("members-only", metastore.ShareGroupRecord{Data: []byte("m")})
	save("queue", metastore.ShareGroupRecord{Data: []byte("m")})
	if got, want := list(), []string{"members-only", "q", "queue", "queue-b"}; !slices.Equal(got, want) {
		t.Fatalf("with membership records: %v, want %v", got, want)
	}
	// Deleting the record (empty data) unlists a group without states.
	save("members-only", metastore.ShareGroupRecord{Version: v})
	if got, want := list(), []string{"q", "queue", "queue-b"}; !slices.Equal(got, want) {
		t.Fatalf("after deleting members-only's record: %v, want %v", got, want)
	}
}

func writeShares(t *testing.T, s metastore.ShareStore, group string, states ...metastore.ShareState) []int64 {
	t.Helper()
	v, err := s.WriteShareStates(t.Context(), group, states)
	if err != nil {
		t.Fatalf("WriteShareStates(%q): %v", group, err)
	}
	if len(v) != len(states) {
		t.Fatalf("WriteShareStates(%q) returned %d versions for %d states", group, len(v), len(states))
	}
	return v
}

func loadShares(t *testing.T, s metastore.ShareStore, group string) []metastore.ShareState {
	t.Helper()
	got, err := s.LoadShareStates(t.Context(), group)
	if err != nil {
		t.Fatalf("LoadShareStates(%q): %v", group, err)
	}
	return got
}

// sameShares compares states without their UpdatedAt.
func sameShares(t *testing.T, what string, got, want []metastore.ShareState) {
	t.Helper()
	eq := slices.EqualFunc(got, want, func(a, b metastore.ShareState) bool {
		return a.TopicID == b.TopicID && a.Partition == b.Partition && a.StateEpoch == b.StateEpoch &&
			a.StartOffset == b.StartOffset && a.Version == b.Version && slices.Equal(a.Batches, b.Batches)
	})
	if !eq {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
