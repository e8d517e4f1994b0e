package agent_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/wire"
)

func createTopics(c *testutil.RawClient, version int16, partitions int32, names ...string) *kmsg.CreateTopicsResponse {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(version)
	for _, name := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, -1
		req.Topics = append(req.Topics, rt)
	}
	return c.Do(req).(*kmsg.CreateTopicsResponse)
}

func createPartitions(c *testutil.RawClient, topic string, count int32) kmsg.CreatePartitionsResponseTopic {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.SetVersion(3)
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, count
	req.Topics = append(req.Topics, rt)
	return c.Do(req).(*kmsg.CreatePartitionsResponse).Topics[0]
}

// The request: CreateTopics for 50,000,000 partitions was
// accepted, and the next Metadata request stalled the agent.
func TestCreateBeyondLimitsIsRefused(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Limits = protocol.Limits{MaxTopics: 3, MaxPartitions: 20}
	}})
	c := testutil.Dial(t, a.Addr())
	check := func(what string, code int16, msg *string, want int16) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %v, want %v", what, kerr.ErrorForCode(code), kerr.ErrorForCode(want))
		}
		if want != 0 && (msg == nil || *msg == "") {
			t.Fatalf("%s: no error message", what)
		}
		if msg != nil {
			t.Logf("%s: %s", what, *msg)
		}
	}
	st := createTopics(c, 7, 50_000_000, "huge").Topics[0]
	check("50M partitions", st.ErrorCode, st.ErrorMessage, kerr.InvalidPartitions.Code)
	st = createTopics(c, 7, 10, "a").Topics[0]
	check("10 partitions", st.ErrorCode, st.ErrorMessage, 0)
	st = createTopics(c, 7, 11, "b").Topics[0]
	check("21 in the cluster", st.ErrorCode, st.ErrorMessage, kerr.PolicyViolation.Code)
	pt := createPartitions(c, "a", 50_000_000)
	check("CreatePartitions to 50M", pt.ErrorCode, pt.ErrorMessage, kerr.InvalidPartitions.Code)
	pt = createPartitions(c, "a", 21)
	check("CreatePartitions to 21 in the cluster", pt.ErrorCode, pt.ErrorMessage, kerr.PolicyViolation.Code)
	pt = createPartitions(c, "a", 12)
	check("CreatePartitions to 12", pt.ErrorCode, pt.ErrorMessage, 0)
	for _, name := range []string{"b", "c"} {
		st = createTopics(c, 7, 1, name).Topics[0]
		check("topic "+name, st.ErrorCode, st.ErrorMessage, 0)
	}
	st = createTopics(c, 7, 1, "d").Topics[0]
	check("a fourth topic", st.ErrorCode, st.ErrorMessage, kerr.PolicyViolation.Code)
	// Auto-creation obeys the same limits.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	name := "auto"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	md.AllowAutoTopicCreation = true
	if code := c.Do(md).(*kmsg.MetadataResponse).Topics[0].ErrorCode; code != kerr.PolicyViolation.Code {
		t.Fatalf("auto-create past the topic limit: %v", kerr.ErrorForCode(code))
	}
}

// KIP-599: from CreateTopics v6 a client over its controller mutation
// quota is refused THROTTLING_QUOTA_EXCEEDED with a throttle time;
// older versions are accepted but not read from until the client is
// within its quota again.
func TestControllerMutationQuota(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		// A burst of 11 × 10 = 110 partitions, then 10 a second: 30
		// partitions of debt take 3 s to repay, far longer than the
		// steps between going into debt and the v5 request below.
		cfg.Limits = protocol.Limits{ControllerMutationRate: 10}
	}})
	c := testutil.Dial(t, a.Addr())
	if st := createTopics(c, 7, 110, "burst").Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("within the burst: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	// Credits are zero: still admitted, and now 30 partitions in debt.
	resp := createTopics(c, 7, 30, "debt")
	if st := resp.Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("at zero credits: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if resp.ThrottleMillis < 200 {
		t.Fatalf("throttle %d ms after going 30 partitions into debt at 10/s", resp.ThrottleMillis)
	}
	resp = createTopics(c, 7, 1, "refused")
	if st := resp.Topics[0]; st.ErrorCode != kerr.ThrottlingQuotaExceeded.Code || resp.ThrottleMillis <= 0 {
		t.Fatalf("in debt: %v, throttle %d ms", kerr.ErrorForCode(st.ErrorCode), resp.ThrottleMillis)
	}
	// Another client id has its own quota.
	other := testutil.Dial(t, a.Addr())
	other.ClientID = "another"
	if st := createTopics(other, 7, 1, "other").Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("another client: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	// v5 predates KIP-599: accepted, after a wait.
	start := time.Now()
	if st := createTopics(c, 5, 1, "old").Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("v5: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("v5 in debt answered in %v", took)
	}
	// Deleting counts too.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(6)
	name := "burst"
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: &name}}
	time.Sleep(400 * time.Millisecond) // out of debt
	if code := c.Do(del).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("delete: %v", kerr.ErrorForCode(code))
	}
	name = "debt"
	if code := c.Do(del).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != kerr.ThrottlingQuotaExceeded.Code {
		t.Fatalf("delete after 110 partitions deleted: %v", kerr.ErrorForCode(code))
	}
}

