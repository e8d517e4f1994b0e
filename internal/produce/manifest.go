package produce

// Outage manifests (OutageOptions.ManifestName): each queued commit is
// also written to the bucket, under outage/<name>/<key>, before its
// batches are acknowledged, and deleted once replayed. An agent started
// again under the same name loads the manifests left by its previous
// incarnation ahead of everything else, so that acknowledged records
// survive the agent's death during an outage.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
)

// ManifestPrefix is where outage manifests live in the bucket.
const ManifestPrefix = "outage/"

// maxManifestBytes bounds one manifest read back from the bucket; a
// segment commit of the most batches a control plane accepts (131,072)
// is about 40 MiB of JSON. A variable for tests.
var maxManifestBytes int64 = 64 << 20

// maxManifests bounds the manifests loaded at start.
const maxManifests = 1 << 20

// manifestName: no leading dot, so that no name is "." or ".." (a
// local directory bucket maps keys to paths).
var manifestName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// ValidManifestName reports whether name can name an agent's manifests.
func ValidManifestName(name string) bool { return manifestName.MatchString(name) }

// manifest is one queued commit as stored.
type manifest struct {
	V      int                     `json:"v"`
	Queued time.Time               `json:"queued"`
	Commit metastore.SegmentCommit `json:"commit"`
	// SkipLedger: a follow-up commit of an object the ledger already
	// knows (queuedCommit.skipLedger).
	SkipLedger bool `json:"skip_ledger,omitempty"`
}

// manifestSeq makes manifest keys sort in queue order, across restarts
// too (the clock, then a counter).
var manifestSeq atomic.Uint64

func (q *outage) newManifestKey() string {
	return fmt.Sprintf("%s%s/%020d-%08d", ManifestPrefix, q.opts.ManifestName, time.Now().UnixNano(), manifestSeq.Add(1)%1e8)
}

// putManifest stores c under key.
func (q *outage) putManifest(key string, queued time.Time, c metastore.SegmentCommit, skipLedger bool) error {
	data, err := json.Marshal(manifest{V: 1, Queued: queued, Commit: c, SkipLedger: skipLedger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.w.opts.FlushTimeout)
	defer cancel()
	return q.w.bucket.Put(ctx, key, data)
}

// deleteManifest removes a replayed commit's manifest, in the
// background so that the replay does not wait for it (inline when the
// deleter is behind); one left behind (the delete failed, the agent
// stopped first) is loaded again at the next start and found committed
// by the object ledger.
func (q *outage) deleteManifest(key string) {
	if key == "" {
		return
	}
	if q.deletesClosed.Load() { // the writer closed: a second Close replays
		q.deleteNow(key)
		return
	}
	select {
	case q.deletes <- key:
	default:
		q.deleteNow(key)
	}
}

func (q *outage) deleteNow(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), q.w.opts.FlushTimeout)
	defer cancel()
	if err := q.w.bucket.Delete(ctx, key); err != nil {
		q.w.log.Warn("outage manifest not deleted after its replay", "key", key, "err", err)
	}
}

// deleter runs the background deletes until deletes is closed.
func (q *outage) deleter() {
	defer close(q.deleted)
	for key := range q.deletes {
		q.deleteNow(key)
	}
}

// LoadOutageManifests queues the commits the agent's previous
// incarnation left in the bucket (OutageOptions.ManifestName), ahead of
// anything this one flushes: call it before the first Append. Their
// batches were acknowledged; each is replayed as any queued commit, after
// asking the object ledger whether it was committed already. `floe
// outage replay` calls it too, for an agent that does not come back
// (ReplayOutageManifests).
func (w *Writer) LoadOutageManifests(ctx context.Context) (int, error) {
	if w.outage == nil || w.outage.opts.ManifestName == "" {
		return 0, nil
	}
	q := w.outage
	loaded, err := readManifests(ctx, w.bucket, q.opts.ManifestName)
	if err != nil {
		return 0, err
	}
	if len(loaded) == 0 {
		return 0, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) > 0 {
		return 0, errors.New("outage manifests loaded after commits were queued")
	}
	q.queue = loaded
	q.since = time.Now()
	for _, c := range loaded {
		q.bytes += c.commit.Size
	}
	w.m.outageSegments.Set(float64(len(q.queue)))
	w.m.outageBytes.Set(float64(q.bytes))
	select {
	case q.wake <- struct{}{}:
	default:
	}
	w.log.Warn("outage queue loaded from the bucket: commits a previous run of this agent acknowledged and had not replayed",
		"segments", len(loaded), "bytes", q.bytes)
	return len(loaded), nil
}

// listManifests lists the objects under prefix, in key order (queue
// order), at most maxManifests of them.
func listManifests(ctx context.Context, bucket objstore.Bucket, prefix string) ([]objstore.ObjectInfo, error) {
	var infos []objstore.ObjectInfo
	err := bucket.List(ctx, prefix, func(o objstore.ObjectInfo) error {
		if len(infos) >= maxManifests {
			return fmt.Errorf("more than %d outage manifests under %s", maxManifests, prefix)
		}
		infos = append(infos, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outage manifests: %w", err)
	}
	// Queue order is key order; a bucket's listing is, but a hostile or
	// odd backend must not reorder acknowledged records.
	slices.SortFunc(infos, func(a, b objstore.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// readManifests reads and checks the manifests under name, in key
// order. The first one that is too large, unreadable or not one this
// version writes stops it, with an error naming its key.
func readManifests(ctx context.Context, bucket objstore.Bucket, name string) ([]*queuedCommit, error) {
	infos, err := listManifests(ctx, bucket, ManifestPrefix+name+"/")
	if err != nil {
		return nil, err
	}
	var loaded []*queuedCommit
	for _, o := range infos {
		if o.Size < 0 || o.Size > maxManifestBytes {
			return nil, fmt.Errorf("outage manifest %s: %d bytes, at most %d", o.Key, o.Size, maxManifestBytes)
		}
		data, err := bucket.GetRange(ctx, o.Key, 0, o.Size)
		if err != nil {
			return nil, fmt.Errorf("read outage manifest %s: %w", o.Key, err)
		}
		var m manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("outage manifest %s: %w", o.Key, err)
		}
		if m.V != 1 || !strings.HasPrefix(m.Commit.Object, "segments/") || len(m.Commit.Batches) == 0 {
			return nil, fmt.Errorf("outage manifest %s: not one this version writes", o.Key)
		}
		if err := metastore.ValidateCommit(m.Commit); err != nil {
			return nil, fmt.Errorf("outage manifest %s: %w", o.Key, err)
		}
		loaded = append(loaded, &queuedCommit{commit: m.Commit, queued: m.Queued, attempted: true, loaded: true, skipLedger: m.SkipLedger, manifest: o.Key})
	}
	return loaded, nil
}
