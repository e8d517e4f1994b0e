package control_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/remote"
)

// TestPingWhileApplierBlocked holds the journal's table locked, so that
// a mutation waits in the batcher for its append, and pings the session
// meanwhile: the pongs come at once, not behind the mutation. Once the
// lock is released, the mutation is answered.
func TestPingWhileApplierBlocked(t *testing.T) {
	cp := newControl(t)
	ctx := t.Context()
	key, err := cp.server.CreateVCluster(ctx, "ping")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", cp.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	send := func(kind byte, id uint64, payload []byte) {
		t.Helper()
		b, err := remote.AppendFrame(nil, remote.Frame{Kind: kind, ID: id, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() remote.Frame {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		f, err := remote.ReadFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	send(remote.KindHello, 0, must(remote.Marshal(remote.Hello{V: remote.Version, VCluster: "ping", Key: key})))
	var w remote.Welcome
	if f := read(); f.Kind != remote.KindWelcome || remote.Unmarshal(f.Payload, &w) != nil || w.Err != "" || !w.Ping {
		t.Fatalf("welcome %+v: want one that offers pings", w)
	}

	lock, err := pgx.Connect(ctx, cp.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE floe_control_journal IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	args := must(remote.Marshal(metastore.TopicSpec{Name: "t", Partitions: 1}))
	send(remote.KindRequest, 1, must(remote.Marshal(remote.Request{Op: "CreateTopic", Args: args})))
	time.Sleep(200 * time.Millisecond) // the mutation reaches the journal and waits
	for i := range uint64(3) {
		start := time.Now()
		send(remote.KindPing, 100+i, nil)
		f := read()
		if f.Kind != remote.KindPong || f.ID != 100+i || len(f.Payload) != 0 {
			t.Fatalf("answer to ping %d: kind %d id %d, want a pong (the mutation is blocked)", 100+i, f.Kind, f.ID)
		}
		t.Logf("pong %d after %v while the journal is locked", i, time.Since(start).Round(time.Microsecond))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	f := read()
	var resp remote.Response
	if f.Kind != remote.KindResponse || f.ID != 1 || remote.Unmarshal(f.Payload, &resp) != nil {
		t.Fatalf("after the lock: kind %d id %d, want the mutation's answer", f.Kind, f.ID)
	}
	t.Logf("mutation answered after the lock was released: err %v", resp.Err)
}
