package control_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/bench"
	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/testutil"
)

// TestBenchOpen measures how long a control process takes to open a
// vcluster with a history of floe bench metastore's commits: replaying
// the whole journal (no bucket) against loading the newest snapshot from
// S3 and replaying the rows after it, alternately, rounds times; it
// prints the medians and their ratio. It runs only with
// FLOE_CONTROL_BENCH=1 (docs/benchmarks.md has the figures).
func TestBenchOpen(t *testing.T) {
	if os.Getenv("FLOE_CONTROL_BENCH") == "" {
		t.Skip("FLOE_CONTROL_BENCH not set")
	}
	const rounds = 3
	pg := testutil.RequirePostgres(t)
	bucket := testBucket(t)
	ctx := t.Context()
	db := testutil.CreateDatabase(t, pg, "floe_control_")
	srv, addr, err := backedUpControl(t, db, bucket, func(o *control.Options) {
		o.Backup.TailInterval = time.Second
		o.Backup.SnapshotBytes = 4 << 20
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := srv.CreateVCluster(ctx, "bench")
	if err != nil {
		t.Fatal(err)
	}
	cp := &controlPlane{dbURL: db, server: srv, addr: addr}
	c := cp.client(t, "bench", key)
	rep, err := bench.RunMetastore(ctx, c, bench.MetastoreConfig{
		Agents: 50, PartitionsPerCommit: 10, Partitions: 1000, Readers: 1, ReadsPerSec: 100,
		Duration: 10 * time.Second, Warmup: time.Second, Logger: testutil.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteText(os.Stderr)
	st := waitBackedUp(t, srv, "bench")
	c.Close()
	srv.Close()
	j, err := journal.Open(ctx, db, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	last, err := j.LastSeq(ctx, "bench")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("history: %d journal rows, %d commands; newest snapshot #%d", last, st.Commands, st.Backup.Snapshot)
	open := func(backup bool) (time.Duration, control.Stats) {
		o := control.Options{Journal: j, Dir: t.TempDir(), Logger: testutil.Logger(t)}
		if backup {
			o.Backup = control.BackupOptions{Bucket: bucket}
		}
		start := time.Now()
		s, err := control.New(ctx, o)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := s.Stats("bench")
		s.Close() // releases the lease for the next round
		return took, st
	}
	var full, snap []time.Duration
	for r := range rounds {
		tf, sf := open(false)
		ts, ss := open(true)
		full, snap = append(full, tf), append(snap, ts)
		t.Logf("round %d: whole journal %v (%d rows); from snapshot #%d %v (%d rows); ratio %.1f×",
			r+1, tf.Round(time.Millisecond), sf.Replayed, ss.SnapshotSeq, ts.Round(time.Millisecond), ss.Replayed, float64(tf)/float64(ts))
	}
	slices.Sort(full)
	slices.Sort(snap)
	mf, ms := full[rounds/2], snap[rounds/2]
	t.Logf("medians of %d rounds: whole journal %v, from snapshot %v: %.1f× faster", rounds, mf.Round(time.Millisecond), ms.Round(time.Millisecond), float64(mf)/float64(ms))
}
