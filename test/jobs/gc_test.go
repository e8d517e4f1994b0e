package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// severable is an agent's view of the metadata store that can be cut:
// then every job call fails, as for an agent that was killed or lost the
// store. It releases no lease, so the lease must expire.
type severable struct {
	metastore.Store
	cut atomic.Bool
}

var errSevered = errors.New("severed from the metadata store")

func (s *severable) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (metastore.Lease, bool, error) {
	if s.cut.Load() {
		return metastore.Lease{}, false, errSevered
	}
	return s.Store.AcquireLease(ctx, name, holder, ttl)
}

func (s *severable) RenewLease(ctx context.Context, l metastore.Lease, ttl time.Duration) (metastore.Lease, error) {
	if s.cut.Load() {
		return metastore.Lease{}, errSevered
	}
	return s.Store.RenewLease(ctx, l, ttl)
}

func (s *severable) ReleaseLease(ctx context.Context, l metastore.Lease) error {
	if s.cut.Load() {
		return errSevered
	}
	return s.Store.ReleaseLease(ctx, l)
}

func (s *severable) AdvanceLogStart(ctx context.Context, id metastore.TopicID, p int32, offset int64) (metastore.PartitionOffsets, error) {
	if s.cut.Load() {
		return metastore.PartitionOffsets{}, errSevered
	}
	return s.Store.AdvanceLogStart(ctx, id, p, offset)
}

func (s *severable) ListDeletable(ctx context.Context, before time.Time, limit int) ([]metastore.UnreferencedObject, error) {
	if s.cut.Load() {
		return nil, errSevered
	}
	return s.Store.ListDeletable(ctx, before, limit)
}

// leaseHolder returns the holder of a held lease, or "".
func leaseHolder(t *testing.T, s metastore.Store, name string) string {
	t.Helper()
	ls, err := s.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Name == name && l.HeldAt(time.Now()) {
			return l.Holder
		}
	}
	return ""
}

