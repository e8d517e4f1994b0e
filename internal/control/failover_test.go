package control_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/jackc/pgx/v5"
)

// startControlTTL is startControl with a lease TTL.
func startControlTTL(t *testing.T, dbURL string, ttl time.Duration) *controlPlane {
	t.Helper()
	return startControlOpts(t, dbURL, ttl, nil)
}

// TestFailover runs two control processes on one journal: the second
// stands by while the first lives, and takes the vcluster over once the
// first died without releasing its lease and the lease expired; a client
// given both addresses carries on, and every acknowledged commit is there
// once, none applied twice.
func TestFailover(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	a := startControlTTL(t, dbURL, ttl)
	key, err := a.server.CreateVCluster(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	b := startControlTTL(t, dbURL, ttl)

	// A client of both, B first: B refuses it (not the leader), A admits.
	c, err := remote.Open(ctx, remote.Options{Addr: b.addr + "," + a.addr, VCluster: "ha", Key: key, Logger: testutil.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}

	// Commits, each under a new object name, acknowledged or not.
	var (
		mu     sync.Mutex
		acks   []ack
		failed int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100_000 {
				select {
				case <-stop:
					return
				default:
				}
				obj := fmt.Sprintf("segments/%d-%d", w, i)
				rs, err := c.CommitSegment(ctx, metastore.SegmentCommit{Object: obj, Size: 10,
					Batches: []metastore.BatchCommit{{TopicID: topic.ID, ByteLength: 10, OffsetCount: 1, ProducerID: -1}}})
				mu.Lock()
				if err == nil && rs[0].Err == nil {
					acks = append(acks, ack{obj, rs[0].BaseOffset})
				} else {
					failed++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acks)
	}

	// While A lives (renewing), B does not take the vcluster: 2 TTLs.
	time.Sleep(2 * ttl)
	if vs := b.server.VClusters(); len(vs) != 0 {
		t.Fatalf("second process took %v while the first lives", vs)
	}
	if _, err := remote.Open(ctx, remote.Options{Addr: b.addr, VCluster: "ha", Key: key}); !errors.Is(err, remote.ErrNotLeader) {
		t.Fatalf("client of the standby: %v, want ErrNotLeader", err)
	}
	if _, err := remote.Open(ctx, remote.Options{Addr: b.addr, VCluster: "ha", Key: "wrong"}); err == nil || errors.Is(err, remote.ErrNotLeader) {
		t.Fatalf("wrong key at the standby: %v, want refused without saying who leads", err)
	}
	before := acked()
	if before == 0 {
		t.Fatal("no commit acknowledged by the leader")
	}

	// A dies without releasing: B takes over once the lease expired.
	crashed := time.Now()
	control.Crash(a.server)
	deadline := time.Now().Add(10 * ttl)
	for len(b.server.VClusters()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no takeover %v after the leader died", 10*ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(crashed)
	t.Logf("taken over %v after the leader died (lease TTL %v)", took.Round(time.Millisecond), ttl)
	if took < ttl/2 {
		t.Fatalf("taken over after %v: before the lease (TTL %v) could expire", took, ttl)
	}
	// The client carries on through B.
	for n := acked(); acked() < n+20; {
		if time.Now().After(deadline) {
			t.Fatalf("no commits through the new leader: %d acknowledged", acked())
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d commits acknowledged (%d before the standby check), %d failed", len(acks), before, failed)
	checkAcks(t, c, topic, acks)
}

// TestLeaderStopsBeforeLeaseExpires cuts a leader off its journal: it
// cannot renew, and must stop serving while the lease, by the database's
// clock, has not yet expired (so that no other process can lead the
// vcluster while it still answers).
func TestLeaderStopsBeforeLeaseExpires(t *testing.T) {
	const ttl = 2 * time.Second
	dbURL := testutil.CreateDatabase(t, testutil.RequirePostgres(t), "floe_control_")
	ctx := t.Context()
	j, err := journal.Open(ctx, dbURL, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := control.New(ctx, control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t), LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	key, err := srv.CreateVCluster(ctx, "lone")
	if err != nil {
		t.Fatal(err)
	}
	c, err := remote.Open(ctx, remote.Options{Addr: l.Addr().String(), VCluster: "lone", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	observer, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(context.Background())

	j.Close() // the leader's journal is gone: renewals fail
	cut := time.Now()
	for {
		if time.Since(cut) > 5*ttl {
			t.Fatalf("leader still serving %v after it lost its journal", 5*ttl)
		}
		_, err := c.Topics(ctx)
		if err == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var left time.Duration
		if err := observer.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - now()) * 1e9 FROM floe_control_leases WHERE vcluster = 'lone'`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		t.Logf("stopped serving %v after the journal was cut, %v before the lease expires; read error: %v", time.Since(cut).Round(time.Millisecond), left.Round(time.Millisecond), err)
		if left <= 0 {
			t.Fatalf("still served a read %v after the lease expired", -left)
		}
		return
	}
}
