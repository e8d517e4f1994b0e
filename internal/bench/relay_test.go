package bench

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/testutil"
)

// relayingStore is a store that takes a notice relay and records what it
// hears.
type relayingStore struct {
	metastore.Store
	mu    sync.Mutex
	relay func(metastore.CommitNotice) bool
	heard []metastore.CommitNotice
}

func (r *relayingStore) RelayNotices(relay func(metastore.CommitNotice) bool) {
	r.mu.Lock()
	r.relay = relay
	r.mu.Unlock()
}

func (r *relayingStore) HearRelayed(n metastore.CommitNotice) {
	r.mu.Lock()
	r.heard = append(r.heard, n)
	r.mu.Unlock()
}

func (r *relayingStore) heardCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.heard)
}

// RelayNotices connects every store to every other: a notice one store
// hands its relay reaches all the others, over TCP, and not itself.
func TestRelayNotices(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "meta.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rs := []*relayingStore{{Store: store}, {Store: store}, {Store: store}}
	stop, err := RelayNotices([]metastore.Store{rs[0], rs[1], rs[2]}, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	tp := metastore.TopicPartition{Partition: 3}
	if !rs[0].relay(metastore.CommitNotice{Partitions: []metastore.TopicPartition{tp}}) {
		t.Fatal("the relay reported a store unreached with every sender connected")
	}
	deadline := time.Now().Add(10 * time.Second)
	for rs[1].heardCount() == 0 || rs[2].heardCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("heard %d and %d notices, want one each", rs[1].heardCount(), rs[2].heardCount())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := rs[1].heard[0].Partitions; len(got) != 1 || got[0] != tp {
		t.Fatalf("heard %v, want %v", got, tp)
	}
	if rs[0].heardCount() != 0 {
		t.Fatal("a store heard its own notice")
	}
	stop()
	if rs[0].relay != nil {
		t.Fatal("stop left the relay in the store")
	}

	if _, err := RelayNotices([]metastore.Store{store, store}, nil); err == nil {
		t.Fatal("RelayNotices took stores without a relay")
	}
}