// No single request, however large the cluster, holds up /healthz or
// Close: here a topic of 100,000 partitions (ten times the default
// limit per topic), asked for by a pipeline of Metadata requests.
func TestLargeMetadataDoesNotBlockHealthOrClose(t *testing.T) {
	const partitions = 100_000
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Limits = protocol.Limits{MaxPartitionsPerTopic: partitions}
		cfg.ShutdownTimeout = time.Second
	}})
	c := testutil.Dial(t, a.Addr())
	if st := createTopics(c, 7, partitions, "wide").Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(st.ErrorCode))
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	name := "wide"
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: &name}}
	start := time.Now()
	if n := len(c.Do(md).(*kmsg.MetadataResponse).Topics[0].Partitions); n != partitions {
		t.Fatalf("%d partitions", n)
	}
	t.Logf("one Metadata of %d partitions over TCP: %v", partitions, time.Since(start))

	// Keep the connection busy: requests are sent and never read, so
	// Close also meets a client that does not read its answers.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			if c.Conn.SetWriteDeadline(time.Now().Add(10*time.Second)) != nil || c.WriteRaw(wire.AppendRequest(nil, 1, "busy", md)) != nil {
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	client := http.Client{Timeout: time.Second}
	for range 5 {
		start := time.Now()
		resp, err := client.Get("http://" + a.AdminAddr() + "/healthz")
		if err != nil {
			t.Fatalf("/healthz while Metadata requests are in flight: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz: %d", resp.StatusCode)
		}
		t.Logf("/healthz answered in %v", time.Since(start))
	}
	start = time.Now()
	done := make(chan struct{})
	go func() { a.Close(); close(done) }()
	select {
	case <-done:
		t.Logf("Close returned in %v with Metadata requests in flight", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	c.Conn.Close()
	wg.Wait()
}

// Creations racing on one agent take turns at the check and the create,
// so together they cannot pass a cluster limit.
func TestConcurrentCreationsKeepTheTopicLimit(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Limits = protocol.Limits{MaxTopics: 5}
	}})
	var wg sync.WaitGroup
	created := make(chan string, 20)
	for i := range 20 {
		c := testutil.Dial(t, a.Addr())
		name := "race-" + itoa(int32(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := kmsg.NewPtrCreateTopicsRequest()
			req.SetVersion(7)
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, -1
			req.Topics = append(req.Topics, rt)
			corr := c.Send(req)
			resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
			c.Receive(corr, resp)
			if resp.Topics[0].ErrorCode == 0 {
				created <- name
			}
		}()
	}
	wg.Wait()
	close(created)
	if n := len(created); n != 5 {
		t.Fatalf("%d topics created, limit 5", n)
	}
}

// InitProducerId beyond its rate is answered late, never refused.
func TestProducerIDRate(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Limits = protocol.Limits{ProducerIDRate: 2} // a burst of 22
	}})
	c := testutil.Dial(t, a.Addr())
	start := time.Now()
	var throttled int32
	for range 24 {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.ProducerID, req.ProducerEpoch = -1, -1
		resp := c.Do(req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("refused: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		throttled = max(throttled, resp.ThrottleMillis)
	}
	// The 23rd and 24th go one and two ids into debt: the 24th waits
	// for the first to be paid (0.5 s).
	if took := time.Since(start); took < 400*time.Millisecond || throttled <= 0 {
		t.Fatalf("24 ids at 2/s with a burst of 22 took %v, throttle %d ms", took, throttled)
	}
}

// A request naming more partitions than the cluster may have closes the
// connection: its answer would be sized by the client.
func TestRequestNamingTooManyPartitionsClosesTheConnection(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Limits = protocol.Limits{MaxPartitions: 100}
	}})
	fetchOf := func(partitions int) *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.MaxWaitMillis, req.MaxBytes = 1, 1<<20
		rt := kmsg.FetchRequestTopic{Topic: "missing"}
		for p := range partitions {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = int32(p), 1<<20
			rt.Partitions = append(rt.Partitions, fp)
		}
		req.Topics = []kmsg.FetchRequestTopic{rt}
		return req
	}
	c := testutil.Dial(t, a.Addr())
	if n := len(c.Do(fetchOf(100)).(*kmsg.FetchResponse).Topics[0].Partitions); n != 100 {
		t.Fatalf("%d partitions answered", n)
	}
	c.Send(fetchOf(101))
	if err := c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The transaction requests that name partitions or ids are bounded
	// the same way.
	addPartitions := kmsg.NewPtrAddPartitionsToTxnRequest()
	addPartitions.SetVersion(3)
	addPartitions.TransactionalID = "tx"
	addPartitions.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "missing", Partitions: make([]int32, 101)}}
	describe := kmsg.NewPtrDescribeTransactionsRequest()
	describe.TransactionalIDs = make([]string, 101)
	for _, req := range []kmsg.Request{addPartitions, describe} {
		c := testutil.Dial(t, a.Addr())
		c.Send(req)
		if err := c.ExpectClosed(5 * time.Second); err != nil {
			t.Errorf("%s naming 101: %v", kmsg.NameForKey(req.Key()), err)
		}
	}
}
