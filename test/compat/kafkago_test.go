package compat

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// segmentio/kafka-go: its Writer, its group-less Reader and its low-level
// Conn, each with its own protocol code.

// TestKafkaGo writes with a kafka-go Writer (acks all), lz4 first and then
// the other codecs, and reads each partition back with a Reader that has
// no GroupID; it also checks offsets and a raw batch through a Conn.
func TestKafkaGo(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for _, c := range []struct {
		name  string
		codec kafka.Compression
	}{
		{"lz4", kafka.Lz4},
		{"zstd", kafka.Zstd},
		{"gzip", kafka.Gzip},
		{"snappy", kafka.Snappy},
		{"none", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			const partitions, n = 3, 900
			topic := "kafkago-" + c.name
			client := &kafka.Client{Addr: kafka.TCP(a.Addr()), Timeout: 10 * time.Second}
			resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
				Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Errors[topic]; err != nil {
				t.Fatalf("create %s: %v", topic, err)
			}

			w := &kafka.Writer{
				Addr:         kafka.TCP(a.Addr()),
				Topic:        topic,
				Compression:  c.codec,
				RequiredAcks: kafka.RequireAll,
				BatchSize:    50,
				BatchTimeout: 5 * time.Millisecond,
				// The partition is the key's last digit, so the test
				// knows where every record goes.
				Balancer: kafka.BalancerFunc(func(m kafka.Message, ps ...int) int {
					return int(m.Key[len(m.Key)-1] - '0')
				}),
			}
			defer w.Close()
			var want []record
			var msgs []kafka.Message
			for i := range n {
				p := int32(i % partitions)
				r := record{
					Partition: p,
					Key:       fmt.Appendf(nil, "kg-%03d-%d", i%37, p),
					Value:     append(fmt.Appendf(nil, "%s value %d ", c.name, i), byte(i), 0, 0xfe),
					Headers:   map[string]string{"i": strconv.Itoa(i)},
				}
				want = append(want, r)
				msgs = append(msgs, kafka.Message{Key: r.Key, Value: r.Value, Headers: []kafka.Header{{Key: "i", Value: []byte(r.Headers["i"])}}})
			}
			// Several calls, so the log is made of many batches and objects.
			for i := 0; i < n; i += 300 {
				if err := w.WriteMessages(ctx, msgs[i:i+300]...); err != nil {
					t.Fatalf("write: %v", err)
				}
			}

			var got []record
			for p := range partitions {
				r := kafka.NewReader(kafka.ReaderConfig{
					Brokers:   []string{a.Addr()},
					Topic:     topic,
					Partition: p,
					MinBytes:  1,
					MaxBytes:  1 << 20,
					MaxWait:   100 * time.Millisecond,
				})
				if err := r.SetOffset(kafka.FirstOffset); err != nil {
					t.Fatal(err)
				}
				for range n / partitions {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						r.Close()
						t.Fatalf("read partition %d after %d records: %v", p, len(got), err)
					}
					hs := map[string]string{}
					for _, h := range m.Headers {
						hs[h.Key] = string(h.Value)
					}
					got = append(got, record{Partition: int32(m.Partition), Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: hs})
				}
				r.Close()
			}
			checkRecords(t, want, got)
			checkCodec(t, consumeAll(t, ctx, a.Addr(), topic), c.name)

			// The same data through a Conn: ListOffsets, then one Fetch.
			conn, err := kafka.DialLeader(ctx, "tcp", a.Addr(), topic, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			first, last, err := conn.ReadOffsets()
			if err != nil || first != 0 || last != n/partitions {
				t.Fatalf("offsets of partition 1: [%d, %d), %v; want [0, %d)", first, last, err, n/partitions)
			}
			if _, err := conn.Seek(100, kafka.SeekAbsolute); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			batch := conn.ReadBatch(1, 1<<20)
			m, err := batch.ReadMessage()
			if err != nil {
				t.Fatalf("read batch: %v", err)
			}
			if wantM := byPartition(want)[1][100]; m.Offset != 100 || string(m.Value) != string(wantM.Value) {
				t.Fatalf("conn read at offset 100: offset %d value %q, want %q", m.Offset, m.Value, wantM.Value)
			}
			if err := batch.Close(); err != nil {
				t.Fatalf("close batch: %v", err)
			}
		})
	}
}
