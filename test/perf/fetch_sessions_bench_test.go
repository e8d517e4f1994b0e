package perf

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil/agenttest"
	"github.com/floe-io/floe/internal/wire"
)

// BenchmarkFetchSessions measures what fetch sessions (KIP-227) save a
// consumer of 1,000 partitions on one agent: request and response bytes
// per fetch, the agent's time per fetch (floe_request_duration_seconds,
// from reading the request to having the response ready, encoding
// excluded) and the process's CPU per fetch (agent and client together,
// encoding and decoding included), with sessions off (every fetch lists
// every partition and is answered with every partition) and on (one full
// fetch opens the session, then each fetch lists only the partitions
// whose offsets moved and is answered only with those that changed).
//
// Two workloads, each with sessions off and on:
//
//   - idle: a consumer at the high watermark of every partition, nothing
//     produced: every fetch finds nothing (MaxWait 0).
//   - active: before each fetch, one record is produced to each of 10
//     partitions (a different 10 each time); the fetch returns them and
//     the consumer moves those offsets.
//
// Each b.N iteration is one fetch; run with -benchtime 500x.
func BenchmarkFetchSessions(b *testing.B) {
	for _, workload := range []string{"idle", "active"} {
		for _, sessions := range []bool{false, true} {
			name := fmt.Sprintf("%s/sessions=%s", workload, map[bool]string{false: "off", true: "on"}[sessions])
			b.Run(name, func(b *testing.B) { runFetchSessions(b, workload == "active", sessions) })
		}
	}
}

const sessionPartitions = 1000

func runFetchSessions(b *testing.B, active, sessions bool) {
	a := agenttest.Start(b, agenttest.Options{Linger: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, sessionPartitions, 1, nil, "perf"); err != nil {
		b.Fatal(err)
	}
	// One record in every partition, so offsets are not all 0.
	var rs []*kgo.Record
	for p := range int32(sessionPartitions) {
		rs = append(rs, &kgo.Record{Topic: "perf", Partition: p, Value: make([]byte, 100)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		b.Fatal(err)
	}

	c := dialFetcher(b, a.Addr())
	offsets := make([]int64, sessionPartitions)
	for i := range offsets {
		offsets[i] = 1
	}
	var moved []int32 // partitions whose offset moved since the last request
	var sessionID, epoch int32 = 0, -1
	if sessions {
		// Open the session (not measured): a full fetch at epoch 0.
		resp, _, _ := c.fetch(b, fetchRequest(offsets, nil, true, 0, 0))
		if resp.SessionID == 0 {
			b.Fatal("no session")
		}
		sessionID, epoch = resp.SessionID, 1
	}

	reg := a.Registry()
	agentBefore := fetchSeconds(b, reg)
	var reqBytes, respBytes, records int
	var cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		if active {
			b.StopTimer()
			rs = rs[:0]
			for k := range 10 {
				rs = append(rs, &kgo.Record{Topic: "perf", Partition: int32((i*10 + k) % sessionPartitions), Value: make([]byte, 100)})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		var req *kmsg.FetchRequest
		if sessions {
			req = fetchRequest(offsets, moved, false, sessionID, epoch)
			epoch++
		} else {
			req = fetchRequest(offsets, nil, true, 0, -1)
		}
		if active {
			req.MaxWaitMillis = 1000 // the records are committed; never waits long
		}
		cpuBefore := processCPU()
		resp, sent, got := c.fetch(b, req)
		cpu += processCPU() - cpuBefore
		reqBytes += sent
		respBytes += got
		if resp.ErrorCode != 0 {
			b.Fatalf("fetch: error %d", resp.ErrorCode)
		}
		moved = moved[:0]
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				if len(p.RecordBatches) > 0 {
					offsets[p.Partition] = p.HighWatermark
					moved = append(moved, p.Partition)
					records++
				}
			}
		}
	}
	b.StopTimer()
	agent := fetchSeconds(b, reg) - agentBefore
	n := float64(b.N)
	if active && records < b.N*10 {
		b.Errorf("%d partitions returned records in %d fetches, want 10 each", records, b.N)
	}
	b.ReportMetric(float64(reqBytes)/n, "req-B/fetch")
	b.ReportMetric(float64(respBytes)/n, "resp-B/fetch")
	b.ReportMetric(agent*1e6/n, "agent-µs/fetch")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/fetch")
	b.Logf("active=%v sessions=%v: %d fetches of %d partitions: request %.0f B, response %.0f B, agent %.0f µs, process CPU %.0f µs per fetch",
		active, sessions, b.N, sessionPartitions, float64(reqBytes)/n, float64(respBytes)/n, agent*1e6/n, float64(cpu.Microseconds())/n)
}

// fetchRequest is a Fetch v12 of "perf" at offsets: every partition when
// full, else only those in moved.
func fetchRequest(offsets []int64, moved []int32, full bool, sessionID, epoch int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 50<<20
	req.SessionID, req.SessionEpoch = sessionID, epoch
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "perf"
	add := func(p int32) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offsets[p], 1<<20
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	if full {
		for p := range int32(len(offsets)) {
			add(p)
		}
	} else {
		for _, p := range moved {
			add(p)
		}
	}
	if len(rt.Partitions) > 0 {
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// fetcher sends fetches on one connection and counts their bytes.
type fetcher struct {
	conn net.Conn
	r    *bufio.Reader
	corr int32
	buf  []byte
}

func dialFetcher(b *testing.B, addr string) *fetcher {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return &fetcher{conn: conn, r: bufio.NewReaderSize(conn, 1<<20)}
}

// fetch sends req and returns its response and the bytes of both frames
// (size prefixes included).
func (f *fetcher) fetch(b *testing.B, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, int) {
	f.corr++
	f.buf = wire.AppendRequest(f.buf[:0], f.corr, "perf", req)
	if _, err := f.conn.Write(f.buf); err != nil {
		b.Fatal(err)
	}
	frame, err := wire.ReadFrame(f.r, 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if err := resp.ReadFrom(frame[4+1:]); err != nil { // correlation id, empty header tags
		b.Fatal(err)
	}
	return resp, len(f.buf), 4 + len(frame)
}

// fetchSeconds is the agent's total time answering fetches so far.
func fetchSeconds(b *testing.B, reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "floe_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "api" && l.GetValue() == "Fetch" {
					return m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
