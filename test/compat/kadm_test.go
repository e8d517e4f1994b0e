package compat

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKadmTopicLifecycle drives the admin APIs with franz-go's kadm, the
// way operators' tools do: create (and the errors Kafka gives), configs,
// partitions, offsets, delete.
func TestKadmTopicLifecycle(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := newAdmin(t, a.Addr())

	retention := "3600000"
	created, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"retention.ms": &retention}, "admin-a")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	if created.ID == (kadm.TopicID{}) {
		t.Fatal("no topic id returned")
	}
	for name, tc := range map[string]struct {
		topic      string
		partitions int32
		configs    map[string]*string
		want       error
	}{
		"exists":         {"admin-a", 1, nil, kerr.TopicAlreadyExists},
		"bad name":       {"bad/name", 1, nil, kerr.InvalidTopicException},
		"zero parts":     {"admin-z", 0, nil, kerr.InvalidPartitions},
		"unknown config": {"admin-c", 1, map[string]*string{"no.such": &retention}, kerr.InvalidConfig},
		"bad value":      {"admin-c", 1, map[string]*string{"retention.ms": strp("soon")}, kerr.InvalidConfig},
		"unsupported":    {"admin-c", 1, map[string]*string{"compression.type": strp("brotli")}, kerr.InvalidConfig},
	} {
		r, err := adm.CreateTopic(ctx, tc.partitions, 1, tc.configs, tc.topic)
		if err == nil {
			err = r.Err
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}

	// Configs: describe, alter incrementally, describe again.
	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("admin-a", nil)
	byName := map[string]*kadm.Config{}
	for i := range rc.Configs {
		byName[rc.Configs[i].Key] = &rc.Configs[i]
	}
	if c := byName["retention.ms"]; c.MaybeValue() != retention || c.Source != 1 {
		t.Fatalf("retention.ms = %q source %v, want %s as a dynamic topic config", c.MaybeValue(), c.Source, retention)
	}
	if c := byName["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != 5 {
		t.Fatalf("cleanup.policy default: %+v", c)
	}
	alter, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2048")},
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("compact")},
	}, "admin-a")
	if err != nil || alter[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, alter)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	rc, _ = rcs.On("admin-a", nil)
	for i := range rc.Configs {
		byName[rc.Configs[i].Key] = &rc.Configs[i]
	}
	if byName["max.message.bytes"].MaybeValue() != "2048" || byName["retention.ms"].Source != 5 || byName["cleanup.policy"].MaybeValue() != "delete,compact" {
		t.Fatalf("after alter: max.message.bytes=%s retention.ms source=%v cleanup.policy=%s",
			byName["max.message.bytes"].MaybeValue(), byName["retention.ms"].Source, byName["cleanup.policy"].MaybeValue())
	}

	// max.message.bytes is honoured.
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	big := make([]byte, 4096)
	rand.Read(big) // incompressible, so the batch stays larger than 2048
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "admin-a", Value: big}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("4 KiB record into max.message.bytes=2048: %v, want MESSAGE_TOO_LARGE", err)
	}

	// Partitions: add, and the new ones take records.
	cp, err := adm.CreatePartitions(ctx, 2, "admin-a")
	if err != nil || cp["admin-a"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, cp)
	}
	md, err := adm.Metadata(ctx, "admin-a")
	if err != nil || len(md.Topics["admin-a"].Partitions) != 5 {
		t.Fatalf("metadata after adding partitions: %v %+v", err, md.Topics["admin-a"])
	}
	fresh, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.ProduceSync(ctx, &kgo.Record{Topic: "admin-a", Partition: 4, Key: []byte("k"), Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Offsets by time: three records with chosen timestamps.
	base := time.UnixMilli(1_700_000_000_000)
	for i, ts := range []time.Time{base, base.Add(time.Hour), base.Add(30 * time.Minute)} {
		// Keyed: admin-a is compacted now, which refuses records without a key.
		r := &kgo.Record{Topic: "admin-a", Partition: 1, Key: []byte{byte(i)}, Value: []byte{byte(i)}, Timestamp: ts}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, lo kadm.ListedOffsets, err error, wantOffset int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, _ := lo.Lookup("admin-a", 1)
		if o.Err != nil || o.Offset != wantOffset {
			t.Fatalf("%s: offset %d err %v, want %d", name, o.Offset, o.Err, wantOffset)
		}
	}
	lo, err := adm.ListStartOffsets(ctx, "admin-a")
	check("start", lo, err, 0)
	lo, err = adm.ListEndOffsets(ctx, "admin-a")
	check("end", lo, err, 3)
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(10*time.Minute).UnixMilli(), "admin-a")
	check("after +10m", lo, err, 1)
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(2*time.Hour).UnixMilli(), "admin-a")
	check("after everything", lo, err, 3) // kadm maps "none" to the end offset
	lo, err = adm.ListMaxTimestampOffsets(ctx, "admin-a")
	check("max timestamp", lo, err, 1)

	// Delete: gone from metadata, name reusable with a new id.
	del, err := adm.DeleteTopics(ctx, "admin-a")
	if err != nil || del["admin-a"].Err != nil {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if r, err := adm.DeleteTopics(ctx, "admin-a"); err == nil && !errors.Is(r["admin-a"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %+v", r["admin-a"])
	}
	again, err := adm.CreateTopic(ctx, 1, 1, nil, "admin-a")
	if err != nil || again.Err != nil || again.ID == created.ID {
		t.Fatalf("re-create: %v %+v (old id %v)", err, again, created.ID)
	}
	lo, err = adm.ListEndOffsets(ctx, "admin-a")
	if o, _ := lo.Lookup("admin-a", 0); err != nil || o.Offset != 0 {
		t.Fatalf("re-created topic starts empty: %v %+v", err, o)
	}
}

// TestConsumeFromTimestampAndOffset positions a franz-go consumer by
// timestamp and by exact offset.
func TestConsumeFromTimestampAndOffset(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("ts"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Second)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct {
		offset kgo.Offset
		first  int64
	}{
		"at offset 6":     {kgo.NewOffset().At(6), 6},
		"after 3.5s":      {kgo.NewOffset().AfterMilli(base.Add(3500 * time.Millisecond).UnixMilli()), 4},
		"at start":        {kgo.NewOffset().AtStart(), 0},
		"relative end -2": {kgo.NewOffset().AtEnd().Relative(-2), 8},
	} {
		c, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"ts": {0: tc.offset}}))
		if err != nil {
			t.Fatal(err)
		}
		fs := c.PollRecords(ctx, 1)
		c.Close()
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs[0].Err)
		}
		recs := fs.Records()
		if len(recs) == 0 || recs[0].Offset != tc.first || recs[0].Value[0] != byte(tc.first) {
			t.Fatalf("%s: first record %+v, want offset %d", name, recs, tc.first)
		}
	}
}

func strp(s string) *string { return &s }
