package protocol_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/fetchsession"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// sessionFetch is a Fetch v12 of session id at epoch: parts are
// "topic/partition@offset", forgotten "topic/partition".
func sessionFetch(t *testing.T, id, epoch int32, parts []string, forgotten ...string) *kmsg.FetchRequest {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	topics := map[string]int{}
	for _, p := range parts {
		tp, off, _ := strings.Cut(p, "@")
		topic, partition := splitTP(t, tp)
		i, ok := topics[topic]
		if !ok {
			i = len(req.Topics)
			topics[topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = partition, 1<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		fmt.Sscan(off, &rp.FetchOffset)
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	for _, p := range forgotten {
		topic, partition := splitTP(t, p)
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = topic, []int32{partition}
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return req
}

func splitTP(t *testing.T, s string) (string, int32) {
	t.Helper()
	topic, p, ok := strings.Cut(s, "/")
	var partition int32
	if _, err := fmt.Sscan(p, &partition); !ok || err != nil {
		t.Fatalf("bad partition %q", s)
	}
	return topic, partition
}

// answered lists the partitions of a fetch response as "topic/partition"
// with the offsets of their records, e.g. "t/0[3 4]" or "t/1[]", and
// their error if any.
func answered(t *testing.T, resp *kmsg.FetchResponse) []string {
	t.Helper()
	var out []string
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			s := fmt.Sprintf("%s/%d%v", rt.Topic, p.Partition, recordOffsets(t, p.RecordBatches))
			if p.ErrorCode != 0 {
				var kerrErr *kerr.Error
				if errors.As(kerr.ErrorForCode(p.ErrorCode), &kerrErr) {
					s += " " + kerrErr.Message
				} else {
					s += fmt.Sprint(" ", p.ErrorCode)
				}
			}
			out = append(out, s)
		}
	}
	return out
}

// expectAnswer checks a fetch response's top-level error, whether it
// carries a session (or the session id exactly, if want > 0), and its
// partitions (as answered lists them).
func expectAnswer(t *testing.T, what string, resp *kmsg.FetchResponse, code int16, session int32, parts ...string) {
	t.Helper()
	expectCode(t, what, resp.ErrorCode, code)
	switch {
	case session > 0 && resp.SessionID != session:
		t.Errorf("%s: session id %d, want %d", what, resp.SessionID, session)
	case session < 0 && resp.SessionID == 0:
		t.Errorf("%s: no session id, want a new one", what)
	case session == 0 && resp.SessionID != 0:
		t.Errorf("%s: session id %d, want 0", what, resp.SessionID)
	}
	if got := answered(t, resp); !slices.Equal(got, parts) {
		t.Errorf("%s: answered %q, want %q", what, got, parts)
	}
}

// newSession asks for a session; the answer must carry one.
const newSession = -1

// TestFetchSessionEpochs: every meaning of a session id and epoch
// (KIP-227), through the agent.
func TestFetchSessionEpochs(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 2, 1000)
	all := []string{"t/0@0", "t/1@0"}

	resp := do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, all))
	expectAnswer(t, "epoch 0", resp, 0, newSession, "t/0[0 1]", "t/1[]")
	id := resp.SessionID

	// Nothing new: an empty answer. The client moves t/0 on; then new
	// records are answered alone.
	expectAnswer(t, "epoch 1, t/0 not moved", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 1, nil)), 0, id, "t/0[0 1]")
	expectAnswer(t, "epoch 2, t/0 moved", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 2, []string{"t/0@2"})), 0, id)
	f.produce("t", 1, 1, 2000)
	expectAnswer(t, "epoch 3", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 3, nil)), 0, id, "t/1[0]")

	// Wrong epochs and ids: the error, no partitions, session 0; the
	// session survives them.
	expectAnswer(t, "epoch repeated", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 3, nil)), kerr.InvalidFetchSessionEpoch.Code, 0)
	expectAnswer(t, "epoch skipped", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 5, nil)), kerr.InvalidFetchSessionEpoch.Code, 0)
	expectAnswer(t, "unknown id", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id+1, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	expectAnswer(t, "epoch 1 without id", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	other := &fixture{t: t, a: f.a, c: dial(t, f)}
	expectAnswer(t, "another connection", do[*kmsg.FetchResponse](other, 12, sessionFetch(t, id, 4, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	expectAnswer(t, "another connection closing it", do[*kmsg.FetchResponse](other, 12, sessionFetch(t, id, -1, []string{"t/0@2"})), 0, 0, "t/0[]")
	expectAnswer(t, "epoch 4", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 4, []string{"t/1@1"})), 0, id)

	// Epoch -1 with the id: a full fetch with data and no session; the
	// session is gone.
	expectAnswer(t, "epoch -1", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, -1, all)), 0, 0, "t/0[0 1]", "t/1[0]")
	expectAnswer(t, "after epoch -1", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 5, nil)), kerr.FetchSessionIDNotFound.Code, 0)

	// Epoch 0 with an id replaces that session.
	resp = do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, all))
	first := resp.SessionID
	resp = do[*kmsg.FetchResponse](f, 12, sessionFetch(t, first, 0, all))
	expectAnswer(t, "epoch 0 replacing", resp, 0, newSession, "t/0[0 1]", "t/1[0]")
	if resp.SessionID == first {
		t.Errorf("epoch 0 with session %d answered the same id", first)
	}
	expectAnswer(t, "replaced session", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, first, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	expectAnswer(t, "replacing session", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, resp.SessionID, 1, nil)), 0, resp.SessionID, "t/0[0 1]", "t/1[0]")

	// Versions before 7 have no sessions.
	expectAnswer(t, "v6", do[*kmsg.FetchResponse](f, 6, sessionFetch(t, 0, 0, all)), 0, 0, "t/0[0 1]", "t/1[0]")
}

