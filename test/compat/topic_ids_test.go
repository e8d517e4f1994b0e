package compat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// wroteLog records the requests a franz-go client wrote ("Fetch v17").
type wroteLog struct {
	mu    sync.Mutex
	wrote map[string]bool
}

func (l *wroteLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *wroteLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if what, ok := strings.CutPrefix(msg, "wrote "); ok {
		l.mu.Lock()
		l.wrote[what] = true
		l.mu.Unlock()
	}
}

func (l *wroteLog) saw(what string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wrote[what]
}

// TestFranzTopicIDs: franz-go uses the newest versions Floe advertises,
// which name topics by ID (Produce v13, Fetch v17, OffsetCommit and
// OffsetFetch v10, Metadata v13, ListOffsets v10), and a produce,
// group-consume, commit and re-consume round trip works through them.
// kadm sees each topic's ID.
func TestFranzTopicIDs(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newAdmin(t, a.Addr())
	created, err := admin.CreateTopic(ctx, 3, 1, nil, "ids")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if created.ID == (kadm.TopicID{}) {
		t.Fatal("CreateTopics answered no topic ID")
	}
	listed, err := admin.ListTopics(ctx, "ids")
	if err != nil || listed["ids"].ID != created.ID {
		t.Fatalf("metadata: id %v, want %v (%v)", listed["ids"].ID, created.ID, err)
	}

	log := &wroteLog{wrote: map[string]bool{}}
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.WithLogger(log), kgo.DefaultProduceTopic("ids"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 300
	for i := range n {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("v%03d", i))).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	consume := func(want int) {
		t.Helper()
		cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.WithLogger(log), kgo.ConsumeTopics("ids"),
			kgo.ConsumerGroup("ids-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		got := 0
		for got < want {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", got, want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
			got += fs.NumRecords()
		}
		if got != want {
			t.Fatalf("consumed %d, want %d", got, want)
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
	}
	consume(n)
	for i := range 10 {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("w%d", i))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consume(10) // from the committed offsets, fetched by ID

	ends, err := admin.ListEndOffsets(ctx, "ids")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n+10 {
		t.Errorf("end offsets sum to %d, want %d", total, n+10)
	}
	for _, want := range []string{"Produce v13", "Fetch v17", "OffsetCommit v10", "OffsetFetch v10", "Metadata v13"} {
		if !log.saw(want) {
			t.Errorf("franz-go never wrote %s", want)
		}
	}
}
