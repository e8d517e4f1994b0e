package compat

// Share groups (KIP-932) with franz-go's share consumer (kgo.ShareGroup):
// the coordinator assigns partitions, members acquire records through
// ShareFetch and acknowledge them one by one.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/sharepart"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// shareAgentOptions start agents whose share groups start at the
// earliest offset, lock records for lock and give up after limit
// deliveries.
func shareAgentOptions(lock time.Duration, limit int) agenttest.Options {
	return agenttest.Options{Config: func(c *agent.Config) {
		c.Shares.Reset = sharepart.Reset{Kind: sharepart.ResetEarliest}
		c.Shares.Partition = sharepart.Config{LockDuration: lock, DeliveryCountLimit: limit}
		c.Shares.Group.HeartbeatInterval = time.Second
	}}
}

// shareDeliveries counts the deliveries of each record ("v<i>") to share
// consumers.
type shareDeliveries struct {
	mu     sync.Mutex
	counts map[string]int
	maxDC  map[string]int32 // highest delivery count seen
}

func newShareDeliveries() *shareDeliveries {
	return &shareDeliveries{counts: map[string]int{}, maxDC: map[string]int32{}}
}

func (d *shareDeliveries) add(r *kgo.Record) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.counts[string(r.Value)]++
	d.maxDC[string(r.Value)] = max(d.maxDC[string(r.Value)], r.DeliveryCount())
}

func (d *shareDeliveries) distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.counts)
}

func shareConsumer(t *testing.T, addr, group, topic string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ShareGroup(group),
		kgo.FetchMaxWait(500 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// pollShare polls once (at most a second) and applies ack to every record.
func pollShare(t *testing.T, ctx context.Context, cl *kgo.Client, d *shareDeliveries, ack kgo.AckStatus) int {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fs := cl.PollFetches(pctx)
	for _, e := range fs.Errors() {
		if e.Err != context.DeadlineExceeded && e.Err != context.Canceled {
			t.Logf("fetch error %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
	}
	n := 0
	fs.EachRecord(func(r *kgo.Record) {
		d.add(r)
		r.Ack(ack)
		n++
	})
	return n
}

// TestShareGroupConsumers: three members over four partitions receive
// every record, and each exactly once when they accept them all; a new
// member afterwards receives none of them again.
func TestShareGroupConsumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(30*time.Second, 5))
	const topic, group, partitions, n = "share-n", "sg", 4, 400
	createTopic(t, ctx, a.Addr(), topic, partitions)
	produceSpread(t, ctx, a.Addr(), topic, partitions, n)

	d := newShareDeliveries()
	members := []*kgo.Client{shareConsumer(t, a.Addr(), group, topic), shareConsumer(t, a.Addr(), group, topic), shareConsumer(t, a.Addr(), group, topic)}
	var wg sync.WaitGroup
	for _, cl := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60 && d.distinct() < n && ctx.Err() == nil; i++ {
				pollShare(t, ctx, cl, d, kgo.AckAccept)
			}
			if err := cl.FlushAcks(ctx); err != nil {
				t.Errorf("FlushAcks: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := d.distinct(); got != n {
		t.Fatalf("received %d distinct records of %d", got, n)
	}
	for v, c := range d.counts {
		if c != 1 {
			t.Errorf("record %s delivered %d times", v, c)
		}
	}
	// Every record is acknowledged: a new member gets nothing.
	late := shareConsumer(t, a.Addr(), group, topic)
	for range 3 {
		if got := pollShare(t, ctx, late, newShareDeliveries(), kgo.AckAccept); got != 0 {
			t.Fatalf("a new member received %d acknowledged records", got)
		}
	}
}

// TestShareGroupRelease: released records come back, with the next
// delivery count, to the same or another member.
func TestShareGroupRelease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(30*time.Second, 5))
	const topic, group, n = "share-release", "sg", 20
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)
	cl := shareConsumer(t, a.Addr(), group, topic)
	d := newShareDeliveries()
	for i := 0; i < 30 && d.distinct() < n; i++ {
		pollShare(t, ctx, cl, d, kgo.AckRelease)
	}
	if d.distinct() != n {
		t.Fatalf("first deliveries: %d of %d records", d.distinct(), n)
	}
	again := newShareDeliveries()
	for i := 0; i < 30 && again.distinct() < n; i++ {
		pollShare(t, ctx, cl, again, kgo.AckAccept)
	}
	if again.distinct() != n {
		t.Fatalf("released records redelivered: %d of %d", again.distinct(), n)
	}
	for v, dc := range again.maxDC {
		if dc < 2 {
			t.Errorf("record %s redelivered with delivery count %d, want >= 2", v, dc)
		}
	}
}

