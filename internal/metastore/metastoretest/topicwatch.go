package metastoretest

import (
	"slices"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// topicWatcher watches topic changes.
type topicWatcher interface {
	metastore.TopicWatcher
	metastore.TopicStore
}

// testTopicWatch checks that every topic change made through a store is
// announced to its watchers, naming the topic, before the call returns,
// and that a stopped watcher hears nothing more.
func testTopicWatch(t *testing.T, open func(t *testing.T) topicWatcher) {
	s := open(t)
	notices := make(chan metastore.TopicNotice, 64)
	stop := s.WatchTopics(func(n metastore.TopicNotice) { notices <- n })
	heard := func(what, name string) {
		t.Helper()
		for {
			select {
			case n := <-notices:
				if n.Names == nil || slices.Contains(n.Names, name) {
					return
				}
			default:
				t.Fatalf("%s: no notice for %q when the call returned", what, name)
			}
		}
	}
	ctx := t.Context()
	createTopic(t, s, "tw", 1)
	heard("CreateTopic", "tw")
	if _, err := s.CreatePartitions(ctx, "tw", 3); err != nil {
		t.Fatal(err)
	}
	heard("CreatePartitions", "tw")
	v := "1000"
	if _, err := s.AlterTopicConfigs(ctx, "tw", []metastore.ConfigChange{{Name: "retention.ms", Value: &v}}); err != nil {
		t.Fatal(err)
	}
	heard("AlterTopicConfigs", "tw")
	if _, err := s.DeleteTopic(ctx, "tw"); err != nil {
		t.Fatal(err)
	}
	heard("DeleteTopic", "tw")
	stop()
	createTopic(t, s, "after-stop", 1)
	select {
	case n := <-notices:
		if slices.Contains(n.Names, "after-stop") {
			t.Fatalf("notice %+v after stop", n)
		}
	default:
	}
}
