package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// KafkaJS, a pure-JavaScript client. Its consumer only works inside a
// consumer group, which Floe does not serve yet, so KafkaJS produces and
// administers, and franz-go (no group) reads the records back.

const kafkajsDir = "testdata/kafkajs"

type kafkajsResult struct {
	Created            bool     `json:"created"`
	CreatedAgain       bool     `json:"created_again"`
	ListedBeforeDelete []string `json:"listed_before_delete"`
	ListedAfterDelete  []string `json:"listed_after_delete"`
	Metadata           []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
	} `json:"metadata"`
	Produced []struct {
		Topic     string            `json:"topic"`
		Partition int32             `json:"partition"`
		Key       []byte            `json:"key"`
		Value     []byte            `json:"value"`
		Headers   map[string]string `json:"headers"`
		Timestamp int64             `json:"timestamp"`
	} `json:"produced"`
	Sends []struct {
		Topic      string `json:"topic"`
		Partition  int32  `json:"partition"`
		BaseOffset int64  `json:"base_offset"`
	} `json:"sends"`
	Offsets map[string][]struct {
		Partition int32 `json:"partition"`
		Low       int64 `json:"low"`
		High      int64 `json:"high"`
		Offset    int64 `json:"offset"`
	} `json:"offsets"`
	OffsetsByTimestamp map[string]map[string][]struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	} `json:"offsets_by_timestamp"`
}

// TestKafkaJS runs testdata/kafkajs/roundtrip.js (idempotent producer,
// gzip and uncompressed, admin createTopics, deleteTopics,
// fetchTopicOffsets, fetchTopicOffsetsByTimestamp) and checks everything
// it reports, then reads its records back with franz-go.
func TestKafkaJS(t *testing.T) {
	node := testutil.RequireClient(t, "node")
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
	}
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Setenv("KAFKAJS_NO_PARTITIONER_WARNING", "1")
	start := time.Now()
	out := runCmd(t, ctx, "", node, filepath.Join(kafkajsDir, "roundtrip.js"), a.Addr(), "kafkajs")
	t.Logf("roundtrip.js ran in %v", time.Since(start).Round(time.Millisecond))
	var res kafkajsResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("roundtrip.js output: %v\n%.2000s", err, out)
	}

	topics := map[string]int{"kafkajs-gzip": 3, "kafkajs-none": 2}
	if !res.Created || res.CreatedAgain {
		t.Errorf("createTopics reported created=%v, then created=%v for the same topics; want true, false", res.Created, res.CreatedAgain)
	}
	if !slices.Contains(res.ListedBeforeDelete, "kafkajs-doomed") || slices.Contains(res.ListedAfterDelete, "kafkajs-doomed") {
		t.Errorf("listTopics before delete %v, after %v", res.ListedBeforeDelete, res.ListedAfterDelete)
	}
	for _, m := range res.Metadata {
		if topics[m.Topic] != m.Partitions {
			t.Errorf("fetchTopicMetadata: %s has %d partitions, want %d", m.Topic, m.Partitions, topics[m.Topic])
		}
	}
	if len(res.Metadata) != len(topics) {
		t.Errorf("fetchTopicMetadata returned %d topics, want %d", len(res.Metadata), len(topics))
	}

	// Base offsets acknowledged for each send: per partition, each send
	// starts where the previous one ended. Sends hold 100 records each,
	// in the order the script lists them.
	const perSend = 100
	type tp struct {
		topic     string
		partition int32
	}
	wantBases := map[tp][]int64{}
	count := map[tp]int64{}
	for i := 0; i < len(res.Produced); i += perSend {
		inSend := map[tp]int64{}
		var order []tp
		for _, p := range res.Produced[i:min(i+perSend, len(res.Produced))] {
			k := tp{p.Topic, p.Partition}
			if inSend[k] == 0 {
				order = append(order, k)
			}
			inSend[k]++
		}
		for _, k := range order {
			wantBases[k] = append(wantBases[k], count[k])
			count[k] += inSend[k]
		}
	}
	gotBases := map[tp][]int64{}
	for _, s := range res.Sends {
		k := tp{s.Topic, s.Partition}
		gotBases[k] = append(gotBases[k], s.BaseOffset)
	}
	if fmt.Sprint(gotBases) != fmt.Sprint(wantBases) {
		t.Errorf("acknowledged base offsets %v, want %v", gotBases, wantBases)
	}

	for topic, partitions := range topics {
		t.Run(topic, func(t *testing.T) {
			var want []record
			stamps := map[int32][]int64{} // partition → timestamps in order
			for _, p := range res.Produced {
				if p.Topic == topic {
					want = append(want, record{Partition: p.Partition, Key: p.Key, Value: p.Value, Headers: p.Headers, Timestamp: p.Timestamp})
					stamps[p.Partition] = append(stamps[p.Partition], p.Timestamp)
				}
			}
			got := consumeAll(t, ctx, a.Addr(), topic)
			checkRecords(t, want, got)
			checkIdempotent(t, got)
			checkCodec(t, got, strings.TrimPrefix(topic, "kafkajs-"))
			wantByP, gotByP := byPartition(want), byPartition(got)
			for p, rs := range gotByP {
				for i, r := range rs {
					if i < len(wantByP[p]) && r.Timestamp != wantByP[p][i].Timestamp {
						t.Fatalf("partition %d offset %d: timestamp %d, want %d", p, i, r.Timestamp, wantByP[p][i].Timestamp)
					}
				}
			}

			if len(res.Offsets[topic]) != partitions {
				t.Fatalf("fetchTopicOffsets: %d partitions, want %d", len(res.Offsets[topic]), partitions)
			}
			for _, o := range res.Offsets[topic] {
				n := int64(len(stamps[o.Partition]))
				if o.Low != 0 || o.High != n || o.Offset != n {
					t.Errorf("fetchTopicOffsets partition %d: %+v, want low 0, high and offset %d", o.Partition, o, n)
				}
			}

			// The first offset whose timestamp is at or after ts, or the
			// high watermark when there is none.
			if len(res.OffsetsByTimestamp[topic]) == 0 {
				t.Fatalf("no fetchTopicOffsetsByTimestamp results")
			}
			for tsText, offs := range res.OffsetsByTimestamp[topic] {
				ts, err := strconv.ParseInt(tsText, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range offs {
					s := stamps[o.Partition]
					want := int64(len(s))
					for i, st := range s {
						if st >= ts {
							want = int64(i)
							break
						}
					}
					if o.Offset != want {
						t.Errorf("fetchTopicOffsetsByTimestamp(%d) partition %d: %d, want %d", ts, o.Partition, o.Offset, want)
					}
				}
			}
		})
	}
}
