package control

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
)

// listOnly is a bucket whose objects must not be read: a takeover by a
// warm standby learns the backups from the listing alone.
type listOnly struct {
	objstore.Bucket
	gets atomic.Int64
}

func (l *listOnly) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	l.gets.Add(1)
	return nil, errors.New("adopt read " + key)
}

// TestAdopt checks what a new leader learns from the listing of the old
// leader's backups: where the chain the bucket holds ends (so that its
// uploads start right after it), whether the batches up to its state
// must be read back from the journal, and that a bucket ahead of the
// journal is refused, without reading an object.
func TestAdopt(t *testing.T) {
	type lg [2]int64
	cases := []struct {
		name       string
		base       int64
		snaps      []int64
		logs       []lg
		held, last int64
		uploaded   int64
		overflow   bool
		appended   int64
		ahead      bool
		keptSnaps  int
	}{
		{name: "log objects after the newest snapshot", snaps: []int64{10, 20}, logs: []lg{{11, 15}, {16, 25}}, held: 30, last: 30, uploaded: 25, overflow: true, appended: 30, keptSnaps: 2},
		{name: "log objects behind the newest snapshot", snaps: []int64{10, 20}, logs: []lg{{11, 15}}, held: 22, last: 24, uploaded: 15, overflow: true, appended: 22, keptSnaps: 2},
		{name: "a leftover older snapshot", snaps: []int64{5, 10, 20}, logs: []lg{{11, 25}}, held: 25, last: 25, uploaded: 25, appended: 25, keptSnaps: 3},
		{name: "journal trimmed past the oldest", base: 12, snaps: []int64{10, 20}, logs: []lg{{11, 20}, {21, 25}}, held: 26, last: 26, uploaded: 25, overflow: true, appended: 26, keptSnaps: 2},
		{name: "no snapshot yet", logs: []lg{{1, 5}, {6, 8}}, held: 8, last: 9, uploaded: 8, appended: 8},
		{name: "bucket ahead of the state", snaps: []int64{10}, logs: []lg{{11, 40}}, held: 30, last: 40, uploaded: 40, appended: 40, keptSnaps: 1},
		{name: "overlapping objects", snaps: []int64{10}, logs: []lg{{11, 20}, {15, 30}, {31, 31}}, held: 31, last: 31, uploaded: 31, appended: 31, keptSnaps: 1},
		{name: "a gap", snaps: []int64{10}, logs: []lg{{11, 20}, {22, 30}}, held: 30, last: 30, uploaded: 20, overflow: true, appended: 30, keptSnaps: 1},
		{name: "ahead of the journal", snaps: []int64{10}, logs: []lg{{11, 40}}, held: 30, last: 35, ahead: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := localdir.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			for _, s := range tc.snaps {
				if err := dir.Put(ctx, snapshotKey("prod", testID, s), nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range tc.logs {
				if err := dir.Put(ctx, logKey("prod", testID, l[0], l[1]), nil); err != nil {
					t.Fatal(err)
				}
			}
			// Another incarnation's objects and foreign keys are ignored.
			if err := dir.Put(ctx, logKey("prod", "0a1b2c3d-0000-4000-8000-0000000000ff", 1, 1000), nil); err != nil {
				t.Fatal(err)
			}
			if err := dir.Put(ctx, "control/prod/"+testID+"/log/junk", nil); err != nil {
				t.Fatal(err)
			}
			bucket := &listOnly{Bucket: dir}
			b := newBackupState(&BackupOptions{Bucket: bucket}, journal.VCluster{Name: "prod", ID: testID, BaseSeq: tc.base})
			err = b.adopt(ctx, slog.New(slog.DiscardHandler), tc.last, tc.held)
			if n := bucket.gets.Load(); n != 0 {
				t.Fatalf("adopt read %d objects", n)
			}
			if tc.ahead {
				if !errors.Is(err, ErrBackupAhead) {
					t.Fatalf("adopt: %v, want ErrBackupAhead", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.uploaded != tc.uploaded || b.overflow != tc.overflow || b.lastAppended != tc.appended || len(b.snapshots) != tc.keptSnaps {
				t.Fatalf("uploaded #%d, overflow %v, last appended #%d, %d snapshots; want #%d, %v, #%d, %d",
					b.uploaded, b.overflow, b.lastAppended, len(b.snapshots), tc.uploaded, tc.overflow, tc.appended, tc.keptSnaps)
			}
			// The rows the takeover applies after the state, and the next
			// batch appended, are held for the next upload only when no
			// earlier batch waits to be read back from the journal.
			for seq := b.lastAppended + 1; seq <= tc.last+1; seq++ {
				b.appended(journal.Entry{Seq: seq, Batch: []byte("x")})
			}
			if held := len(b.pending) > 0; held == b.overflow || b.lastAppended != tc.last+1 {
				t.Fatalf("after a new batch: %d pending, overflow %v, last appended #%d", len(b.pending), b.overflow, b.lastAppended)
			}
		})
	}
}
