package produce

// Replaying the outage manifests of an agent that does not come back
// (`floe outage list` and `floe outage replay`). The replay is the
// agent's own: a Writer under the agent's manifest name loads the
// manifests (LoadOutageManifests) and its outage queue commits them in
// key order, with the object ledger's check before each, deleting each
// manifest once its commit is in the store. Nothing is ever appended to
// that writer.
//
// Run it only for a name no agent is using: two replays of one name at
// once could both find a commit unknown to the ledger and both apply it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// OutageManifestSet is what one manifest name has left in the bucket.
type OutageManifestSet struct {
	Name      string    `json:"name"`
	Manifests int       `json:"manifests"`
	Bytes     int64     `json:"bytes"`
	Oldest    time.Time `json:"oldest"` // the oldest manifest's modification time
}

// ListOutageManifests lists the names with manifests in the bucket,
// sorted by name, without reading the manifests (at most maxManifests
// keys in all).
func ListOutageManifests(ctx context.Context, bucket objstore.Bucket) ([]OutageManifestSet, error) {
	infos, err := listManifests(ctx, bucket, ManifestPrefix)
	if err != nil {
		return nil, err
	}
	var sets []OutageManifestSet
	for _, o := range infos {
		name, _, ok := strings.Cut(strings.TrimPrefix(o.Key, ManifestPrefix), "/")
		if !ok || !ValidManifestName(name) {
			continue // not written by an agent
		}
		if len(sets) == 0 || sets[len(sets)-1].Name != name {
			sets = append(sets, OutageManifestSet{Name: name, Oldest: o.Modified})
		}
		s := &sets[len(sets)-1]
		s.Manifests++
		s.Bytes += max(o.Size, 0)
		if o.Modified.Before(s.Oldest) {
			s.Oldest = o.Modified
		}
	}
	return sets, nil
}

// ReplayOptions tune ReplayOutageManifests.
type ReplayOptions struct {
	// FlushTimeout bounds each commit attempt (and the final one at
	// close). Default 30s.
	FlushTimeout time.Duration
	// RetryMin and RetryMax bound the backoff while the store is
	// unreachable. Defaults as OutageOptions.
	RetryMin, RetryMax time.Duration
	// Logger receives the queue's own log lines.
	Logger *slog.Logger
	// Progress, if set, is called about every ProgressEvery (default 1s)
	// with the commits still queued.
	Progress      func(remaining int)
	ProgressEvery time.Duration
}

// ReplayReport is what a replay did.
type ReplayReport struct {
	Name string `json:"name"`
	// Loaded is the manifests read; Remaining the commits still queued
	// when the replay ended (their manifests stay in the bucket).
	Loaded, Remaining int
	// Commits counts the queue's commit attempts by result (committed,
	// partial, already_committed, object_missing, unreachable, error);
	// Batches the batches of the replayed commits by outcome (committed,
	// duplicate, unchecked, dropped).
	Commits map[string]int `json:"commits"`
	Batches map[string]int `json:"batches"`
	// Lost is the acknowledged batches whose object was gone.
	Lost int `json:"lost"`
}

// ErrReplayIncomplete reports a replay that ended with commits still
// queued (the store stayed unreachable or refused them until ctx ended).
var ErrReplayIncomplete = errors.New("outage replay incomplete")

// ReplayOutageManifests replays the manifests left under name until
// every one is committed (and deleted) or ctx ends. A manifest that is
// too large or not one Floe writes stops it before anything is
// committed, with an error naming its key.
func ReplayOutageManifests(ctx context.Context, bucket objstore.Bucket, store metastore.Sequencer, name string, o ReplayOptions) (ReplayReport, error) {
	rep := ReplayReport{Name: name}
	if !ValidManifestName(name) {
		return rep, fmt.Errorf("outage manifest name %q: want 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", name)
	}
	if _, ok := store.(ObjectLookup); !ok {
		return rep, errors.New("outage replay: the metadata store has no object ledger to check commits against")
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	m := NewMetrics(prometheus.NewRegistry())
	w := NewWriter(bucket, store, Options{
		FlushTimeout: o.FlushTimeout,
		Logger:       o.Logger,
		Metrics:      m,
		Outage:       &OutageOptions{ManifestName: name, RetryMin: o.RetryMin, RetryMax: o.RetryMax},
	})
	n, err := w.LoadOutageManifests(ctx)
	rep.Loaded = n
	if err != nil {
		w.Close()
		return rep, err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	lastProgress := time.Now()
	for ctx.Err() == nil {
		left, _ := w.OutageQueue()
		if left == 0 {
			break
		}
		if o.Progress != nil && time.Since(lastProgress) >= o.ProgressEvery {
			o.Progress(left)
			lastProgress = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	// Close replays for one more FlushTimeout if anything is left, and
	// waits for the manifests' deletes.
	w.Close()
	rep.Remaining, _ = w.OutageQueue()
	rep.Commits = counts(m.outageReplays, "committed", "partial", "already_committed", "object_missing", "unreachable", "error")
	rep.Batches = counts(m.outageReplayedBatches, "committed", "duplicate", "unchecked", "dropped")
	rep.Lost = int(value(m.outageLost))
	if rep.Remaining > 0 {
		return rep, fmt.Errorf("%w: %d of %d commits of %s still queued; their manifests stay in the bucket", ErrReplayIncomplete, rep.Remaining, rep.Loaded, name)
	}
	return rep, nil
}

// counts reads a counter vector's values for labels, leaving out zeros.
func counts(v *prometheus.CounterVec, labels ...string) map[string]int {
	out := map[string]int{}
	for _, l := range labels {
		if n := int(value(v.WithLabelValues(l))); n > 0 {
			out[l] = n
		}
	}
	return out
}

func value(c prometheus.Counter) float64 {
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		return 0
	}
	return pb.GetCounter().GetValue()
}