// TestFetchSessionIncremental: what an incremental fetch answers: new
// records, a moved log start offset, errors every time, new partitions
// once; forgotten partitions are no longer read, and forgetting the last
// one closes the session.
func TestFetchSessionIncremental(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	f.produce("t", 0, 3, 1000)
	resp := do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, []string{"t/0@3", "t/1@0", "gone/0@0"}))
	expectAnswer(t, "epoch 0", resp, 0, newSession, "t/0[]", "t/1[]", "gone/0[] UNKNOWN_TOPIC_OR_PARTITION")
	id := resp.SessionID
	fetch := func(epoch int32, parts []string, forgotten ...string) *kmsg.FetchResponse {
		t.Helper()
		return do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, epoch, parts, forgotten...))
	}

	// An error is answered every time; it returns at once.
	expectAnswer(t, "epoch 1", fetch(1, nil), 0, id, "gone/0[] UNKNOWN_TOPIC_OR_PARTITION")
	expectAnswer(t, "epoch 2, forgetting the unknown topic", fetch(2, nil, "gone/0"), 0, id)

	// A moved log start offset is answered even without records.
	del := kmsg.NewPtrDeleteRecordsRequest()
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "t"
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition, dp.Offset = 0, 2
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	expectCode(t, "delete records", do[*kmsg.DeleteRecordsResponse](f, 2, del).Topics[0].Partitions[0].ErrorCode, 0)
	resp = fetch(3, nil)
	expectAnswer(t, "epoch 3, log start moved", resp, 0, id, "t/0[]")
	if p := resp.Topics[0].Partitions[0]; p.LogStartOffset != 2 || p.HighWatermark != 3 {
		t.Errorf("log start offset %d, high watermark %d; want 2, 3", p.LogStartOffset, p.HighWatermark)
	}

	// A new partition is answered once, with what it has.
	f.createTopic("u", 1)
	f.produce("u", 0, 1, 1000)
	expectAnswer(t, "epoch 4, adding u/0", fetch(4, []string{"u/0@0"}), 0, id, "u/0[0]")
	expectAnswer(t, "epoch 5, u/0 moved", fetch(5, []string{"u/0@1"}), 0, id)

	// A forgotten partition is not read: its new records are not
	// answered.
	f.produce("t", 1, 1, 2000)
	expectAnswer(t, "epoch 6, forgetting t/1", fetch(6, nil, "t/1"), 0, id)
	f.produce("u", 0, 1, 2000)
	expectAnswer(t, "epoch 7", fetch(7, nil), 0, id, "u/0[1]")

	// Forgetting everything closes the session.
	expectAnswer(t, "epoch 8, forgetting the rest", fetch(8, nil, "t/0", "u/0"), 0, 0)
	expectAnswer(t, "epoch 9", fetch(9, nil), kerr.FetchSessionIDNotFound.Code, 0)
}

