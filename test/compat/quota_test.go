package compat

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// quotaAgent is an agent measuring quotas over 5 samples of 200 ms, so
// that a test sees a quota take hold within a second.
func quotaAgent(t *testing.T) *agenttest.Agent {
	return agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.QuotaSamples, cfg.QuotaSampleWindow = 5, 200*time.Millisecond
	}})
}

// Quotas through franz-go's admin client: set, described back with
// filters, removed; a bad entry fails alone.
func TestKadmClientQuotas(t *testing.T) {
	a := quotaAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	alter := []kadm.AlterClientQuotaEntry{
		{
			Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("slow")}},
			Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 100000}, {Key: "consumer_byte_rate", Value: 200000}},
		},
		{
			Entity: kadm.ClientQuotaEntity{{Type: "user"}}, // the default user
			Ops:    []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 50}},
		},
		{
			Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("bad")}},
			Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: -1}},
		},
	}
	res, err := adm.AlterClientQuotas(ctx, alter)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		bad := len(r.Entity) == 1 && r.Entity[0].Name != nil && *r.Entity[0].Name == "bad"
		if (r.Err != nil) != bad {
			t.Errorf("alter %v: %v", r.Entity, r.Err)
		}
	}
	described, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: strp("slow")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(described) != 1 || len(described[0].Values) != 2 {
		t.Fatalf("describe client-id=slow: %+v", described)
	}
	all, err := adm.DescribeClientQuotas(ctx, false, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("describe all: %+v, %v; want 2 entities", all, err)
	}
	defaults, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 1}})
	if err != nil || len(defaults) != 1 || defaults[0].Entity[0].Name != nil {
		t.Fatalf("describe the default user: %+v, %v", defaults, err)
	}
	_, err = adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user"}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "request_percentage", Remove: true}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if all, err := adm.DescribeClientQuotas(ctx, false, nil); err != nil || len(all) != 1 {
		t.Fatalf("after removing the default user's only value: %+v, %v", all, err)
	}
}

// A producer and a consumer over their byte-rate quotas are slowed to
// about the quota by franz-go honouring throttle_time_ms, and never get
// an error; a client without a quota is not slowed.
func TestByteRateQuotas(t *testing.T) {
	a := quotaAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	const rate, fetchRate float64 = 256 << 10, 1 << 20
	_, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: strp("metered")}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}, {Key: "consumer_byte_rate", Value: fetchRate}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "metered"); err != nil {
		t.Fatal(err)
	}

	produce := func(clientID string, d time.Duration) (bytes int64) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID(clientID), kgo.DefaultProduceTopic("metered"),
			kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(64<<10),
			// Quotas count bytes on the wire: nothing compressed.
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			// A small buffer, so that the producer waits for the quota
			// instead of queueing minutes of records.
			kgo.MaxBufferedRecords(100))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		value := make([]byte, 1000)
		var acked atomic.Int64
		var failed atomic.Value
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
				if err != nil {
					failed.Store(err)
					return
				}
				acked.Add(int64(len(r.Value)))
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err, _ := failed.Load().(error); err != nil {
			t.Fatalf("%s: a produce failed: %v (quotas slow clients, never fail them)", clientID, err)
		}
		return acked.Load()
	}
	const window = 4 * time.Second
	start := time.Now()
	metered := produce("metered", window)
	took := time.Since(start)
	perSecond := float64(metered) / took.Seconds()
	t.Logf("metered producer: %d bytes in %v = %.0f B/s against a quota of %.0f B/s", metered, took.Round(time.Millisecond), perSecond, rate)
	if !withinQuota(metered, took, rate) {
		t.Fatalf("metered producer at %.0f B/s, quota %.0f B/s", perSecond, rate)
	}
	free := produce("free", time.Second/2)
	t.Logf("unmetered producer: %d bytes in 0.5s", free)
	if float64(free) < rate {
		t.Fatalf("a producer without a quota made %d B/s: slowed by another client's quota?", free)
	}

	// The consumer reads what was produced, no faster than its quota.
	total := metered + free
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ClientID("metered"), kgo.ConsumeTopics("metered"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start = time.Now()
	var read int64
	for read < total && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("consumer error: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { read += int64(len(r.Value)) })
	}
	took = time.Since(start)
	t.Logf("metered consumer: %d bytes in %v = %.0f B/s against a quota of %.0f B/s", read, took.Round(time.Millisecond), float64(read)/took.Seconds(), fetchRate)
	if read != total {
		t.Fatalf("read %d bytes, produced %d", read, total)
	}
	if !withinQuota(read, took, fetchRate) {
		t.Fatalf("metered consumer at %.0f B/s, quota %.0f B/s", float64(read)/took.Seconds(), fetchRate)
	}
}

// withinQuota reports whether n bytes in d keep to a quota of rate bytes
// per second, allowing the burst of about two windows (1 s each here)
// that a client gets before its first throttle, and 20% for the rest.
func withinQuota(n int64, d time.Duration, rate float64) bool {
	return float64(n) <= 1.2*rate*(d.Seconds()+2)
}