// Two agents with the jobs role on one store: the one holding the jobs is
// cut off (killed), the other takes them over once the leases expire, and
// all along no object that an extent refers to leaves the bucket, while
// producers write to a topic under short retention and, in the same
// segments, to one kept forever.
func TestJobTakeoverNeverDeletesReferenced(t *testing.T) {
	view := func(v *severable) func(metastore.Store) metastore.Store {
		return func(s metastore.Store) metastore.Store { v.Store = s; return v }
	}
	va, vb := &severable{}, &severable{}
	a := agenttest.Start(t, agenttest.Options{Jobs: true, WrapStore: view(va)})
	b := agenttest.StartPeer(t, a, agenttest.Options{Jobs: true, WrapStore: view(vb)})
	viewOf := map[*agenttest.Agent]*severable{a: va, b: vb}

	adm := admin(t, a.Addr())
	createTopic(t, adm, "short", 1, map[string]*string{"retention.ms": ptr("800"), "file.delete.delay.ms": ptr("300")})
	createTopic(t, adm, "forever", 1, map[string]*string{"retention.ms": ptr("-1")})

	// Producers through both agents; every record of "forever" that is
	// acknowledged must be read back.
	ctx, stop := context.WithCancel(t.Context())
	var (
		wg    sync.WaitGroup
		acked sync.Map
	)
	for _, ag := range []*agenttest.Agent{a, b} {
		wg.Go(func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr(), b.Addr()), kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for i := 0; ctx.Err() == nil; i++ {
				v := fmt.Sprintf("%s-%d", ag.Addr(), i)
				res := cl.ProduceSync(ctx, &kgo.Record{Topic: "short", Value: []byte(v)}, &kgo.Record{Topic: "forever", Value: []byte(v)})
				if res[1].Err == nil {
					acked.Store(v, true)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	// The referee: every object an extent names is in the bucket.
	var checks atomic.Int32
	wg.Go(func() {
		for ctx.Err() == nil {
			checkReferencedPresent(t, a.Store, a.Bucket)
			checks.Add(1)
			time.Sleep(25 * time.Millisecond)
		}
	})

	waitFor(t, 10*time.Second, "the retention lease taken", func() bool { return leaseHolder(t, a.Store, "retention") != "" })
	holder := leaseHolder(t, a.Store, "retention")
	live, err := a.Store.LiveAgents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var killed, survivor *agenttest.Agent
	for _, info := range live {
		if info.ID == holder {
			if info.NodeID == a.NodeID() {
				killed, survivor = a, b
			} else {
				killed, survivor = b, a
			}
		}
	}
	if killed == nil {
		t.Fatalf("lease holder %s is not a live agent", holder)
	}
	waitFor(t, 20*time.Second, "retention of the short topic", func() bool { return offsetsOf(t, a, "short").LogStartOffset > 0 })
	viewOf[killed].cut.Store(true)
	killedAt := time.Now()
	t.Logf("cut off the job holder (node %d)", killed.NodeID())

	waitFor(t, 20*time.Second, "takeover of the retention and cleaner leases", func() bool {
		r, c := leaseHolder(t, a.Store, "retention"), leaseHolder(t, a.Store, "cleaner")
		return r != "" && r != holder && c != "" && c != holder
	})
	t.Logf("jobs taken over %v after the holder was cut off (lease TTL %v)", time.Since(killedAt).Round(time.Millisecond), agenttest.JobsConfig().LeaseTTL)
	// Retention goes on under the new holder.
	start := offsetsOf(t, a, "short").LogStartOffset
	waitFor(t, 20*time.Second, "retention under the new holder", func() bool { return offsetsOf(t, a, "short").LogStartOffset > start })
	killed.Close()

	stop()
	wg.Wait()
	if checks.Load() < 10 {
		t.Errorf("only %d bucket checks ran", checks.Load())
	}
	checkReferencedPresent(t, a.Store, a.Bucket)

	// Nothing acknowledged in the kept topic was lost.
	want := 0
	acked.Range(func(_, _ any) bool { want++; return true })
	cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.Addr()), kgo.ConsumeTopics("forever"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]bool{}
	readCtx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for readCtx.Err() == nil {
		missing := 0
		acked.Range(func(k, _ any) bool {
			if !got[k.(string)] {
				missing++
			}
			return true
		})
		if missing == 0 {
			break
		}
		cl.PollFetches(readCtx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if readCtx.Err() != nil {
		t.Fatalf("read back %d of %d acknowledged records of the kept topic", len(got), want)
	}
	t.Logf("%d acknowledged records of the kept topic read back; %d bucket checks", want, checks.Load())
}

// A PUT whose commit never happened is deleted only after the orphan
// grace period; objects outside the data prefixes and committed objects
// stay.
func TestOrphanCleanup(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	grace := agenttest.JobsConfig().OrphanGrace
	put := time.Now()
	for _, key := range []string{"segments/orphan-1", "other/not-floe-data"} {
		if err := a.Bucket.Put(t.Context(), key, []byte("never committed")); err != nil {
			t.Fatal(err)
		}
	}
	createTopic(t, admin(t, a.Addr()), "committed", 1, nil)
	produce(t, a.Addr(), "committed", 3, "v")
	committed := referenced(t, a.Store)
	exists := func(key string) bool {
		_, err := a.Bucket.GetRange(t.Context(), key, 0, 1)
		return err == nil
	}
	time.Sleep(grace / 2)
	if !exists("segments/orphan-1") {
		t.Fatalf("orphan deleted %v after its PUT, before the grace period %v", time.Since(put), grace)
	}
	waitFor(t, 20*time.Second, "the orphan deleted", func() bool { return !exists("segments/orphan-1") })
	if d := time.Since(put); d < grace {
		t.Errorf("orphan deleted after %v, before the grace period %v", d, grace)
	}
	time.Sleep(500 * time.Millisecond) // a few more passes
	if !exists("other/not-floe-data") {
		t.Error("an object outside the data prefixes was deleted")
	}
	for _, k := range committed {
		if !exists(k) {
			t.Errorf("committed object %s deleted", k)
		}
	}
}