// TestFetchSessionRotation: partitions that returned records move to the
// end of the session, so a fetch whose MaxBytes holds one batch returns
// each partition in turn, not the first one forever.
func TestFetchSessionRotation(t *testing.T) {
	f := start(t)
	f.createTopic("t", 3)
	for p := range int32(3) {
		f.produce("t", p, 1, 1000)
	}
	req := sessionFetch(t, 0, 0, []string{"t/0@0", "t/1@0", "t/2@0"})
	req.MaxBytes = 1 // the first batch is still returned whole (KIP-74)
	resp := do[*kmsg.FetchResponse](f, 12, req)
	expectAnswer(t, "epoch 0", resp, 0, newSession, "t/0[0]", "t/1[]", "t/2[]")
	id := resp.SessionID
	// The client does not move its offsets. A new session keeps the
	// request's order, as Kafka's does; from then on, each fetch reads
	// first the partitions that returned nothing last.
	for epoch, want := range []string{"t/0[0]", "t/1[0]", "t/2[0]", "t/0[0]"} {
		req := sessionFetch(t, id, int32(epoch+1), nil)
		req.MaxBytes = 1
		expectAnswer(t, fmt.Sprintf("epoch %d", epoch+1), do[*kmsg.FetchResponse](f, 12, req), 0, id, want)
	}
}

// TestFetchSessionLongPoll: an incremental fetch with nothing new waits
// MaxWaitMillis as a full one does, and is answered with the partition
// that records woke it for.
func TestFetchSessionLongPoll(t *testing.T) {
	f := start(t)
	f.createTopic("t", 2)
	id := do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, []string{"t/0@0", "t/1@0"})).SessionID

	req := sessionFetch(t, id, 1, nil)
	req.MaxWaitMillis = 200
	begin := time.Now()
	expectAnswer(t, "empty long poll", do[*kmsg.FetchResponse](f, 12, req), 0, id)
	if took := time.Since(begin); took < 150*time.Millisecond || took > within {
		t.Errorf("empty long poll answered after %v, want about 200ms", took)
	}

	req = sessionFetch(t, id, 2, nil)
	req.MaxWaitMillis = int32(within / time.Millisecond)
	req.SetVersion(12)
	corr := f.c.Send(req)
	producer := &fixture{t: t, a: f.a, c: dial(t, f)}
	producer.produce("t", 1, 2, 1000)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	expectAnswer(t, "woken", resp, 0, id, "t/1[0 1]")
}

// TestFetchSessionReadCommitted: a read_committed session answers per
// partition as a full fetch does (records below the last stable offset,
// the aborted transactions they need, an empty list otherwise), leaves
// out a partition whose open transaction holds it back, and answers it
// when the transaction ends.
func TestFetchSessionReadCommitted(t *testing.T) {
	f := startTxns(t)
	tp, aborted := readCommittedLog(f) // t/0: high watermark 10, last stable offset 8
	fetch := func(id, epoch int32, parts []string) *kmsg.FetchResponse {
		req := sessionFetch(t, id, epoch, parts)
		req.IsolationLevel = 1
		req.MaxWaitMillis = int32(within / time.Millisecond)
		return do[*kmsg.FetchResponse](f.fixture, 12, req)
	}
	resp := fetch(0, 0, []string{"t/0@0"})
	expectAnswer(t, "epoch 0", resp, 0, newSession, "t/0[0 1 2 3 4 5 6 7]")
	id := resp.SessionID
	p := resp.Topics[0].Partitions[0]
	if p.LastStableOffset != 8 || p.HighWatermark != 10 || len(p.AbortedTransactions) != 1 || p.AbortedTransactions[0].ProducerID != aborted.ProducerID {
		t.Errorf("last stable offset %d, high watermark %d, aborted %v; want 8, 10, producer %d's", p.LastStableOffset, p.HighWatermark, p.AbortedTransactions, aborted.ProducerID)
	}

	// At the last stable offset there is nothing to read; the fetch
	// waits until the transaction ends, and then answers what it held
	// back, with an empty aborted list.
	req := sessionFetch(t, id, 1, []string{"t/0@8"})
	req.IsolationLevel = 1
	req.MaxWaitMillis = int32(within / time.Millisecond)
	req.SetVersion(12)
	begin := time.Now()
	corr := f.c.Send(req)
	time.Sleep(200 * time.Millisecond)
	f.commit(tp, markerBatch(8, true, 5002)) // 10
	f.txns.end(tp)
	resp = req.ResponseKind().(*kmsg.FetchResponse)
	f.c.Receive(corr, resp)
	if took := time.Since(begin); took < 200*time.Millisecond {
		t.Errorf("answered after %v, before the transaction ended", took)
	}
	expectAnswer(t, "epoch 1, woken by the end of the transaction", resp, 0, id, "t/0[8 9 10]")
	if p := resp.Topics[0].Partitions[0]; p.LastStableOffset != 11 || p.AbortedTransactions == nil || len(p.AbortedTransactions) != 0 {
		t.Errorf("last stable offset %d, aborted %#v; want 11, []", p.LastStableOffset, p.AbortedTransactions)
	}
}

