package compat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// IBM/sarama, the oldest Go client, with its own protocol codec.

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "floe-compat-sarama"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 10 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// TestSaramaAdmin creates, describes, lists and deletes topics with
// sarama's ClusterAdmin.
func TestSaramaAdmin(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	cfg := saramaConfig()
	// Describing a deleted topic must not bring it back.
	cfg.Metadata.AllowAutoTopicCreation = false
	admin, err := sarama.NewClusterAdmin([]string{a.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	for topic, n := range map[string]int32{"sarama-keep": 3, "sarama-doomed": 2} {
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: n, ReplicationFactor: 1}, false); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
	}
	err = admin.CreateTopic("sarama-keep", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		t.Fatalf("create an existing topic: %v, want %v", err, sarama.ErrTopicAlreadyExists)
	}
	err = admin.CreateTopic("sarama-validate", &sarama.TopicDetail{NumPartitions: 5, ReplicationFactor: 1}, true)
	if err != nil {
		t.Fatalf("validate-only create: %v", err)
	}

	md, err := admin.DescribeTopics([]string{"sarama-keep", "sarama-doomed", "sarama-validate"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range md {
		got[m.Name] = fmt.Sprintf("%v/%d", m.Err, len(m.Partitions))
		for _, p := range m.Partitions {
			if p.Err != sarama.ErrNoError || len(p.Replicas) != 1 || p.Leader != p.Replicas[0] {
				t.Errorf("%s/%d: err %v leader %d replicas %v", m.Name, p.ID, p.Err, p.Leader, p.Replicas)
			}
		}
	}
	want := map[string]string{
		"sarama-keep":     fmt.Sprintf("%v/3", sarama.ErrNoError),
		"sarama-doomed":   fmt.Sprintf("%v/2", sarama.ErrNoError),
		"sarama-validate": fmt.Sprintf("%v/0", sarama.ErrUnknownTopicOrPartition), // validate only: not created
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("described %v, want %v", got, want)
	}

	listed, err := admin.ListTopics() // metadata plus DescribeConfigs
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := listed["sarama-keep"]; !ok || d.NumPartitions != 3 {
		t.Fatalf("ListTopics: sarama-keep is %+v (present %v)", d, ok)
	}

	if err := admin.DeleteTopic("sarama-doomed"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := admin.DeleteTopic("sarama-doomed"); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("delete again: %v, want %v", err, sarama.ErrUnknownTopicOrPartition)
	}
	md, err = admin.DescribeTopics([]string{"sarama-doomed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(md) != 1 || md[0].Err != sarama.ErrUnknownTopicOrPartition {
		t.Fatalf("deleted topic described as %+v", md[0])
	}
	listed, err = admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed["sarama-doomed"]; ok {
		t.Fatalf("deleted topic still listed")
	}
}

// TestSaramaSyncProducer produces with an idempotent SyncProducer (acks
// all, one request in flight) to chosen partitions and reads every
// partition back with a plain Consumer from the oldest offset.
func TestSaramaSyncProducer(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic, partitions = "sarama-sync", 3
	createTopic(t, ctx, a.Addr(), topic, partitions)

	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Compression = sarama.CompressionZSTD
	prod, err := sarama.NewSyncProducer([]string{a.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	var want []record
	next := map[int32]int64{}
	for round := range 3 {
		var msgs []*sarama.ProducerMessage
		for i := range 300 {
			n := round*300 + i
			r := record{
				Partition: int32(n % partitions),
				Key:       fmt.Appendf(nil, "sync-key-%d", n%23),
				Value:     append(fmt.Appendf(nil, "sync value %d ", n), byte(n), 0, 0xff),
				Headers:   map[string]string{"n": fmt.Sprint(n)},
			}
			want = append(want, r)
			msgs = append(msgs, &sarama.ProducerMessage{
				Topic: topic, Partition: r.Partition,
				Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value),
				Headers: []sarama.RecordHeader{{Key: []byte("n"), Value: []byte(r.Headers["n"])}},
			})
		}
		if err := prod.SendMessages(msgs); err != nil {
			t.Fatalf("send round %d: %v", round, err)
		}
		// Acknowledged offsets are the records' positions.
		for _, m := range msgs {
			if m.Offset != next[m.Partition] {
				t.Fatalf("partition %d: acknowledged offset %d, want %d", m.Partition, m.Offset, next[m.Partition])
			}
			next[m.Partition]++
		}
	}
	checkRecords(t, want, saramaConsume(t, ctx, a.Addr(), topic, partitions, len(want)))
	all := consumeAll(t, ctx, a.Addr(), topic)
	checkIdempotent(t, all)
	checkCodec(t, all, "zstd")
}

// TestSaramaAsyncProducer produces with an AsyncProducer, one codec per
// topic (snappy first), letting sarama's hash partitioner pick partitions.
func TestSaramaAsyncProducer(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range []struct {
		name  string
		codec sarama.CompressionCodec
	}{
		{"snappy", sarama.CompressionSnappy},
		{"gzip", sarama.CompressionGZIP},
		{"lz4", sarama.CompressionLZ4},
		{"zstd", sarama.CompressionZSTD},
		{"none", sarama.CompressionNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic, partitions, n := "sarama-async-"+c.name, int32(2), 1000
			createTopic(t, ctx, a.Addr(), topic, partitions)
			cfg := saramaConfig()
			cfg.Producer.Compression = c.codec
			cfg.Producer.RequiredAcks = sarama.WaitForAll
			cfg.Producer.Return.Successes = true
			cfg.Producer.Flush.Messages = 64
			cfg.Producer.Flush.Frequency = 5 * time.Millisecond
			cfg.Producer.Retry.Max = 0 // a retry could reorder; there must be none
			// Without retries, sarama's async producer fails a first send
			// that races its own connection to the broker it has just
			// registered ("broker not connected", a client-side race seen
			// more often once Metadata was answered from the agent's topic
			// cache): connect to every broker before producing.
			client, err := sarama.NewClient([]string{a.Addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			for _, b := range client.Brokers() {
				_ = b.Open(cfg) // ErrAlreadyConnected is fine
				if ok, err := b.Connected(); !ok {
					t.Fatalf("broker %d not connected: %v", b.ID(), err)
				}
			}
			prod, err := sarama.NewAsyncProducerFromClient(client)
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()

			sent := make([]record, n)
			go func() {
				for i := range n {
					sent[i] = record{Key: fmt.Appendf(nil, "k%d", i%31), Value: fmt.Appendf(nil, "%s async %d", c.name, i)}
					prod.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(sent[i].Key), Value: sarama.ByteEncoder(sent[i].Value), Metadata: i}
				}
			}()
			partitionOf := make([]int32, n)
			for range n {
				select {
				case m := <-prod.Successes():
					partitionOf[m.Metadata.(int)] = m.Partition
				case err := <-prod.Errors():
					t.Fatalf("produce: %v", err)
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				}
			}
			var want []record
			for i, r := range sent {
				r.Partition = partitionOf[i]
				want = append(want, r)
			}
			got := saramaConsume(t, ctx, a.Addr(), topic, partitions, n)
			checkRecords(t, want, got)
			checkCodec(t, consumeAll(t, ctx, a.Addr(), topic), c.name)
			if len(byPartition(got)) != int(partitions) {
				t.Errorf("records in %d partitions, want %d", len(byPartition(got)), partitions)
			}
		})
	}
}

// saramaConsume reads total records from the partitions of topic, each
// from its oldest offset, with a group-less sarama Consumer.
func saramaConsume(t *testing.T, ctx context.Context, addr, topic string, partitions int32, total int) []record {
	t.Helper()
	cons, err := sarama.NewConsumer([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ps, err := cons.Partitions(topic)
	if err != nil || len(ps) != int(partitions) {
		t.Fatalf("partitions of %s: %v, %v", topic, ps, err)
	}
	msgs := make(chan *sarama.ConsumerMessage)
	errs := make(chan error, partitions)
	for _, p := range ps {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		defer pc.Close()
		go func() {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case msgs <- m:
					case <-ctx.Done():
						return
					}
				case err, ok := <-pc.Errors():
					if ok {
						errs <- err
					}
					return
				}
			}
		}()
	}
	var got []record
	for len(got) < total {
		select {
		case m := <-msgs:
			var hs map[string]string
			for _, h := range m.Headers {
				if hs == nil {
					hs = map[string]string{}
				}
				hs[string(h.Key)] = string(h.Value)
			}
			got = append(got, record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: hs})
		case err := <-errs:
			t.Fatalf("consume %s: %v", topic, err)
		case <-ctx.Done():
			t.Fatalf("consumed %d of %d records of %s: %v", len(got), total, topic, ctx.Err())
		}
	}
	return got
}
