package topiccache_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/metastore/postgres"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/topiccache"
)

// counting counts a store's topic reads.
type counting struct {
	metastore.Store
	reads atomic.Int64
}

func (c *counting) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	c.reads.Add(1)
	return c.Store.Topic(ctx, name)
}

func (c *counting) Topics(ctx context.Context) ([]metastore.Topic, error) {
	c.reads.Add(1)
	return c.Store.Topics(ctx)
}

func openEmbedded(t *testing.T) metastore.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newCache(t *testing.T, s topiccache.Store) *topiccache.Cache {
	t.Helper()
	c := topiccache.New(s, topiccache.Options{Logger: testutil.Logger(t)})
	t.Cleanup(c.Close)
	if err := c.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return c
}

func create(t *testing.T, s metastore.TopicStore, name string, partitions int32) metastore.Topic {
	t.Helper()
	tp, err := s.CreateTopic(t.Context(), metastore.TopicSpec{Name: name, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestNoReadsAtSteadyState: once loaded, lookups by name, by ID and of
// every topic read nothing from the store.
func TestNoReadsAtSteadyState(t *testing.T) {
	s := &counting{Store: openEmbedded(t)}
	var topics []metastore.Topic
	for i := range 20 {
		topics = append(topics, create(t, s, fmt.Sprintf("t%02d", i), 4))
	}
	c := newCache(t, s)
	before := s.reads.Load()
	ctx := t.Context()
	for range 100 {
		for _, want := range topics {
			got, err := c.Topic(ctx, want.Name)
			if err != nil || got.ID != want.ID || got.Partitions != 4 {
				t.Fatalf("Topic(%s) = %+v, %v", want.Name, got, err)
			}
			if got, err := c.TopicByID(ctx, want.ID); err != nil || got.Name != want.Name {
				t.Fatalf("TopicByID(%s) = %+v, %v", want.Name, got, err)
			}
		}
		all, err := c.Topics(ctx)
		if err != nil || len(all) != len(topics) || all[0].Name != "t00" || all[19].Name != "t19" {
			t.Fatalf("Topics: %d, %v", len(all), err)
		}
	}
	if n := s.reads.Load() - before; n != 0 {
		t.Fatalf("%d store reads for 4,100 lookups, want 0", n)
	}
	// An unknown name is read once, then remembered as absent; an
	// unknown ID is never read.
	for range 10 {
		if _, err := c.Topic(ctx, "nope"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			t.Fatalf("unknown topic: %v", err)
		}
		if _, err := c.TopicByID(ctx, metastore.TopicID{1}); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			t.Fatalf("unknown id: %v", err)
		}
	}
	if n := s.reads.Load() - before; n != 1 {
		t.Fatalf("%d store reads for 10 lookups of an unknown name, want 1", n)
	}
}

// TestOwnChangesSeenAtOnce: changes made through the store the cache
// watches are seen as soon as the call that made them returns.
func TestOwnChangesSeenAtOnce(t *testing.T) {
	s := openEmbedded(t)
	c := newCache(t, s)
	ctx := t.Context()
	if _, err := c.Topic(ctx, "t"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Fatalf("before creation: %v", err)
	}
	a := create(t, s, "t", 1)
	expect(t, c, "t", a.ID, 1, "")
	if _, err := s.CreatePartitions(ctx, "t", 5); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "t", a.ID, 5, "")
	v := "12345"
	if _, err := s.AlterTopicConfigs(ctx, "t", []metastore.ConfigChange{{Name: "retention.ms", Value: &v}}); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "t", a.ID, 5, "12345")
	if _, err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Topic(ctx, "t"); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Fatalf("after deletion: %v", err)
	}
	if _, err := c.TopicByID(ctx, a.ID); !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		t.Fatalf("deleted id: %v", err)
	}
	// Re-created: a new ID, the old one unknown.
	b := create(t, s, "t", 2)
	expect(t, c, "t", b.ID, 2, "")
	if _, err := c.TopicByID(ctx, a.ID); err == nil {
		t.Fatal("old id still resolves")
	}
	if all, _ := c.Topics(ctx); len(all) != 1 || all[0].ID != b.ID {
		t.Fatalf("Topics = %+v", all)
	}
}