// TestShareGroupLockTimeout: a member that dies holding records (it
// joined and fetched, then sends nothing more: no acknowledgement, no
// leave) loses them when their acquisition locks expire, and another
// member receives them. The dead member speaks the protocol by hand,
// because a franz-go client keeps fetching in the background.
func TestShareGroupLockTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const lock = 2 * time.Second
	a := agenttest.Start(t, shareAgentOptions(lock, 5))
	const topic, group, n = "share-lock", "sg", 30
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)

	raw, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, "dead-member", []string{topic}
	hresp, err := hb.RequestWith(ctx, raw)
	if err != nil || hresp.ErrorCode != 0 || hresp.Assignment == nil || len(hresp.Assignment.TopicPartitions) != 1 {
		t.Fatalf("join: %+v, %v", hresp, err)
	}
	topicID := hresp.Assignment.TopicPartitions[0].TopicID
	sf := kmsg.NewPtrShareFetchRequest()
	sf.GroupID, sf.MemberID = kmsg.StringPtr(group), kmsg.StringPtr("dead-member")
	sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords = 1000, 1<<20, 10
	ft := kmsg.NewShareFetchRequestTopic()
	ft.TopicID = topicID
	ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}
	sf.Topics = []kmsg.ShareFetchRequestTopic{ft}
	fresp, err := sf.RequestWith(ctx, raw)
	if err != nil || fresp.ErrorCode != 0 || len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch: %+v, %v", fresp, err)
	}
	acq := fresp.Topics[0].Partitions[0].AcquiredRecords
	if len(acq) == 0 || fresp.AcquisitionLockTimeoutMillis != int32(lock.Milliseconds()) {
		t.Fatalf("the dead member acquired %+v, lock timeout %dms", acq, fresp.AcquisitionLockTimeoutMillis)
	}
	held := 0
	for _, r := range acq {
		held += int(r.LastOffset - r.FirstOffset + 1)
	}
	start := time.Now()
	other := shareConsumer(t, a.Addr(), group, topic)
	got := newShareDeliveries()
	for i := 0; i < 40 && got.distinct() < n; i++ {
		pollShare(t, ctx, other, got, kgo.AckAccept)
	}
	if got.distinct() != n {
		t.Fatalf("the second member received %d of %d records (%d held by the dead member)", got.distinct(), n, held)
	}
	if took := time.Since(start); took < lock/2 {
		t.Errorf("held records redelivered after %v, before the lock timeout %v", took, lock)
	}
	for _, r := range acq {
		for o := r.FirstOffset; o <= r.LastOffset; o++ {
			if v := fmt.Sprintf("v%d", o); got.maxDC[v] != 2 {
				t.Errorf("record %s held by the dead member came back with delivery count %d, want 2", v, got.maxDC[v])
			}
		}
	}
}

// TestShareGroupDeliveryLimit: records released share.delivery.count.limit
// times are archived and never delivered again.
func TestShareGroupDeliveryLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const limit = 3
	a := agenttest.Start(t, shareAgentOptions(30*time.Second, limit))
	const topic, group, n = "share-limit", "sg", 10
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)
	cl := shareConsumer(t, a.Addr(), group, topic)
	d := newShareDeliveries()
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		pollShare(t, ctx, cl, d, kgo.AckRelease)
		done := true
		d.mu.Lock()
		for j := range n {
			done = done && d.counts[fmt.Sprintf("v%d", j)] >= limit
		}
		d.mu.Unlock()
		if done {
			break
		}
	}
	for j := range n {
		v := fmt.Sprintf("v%d", j)
		if d.counts[v] != limit {
			t.Errorf("record %s delivered %d times, want the limit %d", v, d.counts[v], limit)
		}
	}
	// Archived: nothing comes back.
	for range 3 {
		if got := pollShare(t, ctx, cl, d, kgo.AckRelease); got != 0 {
			t.Fatalf("%d records delivered past the delivery limit", got)
		}
	}
}

