package quota

import (
	"context"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

type fakeStore struct{ qs []metastore.ClientQuota }

func (f *fakeStore) ClientQuotas(context.Context) ([]metastore.ClientQuota, error) { return f.qs, nil }
func (f *fakeStore) AlterClientQuotas(context.Context, []metastore.QuotaChange) error {
	panic("not used")
}

func s(v string) *string { return &v }

func entity(user, client **string) metastore.QuotaEntity {
	var e metastore.QuotaEntity
	if user != nil {
		e = append(e, metastore.QuotaEntityPart{Type: metastore.QuotaEntityUser, Name: *user})
	}
	if client != nil {
		e = append(e, metastore.QuotaEntityPart{Type: metastore.QuotaEntityClientID, Name: *client})
	}
	return e
}

func ptr(p *string) **string { return &p }

// Kafka's precedence: user+client, user+default client, user, default
// user+client, default user+default client, default user, client,
// default client.
func TestPrecedence(t *testing.T) {
	var none *string
	all := []struct {
		e    metastore.QuotaEntity
		rate float64
	}{
		{entity(ptr(s("alice")), ptr(s("app"))), 1},
		{entity(ptr(s("alice")), ptr(none)), 2},
		{entity(ptr(s("alice")), nil), 3},
		{entity(ptr(none), ptr(s("app"))), 4},
		{entity(ptr(none), ptr(none)), 5},
		{entity(ptr(none), nil), 6},
		{entity(nil, ptr(s("app"))), 7},
		{entity(nil, ptr(none)), 8},
	}
	for drop := range all {
		// With the first `drop` entries gone, entry `drop` decides.
		st := &fakeStore{}
		for _, q := range all[drop:] {
			st.qs = append(st.qs, metastore.ClientQuota{Entity: q.e, Values: map[string]float64{metastore.QuotaProducerByteRate: q.rate}})
		}
		m := New(st, Options{})
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		got, ok := m.Limit(Produce, "alice", "app")
		if !ok || got != all[drop].rate {
			t.Errorf("with %s the most specific: limit %v, %v; want %v", all[drop].e.Key(), got, ok, all[drop].rate)
		}
		if _, ok := m.Limit(Fetch, "alice", "app"); ok {
			t.Errorf("a produce quota limits fetches")
		}
	}
	// A user or client id that looks like the default is not the default.
	st := &fakeStore{qs: []metastore.ClientQuota{{Entity: entity(ptr(s("<default>")), nil), Values: map[string]float64{metastore.QuotaProducerByteRate: 9}}}}
	m := New(st, Options{})
	m.Refresh(t.Context())
	if _, ok := m.Limit(Produce, "bob", "x"); ok {
		t.Error(`the quota of the user named "<default>" applied to bob`)
	}
	if got, _ := m.Limit(Produce, "<default>", "x"); got != 9 {
		t.Errorf(`user "<default>": limit %v, want 9`, got)
	}
}

// A client sending at twice its quota is throttled for about as long as
// it sent, and one within its quota never is; default quotas are each
// client's own, a named one is shared.
func TestThrottle(t *testing.T) {
	now := time.Unix(1000, 0)
	var none *string
	st := &fakeStore{qs: []metastore.ClientQuota{
		{Entity: entity(nil, ptr(none)), Values: map[string]float64{metastore.QuotaProducerByteRate: 1000}},
		{Entity: entity(ptr(s("team")), nil), Values: map[string]float64{metastore.QuotaProducerByteRate: 1000}},
	}}
	agents := 1
	m := New(st, Options{Now: func() time.Time { return now }, Agents: func(Kind) int { return agents }})
	m.Refresh(t.Context())

	// 500 B/s for 30 s against 1000 B/s: never throttled.
	for range 300 {
		if d := m.Record(Produce, "ANONYMOUS", "slow", 50); d != 0 {
			t.Fatalf("throttled %v within the quota", d)
		}
		now = now.Add(100 * time.Millisecond)
	}
	// 2000 B/s for 11 s: throttled about as long as it sent (rate twice
	// the quota over an 11 s window).
	var d time.Duration
	for range 110 {
		d = m.Record(Produce, "ANONYMOUS", "fast", 200)
		now = now.Add(100 * time.Millisecond)
	}
	if d < 8*time.Second || d > 11*time.Second {
		t.Fatalf("at twice the quota for a whole window: throttle %v, want about 10s", d)
	}
	// Another client with the default quota has its own rate.
	if d := m.Record(Produce, "ANONYMOUS", "other", 100); d != 0 {
		t.Fatalf("a fresh client was throttled %v for another's traffic", d)
	}
	// Two clients of user team share its quota: each at 600 B/s is
	// within 1000 alone, over it together.
	for range 110 {
		m.Record(Produce, "team", "a", 60)
		d = m.Record(Produce, "team", "b", 60)
		now = now.Add(100 * time.Millisecond)
	}
	if d == 0 {
		t.Fatal("two clients of one user at 1200 B/s together were not throttled against the user's 1000 B/s")
	}
	// The cluster-wide quota is divided among the agents: with 4 agents,
	// this agent allows 250 B/s.
	agents = 4
	if got, _ := m.Limit(Produce, "x", "y"); got != 250 {
		t.Fatalf("limit with 4 agents %v, want 250", got)
	}
}

func TestRateWindow(t *testing.T) {
	var r rate
	now := time.Unix(0, 0)
	w := time.Second
	r.record(now, 1000, 11, w)
	// One early sample counts over at least 10 s: no burst.
	if got, _ := r.measure(now, 11, w); got != 100 {
		t.Fatalf("rate after one sample %v, want 100", got)
	}
	// Samples older than the window are forgotten.
	now = now.Add(20 * time.Second)
	if got, _ := r.measure(now, 11, w); got != 0 {
		t.Fatalf("rate after the window %v, want 0", got)
	}
}

func TestMaxFetchBytes(t *testing.T) {
	var none *string
	st := &fakeStore{qs: []metastore.ClientQuota{{Entity: entity(ptr(none), nil), Values: map[string]float64{metastore.QuotaConsumerByteRate: 1 << 20}}}}
	m := New(st, Options{})
	m.Refresh(t.Context())
	if got, ok := m.MaxFetchBytes("u", "c"); !ok || got != 11<<20 {
		t.Fatalf("MaxFetchBytes = %d, %v; want 11 MiB (1 MiB/s over 11 s)", got, ok)
	}
	if _, ok := m.MaxFetchBytes("u", "c"); !ok {
		t.Fatal("no limit")
	}
}

// A request percentage is a share of one agent's time, as in Kafka: it is
// not divided among the agents, and a client using more is throttled.
func TestRequestPercentage(t *testing.T) {
	now := time.Unix(1000, 0)
	var none *string
	st := &fakeStore{qs: []metastore.ClientQuota{{Entity: entity(nil, ptr(none)), Values: map[string]float64{metastore.QuotaRequestPercentage: 10}}}}
	m := New(st, Options{Now: func() time.Time { return now }, Agents: func(Kind) int { return 4 }})
	m.Refresh(t.Context())
	if got, _ := m.Limit(RequestTime, "u", "c"); got != 10 {
		t.Fatalf("request percentage with 4 agents: %v, want 10 (not divided)", got)
	}
	// 5 ms of work every 100 ms is 5%: never throttled.
	for range 200 {
		if d := m.Record(RequestTime, "u", "light", RequestPercent(5*time.Millisecond)); d != 0 {
			t.Fatalf("throttled %v at 5%% of a 10%% quota", d)
		}
		now = now.Add(100 * time.Millisecond)
	}
	// 30 ms every 100 ms is 30%: throttled.
	var d time.Duration
	for range 200 {
		d = m.Record(RequestTime, "u", "heavy", RequestPercent(30*time.Millisecond))
		now = now.Add(100 * time.Millisecond)
	}
	if d == 0 {
		t.Fatal("a client at 30% of an agent's time was not throttled against a 10% quota")
	}
}
