package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// topicCodecs are the values of compression.type, and what a batch of
// client codec c is stored with under each.
var topicCodecs = []string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}

func storedCodec(topicCodec, clientCodec string) string {
	switch topicCodec {
	case "producer":
		return clientCodec
	case "uncompressed":
		return "none"
	}
	return topicCodec
}

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// TestTopicCompressionEveryCodec: for every compression.type, batches of
// every client codec, from franz-go (idempotent, with headers and
// timestamps) and from kcat, are stored with the topic's codec (or the
// producer's), and read back byte-equal through franz-go and kcat.
func TestTopicCompressionEveryCodec(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	const perCodec = 60
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)

	for _, tc := range topicCodecs {
		t.Run(tc, func(t *testing.T) {
			topic := "compression-" + tc
			if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": strp(tc)}, topic); err != nil || r.Err != nil {
				t.Fatalf("create %s: %v %v", topic, err, r.Err)
			}
			var want []record
			var kcatWant strings.Builder
			for _, cc := range codecNames {
				cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic(topic),
					kgo.ProducerBatchCompression(franzCodecs[cc]), kgo.ProducerLinger(5*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				var rs []*kgo.Record
				for i := range perCodec {
					r := &kgo.Record{
						Key:       fmt.Appendf(nil, "franz-%s-%d", cc, i%7),
						Value:     fmt.Appendf(nil, "value %d from franz %s %s", i, cc, strings.Repeat("compressible ", i%40)),
						Headers:   []kgo.RecordHeader{{Key: "codec", Value: []byte(cc)}, {Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
						Timestamp: base.Add(time.Duration(len(want)) * time.Millisecond),
					}
					rs = append(rs, r)
					want = append(want, record{Key: r.Key, Value: r.Value, Headers: map[string]string{"codec": cc, "i": fmt.Sprint(i)},
						Timestamp: r.Timestamp.UnixMilli(), Codec: storedCodec(tc, cc)})
					fmt.Fprintf(&kcatWant, "%s:%s:%d\n", r.Key, r.Value, len(want)-1)
				}
				if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
					t.Fatalf("franz %s produce: %v", cc, err)
				}
				cl.Close()
			}
			for _, cc := range kcatCodecs {
				var in strings.Builder
				for i := range perCodec {
					key, value := fmt.Sprintf("kcat-%s-%d", cc, i%5), fmt.Sprintf("value %d from kcat %s %s", i, cc, strings.Repeat("again ", i%30))
					fmt.Fprintf(&in, "%s:%s\n", key, value)
					want = append(want, record{Key: []byte(key), Value: []byte(value), Codec: storedCodec(tc, cc)})
					fmt.Fprintf(&kcatWant, "%s:%s:%d\n", key, value, len(want)-1)
				}
				runCmd(t, ctx, in.String(), kcat, "-b", a.Addr(), "-P", "-t", topic, "-K:",
					"-X", "compression.codec="+cc, "-X", "linger.ms=5", "-X", "batch.num.messages=16")
			}

			got := consumeAll(t, ctx, a.Addr(), topic)
			if len(got) != len(want) {
				t.Fatalf("consumed %d records, want %d", len(got), len(want))
			}
			for i, g := range got {
				w := want[i]
				if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) {
					t.Fatalf("record %d: offset %d key %q value %q, want key %q value %q", i, g.Offset, g.Key, g.Value, w.Key, w.Value)
				}
				if w.Headers != nil && fmt.Sprint(g.Headers) != fmt.Sprint(w.Headers) {
					t.Errorf("record %d: headers %v, want %v", i, g.Headers, w.Headers)
				}
				if w.Timestamp != 0 && g.Timestamp != w.Timestamp {
					t.Errorf("record %d: timestamp %d, want %d", i, g.Timestamp, w.Timestamp)
				}
				if w.Headers != nil && g.ProducerID < 0 {
					t.Errorf("record %d: franz-go's idempotent producer id lost", i)
				}
				// A codec that would make a batch larger is the
				// client's choice to skip; the agent's is not.
				if g.Codec != w.Codec && !(tc == "producer" && g.Codec == "none") {
					t.Errorf("record %d stored %s, want %s", i, g.Codec, w.Codec)
				}
			}
			out := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", topic, "-e", "-q", "-X", "fetch.wait.max.ms=100",
				"-o", "beginning", "-f", `%k:%s:%o\n`)
			if out != kcatWant.String() {
				t.Fatalf("kcat read differs:\n%s", firstDiff(kcatWant.String(), out))
			}
		})
	}
}

// TestLogAppendTimeAndRecompressedSize: a LogAppendTime topic stamps
// batches with the agent's clock (old producer timestamps are not
// INVALID_TIMESTAMP), a batch that recompression makes larger than
// max.message.bytes is MESSAGE_TOO_LARGE, and so is any batch when
// max.message.bytes is 0.
func TestLogAppendTimeAndRecompressedSize(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	for topic, cfg := range map[string]map[string]*string{
		"append-time": {"message.timestamp.type": strp("LogAppendTime"), "message.timestamp.before.max.ms": strp("1000")},
		"small":       {"compression.type": strp("uncompressed"), "max.message.bytes": strp("4000")},
		// Kafka accepts 0, and then every batch is too large.
		"closed": {"max.message.bytes": strp("0")},
	} {
		if r, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	old := time.Now().Add(-48 * time.Hour)
	before := time.Now()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "append-time", Value: []byte("v"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatalf("produce to a LogAppendTime topic: %v", err)
	}
	got := consumeAll(t, ctx, a.Addr(), "append-time")
	if len(got) != 1 || got[0].Timestamp < before.UnixMilli()-1000 || got[0].Timestamp > time.Now().UnixMilli()+1000 {
		t.Fatalf("consumed %+v, want one record stamped around %d", got, before.UnixMilli())
	}
	// 20 KB of zeros compress to almost nothing; uncompressed they pass
	// the topic's 4000 bytes.
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "small", Value: make([]byte, 20_000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce of a batch larger than max.message.bytes once recompressed: %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "small", Value: make([]byte, 1000)}).FirstErr(); err != nil {
		t.Fatalf("a small batch: %v", err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "closed", Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("produce to max.message.bytes=0: %v, want MESSAGE_TOO_LARGE", err)
	}
}
