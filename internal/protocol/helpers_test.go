package protocol_test

// Handler-level tests: each API is driven through the raw client against an
// in-process agent (embedded metadata store, local-directory bucket), a
// kmsg request in and the response's error codes and key fields out. The
// handlers are never built directly, so these tests do not depend on how
// the agent wires them.

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// fixture is one agent and one connection to it.
type fixture struct {
	t *testing.T
	a *agenttest.Agent
	c *testutil.RawClient
}

// start starts an agent whose groups rebalance without the initial delay
// (group.initial.rebalance.delay.ms 0), so that a lone member's join
// completes at once.
func start(t *testing.T) *fixture {
	t.Helper()
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Groups.Groups.InitialRebalanceDelay = -1
	}})
	return &fixture{t: t, a: a, c: testutil.Dial(t, a.Addr())}
}

// dial opens another connection to f's agent.
func dial(t *testing.T, f *fixture) *testutil.RawClient {
	t.Helper()
	return testutil.Dial(t, f.a.Addr())
}

// do sends req at version v and returns its response as a T.
func do[T kmsg.Response](f *fixture, v int16, req kmsg.Request) T {
	f.t.Helper()
	req.SetVersion(v)
	resp, ok := f.c.Do(req).(T)
	if !ok {
		f.t.Fatalf("%T: unexpected response type", req)
	}
	return resp
}

// codeName names a Kafka error code for messages.
func codeName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err.Error()
	}
	return "unknown"
}

// expectCode fails the test when got is not want.
func expectCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Errorf("%s: error %s, want %s", what, codeName(got), codeName(want))
	}
}

// createTopic creates topic with partitions and configs (name, value, …).
func (f *fixture) createTopic(topic string, partitions int32, configs ...string) {
	f.t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, -1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], &configs[i+1]
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.CreateTopicsResponse](f, 7, req)
	if code := resp.Topics[0].ErrorCode; code != 0 {
		f.t.Fatalf("create topic %s: %s", topic, codeName(code))
	}
}

// batch is a record batch of n one-byte records with timestamps ts, ts+1, …
// (a plain producer: no producer id).
func batch(n int, ts int64) []byte {
	return idempotentBatch(n, ts, -1, -1, -1)
}

func idempotentBatch(n int, ts, pid int64, epoch int16, seq int32) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Value: []byte{byte('a' + i%26)}, Timestamp: ts + int64(i)}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, FirstTimestamp: ts}, recs...)
}

// produceRequest is an acks=all Produce of records to one partition.
func produceRequest(topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produce writes n records with timestamps ts, ts+1, … to a partition and
// returns the base offset.
func (f *fixture) produce(topic string, partition int32, n int, ts int64) int64 {
	f.t.Helper()
	resp := do[*kmsg.ProduceResponse](f, 9, produceRequest(topic, partition, batch(n, ts)))
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		f.t.Fatalf("produce to %s/%d: %s", topic, partition, codeName(p.ErrorCode))
	}
	return p.BaseOffset
}

// listOffset answers ListOffsets v8 for one partition and timestamp.
func (f *fixture) listOffset(topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	f.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = partition, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return do[*kmsg.ListOffsetsResponse](f, 8, req).Topics[0].Partitions[0]
}

// fetchRequest fetches one partition from offset without waiting.
func fetchRequest(topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// records decodes the offsets of the records in fetched batches.
func recordOffsets(t *testing.T, batches []byte) []int64 {
	t.Helper()
	if len(batches) == 0 {
		return nil
	}
	split, err := recordbatch.Split(batches)
	if err != nil {
		t.Fatalf("split fetched batches: %v", err)
	}
	var out []int64
	for _, b := range split {
		recs, err := recordbatch.Records(b)
		if err != nil {
			t.Fatalf("decode fetched batch: %v", err)
		}
		for _, r := range recs {
			out = append(out, r.Offset)
		}
	}
	return out
}

// within bounds a test that waits on the agent (long polls, rebalances).
const within = 10 * time.Second
