package protocol_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// heldBucket holds the GETs of one object until released.
type heldBucket struct {
	objstore.Bucket
	mu      sync.Mutex
	key     string
	release chan struct{}
	held    int // GETs of key that waited
}

func (b *heldBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	b.mu.Lock()
	wait := key == b.key
	if wait {
		b.held++
	}
	b.mu.Unlock()
	if wait {
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.Bucket.GetRange(ctx, key, offset, length)
}

// TestFetchWaitsForTheFirstGetToLand: a fetch whose partitions are all in
// the bucket answers with the first partition whose GET lands, not with
// the first partition it names. t/0's object is held; a fetch of t/0 and
// t/1 from an agent with a cold cache answers t/1's records while t/0's
// GET still waits.
func TestFetchWaitsForTheFirstGetToLand(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	w := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	w.createTopic("t", 2)
	w.produce("t", 0, 3, 1000)
	w.produce("t", 1, 3, 1000)
	r, held, release := heldPeer(t, a, 0, 0)
	// Bounded: were the fetch to wait for t/0, the GET is let go after
	// 10 s and the answer below fails.
	timer := time.AfterFunc(10*time.Second, release)
	defer timer.Stop()

	resp := do[*kmsg.FetchResponse](r, 12, fetchTwo(0, 0, 1<<20, 0))
	parts := resp.Topics[0].Partitions
	expectCode(t, "t/0", parts[0].ErrorCode, 0)
	expectCode(t, "t/1", parts[1].ErrorCode, 0)
	// t/0's GET runs in a goroutine of its own, which may not have
	// reached the bucket yet.
	testutil.WaitFor(t, 5*time.Second, "a GET of t/0's object", func() bool {
		held.mu.Lock()
		defer held.mu.Unlock()
		return held.held > 0
	})
	if got := recordOffsets(t, parts[1].RecordBatches); len(got) != 3 {
		t.Fatalf("t/1 answered offsets %v, want its 3 records", got)
	}
	if len(parts[0].RecordBatches) != 0 {
		t.Fatalf("t/0 answered %d bytes while its GET was held: the fetch waited for it", len(parts[0].RecordBatches))
	}
	release()
	// Once its GET lands, t/0 is read as before.
	resp = do[*kmsg.FetchResponse](r, 12, fetchRequest("t", 0, 0))
	if got := recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); len(got) != 3 {
		t.Fatalf("t/0 after the release: offsets %v, want its 3 records", got)
	}
}

// TestFetchAnswersPrefixesBesideOtherRecords: a partition cut at a block
// still on its way gives what is in memory when another partition fills
// the response too; only a response that would hold that prefix alone
// waits for the rest (TestFetchReadCommitted and the like read one
// partition whole).
func TestFetchAnswersPrefixesBesideOtherRecords(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	w := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	w.createTopic("t", 2)
	w.produce("t", 0, 3, 1000) // t/0 offsets 0–2: one object
	w.produce("t", 1, 3, 1000)
	w.produce("t", 0, 3, 2000) // t/0 offsets 3–5: another, held below
	r, _, release := heldPeer(t, a, 0, 1)
	// Bring t/0's first object and t/1's into b's cache: one batch each.
	for p := range int32(2) {
		warm := fetchRequest("t", p, 0)
		warm.Topics[0].Partitions[0].PartitionMaxBytes = 1
		if got := recordOffsets(t, do[*kmsg.FetchResponse](r, 12, warm).Topics[0].Partitions[0].RecordBatches); len(got) != 3 {
			t.Fatalf("warming t/%d: offsets %v", p, got)
		}
	}
	timer := time.AfterFunc(10*time.Second, release)
	defer timer.Stop()
	resp := do[*kmsg.FetchResponse](r, 12, fetchTwo(0, 0, 1<<20, 0))
	parts := resp.Topics[0].Partitions
	if got := recordOffsets(t, parts[0].RecordBatches); len(got) != 3 || got[0] != 0 {
		t.Fatalf("t/0 answered offsets %v, want 0–2 (what is in memory) without waiting for its held object", got)
	}
	if got := recordOffsets(t, parts[1].RecordBatches); len(got) != 3 {
		t.Fatalf("t/1 answered offsets %v, want its 3 records", got)
	}
	release()
	resp = do[*kmsg.FetchResponse](r, 12, fetchRequest("t", 0, 3))
	if got := recordOffsets(t, resp.Topics[0].Partitions[0].RecordBatches); len(got) != 3 || got[0] != 3 {
		t.Fatalf("t/0 from 3 after the release: offsets %v, want 3–5", got)
	}
}

// heldPeer starts, beside a, an agent in a zone of its own (so that it
// GETs every block from the bucket rather than asking a for some) whose
// bucket holds the GETs of t/partition's extent number extent until
// release, which the test's end calls too.
func heldPeer(t *testing.T, a *agenttest.Agent, partition int32, extent int) (r *fixture, held *heldBucket, release func()) {
	t.Helper()
	topic, err := a.Store.Topic(t.Context(), "t")
	if err != nil {
		t.Fatal(err)
	}
	extents, err := a.Store.Extents(t.Context(), topic.ID, partition, 0, 10)
	if err != nil || len(extents) <= extent {
		t.Fatalf("t/%d's extents: %v, %v", partition, extents, err)
	}
	held = &heldBucket{key: extents[extent].Object, release: make(chan struct{})}
	b := agenttest.StartPeer(t, a, agenttest.Options{Wrap: func(b objstore.Bucket) objstore.Bucket {
		held.Bucket = b
		return held
	}, Config: func(cfg *agent.Config) { cfg.Zone = "elsewhere" }})
	var once sync.Once
	release = func() { once.Do(func() { close(held.release) }) }
	t.Cleanup(release)
	return &fixture{t: t, a: b, c: testutil.Dial(t, b.Addr())}, held, release
}