func expect(t *testing.T, c *topiccache.Cache, name string, id metastore.TopicID, partitions int32, retention string) {
	t.Helper()
	got, err := c.Topic(t.Context(), name)
	if err != nil || got.ID != id || got.Partitions != partitions || got.Configs["retention.ms"] != retention {
		t.Fatalf("Topic(%s) = %+v, %v; want id %x, %d partitions, retention.ms %q", name, got, err, id, partitions, retention)
	}
	byID, err := c.TopicByID(t.Context(), id)
	if err != nil || byID.Name != name || byID.Partitions != partitions {
		t.Fatalf("TopicByID = %+v, %v", byID, err)
	}
}

// TestOtherAgentsChanges: a change made through another store on the
// same PostgreSQL database is seen when its notice arrives, with and
// without LISTEN/NOTIFY. The time it took is logged.
func TestOtherAgentsChanges(t *testing.T) {
	server := testutil.RequirePostgres(t)
	for _, tc := range []struct {
		name string
		opts postgres.Options
	}{
		{"notify", postgres.Options{}},
		{"poll", postgres.Options{DisableNotify: true, PollInterval: 50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := testutil.CreateDatabase(t, server, "topiccache")
			open := func() *postgres.Store {
				s, err := postgres.Open(t.Context(), db, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			here, there := &counting{Store: open()}, open()
			c := newCache(t, here)
			ctx := t.Context()
			seen := func(what string, ok func() bool) {
				t.Helper()
				start := time.Now()
				testutil.WaitFor(t, 10*time.Second, what, ok)
				t.Logf("%s seen after %v", what, time.Since(start).Round(time.Millisecond))
			}
			// Looked up before it exists: remembered as absent, then
			// created elsewhere.
			if _, err := c.Topic(ctx, "t"); err == nil {
				t.Fatal("t exists")
			}
			a := create(t, there, "t", 1)
			seen("creation", func() bool { got, err := c.Topic(ctx, "t"); return err == nil && got.ID == a.ID })
			if _, err := there.CreatePartitions(ctx, "t", 3); err != nil {
				t.Fatal(err)
			}
			seen("new partitions", func() bool { got, _ := c.Topic(ctx, "t"); return got.Partitions == 3 })
			v := "777"
			if _, err := there.AlterTopicConfigs(ctx, "t", []metastore.ConfigChange{{Name: "retention.ms", Value: &v}}); err != nil {
				t.Fatal(err)
			}
			seen("config change", func() bool { got, _ := c.Topic(ctx, "t"); return got.Configs["retention.ms"] == "777" })
			if _, err := there.DeleteTopic(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			seen("deletion", func() bool { _, err := c.TopicByID(ctx, a.ID); return err != nil })
			// At rest, lookups read nothing.
			before := here.reads.Load()
			b := create(t, there, "u", 2)
			seen("second creation", func() bool { _, err := c.TopicByID(ctx, b.ID); return err == nil })
			settled := here.reads.Load()
			for range 1000 {
				if _, err := c.Topic(ctx, "u"); err != nil {
					t.Fatal(err)
				}
			}
			if n := here.reads.Load() - settled; n != 0 {
				t.Fatalf("%d reads for 1,000 lookups at rest", n)
			}
			t.Logf("%d topic reads for one creation elsewhere", settled-before)
		})
	}
}

// TestConcurrentChanges: lookups racing with changes end with the store's
// state (run with -race).
func TestConcurrentChanges(t *testing.T) {
	s := openEmbedded(t)
	c := newCache(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("w%d", w)
			for i := range 30 {
				if _, err := s.CreateTopic(ctx, metastore.TopicSpec{Name: name, Partitions: 1}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.CreatePartitions(ctx, name, int32(2+i%3)); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := s.DeleteTopic(ctx, name); err != nil {
						t.Error(err)
						return
					}
				} else if _, err := s.DeleteTopic(ctx, name); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000 && ctx.Err() == nil; i++ {
				c.Topic(ctx, fmt.Sprintf("w%d", i%4))
				c.Topics(ctx)
			}
		}()
	}
	wg.Wait()
	create(t, s, "w0", 7)
	want, err := s.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != 1 || got[0].ID != want[0].ID || got[0].Partitions != 7 {
		t.Fatalf("cache %+v, store %+v", got, want)
	}
}

// slowStore lets a test hold a name's read until it says so.
type slowStore struct {
	metastore.Store
	hold  chan chan struct{} // a read of "held" sends its release channel here
	armed atomic.Bool
}

func (s *slowStore) Topic(ctx context.Context, name string) (metastore.Topic, error) {
	t, err := s.Store.Topic(ctx, name)
	if name == "held" && s.armed.CompareAndSwap(true, false) {
		release := make(chan struct{})
		s.hold <- release
		<-release
	}
	return t, err
}

// TestLateReadDoesNotWin: a re-read that started before a later change
// and returns after that change's own re-read must not bring the older
// state back.
func TestLateReadDoesNotWin(t *testing.T) {
	base := openEmbedded(t)
	s := &slowStore{Store: base, hold: make(chan chan struct{}, 1)}
	a := create(t, base, "held", 2)
	c := newCache(t, s)
	ctx := t.Context()
	// The notice of the first change re-reads 4 partitions, and is held.
	s.armed.Store(true)
	done := make(chan error, 1)
	go func() { _, err := base.CreatePartitions(ctx, "held", 4); done <- err }()
	var release chan struct{}
	select {
	case release = <-s.hold:
	case <-time.After(10 * time.Second):
		t.Fatal("re-read not held")
	}
	// A second change is re-read and applied meanwhile.
	if _, err := base.CreatePartitions(ctx, "held", 6); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "held", a.ID, 6, "")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expect(t, c, "held", a.ID, 6, "")
}

// BenchmarkTopicLookup compares a lookup by name in the cache with the
// store read it replaces, on the embedded store and, when one is
// available, PostgreSQL: the cost each Produce and Fetch paid per topic
// before the cache.
func BenchmarkTopicLookup(b *testing.B) {
	stores := map[string]metastore.Store{}
	e, err := embedded.Open(filepath.Join(b.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	stores["embedded"] = e
	if server := os.Getenv("FLOE_TEST_POSTGRES_URL"); server != "" {
		p, err := postgres.Open(b.Context(), testutil.CreateDatabase(b, server, "topiccache_bench"), postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Close() })
		stores["postgres"] = p
	}
	for _, name := range []string{"embedded", "postgres"} {
		s, ok := stores[name]
		if !ok {
			continue
		}
		for i := range 100 {
			if _, err := s.CreateTopic(b.Context(), metastore.TopicSpec{Name: fmt.Sprintf("t%03d", i), Partitions: 8}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name+"/store", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := s.Topic(b.Context(), fmt.Sprintf("t%03d", i%100)); err != nil {
					b.Fatal(err)
				}
			}
		})
		c := topiccache.New(s, topiccache.Options{})
		b.Cleanup(c.Close)
		b.Run(name+"/cache", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := c.Topic(b.Context(), fmt.Sprintf("t%03d", i%100)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestMetrics: the cache counts its store reads by reason and its topics.
func TestMetrics(t *testing.T) {
	s := openEmbedded(t)
	create(t, s, "a", 1)
	reg := prometheus.NewRegistry()
	c := topiccache.New(s, topiccache.Options{Registerer: reg})
	t.Cleanup(c.Close)
	ctx := t.Context()
	for range 10 {
		if _, err := c.Topic(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		c.Topic(ctx, "missing")
	}
	create(t, s, "b", 1)
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "/" + l.GetValue()
			}
			if m.GetCounter() != nil {
				got[key] = m.GetCounter().GetValue()
			} else {
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	for key, want := range map[string]float64{
		"floe_topic_cache_store_reads_total/load":   1,
		"floe_topic_cache_store_reads_total/miss":   1,
		"floe_topic_cache_store_reads_total/notice": 1,
		"floe_topic_cache_read_failures_total":      0,
		"floe_topic_cache_topics":                   2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
}
