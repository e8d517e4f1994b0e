package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// kcat is librdkafka's command-line client (Debian package kcat). These
// tests drive it as a user would: lines on stdin, formatted lines out.

var kcatCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// TestKcatProduceConsume produces keyed records with every compression
// codec, in many batches, and reads them back from the beginning; the
// output must be exactly key:value:offset for every record, in order.
func TestKcatProduceConsume(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 1000
	for _, codec := range kcatCodecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec // auto-created by the producer's metadata request
			var in, want strings.Builder
			for i := range n {
				key := fmt.Sprintf("key-%d", i%17)
				value := fmt.Sprintf("value %04d of %s: ünïcödé € %s", i, codec, strings.Repeat("x", i%50))
				fmt.Fprintf(&in, "%s:%s\n", key, value)
				fmt.Fprintf(&want, "%s:%s:%d\n", key, value, i)
			}
			runCmd(t, ctx, in.String(), kcat, "-b", a.Addr(), "-P", "-t", topic, "-K:",
				"-X", "compression.codec="+codec, "-X", "linger.ms=5", "-X", "batch.num.messages=64")
			got := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", topic, "-e", "-q", "-X", "fetch.wait.max.ms=100",
				"-o", "beginning", "-f", `%k:%s:%o\n`)
			if got != want.String() {
				t.Fatalf("consumed output differs from what was produced:\n%s", firstDiff(want.String(), got))
			}
			checkLibrdkafkaCodec(t, a.Addr(), consumeAll(t, ctx, a.Addr(), topic), codec)
		})
	}
}

// TestKcatPartitioned produces keyed records with an idempotent producer
// to a 4-partition topic, letting librdkafka's partitioner spread them,
// and checks each partition: keys never move, order kept, offsets from 0.
func TestKcatPartitioned(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const topic, partitions, n = "kcat-partitioned", 4, 2000
	createTopic(t, ctx, a.Addr(), topic, partitions)
	var in strings.Builder
	var sent [][2]string
	for i := range n {
		key, value := fmt.Sprintf("k%03d", i%101), fmt.Sprintf("v%05d", i)
		fmt.Fprintf(&in, "%s:%s\n", key, value)
		sent = append(sent, [2]string{key, value})
	}
	runCmd(t, ctx, in.String(), kcat, "-b", a.Addr(), "-P", "-t", topic, "-K:",
		"-X", "enable.idempotence=true", "-X", "acks=all", "-X", "compression.codec=lz4",
		"-X", "linger.ms=5", "-X", "batch.num.messages=100")
	out := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", topic, "-e", "-q", "-X", "fetch.wait.max.ms=100",
		"-o", "beginning", "-f", `%p:%o:%k:%s\n`)

	var got []record
	keyPartition := map[string]int32{}
	for line := range strings.Lines(out) {
		f := strings.SplitN(strings.TrimSuffix(line, "\n"), ":", 4)
		if len(f) != 4 {
			t.Fatalf("bad line %q", line)
		}
		p, _ := strconv.Atoi(f[0])
		off, _ := strconv.ParseInt(f[1], 10, 64)
		if prev, ok := keyPartition[f[2]]; ok && prev != int32(p) {
			t.Fatalf("key %s in partitions %d and %d", f[2], prev, p)
		}
		keyPartition[f[2]] = int32(p)
		got = append(got, record{Partition: int32(p), Offset: off, Key: []byte(f[2]), Value: []byte(f[3])})
	}
	var want []record
	for _, kv := range sent {
		p, ok := keyPartition[kv[0]]
		if !ok {
			t.Fatalf("key %s never consumed", kv[0])
		}
		want = append(want, record{Partition: p, Key: []byte(kv[0]), Value: []byte(kv[1])})
	}
	checkRecords(t, want, got)
	all := consumeAll(t, ctx, a.Addr(), topic)
	checkIdempotent(t, all)
	if len(byPartition(got)) < 2 {
		t.Errorf("all records in one partition; expected the partitioner to spread %d keys", len(keyPartition))
	}
	checkLibrdkafkaCodec(t, a.Addr(), all, "lz4")
}

