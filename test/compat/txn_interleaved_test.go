package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestTxnInterleavedReadCommitted: three transactional producers and one
// plain one write to the same two partitions in a random (seeded)
// interleaving, so that aborted transactions overlap each other and
// committed ones: an aborted transaction can start before another one
// that ends first, and fetches that start inside a transaction must still
// learn of its abort. Every client's read_committed consumer (franz-go
// and sarama with small fetches, librdkafka, KafkaJS) must read exactly
// the committed and plain records, in offset order.
//
// KafkaJS 2.2.4 reads a fetch's AbortedTransactions in the order given,
// entering an aborted transaction only once the list's head is reached: it
// needs the list sorted by first offset. Kafka lists them in marker order
// (its transaction index's), and so KafkaJS would return aborted records
// here against Kafka; Floe sorts them by first offset (the Java client and
// librdkafka sort them themselves), which this test keeps.
func TestTxnInterleavedReadCommitted(t *testing.T) {
	a := agenttest.Start(t, groupAgentOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const topic, partitions = "interleaved", 2
	createTopics(ctx, t, a.Addr(), partitions, topic)

	want := writeInterleaved(t, ctx, a.Addr(), topic, partitions)
	writeEndRecords(t, a.Addr(), []string{topic}, partitions)
	var all []string
	for p := range int32(partitions) {
		want[p] = append(want[p], endRecord)
		all = append(all, want[p]...)
	}

	t.Run("franz-go", func(t *testing.T) {
		cl := newClient(t, a.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()},
		}), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxPartitionBytes(256), kgo.FetchMaxBytes(256))
		var got []txnRead
		ended := map[int32]bool{}
		for len(ended) < partitions {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("read %d records, partitions %v at their end: %v", len(got), ended, err)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				got = append(got, txnRead{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
				if string(r.Value) == endRecord {
					ended[r.Partition] = true
				}
			})
		}
		checkInterleaved(t, got, want, all)
	})
	t.Run("sarama", func(t *testing.T) {
		// saramaReadToEnd leaves the end records out.
		wantBefore := map[int32][]string{}
		for p, vs := range want {
			wantBefore[p] = vs[:len(vs)-1]
		}
		allBefore := slices.DeleteFunc(slices.Clone(all), func(v string) bool { return v == endRecord })
		checkInterleaved(t, saramaReadToEnd(t, ctx, a.Addr(), []string{topic}, partitions), wantBefore, allBefore)
	})
	t.Run("confluent-kafka-python", func(t *testing.T) {
		if _, err := os.Stat(debianPython); err != nil {
			testutil.MissingClient(t, "%s: %v", debianPython, err)
		}
		if out, err := exec.Command(debianPython, "-c", "import confluent_kafka").CombinedOutput(); err != nil {
			testutil.MissingClient(t, "%s cannot import confluent_kafka: %v\n%s", debianPython, err, out)
		}
		out := runCmd(t, ctx, "", debianPython, "testdata/confluent_txn.py", a.Addr(), "py-interleaved", "read", topic, fmt.Sprint(partitions))
		var res struct{ Read []txnRead }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("confluent_txn.py output: %v\n%.2000s", err, out)
		}
		checkInterleaved(t, res.Read, want, all)
	})
	t.Run("kafkajs", func(t *testing.T) {
		node := testutil.RequireClient(t, "node")
		if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
			testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
		}
		t.Setenv("KAFKAJS_NO_PARTITIONER_WARNING", "1")
		out := runCmd(t, ctx, "", node, filepath.Join(kafkajsDir, "txn.js"), a.Addr(), "js-interleaved", "read", topic)
		var res struct{ Read []txnRead }
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("txn.js output: %v\n%.2000s", err, out)
		}
		checkInterleaved(t, res.Read, want, all)
	})
}

// writeInterleaved writes the interleaving and returns, per partition,
// the values read_committed must return, in offset order.
func writeInterleaved(t *testing.T, ctx context.Context, addr, topic string, partitions int32) map[int32][]string {
	t.Helper()
	actors := []string{"t0", "t1", "t2", "plain"}
	clients := map[string]*kgo.Client{}
	for _, n := range actors {
		opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}
		if n != "plain" {
			opts = append(opts, kgo.TransactionalID("interleaved-"+n), kgo.TransactionTimeout(60*time.Second))
		}
		clients[n] = newClient(t, addr, opts...)
	}
	type pending struct {
		partition int32
		value     string
	}
	open := map[string][]pending{} // records of each open transaction
	inTxn := map[string]bool{}
	byPartition := map[int32][]pending{}   // every record, in offset order
	committed := map[string]bool{}         // values committed or plain
	rng := rand.New(rand.NewPCG(12, 2026)) // a fixed interleaving
	end := func(n string, commit bool) {
		how := kgo.TryAbort
		if commit {
			how = kgo.TryCommit
			for _, r := range open[n] {
				committed[r.value] = true
			}
		}
		if err := clients[n].EndTransaction(ctx, how); err != nil {
			t.Fatalf("%s: end transaction (commit %v): %v", n, commit, err)
		}
		open[n], inTxn[n] = nil, false
	}
	var aborts, commits int
	for step := range 160 {
		n := actors[rng.IntN(len(actors))]
		if inTxn[n] && rng.IntN(5) == 0 {
			commit := rng.IntN(2) == 0
			if commit {
				commits++
			} else {
				aborts++
			}
			end(n, commit)
			continue
		}
		if n != "plain" && !inTxn[n] {
			if err := clients[n].BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			inTxn[n] = true
		}
		r := pending{partition: rng.Int32N(partitions), value: fmt.Sprintf("%s-%03d", n, step)}
		if err := clients[n].ProduceSync(ctx, &kgo.Record{Partition: r.partition, Value: []byte(r.value)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce %s: %v", n, r.value, err)
		}
		byPartition[r.partition] = append(byPartition[r.partition], r)
		if n == "plain" {
			committed[r.value] = true
		} else {
			open[n] = append(open[n], r)
		}
	}
	for _, n := range actors {
		if inTxn[n] {
			commits++
			end(n, true)
		}
	}
	t.Logf("%d transactions committed, %d aborted", commits, aborts)
	if aborts < 3 {
		t.Fatalf("the interleaving aborts %d transactions; want a few", aborts)
	}
	want := map[int32][]string{}
	for p, rs := range byPartition {
		for _, r := range rs {
			if committed[r.value] {
				want[p] = append(want[p], r.value)
			}
		}
	}
	return want
}

// checkInterleaved checks that a client read exactly all, and each
// partition in the order of want.
func checkInterleaved(t *testing.T, got []txnRead, want map[int32][]string, all []string) {
	t.Helper()
	checkTxnRead(t, "read_committed", got, all)
	byP := map[int32][]string{}
	for _, r := range got {
		byP[r.Partition] = append(byP[r.Partition], r.Value)
	}
	for p, vs := range want {
		if !slices.Equal(byP[p], vs) {
			t.Errorf("partition %d: read %v, want %v", p, byP[p], vs)
		}
	}
}