// TestFetchSessionEviction: the cache's bounds as an agent applies them:
// no room for a young session's replacement, a stale one evicted for a
// new one (its client gets FETCH_SESSION_ID_NOT_FOUND), sessions dropped
// with their connection, the metrics, and the slots DescribeConfigs
// reports.
func TestFetchSessionEviction(t *testing.T) {
	const age = 300 * time.Millisecond
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.FetchSessions = fetchsession.Options{Slots: 1, EvictionAge: age}
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 1)
	other := &fixture{t: t, a: a, c: dial(t, f)}
	reg := a.Registry()

	id := do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, []string{"t/0@0"})).SessionID
	expectAnswer(t, "second session, none stale", do[*kmsg.FetchResponse](other, 12, sessionFetch(t, 0, 0, []string{"t/0@0"})), 0, 0, "t/0[]")
	time.Sleep(age + 100*time.Millisecond)
	expectAnswer(t, "second session, the first stale", do[*kmsg.FetchResponse](other, 12, sessionFetch(t, 0, 0, []string{"t/0@0"})), 0, newSession, "t/0[]")
	expectAnswer(t, "evicted session", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	if n := metric(t, reg, "floe_fetch_session_evictions_total", "reason", "stale"); n != 1 {
		t.Errorf("stale evictions %v, want 1", n)
	}
	if n := metric(t, reg, "floe_fetch_sessions"); n != 1 {
		t.Errorf("floe_fetch_sessions %v, want 1", n)
	}
	if n := metric(t, reg, "floe_fetch_session_partitions"); n != 1 {
		t.Errorf("floe_fetch_session_partitions %v, want 1", n)
	}

	other.c.Conn.Close()
	testutil.WaitFor(t, within, "the closed connection's session dropped", func() bool {
		return metric(t, reg, "floe_fetch_sessions") == 0
	})

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeBroker
	req.Resources = append(req.Resources, rr)
	for _, c := range do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].Configs {
		if c.Name == "max.incremental.fetch.session.cache.slots" && (c.Value == nil || *c.Value != "1") {
			t.Errorf("max.incremental.fetch.session.cache.slots = %v, want 1", c.Value)
		}
	}
}

// TestFetchSessionsOff: an agent without sessions answers every full
// fetch with session 0, which tells the client to go on without one.
func TestFetchSessionsOff(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.FetchSessions.Slots = -1
	}})
	f := &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
	f.createTopic("t", 1)
	expectAnswer(t, "epoch 0", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, []string{"t/0@0"})), 0, 0, "t/0[]")
	expectAnswer(t, "epoch 1", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 1, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
}

// metric is the value of the series of name with the given label pairs
// in reg (0 if there is none).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestFetchSessionOtherAgent: sessions live on the agent that made them;
// another agent of the cluster does not know the id, and a full fetch
// there opens a session of its own.
func TestFetchSessionOtherAgent(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1)
	f.produce("t", 0, 1, 1000)
	id := do[*kmsg.FetchResponse](f, 12, sessionFetch(t, 0, 0, []string{"t/0@0"})).SessionID
	peer := agenttest.StartPeer(t, f.a, agenttest.Options{})
	g := &fixture{t: t, a: peer, c: testutil.Dial(t, peer.Addr())}
	expectAnswer(t, "incremental on another agent", do[*kmsg.FetchResponse](g, 12, sessionFetch(t, id, 1, nil)), kerr.FetchSessionIDNotFound.Code, 0)
	expectAnswer(t, "starting over there", do[*kmsg.FetchResponse](g, 12, sessionFetch(t, id, 0, []string{"t/0@0"})), 0, newSession, "t/0[0]")
	expectAnswer(t, "the first agent's session", do[*kmsg.FetchResponse](f, 12, sessionFetch(t, id, 1, nil)), 0, id, "t/0[0]")
}
