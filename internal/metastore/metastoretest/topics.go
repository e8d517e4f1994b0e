package metastoretest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

func testTopics(t *testing.T, open func(t *testing.T) recordStore) {
	t.Run("CreateAndGet", func(t *testing.T) {
		s := open(t)
		spec := metastore.TopicSpec{Name: "orders", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}}
		created, err := s.CreateTopic(t.Context(), spec)
		wantErr(t, "CreateTopic", err, nil)
		if created.ID == (metastore.TopicID{}) {
			t.Error("zero topic ID")
		}
		want := metastore.Topic{ID: created.ID, Name: "orders", Partitions: 3, Configs: spec.Configs, CreatedAt: created.CreatedAt}
		sameTopic(t, "CreateTopic", created, want)
		recent(t, "CreatedAt", created.CreatedAt)

		// Neither the spec nor a returned topic aliases the stored configs.
		spec.Configs["retention.ms"] = "changed"
		created.Configs["cleanup.policy"] = "compact"
		got, err := s.Topic(t.Context(), "orders")
		wantErr(t, "Topic", err, nil)
		want.Configs = map[string]string{"retention.ms": "1000"}
		sameTopic(t, "Topic", got, want)
	})

	t.Run("InvalidPartitions", func(t *testing.T) {
		s := open(t)
		for _, n := range []int32{0, -1} {
			_, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: n})
			wantErr(t, fmt.Sprintf("CreateTopic with %d partitions", n), err, metastore.ErrInvalidPartitions)
		}
		_, err := s.Topic(t.Context(), "t")
		wantErr(t, "Topic after failed create", err, metastore.ErrUnknownTopicOrPartition)
	})

	t.Run("Duplicate", func(t *testing.T) {
		s := open(t)
		first := createTopic(t, s, "t", 1)
		_, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: "t", Partitions: 5})
		wantErr(t, "second CreateTopic", err, metastore.ErrTopicExists)
		got, err := s.Topic(t.Context(), "t")
		wantErr(t, "Topic", err, nil)
		sameTopic(t, "Topic after duplicate create", got, first)
	})

	t.Run("ListSorted", func(t *testing.T) {
		s := open(t)
		topics, err := s.Topics(t.Context())
		wantErr(t, "Topics", err, nil)
		if len(topics) != 0 {
			t.Fatalf("new store has topics %v", topics)
		}
		want := map[string]metastore.Topic{}
		for _, name := range []string{"b", "a.b", "c", "a", "B"} {
			want[name] = createTopic(t, s, name, 1)
		}
		topics, err = s.Topics(t.Context())
		wantErr(t, "Topics", err, nil)
		var names []string
		for _, topic := range topics {
			names = append(names, topic.Name)
			sameTopic(t, "Topics "+topic.Name, topic, want[topic.Name])
		}
		if wantNames := []string{"B", "a", "a.b", "b", "c"}; !slices.Equal(names, wantNames) {
			t.Fatalf("Topics names %v, want %v", names, wantNames)
		}
	})

	t.Run("UnknownName", func(t *testing.T) {
		s := open(t)
		createTopic(t, s, "known", 1)
		value := "v"
		calls := map[string]func() error{
			"Topic": func() error { _, err := s.Topic(t.Context(), "nope"); return err },
			"DeleteTopic": func() error {
				_, err := s.DeleteTopic(t.Context(), "nope")
				return err
			},
			"CreatePartitions": func() error {
				_, err := s.CreatePartitions(t.Context(), "nope", 4)
				return err
			},
			"AlterTopicConfigs": func() error {
				_, err := s.AlterTopicConfigs(t.Context(), "nope", []metastore.ConfigChange{{Name: "k", Value: &value}})
				return err
			},
		}
		for name, call := range calls {
			wantErr(t, name, call(), metastore.ErrUnknownTopicOrPartition)
		}
	})

	t.Run("DeleteAndRecreate", func(t *testing.T) { testDeleteAndRecreate(t, open(t)) })

	t.Run("CreatePartitions", func(t *testing.T) {
		s := open(t)
		orig := createTopic(t, s, "t", 2)
		commitOK(t, s, segment(batch(orig.ID, 1, 0, 10, 3)))
		for _, total := range []int32{2, 1, 0, -1} {
			_, err := s.CreatePartitions(t.Context(), "t", total)
			wantErr(t, fmt.Sprintf("CreatePartitions(%d) of 2", total), err, metastore.ErrInvalidPartitions)
		}
		raised, err := s.CreatePartitions(t.Context(), "t", 5)
		wantErr(t, "CreatePartitions(5)", err, nil)
		want := orig
		want.Partitions = 5
		sameTopic(t, "CreatePartitions", raised, want)
		got, err := s.Topic(t.Context(), "t")
		wantErr(t, "Topic", err, nil)
		sameTopic(t, "Topic after CreatePartitions", got, want)

		// Old partitions keep their log, new ones start empty and work.
		if o := offsets(t, s, orig.ID, 1); o.HighWatermark != 3 {
			t.Errorf("partition 1 high watermark %d after raise, want 3", o.HighWatermark)
		}
		if o := offsets(t, s, orig.ID, 4); o != (metastore.PartitionOffsets{}) {
			t.Errorf("new partition 4 offsets %+v, want zero", o)
		}
		r := commitOK(t, s, segment(batch(orig.ID, 4, 0, 10, 2)))
		if r[0].BaseOffset != 0 {
			t.Errorf("first batch of new partition at offset %d, want 0", r[0].BaseOffset)
		}
		_, err = s.CreatePartitions(t.Context(), "t", 5)
		wantErr(t, "CreatePartitions(5) again", err, metastore.ErrInvalidPartitions)
	})

	t.Run("AlterConfigs", func(t *testing.T) {
		s := open(t)
		orig, err := s.CreateTopic(t.Context(), metastore.TopicSpec{
			Name: "t", Partitions: 1,
			Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"},
		})
		wantErr(t, "CreateTopic", err, nil)
		str := func(v string) *string { return &v }
		steps := []struct {
			changes []metastore.ConfigChange
			want    map[string]string
		}{
			{nil, map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"}},
			{
				[]metastore.ConfigChange{{Name: "retention.ms", Value: str("2000")}, {Name: "segment.bytes", Value: str("1")}},
				map[string]string{"retention.ms": "2000", "cleanup.policy": "delete", "segment.bytes": "1"},
			},
			{
				[]metastore.ConfigChange{{Name: "cleanup.policy"}, {Name: "never.set"}},
				map[string]string{"retention.ms": "2000", "segment.bytes": "1"},
			},
			{
				// Later changes to the same name win.
				[]metastore.ConfigChange{{Name: "x", Value: str("1")}, {Name: "x"}, {Name: "y", Value: str("")}},
				map[string]string{"retention.ms": "2000", "segment.bytes": "1", "y": ""},
			},
			{
				[]metastore.ConfigChange{{Name: "retention.ms"}, {Name: "segment.bytes"}, {Name: "y"}},
				map[string]string{},
			},
		}
		for i, step := range steps {
			what := fmt.Sprintf("step %d", i)
			altered, err := s.AlterTopicConfigs(t.Context(), "t", step.changes)
			wantErr(t, what, err, nil)
			want := orig
			want.Configs = step.want
			sameTopic(t, what+": AlterTopicConfigs", altered, want)
			got, err := s.Topic(t.Context(), "t")
			wantErr(t, what+": Topic", err, nil)
			sameTopic(t, what+": Topic", got, want)
		}
	})
}