// TestShareGroupAdmin: ShareGroupDescribe, DescribeShareGroupOffsets,
// ListGroups and DeleteGroups see share groups; deleting one drops its
// share partitions' states, so the group starts again from
// share.auto.offset.reset.
func TestShareGroupAdmin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(30*time.Second, 5))
	const topic, group, n = "share-admin", "sg-admin", 10
	createTopic(t, ctx, a.Addr(), topic, 2)
	produceSpread(t, ctx, a.Addr(), topic, 2, n)
	admin := newAdmin(t, a.Addr())

	m1, m2 := shareConsumer(t, a.Addr(), group, topic), shareConsumer(t, a.Addr(), group, topic)
	d := newShareDeliveries()
	for i := 0; i < 30 && d.distinct() < n; i++ {
		pollShare(t, ctx, m1, d, kgo.AckAccept)
		pollShare(t, ctx, m2, d, kgo.AckAccept)
	}
	for _, cl := range []*kgo.Client{m1, m2} {
		if err := cl.FlushAcks(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d.distinct() != n {
		t.Fatalf("received %d of %d", d.distinct(), n)
	}
	// Every record acknowledged: each share partition starts at its end,
	// with no lag; three more records are three records of lag.
	checkOffsets := func(what string, wantLag int64) {
		t.Helper()
		offs, err := admin.DescribeShareGroupOffsets(ctx, group)
		if err != nil || offs[group].Err != nil {
			t.Fatalf("%s: DescribeShareGroupOffsets: %v, %v", what, err, offs[group].Err)
		}
		var lag, start int64
		for p := range int32(2) {
			o, ok := offs[group].Offsets.Lookup(topic, p)
			if !ok || o.Err != nil || o.StartOffset < 0 {
				t.Fatalf("%s: partition %d: %+v (found %v)", what, p, o, ok)
			}
			lag, start = lag+o.Lag, start+o.StartOffset
		}
		if lag != wantLag || start != n {
			t.Fatalf("%s: start offsets sum to %d, lag %d; want %d and %d", what, start, lag, n, wantLag)
		}
	}
	checkOffsets("all acknowledged", 0)
	produceSpread(t, ctx, a.Addr(), topic, 2, 3)
	checkOffsets("three more produced", 3)

	var described kadm.DescribedShareGroup
	for i := 0; i < 50; i++ {
		ds, err := admin.DescribeShareGroups(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		described = ds[group]
		if described.Err == nil && len(described.Members) == 2 && len(ds.AssignedPartitions()[topic]) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if described.Err != nil || described.GroupState != "Stable" || len(described.Members) != 2 || described.Assignor != "simple" {
		t.Fatalf("described %+v", described)
	}
	listed, err := admin.ListGroupsByType(ctx, []string{"share"})
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed[group]; !ok || g.ProtocolType != "share" || g.State != "Stable" {
		t.Fatalf("ListGroups(share) = %+v", listed)
	}
	del, err := admin.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(del[group].Err, kerr.NonEmptyGroup) {
		t.Fatalf("deleting a share group with members: %v, want NON_EMPTY_GROUP", del[group].Err)
	}
	alter := func(p0, p1 int64) (kadm.AlterShareGroupOffsetsResponses, error) {
		t.Helper()
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: p0})
		os.Add(kadm.Offset{Topic: topic, Partition: 1, At: p1})
		return admin.AlterShareGroupOffsets(ctx, group, os)
	}
	if _, err := alter(1, 0); !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("altering the offsets of a group with members: %v, want NON_EMPTY_GROUP", err)
	}
	m1.Close()
	m2.Close()
	for i := 0; i < 50; i++ {
		ds, _ := admin.DescribeShareGroups(ctx, group)
		if ds[group].GroupState == "Empty" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res, err := alter(1000, 0); err != nil {
		t.Fatal(err)
	} else if perr, _ := res.Lookup(topic, 0); !errors.Is(perr, kerr.OffsetOutOfRange) {
		t.Fatalf("altering to past the log end: %v, want OFFSET_OUT_OF_RANGE", perr)
	}
	res, err := alter(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if err, ok := res.Lookup(topic, p); !ok || err != nil {
			t.Fatalf("AlterShareGroupOffsets partition %d: %v (found %v)", p, err, ok)
		}
	}
	offs, err := admin.DescribeShareGroupOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	o0, _ := offs[group].Offsets.Lookup(topic, 0)
	o1, _ := offs[group].Offsets.Lookup(topic, 1)
	if o0.StartOffset != 1 || o1.StartOffset != 0 || o0.Lag+o1.Lag != n+3-1 {
		t.Fatalf("after AlterShareGroupOffsets: %+v %+v; want starts 1 and 0, lag %d", o0, o1, n+3-1)
	}
	dres, err := admin.DeleteShareGroupOffsets(ctx, group, topic)
	if err != nil || dres[topic] != nil {
		t.Fatalf("DeleteShareGroupOffsets: %v, %v", err, dres[topic])
	}
	if offs, err := admin.DescribeShareGroupOffsets(ctx, group); err != nil || len(offs[group].Offsets[topic]) != 0 {
		t.Fatalf("after DeleteShareGroupOffsets: %+v, %v", offs[group], err)
	}
	del, err = admin.DeleteGroups(ctx, group)
	if err != nil || del[group].Err != nil {
		t.Fatalf("deleting the empty share group: %v, %v", err, del[group].Err)
	}
	offs, err = admin.DescribeShareGroupOffsets(ctx, group)
	if err != nil || !errors.Is(offs[group].Err, kerr.GroupIDNotFound) {
		t.Fatalf("offsets of the deleted group: %v, %v; want GROUP_ID_NOT_FOUND", err, offs[group].Err)
	}
	// The group starts again: every record is delivered once more.
	// (The three later records repeat the values v0-v2: count them all.)
	again := newShareDeliveries()
	m3 := shareConsumer(t, a.Addr(), group, topic)
	got := 0
	for i := 0; i < 30 && got < n+3; i++ {
		got += pollShare(t, ctx, m3, again, kgo.AckAccept)
	}
	if got != n+3 {
		t.Fatalf("after deleting the group, a new member received %d of %d", got, n+3)
	}
}

// TestShareGroupConnectionClosed: a member whose connection closes while
// it holds records (it fetched them and sends nothing more) has its
// share session ended with the connection, as in Kafka: another member
// receives the records at once, not after their 30 s lock timeout.
func TestShareGroupConnectionClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const lock = 30 * time.Second
	a := agenttest.Start(t, shareAgentOptions(lock, 5))
	const topic, group, n = "share-conn", "sg", 30
	createTopic(t, ctx, a.Addr(), topic, 1)
	produceSpread(t, ctx, a.Addr(), topic, 1, n)

	raw, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = group, "gone-member", []string{topic}
	hresp, err := hb.RequestWith(ctx, raw)
	if err != nil || hresp.ErrorCode != 0 || hresp.Assignment == nil || len(hresp.Assignment.TopicPartitions) != 1 {
		t.Fatalf("join: %+v, %v", hresp, err)
	}
	fresp := rawShareFetch(t, ctx, raw, group, "gone-member", hresp, 10)
	acq := fresp.Topics[0].Partitions[0].AcquiredRecords
	raw.Close() // the connection closes; no acknowledgement, no leave

	start := time.Now()
	other := shareConsumer(t, a.Addr(), group, topic)
	got := newShareDeliveries()
	for i := 0; i < 20 && got.distinct() < n; i++ {
		pollShare(t, ctx, other, got, kgo.AckAccept)
	}
	if got.distinct() != n {
		t.Fatalf("the second member received %d of %d records", got.distinct(), n)
	}
	if took := time.Since(start); took > lock/2 {
		t.Errorf("records of the closed connection redelivered after %v: the lock timeout, not the connection's end", took)
	}
	for _, r := range acq {
		for o := r.FirstOffset; o <= r.LastOffset; o++ {
			if v := fmt.Sprintf("v%d", o); got.maxDC[v] != 2 {
				t.Errorf("record %s held on the closed connection came back with delivery count %d, want 2", v, got.maxDC[v])
			}
		}
	}
}

