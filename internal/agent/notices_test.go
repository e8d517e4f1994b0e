package agent_test

import (
	"context"
	"sync/atomic"
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
	writerStore := openPostgres(t, dbURL, postgres.Options{NoticePollInterval: -1})
	readerStore := openPostgres(t, dbURL, postgres.Options{DisableNotify: true, PollInterval: time.Hour})
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
		waitPeerConnected(t, writer)
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

// offsetCounting counts the partition offsets an agent reads from its
// store (a fetch reads them when its cached tail was dropped).
type offsetCounting struct {
	*postgres.Store
	offsets atomic.Int64
}

func (s *offsetCounting) Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error) {
	s.offsets.Add(1)
	return s.Store.Offsets(ctx, id, partition)
}

// On PostgreSQL the lost-notice poll announces a quiet partition again a
// poll or two after its notice (it cannot tell which commit a notice was
// for). Its notice says what it saw, and an agent whose cached tail is
// already at that keeps it: a consumer waiting at the live edge is not
// sent to the database again for a commit whose notice it already had.
func TestPolledNoticeKeepsAFreshCache(t *testing.T) {
	dbURL := ftestutil.CreateDatabase(t, ftestutil.RequirePostgres(t), "floe_polled_")
	writerStore := openPostgres(t, dbURL, postgres.Options{NoticePollInterval: -1})
	readerStore := &offsetCounting{Store: openPostgres(t, dbURL, postgres.Options{NoticePollInterval: 300 * time.Millisecond})}
	polled := make(chan struct{}, 64)
	defer readerStore.WatchCommits(func(n metastore.CommitNotice) {
		if n.Seen != nil {
			select {
			case polled <- struct{}{}:
			default:
			}
		}
	})()
	writer := agenttest.Start(t, agenttest.Options{
		WrapStore: func(metastore.Store) metastore.Store { return writerStore },
	})
	reader := agenttest.StartPeer(t, writer, agenttest.Options{
		WrapStore: func(metastore.Store) metastore.Store { return readerStore },
	})
	w, r := ftestutil.Dial(t, writer.Addr()), ftestutil.Dial(t, reader.Addr())
	createTopic(t, w, "quiet", 1)
	// Until the writer knows the reader, its notices reach the reader
	// only through the poll.
	waitPeerConnected(t, writer)
	fetchAt := func(offset int64, maxWait int32) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := waitingFetch("quiet", maxWait)
		req.Topics[0].Partitions[0].FetchOffset = offset
		p := r.Do(req).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("fetch at %d: error %d", offset, p.ErrorCode)
		}
		return p
	}

	// A commit whose notice lands between two of the poll's reads is
	// announced again; one landing right after a read is not, so try a
	// few commits.
	for hwm := int64(1); hwm <= 3; hwm++ {
		pr := w.Do(produceRequest("quiet", -1, batchSpec{partition: 0, records: 1})).(*kmsg.ProduceResponse)
		if code := pr.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: error %d", code)
		}
		// The commit's notice reaches the reader, which reads the store.
		deadline := time.Now().Add(10 * time.Second)
		for len(fetchAt(hwm-1, 500).RecordBatches) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the reader never saw offset %d", hwm-1)
			}
		}
		for len(polled) > 0 {
			<-polled
		}
		before := readerStore.offsets.Load()
		// A consumer at the live edge for three of the poll's intervals.
		for end := time.Now().Add(900 * time.Millisecond); time.Now().Before(end); {
			if p := fetchAt(hwm, 100); len(p.RecordBatches) > 0 || p.HighWatermark != hwm {
				t.Fatalf("fetch at the high watermark %d: %d bytes, high watermark %d", hwm, len(p.RecordBatches), p.HighWatermark)
			}
		}
		reads, announced := readerStore.offsets.Load()-before, len(polled)
		t.Logf("commit %d: the poll announced the partition %d times after its notice; the reader read the store %d times", hwm, announced, reads)
		if reads != 0 {
			t.Fatalf("the reader read the store %d times for a partition its cache had up to date (the poll announced it %d times)", reads, announced)
		}
		if announced > 0 {
			return
		}
	}
	t.Fatal("the poll never announced a partition again after its notice: the test cannot tell")
}

// openPostgres opens a store of the database at dbURL, closed when t ends.
func openPostgres(t *testing.T, dbURL string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dbURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitPeerConnected waits until writer has a notice connection to its
// peer agent.
func waitPeerConnected(t *testing.T, writer *agenttest.Agent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ftestutil.MetricSum(t, writer.Registry(), "floe_peer_notice_peers_connected") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never connected to the reader's peer listener")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
