package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// The Python clients are Debian packages, importable only by Debian's own
// interpreter: a python3 earlier on PATH (pyenv, venv) cannot see them.
const debianPython = "/usr/bin/python3"

// pythonResult is what the scripts in testdata print. Keys and values are
// base64 in JSON, which encoding/json decodes into []byte.
type pythonResult struct {
	Client   string   `json:"client"`
	Codecs   []string `json:"codecs"`
	Produced []struct {
		Partition          int32             `json:"partition"`
		Key                []byte            `json:"key"`
		Value              []byte            `json:"value"`
		Headers            map[string]string `json:"headers"`
		Offset             int64             `json:"offset"`
		DeliveredPartition int32             `json:"delivered_partition"`
	} `json:"produced"`
	Consumed []struct {
		Partition int32             `json:"partition"`
		Offset    int64             `json:"offset"`
		Key       []byte            `json:"key"`
		Value     []byte            `json:"value"`
		Headers   map[string]string `json:"headers"`
		Timestamp int64             `json:"timestamp"`
	} `json:"consumed"`
	Watermarks              map[string][2]int64 `json:"watermarks"`
	OffsetForFirstTimestamp *int64              `json:"offset_for_first_timestamp"`
}

// TestConfluentKafkaPython: an idempotent producer with acks=all and zstd,
// then lz4; topic created by librdkafka's admin client; assign() consumer.
func TestConfluentKafkaPython(t *testing.T) {
	res := runPythonRoundTrip(t, "confluent_kafka", "confluent_roundtrip.py", "py-confluent", true)
	if !slices.Equal(res.Codecs, []string{"zstd", "lz4"}) {
		t.Errorf("codecs %v", res.Codecs)
	}
}

// TestKafkaPython: kafka-python creates its topic with KafkaAdminClient
// (it never auto-creates) and produces with every codec it can load.
func TestKafkaPython(t *testing.T) {
	res := runPythonRoundTrip(t, "kafka", "kafka_python_roundtrip.py", "py-kafka", false)
	want := []string{"gzip"}
	if os.Getenv("FLOE_REQUIRE_CLIENTS") != "" {
		// scripts/test installs python3-snappy, python3-lz4 and
		// python3-zstandard, so every codec must have been exercised.
		want = []string{"gzip", "snappy", "lz4", "zstd"}
	}
	for _, c := range want {
		if !slices.Contains(res.Codecs, c) {
			t.Errorf("kafka-python did not produce with %s (used %v)", c, res.Codecs)
		}
	}
	t.Logf("kafka-python codecs: %v", res.Codecs)
}

// runPythonRoundTrip runs one script against a fresh agent and checks
// what it produced against what it consumed and what franz-go reads
// (which also shows whether batches carry a producer id).
func runPythonRoundTrip(t *testing.T, module, script, topic string, idempotent bool) *pythonResult {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import "+module).CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import %s: %v\n%s", debianPython, module, err, out)
	}
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	start := time.Now()
	out := runCmd(t, ctx, "", debianPython, "testdata/"+script, a.Addr(), topic)
	t.Logf("%s ran in %v", script, time.Since(start).Round(time.Millisecond))
	var res pythonResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%s output: %v\n%.2000s", script, err, out)
	}
	if len(res.Produced) == 0 {
		t.Fatalf("%s produced nothing", script)
	}

	var want, got []record
	perPartition := map[int32]int64{}
	for i, p := range res.Produced {
		if p.DeliveredPartition != p.Partition {
			t.Fatalf("record %d: asked for partition %d, delivered to %d", i, p.Partition, p.DeliveredPartition)
		}
		// Offsets acknowledged to the producer are the positions in the
		// partition: nothing duplicated or lost on the way in.
		if p.Offset != perPartition[p.Partition] {
			t.Fatalf("record %d in partition %d: acknowledged offset %d, want %d", i, p.Partition, p.Offset, perPartition[p.Partition])
		}
		perPartition[p.Partition]++
		want = append(want, record{Partition: p.Partition, Key: p.Key, Value: p.Value, Headers: p.Headers})
	}
	for _, c := range res.Consumed {
		got = append(got, record{Partition: c.Partition, Offset: c.Offset, Key: c.Key, Value: c.Value, Headers: c.Headers})
	}
	t.Run("consumed by "+res.Client, func(t *testing.T) { checkRecords(t, want, got) })
	t.Run("consumed by franz-go", func(t *testing.T) {
		all := consumeAll(t, ctx, a.Addr(), topic)
		checkRecords(t, want, all)
		if idempotent {
			checkIdempotent(t, all)
		}
		// Every record names the codec it was produced with.
		byCodec := map[string][]record{}
		for _, r := range all {
			byCodec[r.Headers["codec"]] = append(byCodec[r.Headers["codec"]], r)
		}
		for _, c := range res.Codecs {
			if res.Client == "confluent-kafka-python" {
				checkLibrdkafkaCodec(t, a.Addr(), byCodec[c], c)
			} else {
				checkCodec(t, byCodec[c], c)
			}
		}
	})

	for p, n := range perPartition {
		w := res.Watermarks[fmt.Sprint(p)]
		if w != [2]int64{0, n} {
			t.Errorf("partition %d: watermarks %v, want [0 %d]", p, w, n)
		}
	}
	if o := res.OffsetForFirstTimestamp; o == nil || *o != 0 {
		t.Errorf("offset for the first record's timestamp: %v, want 0", o)
	}
	return &res
}
