package cluster

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShareGroupAgentKilled: three agents, a topic of 6 partitions, and
// three franz-go share consumers (50 records a fetch in the record-limit
// mode, accepting every record, 50 ms of "processing" a poll, flushing
// their acknowledgements after every poll) reading
// through all of them. Agents are SIGKILLed while the consumers read and
// acknowledge: one when a quarter of the records are in (a new agent
// joins in its place), another at half. The recorded history of
// deliveries is then checked:
//   - every record is delivered at least once;
//   - no record whose acknowledgement an agent confirmed (the
//     partition's result in the ack callback was a success, and
//     FlushAcks returned) is ever delivered again: confirmed
//     acknowledgements are in the store;
//   - every delivery's count is within 1..share.delivery.count.limit.
func TestShareGroupAgentKilled(t *testing.T) {
	requireServices(t)
	e := newEnv(t, "")
	const limit = 5
	opts := agentOpts{extra: []string{"--share-auto-offset-reset", "earliest", "--share-record-lock-duration", "5s",
		"--share-delivery-count-limit", fmt.Sprint(limit)}}
	agents := []*agentProc{startAgent(t, e, "a", opts), startAgent(t, e, "b", opts), startAgent(t, e, "c", opts)}
	c := e.admin()
	waitForView(t, c, agents, 30*time.Second)
	const topic, partitions, n = "share-kill", 6, 6000
	createTopic(t, c, agents[0].addr, topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seeds := addrs(agents)
	prod := c.newClient(t, seeds, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	var produceErr error
	var pmu sync.Mutex
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}, func(_ *kgo.Record, err error) {
			pmu.Lock()
			defer pmu.Unlock()
			if err != nil && produceErr == nil {
				produceErr = err
			}
		})
	}
	if err := prod.Flush(ctx); err != nil || produceErr != nil {
		t.Fatalf("produce: %v %v", err, produceErr)
	}

	var (
		mu         sync.Mutex
		deliveries = map[string]int{}
		confirmed  = map[string]bool{}
		lastCount  = map[string]int32{}
		violations []string
		// countWentBack counts deliveries whose count was below an
		// earlier delivery's of the same record: acquisitions are not
		// stored, so a delivery in progress on a killed agent is lost.
		countWentBack int
	)
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries)
	}
	var wg sync.WaitGroup
	for m := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				rmu     sync.Mutex
				results []kgo.ShareAckResult
			)
			cl := c.newClient(t, seeds, kgo.ConsumeTopics(topic), kgo.ShareGroup("workers"),
				kgo.FetchMaxWait(500*time.Millisecond), kgo.ShareMaxRecords(50), kgo.ShareMaxRecordsStrict(), kgo.ClientID(fmt.Sprintf("worker-%d", m)),
				kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
					rmu.Lock()
					results = append(results, rs...)
					rmu.Unlock()
				}))
			defer cl.Close()
			for i := 0; i < 600 && distinct() < n && ctx.Err() == nil; i++ {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				fs := cl.PollFetches(pctx)
				pcancel()
				var polled []*kgo.Record
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					v := string(r.Value)
					if confirmed[v] {
						violations = append(violations, fmt.Sprintf("%s (partition %d offset %d) delivered to worker-%d after its acknowledgement was confirmed", v, r.Partition, r.Offset, m))
					}
					deliveries[v]++
					if dc := r.DeliveryCount(); dc < 1 || dc > limit {
						violations = append(violations, fmt.Sprintf("%s (partition %d offset %d) delivered to worker-%d with delivery count %d, outside 1..%d", v, r.Partition, r.Offset, m, dc, limit))
					}
					if dc := r.DeliveryCount(); dc < lastCount[v] {
						countWentBack++
					}
					lastCount[v] = max(lastCount[v], r.DeliveryCount())
					polled = append(polled, r)
					r.Ack(kgo.AckAccept)
				})
				mu.Unlock()
				// Processing takes a while, so that the kills come while
				// records are held and acknowledgements are in flight.
				time.Sleep(50 * time.Millisecond)
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
				err := cl.FlushAcks(fctx)
				fcancel()
				rmu.Lock()
				failed := map[int32]bool{}
				reported := map[int32]bool{}
				for _, r := range results {
					reported[r.Partition] = true
					if r.Err != nil {
						failed[r.Partition] = true
					}
				}
				results = nil
				rmu.Unlock()
				if err != nil {
					continue
				}
				mu.Lock()
				for _, r := range polled {
					if reported[r.Partition] && !failed[r.Partition] {
						confirmed[string(r.Value)] = true
					}
				}
				mu.Unlock()
			}
		}()
	}

	// SIGKILL the group's coordinator when a quarter of the records are
	// in, and start a new agent in its place; SIGKILL the coordinator
	// again at half. Members must continue on the next coordinator at
	// their epochs (the membership is stored).
	all := slices.Clone(agents)
	live := slices.Clone(agents)
	for i, at := range []int{n / 4, n / 2} {
		for distinct() < at && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		victim := liveCoordinator(t, c, live, "workers")
		victim.kill(t)
		live = slices.DeleteFunc(live, func(a *agentProc) bool { return a == victim })
		t.Logf("killed agent %s (node %d), the group's coordinator, after %d of %d records", victim.name, victim.nodeID, distinct(), n)
		if i == 0 {
			d := startAgent(t, e, "d", opts)
			live, all = append(live, d), append(all, d)
		}
	}
	wg.Wait()
	// Every agent's log, the killed ones' too: no heartbeat was answered
	// FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID, and some agent took the
	// group over from the store.
	refused, loaded := 0, 0
	for _, a := range all {
		log := a.stderr.String()
		refused += strings.Count(log, `msg="share group heartbeat refused"`)
		loaded += len(groupLoaded.FindAllString(log, -1))
	}
	t.Logf("heartbeats refused (fenced or unknown member): %d; takeovers of the group from the store: %d", refused, loaded)
	if refused != 0 {
		t.Errorf("%d share group heartbeats were refused across the coordinator's kills; want none", refused)
	}
	if loaded == 0 {
		t.Error("no agent loaded the group's membership: the coordinator never moved")
	}

	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	if len(deliveries) != n {
		t.Fatalf("%d of %d records delivered", len(deliveries), n)
	}
	again := 0
	for _, k := range deliveries {
		if k > 1 {
			again++
		}
	}
	t.Logf("%d records delivered, %d of them more than once (unconfirmed acknowledgements or locks held on the killed agents); %d acknowledgements confirmed; %d deliveries with a count below an earlier one",
		len(deliveries), again, len(confirmed), countWentBack)
	if len(confirmed) == 0 {
		t.Fatal("no acknowledgement was ever confirmed: the check above checked nothing")
	}
}

var groupLoaded = regexp.MustCompile(`msg="share group loaded".* group=workers `)

// liveCoordinator returns the agent coordinating group among live, once
// the agents' views agree that it is one of them (within 30 s).
func liveCoordinator(t *testing.T, who client, live []*agentProc, group string) *agentProc {
	t.Helper()
	cl := who.newClient(t, addrs(live))
	defer cl.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)
		cancel()
		if c, ok := resp[group]; ok && c.Err == nil {
			for _, a := range live {
				if a.nodeID == c.NodeID {
					return a
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live agent coordinates %s after 30 s", group)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