// TestKcatMetadata checks what kcat -L reports: this agent as the only
// broker and the topics with their partitions.
func TestKcatMetadata(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "kcat-meta-a", 4)
	createTopic(t, ctx, a.Addr(), "kcat-meta-b", 1)

	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Error      string `json:"error"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
				Error     string
			} `json:"partitions"`
		} `json:"topics"`
	}
	out := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-L", "-J")
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output %q: %v", out, err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != a.Addr() {
		t.Fatalf("brokers %+v, want one at %s", md.Brokers, a.Addr())
	}
	partitions := map[string][]int32{}
	for _, tp := range md.Topics {
		if tp.Error != "" {
			t.Errorf("topic %s: error %s", tp.Topic, tp.Error)
		}
		for _, p := range tp.Partitions {
			if p.Leader != md.Brokers[0].ID {
				t.Errorf("%s/%d: leader %d, want %d", tp.Topic, p.Partition, p.Leader, md.Brokers[0].ID)
			}
			partitions[tp.Topic] = append(partitions[tp.Topic], p.Partition)
		}
	}
	if got := fmt.Sprint(partitions); got != "map[kcat-meta-a:[0 1 2 3] kcat-meta-b:[0]]" {
		t.Fatalf("topics and partitions %s", got)
	}

	// The plain-text form names the topic asked for.
	out = runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-L", "-t", "kcat-meta-a")
	if !strings.Contains(out, `topic "kcat-meta-a" with 4 partitions`) {
		t.Fatalf("kcat -L -t output:\n%s", out)
	}
}

// TestKcatOffsets consumes from an absolute offset, from the end, and from
// a timestamp (ListOffsets by time), with two produce runs far enough apart
// that their timestamps differ.
func TestKcatOffsets(t *testing.T) {
	kcat := testutil.RequireClient(t, "kcat")
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "kcat-offsets"

	produce := func(from, to int) {
		var in strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&in, "k%d:v%d\n", i, i)
		}
		runCmd(t, ctx, in.String(), kcat, "-b", a.Addr(), "-P", "-t", topic, "-K:", "-X", "compression.codec=gzip")
	}
	produce(0, 10)
	time.Sleep(50 * time.Millisecond)
	produce(10, 20)

	consume := func(offset string) []string {
		out := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", topic, "-e", "-q", "-X", "fetch.wait.max.ms=100",
			"-o", offset, "-f", `%o:%k:%s:%T\n`)
		return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	}
	all := consume("beginning")
	if len(all) != 20 {
		t.Fatalf("consumed %d records from the beginning, want 20: %q", len(all), all)
	}
	var lines []string // without timestamps
	var stamps []int64
	for i, l := range all {
		j := strings.LastIndexByte(l, ':')
		ts, err := strconv.ParseInt(l[j+1:], 10, 64)
		if err != nil || ts <= 0 {
			t.Fatalf("record %d: bad timestamp in %q", i, l)
		}
		if want := fmt.Sprintf("%d:k%d:v%d", i, i, i); l[:j] != want {
			t.Fatalf("record %d: %q, want %q", i, l[:j], want)
		}
		lines = append(lines, l)
		stamps = append(stamps, ts)
	}
	if stamps[10] <= stamps[9] {
		t.Fatalf("second produce run has timestamp %d, first %d: cannot test by timestamp", stamps[10], stamps[9])
	}

	for _, c := range []struct {
		offset string
		from   int
	}{
		{"5", 5},
		{"0", 0},
		{"19", 19},
		{"-3", 17}, // relative to the end
		{fmt.Sprintf("s@%d", stamps[10]), 10},
		{fmt.Sprintf("s@%d", stamps[10]-1), 10},
		{fmt.Sprintf("s@%d", stamps[0]), 0},
	} {
		got := consume(c.offset)
		if fmt.Sprint(got) != fmt.Sprint(lines[c.from:]) {
			t.Errorf("-o %s: got %q, want %q", c.offset, got, lines[c.from:])
		}
	}
	// Past the end there is nothing, and kcat still sees the end.
	if out := runCmd(t, ctx, "", kcat, "-b", a.Addr(), "-C", "-t", topic, "-e", "-q", "-X", "fetch.wait.max.ms=100", "-o", "end"); out != "" {
		t.Errorf("-o end: got %q", out)
	}
}

// Helpers shared by the real-client tests.

// commandTimeout bounds one client command, so a client that hangs (for
// example one waiting for an end of partition it never sees) fails fast.
const commandTimeout = 30 * time.Second

// runCmd runs a command with stdin, failing the test with its stderr if it
// fails, and returns its stdout.
func runCmd(t *testing.T, ctx context.Context, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v (after %v)\nstderr:\n%s\nstdout (first 2000 bytes):\n%.2000s", name, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), stderr.String(), stdout.String())
	}
	if stderr.Len() > 0 {
		t.Logf("%s stderr:\n%s", name, stderr.String())
	}
	return stdout.String()
}

// record is one record as a client saw it. Offset is ignored in wanted
// records: wanted offsets are their positions in their partition.
type record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
	// ProducerID (-1: not idempotent), Timestamp (Unix milliseconds) and
	// Codec (the batch's compression) are filled in by consumeAll only;
	// checkRecords ignores them.
	ProducerID int64
	Timestamp  int64
	Codec      string
}

var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

func byPartition(rs []record) map[int32][]record {
	m := map[int32][]record{}
	for _, r := range rs {
		m[r.Partition] = append(m[r.Partition], r)
	}
	return m
}

// checkRecords compares the records a client consumed with those
// produced, partition by partition: same number, same keys and values in
// the same order, offsets contiguous from 0.
func checkRecords(t *testing.T, want, got []record) {
	t.Helper()
	w, g := byPartition(want), byPartition(got)
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("partition %d: %d records consumed, none produced", p, len(g[p]))
		}
	}
	for p, ws := range w {
		gs := g[p]
		if len(gs) != len(ws) {
			t.Errorf("partition %d: consumed %d records, produced %d", p, len(gs), len(ws))
		}
		for i := range min(len(gs), len(ws)) {
			if gs[i].Offset != int64(i) {
				t.Errorf("partition %d record %d: offset %d, want %d", p, i, gs[i].Offset, i)
				break
			}
			if !bytes.Equal(gs[i].Key, ws[i].Key) || !bytes.Equal(gs[i].Value, ws[i].Value) {
				t.Errorf("partition %d offset %d: got %q=%q, want %q=%q", p, i, gs[i].Key, gs[i].Value, ws[i].Key, ws[i].Value)
				break
			}
			if ws[i].Headers != nil && fmt.Sprint(gs[i].Headers) != fmt.Sprint(ws[i].Headers) {
				t.Errorf("partition %d offset %d: headers %v, want %v", p, i, gs[i].Headers, ws[i].Headers)
				break
			}
		}
	}
}

// checkIdempotent checks that every record was written by an idempotent
// producer: its batch carries a producer id.
func checkIdempotent(t *testing.T, rs []record) {
	t.Helper()
	ids := map[int64]int{}
	for _, r := range rs {
		ids[r.ProducerID]++
	}
	if ids[-1] > 0 {
		t.Errorf("%d of %d records have no producer id; producer ids seen: %v", ids[-1], len(rs), ids)
	}
}

// checkCodec checks that the records came in batches compressed with
// codec, so a codec test really exercised that codec. Clients may send a
// batch uncompressed when compressing would not make it smaller (a batch
// of one small record, say), so a few uncompressed batches are allowed,
// but most records must be compressed and none with another codec.
func checkCodec(t *testing.T, rs []record, codec string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rs {
		seen[r.Codec]++
	}
	ok := len(rs) > 0 && seen[codec] == len(rs)
	if codec != "none" {
		ok = len(rs) > 0 && seen[codec]+seen["none"] == len(rs) && seen[codec] >= len(rs)/2
	}
	if !ok {
		t.Errorf("records by batch compression %v, want (almost) all %s", seen, codec)
	}
}

// checkLibrdkafkaCodec is checkCodec for records produced by librdkafka
// (kcat, confluent-kafka), which sends gzip, snappy and lz4 batches
// uncompressed unless the broker's advertised Produce range includes v0
// (librdkafka issue 4956). Kafka 4.0 advertises Produce v0 for that reason
// (KAFKA-18659) while refusing v0-v2 requests, and so does Floe.
func checkLibrdkafkaCodec(t *testing.T, addr string, rs []record, codec string) {
	t.Helper()
	if min := advertisedMinVersion(t, addr, 0); min > 0 {
		t.Fatalf("ApiVersions advertises Produce from v%d: librdkafka then sends %s batches uncompressed", min, codec)
	}
	checkCodec(t, rs, codec)
}

// advertisedMinVersion asks the agent for its ApiVersions and returns the
// lowest version it advertises for key.
func advertisedMinVersion(t *testing.T, addr string, key int16) int16 {
	t.Helper()
	c := testutil.Dial(t, addr)
	resp := c.Do(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return k.MinVersion
		}
	}
	t.Fatalf("ApiVersions does not list key %d", key)
	return 0
}

// createTopic creates a topic with franz-go's admin client.
func createTopic(t *testing.T, ctx context.Context, addr, topic string, partitions int32) {
	t.Helper()
	resp, err := newAdmin(t, addr).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// consumeAll reads every record of topic with franz-go, with no group:
// each partition from offset 0 up to its high watermark at the time of
// the call.
func consumeAll(t *testing.T, ctx context.Context, addr, topic string) []record {
	t.Helper()
	ends, err := newAdmin(t, addr).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	start := map[int32]kgo.Offset{}
	remaining := 0
	ends.Each(func(o kadm.ListedOffset) {
		start[o.Partition] = kgo.NewOffset().At(0)
		remaining += int(o.Offset)
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []record
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d records of %s, %d missing: %v", len(got), topic, remaining, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var hs map[string]string
			for _, h := range r.Headers {
				if hs == nil {
					hs = map[string]string{}
				}
				hs[h.Key] = string(h.Value)
			}
			got = append(got, record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: hs,
				ProducerID: r.ProducerID, Timestamp: r.Timestamp.UnixMilli(), Codec: codecNames[r.Attrs.CompressionType()]})
			remaining--
		})
	}
	return got
}

// firstDiff describes where two multi-line texts first differ.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d: got %q, want %q (%d lines got, %d wanted)", i+1, g, w, len(gl), len(wl))
		}
	}
	return "identical"
}