// TestShareGroupImplicitAck: records a franz-go share consumer does not
// acknowledge are accepted at its next poll (implicit acknowledgement,
// as the Java client's implicit mode), while those it releases in the
// same polls come back: every record is delivered, the released ones
// exactly twice and the others once, and afterwards nothing is left
// (lag 0, a new member receives nothing).
func TestShareGroupImplicitAck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := agenttest.Start(t, shareAgentOptions(30*time.Second, 5))
	const topic, group, n = "share-implicit", "sg", 40
	createTopic(t, ctx, a.Addr(), topic, 2)
	produceSpread(t, ctx, a.Addr(), topic, 2, n)
	cl := shareConsumer(t, a.Addr(), group, topic)
	d := newShareDeliveries()
	released := map[string]bool{}
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			d.add(r)
			v := string(r.Value)
			// Release every fifth record on its first delivery; leave
			// the rest unacknowledged (accepted at the next poll).
			if r.DeliveryCount() == 1 && len(v) > 1 && (v[len(v)-1]-'0')%5 == 0 {
				released[v] = true
				r.Ack(kgo.AckRelease)
			}
		})
		d.mu.Lock()
		done := len(d.counts) == n
		for v := range released {
			done = done && d.counts[v] == 2
		}
		d.mu.Unlock()
		if done {
			break
		}
	}
	// One more poll accepts the last poll's records; then flush.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	cl.PollFetches(pctx)
	pcancel()
	if err := cl.FlushAcks(ctx); err != nil {
		t.Fatalf("FlushAcks: %v", err)
	}
	if d.distinct() != n || len(released) == 0 {
		t.Fatalf("received %d of %d records, %d released", d.distinct(), n, len(released))
	}
	for v, c := range d.counts {
		if want := map[bool]int{true: 2, false: 1}[released[v]]; c != want {
			t.Errorf("record %s delivered %d times, want %d (released: %v)", v, c, want, released[v])
		}
	}
	offs, err := newAdmin(t, a.Addr()).DescribeShareGroupOffsets(ctx, group)
	if err != nil || offs[group].Err != nil {
		t.Fatalf("DescribeShareGroupOffsets: %v, %v", err, offs[group].Err)
	}
	for p := range int32(2) {
		if o, ok := offs[group].Offsets.Lookup(topic, p); !ok || o.Lag != 0 || o.StartOffset != n/2 {
			t.Errorf("partition %d: %+v (found %v), want start %d and lag 0: every record accepted", p, o, ok, n/2)
		}
	}
	late := shareConsumer(t, a.Addr(), group, topic)
	for range 2 {
		if got := pollShare(t, ctx, late, newShareDeliveries(), kgo.AckAccept); got != 0 {
			t.Fatalf("a new member received %d records", got)
		}
	}
}

// rawShareFetch sends one ShareFetch as member of group for partition 0
// of the first topic of the heartbeat's assignment, asking for up to
// maxRecords, and fails the test unless it answers records.
func rawShareFetch(t *testing.T, ctx context.Context, raw *kgo.Client, group, member string, hresp *kmsg.ShareGroupHeartbeatResponse, maxRecords int32) *kmsg.ShareFetchResponse {
	t.Helper()
	sf := kmsg.NewPtrShareFetchRequest()
	sf.GroupID, sf.MemberID = kmsg.StringPtr(group), kmsg.StringPtr(member)
	sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords = 1000, 1<<20, maxRecords
	ft := kmsg.NewShareFetchRequestTopic()
	ft.TopicID = hresp.Assignment.TopicPartitions[0].TopicID
	ft.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}
	sf.Topics = []kmsg.ShareFetchRequestTopic{ft}
	fresp, err := sf.RequestWith(ctx, raw)
	if err != nil || fresp.ErrorCode != 0 || len(fresp.Topics) != 1 || len(fresp.Topics[0].Partitions[0].AcquiredRecords) == 0 {
		t.Fatalf("fetch %s as %s: %+v, %v", group, member, fresp, err)
	}
	return fresp
}