func testDeleteAndRecreate(t *testing.T, s recordStore) {
	ctx := t.Context()
	old := createTopic(t, s, "t", 2)
	keep := createTopic(t, s, "keep", 1)
	commitOK(t, s, segment(batch(old.ID, 0, 0, 10, 4), batch(old.ID, 1, 10, 10, 2), batch(keep.ID, 0, 20, 10, 3)))

	deleted, err := s.DeleteTopic(ctx, "t")
	wantErr(t, "DeleteTopic", err, nil)
	sameTopic(t, "DeleteTopic", deleted, old)

	_, err = s.Topic(ctx, "t")
	wantErr(t, "Topic after delete", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.DeleteTopic(ctx, "t")
	wantErr(t, "second DeleteTopic", err, metastore.ErrUnknownTopicOrPartition)
	topics, err := s.Topics(ctx)
	wantErr(t, "Topics", err, nil)
	if len(topics) != 1 || topics[0].Name != "keep" {
		t.Fatalf("Topics after delete: %+v", topics)
	}
	_, err = s.Offsets(ctx, old.ID, 0)
	wantErr(t, "Offsets of deleted topic", err, metastore.ErrUnknownTopicOrPartition)
	_, err = s.Extents(ctx, old.ID, 0, 0, 0)
	wantErr(t, "Extents of deleted topic", err, metastore.ErrUnknownTopicOrPartition)
	r := commit(t, s, segment(batch(old.ID, 0, 0, 10, 1)))
	wantErr(t, "commit to deleted topic", r[0].Err, metastore.ErrUnknownTopicOrPartition)

	recreated := createTopic(t, s, "t", 1)
	if recreated.ID == old.ID {
		t.Fatal("re-created topic has the old ID")
	}
	if o := offsets(t, s, recreated.ID, 0); o != (metastore.PartitionOffsets{}) {
		t.Errorf("re-created topic offsets %+v, want zero", o)
	}
	if es := extents(t, s, recreated.ID, 0, 0, 0); len(es) != 0 {
		t.Errorf("re-created topic has extents %+v", es)
	}
	r = commitOK(t, s, segment(batch(recreated.ID, 0, 0, 10, 1)))
	if r[0].BaseOffset != 0 {
		t.Errorf("re-created topic's first offset %d, want 0", r[0].BaseOffset)
	}
	// Other topics are untouched.
	if o := offsets(t, s, keep.ID, 0); o.HighWatermark != 3 {
		t.Errorf("other topic's high watermark %d, want 3", o.HighWatermark)
	}
	if es := extents(t, s, keep.ID, 0, 0, 0); len(es) != 1 {
		t.Errorf("other topic's extents %+v, want 1", es)
	}
}
