package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/postgres"
	ftestutil "github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Two agents on one PostgreSQL database: a fetch waiting on the reader
// agent is woken by a commit through the writer agent because the writer
// relays its notice over the peer listener. The reader's store neither
// listens nor polls in time (DisableNotify, PollInterval an hour), so no
// other path could wake the fetch before its MaxWait; the control, with
// the writer on --store-notices, shows the fetch then waits it out.
func TestCommitNoticeRelayedToPeer(t *testing.T) {
	t.Run("relayed", func(t *testing.T) {
		if waited := waitThroughPeer(t, false); waited > 2*time.Second {
			t.Fatalf("the fetch on the other agent answered after %v: the notice was not relayed", waited)
		}
	})
	t.Run("store notices only", func(t *testing.T) {
		if waited := waitThroughPeer(t, true); waited < 3*time.Second {
			t.Fatalf("the fetch on the other agent answered after %v, before its MaxWait, with no notice relayed: the test cannot tell a relayed notice", waited)
		}
	})
}

// waitThroughPeer returns how long a fetch waiting on the reader agent
// took to answer after a produce through the writer agent.
func waitThroughPeer(t *testing.T, storeNotices bool) time.Duration {
	dbURL := ftestutil.CreateDatabase(t, ftestutil.RequirePostgres(t), "floe_notices_")
	open := func(opts postgres.Options) *postgres.Store {
		s, err := postgres.Open(context.Background(), dbURL, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	writerStore := open(postgres.Options{NoticePollInterval: -1})
	readerStore := open(postgres.Options{DisableNotify: true, PollInterval: time.Hour})
	writer := agenttest.Start(t, agenttest.Options{
		WrapStore: func(metastore.Store) metastore.Store { return writerStore },
		Config:    func(cfg *agent.Config) { cfg.StoreNotices = storeNotices },
	})
	reader := agenttest.StartPeer(t, writer, agenttest.Options{
		WrapStore: func(metastore.Store) metastore.Store { return readerStore },
	})

	w := ftestutil.Dial(t, writer.Addr())
	createTopic(t, w, "relayed", 1)
	if !storeNotices {
		deadline := time.Now().Add(10 * time.Second)
		for ftestutil.MetricSum(t, writer.Registry(), "floe_peer_notice_peers_connected") < 1 {
			if time.Now().After(deadline) {
				t.Fatal("the writer never connected to the reader's peer listener")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r := ftestutil.Dial(t, reader.Addr())
	if p := r.Do(waitingFetch("relayed", 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) > 0 {
		t.Fatalf("first fetch: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}

	corr := r.Send(waitingFetch("relayed", 4000))
	time.Sleep(200 * time.Millisecond) // the fetch is waiting
	pr := w.Do(produceRequest("relayed", -1, batchSpec{partition: 0, records: 3})).(*kmsg.ProduceResponse)
	if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: error %d", code)
	}
	acked := time.Now()
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(11)
	r.Receive(corr, resp)
	waited := time.Since(acked)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("waiting fetch: error %d", p.ErrorCode)
	}
	relayed := ftestutil.MetricSum(t, reader.Registry(), "floe_peer_notice_frames_received_total")
	t.Logf("store notices only %v: the waiting fetch answered %v after the produce was acknowledged, with %d bytes; %v notice frames relayed to the reader", storeNotices, waited, len(p.RecordBatches), relayed)
	if storeNotices == (relayed > 0) {
		t.Fatalf("%v notice frames relayed with store notices only %v", relayed, storeNotices)
	}
	if waited < 3*time.Second && len(p.RecordBatches) == 0 {
		t.Fatal("the waiting fetch answered early without the records")
	}
	return waited
}
