package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestShareGroupConfigs: share-group configs set per group with
// IncrementalAlterConfigs (resource type GROUP), validated against the
// broker-level bounds, shown by DescribeConfigs and honoured: a group
// set to share.auto.offset.reset=earliest and share.delivery.count.limit=2
// receives the records produced before it joined, each twice when it
// releases them, while the agent's defaults are latest and 5.
func TestShareGroupConfigs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) { c.Shares.Group.HeartbeatInterval = time.Second }})
	const topic, group, n = "share-configs", "sg-configs", 5
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)
	// kadm has no helpers for GROUP config resources: the requests go
	// through a kgo client.
	admin, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	describe := func() map[string]kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("DescribeConfigs: %+v, %v", resp, err)
		}
		out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = c
		}
		return out
	}
	alter := func(ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeGroupConfig, group, ops
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil || len(resp.Resources) != 1 {
			t.Fatalf("IncrementalAlterConfigs: %+v, %v", resp, err)
		}
		msg := ""
		if m := resp.Resources[0].ErrorMessage; m != nil {
			msg = *m
		}
		return resp.Resources[0].ErrorCode, msg
	}
	set := func(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value, c.Op = name, kmsg.StringPtr(value), kmsg.IncrementalAlterConfigOpSet
		return c
	}

	d := describe()
	for name, want := range map[string]string{
		"share.record.lock.duration.ms": "30000", "share.delivery.count.limit": "5", "share.auto.offset.reset": "latest",
		"share.session.timeout.ms": "45000", "share.heartbeat.interval.ms": "1000", "share.isolation.level": "read_uncommitted",
	} {
		if c, ok := d[name]; !ok || c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("default %s: %+v (found %v), want %s from DEFAULT_CONFIG", name, c, ok, want)
		}
	}
	for _, bad := range []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		set("share.record.lock.duration.ms", "100"),    // below group.share.min.record.lock.duration.ms
		set("share.delivery.count.limit", "11"),        // above the maximum, 10
		set("share.session.timeout.ms", "70000"),       // above group.share.max.session.timeout.ms
		set("share.auto.offset.reset", "sometimes"),    // not a policy
		set("share.isolation.level", "read_most"),      // not a level
		set("consumer.session.timeout.ms", "45000"),    // not a share config
		set("share.heartbeat.interval.ms", "not-a-ms"), // not a number
	} {
		if code, msg := alter(set("share.delivery.count.limit", "3"), bad); code != kerr.InvalidConfig.Code {
			t.Errorf("%s=%s: code %d (%s), want INVALID_CONFIG", bad.Name, *bad.Value, code, msg)
		}
	}
	if d := describe(); d["share.delivery.count.limit"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("a refused request changed a config: %+v", d["share.delivery.count.limit"])
	}
	if code, msg := alter(set("share.auto.offset.reset", "earliest"), set("share.delivery.count.limit", "2"), set("share.record.lock.duration.ms", "15000")); code != 0 {
		t.Fatalf("valid configs refused: %d %s", code, msg)
	}
	d = describe()
	for name, want := range map[string]string{"share.auto.offset.reset": "earliest", "share.delivery.count.limit": "2", "share.record.lock.duration.ms": "15000"} {
		if c := d[name]; c.Value == nil || *c.Value != want || c.Source != kmsg.ConfigSourceGroupConfig {
			t.Errorf("%s after setting: %+v, want %s from GROUP_CONFIG", name, c, want)
		}
	}

	// Honoured: earliest (records produced before the group existed are
	// delivered), and a delivery count limit of 2.
	cl := shareConsumer(t, a.Addr(), group, topic)
	deliveries := newShareDeliveries()
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, deliveries, kgo.AckRelease)
		done := true
		deliveries.mu.Lock()
		for j := range n {
			done = done && deliveries.counts[fmt.Sprintf("v%d", j)] >= 2
		}
		deliveries.mu.Unlock()
		if done {
			break
		}
	}
	for range 2 {
		pollShare(t, ctx, cl, deliveries, kgo.AckRelease)
	}
	for j := range n {
		if v := fmt.Sprintf("v%d", j); deliveries.counts[v] != 2 {
			t.Errorf("record %s delivered %d times, want the group's limit 2", v, deliveries.counts[v])
		}
	}

	del := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	del.Name, del.Op = "share.delivery.count.limit", kmsg.IncrementalAlterConfigOpDelete
	if code, msg := alter(del); code != 0 {
		t.Fatalf("delete: %d %s", code, msg)
	}
	if c := describe()["share.delivery.count.limit"]; c.Value == nil || *c.Value != "5" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("after deleting the group's limit: %+v, want the default 5", c)
	}
}

// TestShareGroupLockConfig: share.record.lock.duration.ms set on a
// group's GROUP resource decides how long its records stay locked. The
// agent's default is 1 s (the range then takes in 1 s); a group set to
// 4 s is answered AcquisitionLockTimeoutMillis 4000, and the records of
// a member that dies holding them come back to another member no
// sooner than that, while a group at the default is answered 1000.
func TestShareGroupLockConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(time.Second, 5))
	const topic, group, n = "share-lock-config", "sg-lock", 10
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)
	const lock = 4 * time.Second
	alterGroupConfig(t, ctx, a.Addr(), group, "share.record.lock.duration.ms", fmt.Sprint(lock.Milliseconds()))

	raw := newClient(t, a.Addr())
	// acquire joins member to g and fetches once, holding what it gets.
	acquire := func(g, member string) *kmsg.ShareFetchResponse {
		t.Helper()
		hb := kmsg.NewPtrShareGroupHeartbeatRequest()
		hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = g, member, []string{topic}
		hresp, err := hb.RequestWith(ctx, raw)
		if err != nil || hresp.ErrorCode != 0 || hresp.Assignment == nil || len(hresp.Assignment.TopicPartitions) != 1 {
			t.Fatalf("join %s: %+v, %v", g, hresp, err)
		}
		fresp := rawShareFetch(t, ctx, raw, g, member, hresp, 100)
		return fresp
	}
	if r := acquire("sg-default", "m"); r.AcquisitionLockTimeoutMillis != 1000 {
		t.Errorf("a group at the default: lock %d ms, want 1000", r.AcquisitionLockTimeoutMillis)
	}
	held := acquire(group, "dead-member")
	if held.AcquisitionLockTimeoutMillis != int32(lock.Milliseconds()) {
		t.Fatalf("the group's lock: %d ms, want %d", held.AcquisitionLockTimeoutMillis, lock.Milliseconds())
	}
	start := time.Now()
	other := shareConsumer(t, a.Addr(), group, topic)
	got := newShareDeliveries()
	for i := 0; i < 40 && got.distinct() < n; i++ {
		pollShare(t, ctx, other, got, kgo.AckAccept)
	}
	took := time.Since(start)
	if got.distinct() != n {
		t.Fatalf("the second member received %d of %d records", got.distinct(), n)
	}
	if took < lock*3/4 {
		t.Errorf("the dead member's records came back after %v: the agent's default lock, not the group's %v", took, lock)
	}
}
