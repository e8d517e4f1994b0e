package postgres_test

import (
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
)

// watchTopics collects a store's topic notices.
func watchTopics(t *testing.T, s metastore.Store) <-chan metastore.TopicNotice {
	ch := make(chan metastore.TopicNotice, 64)
	stop := s.WatchTopics(func(n metastore.TopicNotice) {
		select {
		case ch <- n:
		default:
			t.Errorf("topic notice dropped: %+v", n)
		}
	})
	t.Cleanup(stop)
	return ch
}

// waitTopicNotice waits for a notice naming topic (or every topic).
func waitTopicNotice(t *testing.T, ch <-chan metastore.TopicNotice, what, topic string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case n := <-ch:
			if n.Names == nil || slices.Contains(n.Names, topic) {
				return
			}
		case <-deadline:
			t.Fatalf("no topic notice %s within 10s", what)
		}
	}
}

// TestTopicNoticesAcrossStores: every topic change through one store is
// announced by the other's listener, and, without LISTEN/NOTIFY, by its
// poller.
func TestTopicNoticesAcrossStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts postgres.Options
	}{
		{"notify", postgres.Options{}},
		{"poll", postgres.Options{DisableNotify: true, PollInterval: 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := freshDatabase(t)
			a, b := openStore(t, db, tc.opts), openStore(t, db, tc.opts)
			notices := watchTopics(t, a)
			time.Sleep(50 * time.Millisecond) // a first poll, to compare with
			ctx := t.Context()
			if _, err := b.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
				t.Fatal(err)
			}
			waitTopicNotice(t, notices, "for a creation", "t")
			if _, err := b.CreatePartitions(ctx, "t", 2); err != nil {
				t.Fatal(err)
			}
			waitTopicNotice(t, notices, "for new partitions", "t")
			v := "1000"
			if _, err := b.AlterTopicConfigs(ctx, "t", []metastore.ConfigChange{{Name: "retention.ms", Value: &v}}); err != nil {
				t.Fatal(err)
			}
			waitTopicNotice(t, notices, "for a config change", "t")
			if _, err := b.DeleteTopic(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			waitTopicNotice(t, notices, "for a deletion", "t")
		})
	}
}
