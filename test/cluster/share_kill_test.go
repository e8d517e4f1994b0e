package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// TestShareGroupAgentKilled: three agents, a topic of 6 partitions, and
// three franz-go share consumers (50 records a fetch in the record-limit
// mode, accepting every record, 50 ms of "processing" a poll, flushing
// their acknowledgements after every poll) reading
// through all of them. Agents are SIGKILLed while the consumers read and
// acknowledge: one when a quarter of the records are in (a new agent
// joins in its place), another at half. The sends, polls and
// acknowledgements are recorded as a history (internal/history), which
// checker.CheckShare then checks:
//   - every record is delivered at least once;
//   - no record whose acknowledgement an agent confirmed (the
//     partition's result in the ack callback was a success, and
//     FlushAcks returned) is delivered by a poll begun after that:
//     confirmed acknowledgements are in the store;
//   - every delivery's count is within 1..share.delivery.count.limit,
//     and a record's deliveries have distinct counts, growing: each
//     acquisition is stored before its records are handed out, so a
//     delivery on a killed agent is counted by the next, and no two
//     agents hand out one delivery.
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
	var hbuf syncBuffer
	hist := history.NewWriter(&hbuf)
	record := func(op history.Op) {
		if _, err := hist.Write(op); err != nil {
			t.Errorf("history: %v", err)
		}
	}
	record(history.Op{Type: history.OK, F: history.Start, Meta: &history.Meta{Workload: "share-kill", Topic: topic, Partitions: partitions}})
	prod := c.newClient(t, seeds, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	var produceErr error
	var pmu sync.Mutex
	for i := range n {
		// One process per send: sends are concurrent.
		proc := sendProcess + i
		value := fmt.Sprintf("v%d", i)
		record(history.Op{Type: history.Invoke, F: history.Send, Process: proc, Records: []history.Record{{Topic: topic, Partition: -1, Offset: -1, Value: value}}})
		prod.Produce(ctx, &kgo.Record{Value: []byte(value)}, func(r *kgo.Record, err error) {
			pmu.Lock()
			defer pmu.Unlock()
			if err != nil {
				record(history.Op{Type: history.Info, F: history.Send, Process: proc, Error: err.Error()})
				if produceErr == nil {
					produceErr = err
				}
				return
			}
			record(history.Op{Type: history.OK, F: history.Send, Process: proc, Records: []history.Record{{Topic: topic, Partition: r.Partition, Offset: r.Offset, Value: value}}})
		})
	}
	if err := prod.Flush(ctx); err != nil || produceErr != nil {
		t.Fatalf("produce: %v %v", err, produceErr)
	}

	var (
		mu         sync.Mutex
		deliveries = map[string]int{}
		confirmed  = map[string]bool{}
	)
	distinct := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries)
	}
	// The members poll until every record is delivered and the test
	// has seen the group taken over (or given up on it, below): on a
	// quick machine the records can all be in before a member's
	// heartbeat has reached the next coordinator.
	var stop atomic.Bool
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
			for i := 0; i < 600 && (distinct() < n || !stop.Load()) && ctx.Err() == nil; i++ {
				record(history.Op{Type: history.Invoke, F: history.SharePoll, Process: m, Group: "workers"})
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				fs := cl.PollFetches(pctx)
				pcancel()
				var polled []*kgo.Record
				var got []history.Record
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					deliveries[string(r.Value)]++
					got = append(got, history.Record{Topic: topic, Partition: r.Partition, Offset: r.Offset, Value: string(r.Value), DeliveryCount: int16(r.DeliveryCount())})
					polled = append(polled, r)
				})
				mu.Unlock()
				record(history.Op{Type: history.OK, F: history.SharePoll, Process: m, Group: "workers", Records: got})
				if len(got) == 0 {
					continue
				}
				record(history.Op{Type: history.Invoke, F: history.ShareAck, Process: m, Group: "workers", Ack: history.AckAccept, Records: got})
				for _, r := range polled {
					r.Ack(kgo.AckAccept)
				}
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
					record(history.Op{Type: history.Info, F: history.ShareAck, Process: m, Group: "workers", Error: err.Error()})
					continue
				}
				var ok []history.Record
				mu.Lock()
				for i, r := range polled {
					if reported[r.Partition] && !failed[r.Partition] {
						confirmed[string(r.Value)] = true
						ok = append(ok, got[i])
					}
				}
				mu.Unlock()
				record(history.Op{Type: history.OK, F: history.ShareAck, Process: m, Group: "workers", Records: ok})
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
	takenOver := func() bool {
		for _, a := range all {
			if groupLoaded.MatchString(a.stderr.String()) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !takenOver() && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
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
	if len(deliveries) == n {
		record(history.Op{Type: history.Invoke, F: history.Drain, Process: drainProcess, Group: "workers"})
		record(history.Op{Type: history.OK, F: history.Drain, Process: drainProcess, Group: "workers"})
	}
	if err := hist.Flush(); err != nil {
		t.Fatal(err)
	}
	ops, err := history.Read(bytes.NewReader(hbuf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	res := checker.CheckShare(ops, limit)
	var report strings.Builder
	res.WriteText(&report, nil)
	if !res.Valid {
		kept := "not kept"
		if f, err := os.CreateTemp("", "share-kill-*.history"); err == nil {
			f.Write(hbuf.Bytes())
			f.Close()
			kept = "kept at " + f.Name()
		}
		t.Errorf("share history (%d lines, %s) is not valid:\n%s", len(ops), kept, report.String())
	}
	if len(deliveries) != n {
		t.Fatalf("%d of %d records delivered", len(deliveries), n)
	}
	t.Logf("%d records delivered, %d of them more than once (unconfirmed acknowledgements or locks held on the killed agents); %d acknowledgements confirmed; checker: %d sends acknowledged, %d values delivered, %d anomalies, %d notes",
		len(deliveries), res.NotesByKind[checker.ShareRedelivered], len(confirmed), res.Acknowledged, res.Read, len(res.Anomalies), len(res.Notes))
	if len(confirmed) == 0 {
		t.Fatal("no acknowledgement was ever confirmed: the check above checked nothing")
	}
}

// Process numbers of the share history: workers are 0..2.
const (
	drainProcess = 99
	sendProcess  = 1000
)

// syncBuffer is a bytes.Buffer safe for concurrent writes (the history
// writer serialises its own, but the final read comes from another
// goroutine).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
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
