package agent_test

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

// gatedPuts holds each PUT until the test opens its gate, and tells the
// test when each one starts.
type gatedPuts struct {
	objstore.Bucket
	mu      sync.Mutex
	n       int
	started [3]chan struct{}
	gates   [3]chan struct{}
}

func newGatedPuts() *gatedPuts {
	g := &gatedPuts{}
	for i := range g.gates {
		g.started[i], g.gates[i] = make(chan struct{}), make(chan struct{})
	}
	return g
}

func (g *gatedPuts) Put(ctx context.Context, key string, data []byte) error {
	g.mu.Lock()
	i := g.n
	g.n++
	g.mu.Unlock()
	if i < len(g.gates) {
		close(g.started[i])
		select {
		case <-g.gates[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Bucket.Put(ctx, key, data)
}

// TestAnswerNotHeldBehindLaterProduce: a produce request answered while the
// next request on its connection still waits for a later segment reaches
// the client then, not when the later segment is committed. A producer's
// window of requests in flight counts the answered one until it arrives,
// so holding it back stalls the producer for a whole segment.
func TestAnswerNotHeldBehindLaterProduce(t *testing.T) {
	g := newGatedPuts()
	a := agenttest.Start(t, agenttest.Options{
		Linger: 20 * time.Millisecond,
		Wrap:   func(b objstore.Bucket) objstore.Bucket { g.Bucket = b; return g },
		Config: func(cfg *agent.Config) { cfg.DisableEarlyFlush = true },
	})
	defer func() {
		for _, gate := range g.gates {
			select {
			case <-gate:
			default:
				close(gate)
			}
		}
	}()
	c := testutil.Dial(t, a.Addr())
	createTopic(t, c, "held", 1)

	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}
	first := c.Send(produceRequest("held", -1, batchSpec{partition: 0, records: 3}))
	wait(g.started[0], "the first segment's PUT")
	second := c.Send(produceRequest("held", -1, batchSpec{partition: 0, records: 2}))
	// The second request is in a segment of its own once its PUT starts.
	wait(g.started[1], "the second segment's PUT")
	close(g.gates[0])

	got := make(chan *kmsg.ProduceResponse, 1)
	go func() {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		c.Receive(first, resp)
		got <- resp
	}()
	select {
	case resp := <-got:
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("first answer: error %d, base offset %d; want 0, 0", p.ErrorCode, p.BaseOffset)
		}
	case <-time.After(5 * time.Second):
		close(g.gates[1])
		<-got
		t.Fatal("the first request's answer arrived only after the second segment's PUT was let through")
	}
	close(g.gates[1])
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	c.Receive(second, resp)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("second answer: error %d, base offset %d; want 0, 3", p.ErrorCode, p.BaseOffset)
	}
}
