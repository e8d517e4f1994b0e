package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
)

// BackupOptions configure the backups of every vcluster to a bucket
// (docs/metadata-format.md): periodic snapshots of the state and the
// journal's tail since, from which `floe control restore` rebuilds a
// vcluster, and from which a process opening a vcluster starts instead of
// replaying the whole journal.
type BackupOptions struct {
	// Bucket receives the backups; nil: none.
	Bucket objstore.Bucket
	// TailInterval is how often the journal batches not yet in the bucket
	// are uploaded, as one log object (default DefaultTailInterval): the
	// bound on how far a backup lags behind the journal, plus the
	// upload's time.
	TailInterval time.Duration
	// TailBatches uploads the tail early once that many batches wait
	// (default 1024).
	TailBatches int
	// SnapshotBytes is how many journal bytes since the last snapshot
	// make a new one due (default 64 MiB); SnapshotInterval makes one due
	// anyway after that long if anything was journaled (default 1h).
	SnapshotBytes    int64
	SnapshotInterval time.Duration
	// Keep is how many snapshots of a vcluster stay in the bucket (at
	// least 2, the default), with the log objects after the oldest of
	// them; older ones are deleted.
	Keep int
	// TrimJournal deletes the journal rows up to the oldest kept snapshot
	// once it has been read back whole from the bucket (and at least
	// Keep snapshots are there): the journal stops growing, and opening
	// the vcluster then needs the bucket.
	TrimJournal bool
}

// Defaults of BackupOptions.
const (
	DefaultTailInterval     = 2 * time.Second
	DefaultTailBatches      = 1024
	DefaultSnapshotBytes    = 64 << 20
	DefaultSnapshotInterval = time.Hour
	DefaultKeepSnapshots    = 2

	// A log object holds at most logObjectBatches batches or about
	// logObjectBytes bytes (and one batch at least).
	logObjectBatches = 4096
	logObjectBytes   = 64 << 20
)

func (o BackupOptions) withDefaults() BackupOptions {
	if o.TailInterval <= 0 {
		o.TailInterval = DefaultTailInterval
	}
	if o.TailBatches <= 0 {
		o.TailBatches = DefaultTailBatches
	}
	if o.SnapshotBytes <= 0 {
		o.SnapshotBytes = DefaultSnapshotBytes
	}
	if o.SnapshotInterval <= 0 {
		o.SnapshotInterval = DefaultSnapshotInterval
	}
	o.Keep = max(o.Keep, DefaultKeepSnapshots)
	return o
}

// maxPendingBytes bounds the batches a vcluster holds in memory for the
// bucket; past it, it drops them and reads them back from the journal
// when the bucket answers again. A variable for the tests.
var maxPendingBytes int64 = 256 << 20

// ErrBackupAhead reports a bucket holding batches the journal does not:
// the journal lost appends (a database restored to an earlier point, a
// failover that lost commits) or belongs to another history. Serving
// would fork the vcluster's history, so it is refused; the operator
// restores from the bucket (`floe control restore`) or removes the
// objects past the journal (docs/operations.md).
var ErrBackupAhead = errors.New("the bucket's backup is ahead of the journal")

// BackupStats describe a vcluster's backups.
type BackupStats struct {
	// BackedUp: every batch up to it is in the bucket (from a snapshot on).
	BackedUp int64
	// LagBatches is how many journaled batches are not in the bucket yet;
	// Lag how long ago the oldest of them was journaled (0: none).
	LagBatches int64
	Lag        time.Duration
	// Snapshot is the batch of the newest snapshot in the bucket.
	Snapshot                  int64
	SnapshotsWritten, Written int64 // snapshot and log objects written
	Failures                  int64 // uploads that failed (retried)
	// Trimmed: the journal rows up to it were deleted (TrimJournal).
	Trimmed int64
}

// backupState is one vcluster's backup: what the bucket holds and the
// journaled batches waiting to be uploaded.
type backupState struct {
	opts   BackupOptions
	bucket objstore.Bucket
	reg    journal.VCluster

	wake chan struct{}

	mu           sync.Mutex
	pending      []journal.Entry // batches uploaded+1.., consecutive
	pendingAt    []time.Time     // when each was journaled
	pendingBytes int64
	overflow     bool      // pending dropped: read uploaded+1.. from the journal
	overflowAt   time.Time // the oldest batch not uploaded, in overflow
	uploaded     int64     // the bucket holds a snapshot and every batch after it up to here
	lastAppended int64
	sinceSnap    int64     // journal bytes since the last snapshot
	snapshots    []int64   // in the bucket, increasing
	snapAt       time.Time // when the newest was written (or found)
	nextSnapTry  time.Time // after a failed snapshot
	logs         []backupKey
	written      int64
	snapWritten  int64
	failures     int64
	trimmed      int64
}

func newBackupState(opts *BackupOptions, reg journal.VCluster) *backupState {
	return &backupState{opts: opts.withDefaults(), bucket: opts.Bucket, reg: reg, wake: make(chan struct{}, 1), trimmed: reg.BaseSeq}
}

func (b *backupState) header() BackupHeader {
	return BackupHeader{VCluster: b.reg.Name, ID: b.reg.ID, KeyHash: b.reg.KeyHash(), CreatedAt: b.reg.CreatedAt.UnixNano(), WrittenAt: time.Now().UnixNano()}
}

// listBackups lists the backup objects of one vcluster incarnation
// (name, id), or of every vcluster (both ""); keys of other shapes are
// ignored.
func listBackups(ctx context.Context, bucket objstore.Bucket, name, id string) (keys []backupKey, sizes map[backupKey]int64, err error) {
	prefix := backupRoot
	if name != "" {
		prefix += name + "/"
		if id != "" {
			prefix = backupPrefix(name, id)
		}
	}
	sizes = map[backupKey]int64{}
	err = bucket.List(ctx, prefix, func(o objstore.ObjectInfo) error {
		if k, ok := parseBackupKey(o.Key); ok {
			keys = append(keys, k)
			sizes[k] = o.Size
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list backups under %s: %w", prefix, err)
	}
	return keys, sizes, nil
}

// load lists the vcluster's backups, checks that the bucket is not ahead
// of the journal (whose last batch is last), and builds the state file at
// path from the newest snapshot that reads back whole, if any. It returns
// the snapshot's batch (0: none, the state starts empty).
func (b *backupState) load(ctx context.Context, log *slog.Logger, path string, last int64) (int64, error) {
	keys, sizes, err := listBackups(ctx, b.bucket, b.reg.Name, b.reg.ID)
	if err != nil {
		return 0, err
	}
	var snaps []int64
	for _, k := range keys {
		if k.last > last {
			return 0, fmt.Errorf("%w: %s has %s #%d..#%d in the bucket, the journal ends at #%d",
				ErrBackupAhead, b.reg.Name, kindName(k.kind), k.first, k.last, last)
		}
		switch k.kind {
		case kindSnapshot:
			snaps = append(snaps, k.last)
		case kindLog:
			b.logs = append(b.logs, k)
		}
	}
	slices.Sort(snaps)
	b.snapshots = snaps
	var loaded int64
	found := false
	for i := len(snaps) - 1; i >= 0 && !found; i-- {
		seq := snaps[i]
		if seq < b.reg.BaseSeq {
			break // the journal rows after it are gone
		}
		want := backupKey{name: b.reg.Name, id: b.reg.ID, kind: kindSnapshot, first: seq, last: seq}
		err := loadSnapshot(ctx, b.bucket, want, sizes[want], path)
		if err != nil {
			log.Warn("snapshot unusable; trying an older one", "seq", seq, "err", err)
			continue
		}
		loaded, found = seq, true
	}
	if !found && b.reg.BaseSeq > 0 {
		return 0, fmt.Errorf("journal of %s starts after #%d and the bucket has no usable snapshot at or after it", b.reg.Name, b.reg.BaseSeq)
	}
	if found {
		b.snapAt = time.Now()
		// A newer snapshot that does not read back does not count.
		b.snapshots = slices.DeleteFunc(b.snapshots, func(s int64) bool { return s > loaded })
	} else {
		b.snapshots = nil // none usable: one is written at once
	}
	b.chain()
	b.lastAppended = max(loaded, b.uploaded)
	if b.uploaded < loaded {
		// Batches up to the snapshot the log objects lack: read back
		// from the journal by the next upload.
		b.overflow, b.overflowAt = true, time.Now()
	}
	log.Info("backup found in the bucket", "snapshot", loaded, "found", found, "backed_up", b.uploaded, "journal_last", last)
	return loaded, nil
}

// maxAdoptedObjects bounds the backup objects adopt accepts from a
// listing of one vcluster: a healthy backup has a few snapshots and the
// log objects since the oldest (thousands at most).
const maxAdoptedObjects = 1 << 20

// adopt learns what the bucket holds of the vcluster from its listing
// alone (names, sizes and times; no object is read): a warm standby
// taking the vcluster over (standby.go) already holds the state and
// only continues the backups. last is the journal's last batch, read
// under the lease (the bucket must not be ahead of it), held the
// state's applied sequence number. The chain the bucket holds is
// counted from its newest snapshot, as the old leader wrote it; the
// batches after it the bucket lacks, up to held, are read back from the
// journal by the next upload (as after an outage: the rows after a
// snapshot are never trimmed), and the rows the takeover applies after
// held are held in memory as an open holds them.
func (b *backupState) adopt(ctx context.Context, log *slog.Logger, last, held int64) error {
	prefix := backupPrefix(b.reg.Name, b.reg.ID)
	var newestAt time.Time
	var n int
	err := b.bucket.List(ctx, prefix, func(o objstore.ObjectInfo) error {
		k, ok := parseBackupKey(o.Key)
		if !ok || k.name != b.reg.Name || k.id != b.reg.ID {
			return nil
		}
		if n++; n > maxAdoptedObjects {
			return fmt.Errorf("more than %d backup objects under %s", maxAdoptedObjects, prefix)
		}
		if k.last > last {
			return fmt.Errorf("%w: %s has %s #%d..#%d in the bucket, the journal ends at #%d",
				ErrBackupAhead, b.reg.Name, kindName(k.kind), k.first, k.last, last)
		}
		switch k.kind {
		case kindSnapshot:
			if len(b.snapshots) == 0 || k.last > b.snapshots[len(b.snapshots)-1] {
				newestAt = o.Modified
			}
			b.snapshots = append(b.snapshots, k.last)
		case kindLog:
			b.logs = append(b.logs, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list backups under %s: %w", prefix, err)
	}
	slices.Sort(b.snapshots)
	if len(b.snapshots) > 0 {
		b.snapAt = time.Now()
		if !newestAt.IsZero() && newestAt.Before(b.snapAt) {
			b.snapAt = newestAt // the interval runs from the old leader's snapshot
		}
	}
	// No snapshot (the old leader died before its first): one is due at
	// once, and the chain starts before #1.
	b.chain()
	b.lastAppended = max(held, b.uploaded)
	if b.uploaded < held {
		b.overflow, b.overflowAt = true, time.Now()
	}
	log.Info("backup adopted from the bucket's listing", "snapshots", len(b.snapshots), "logs", len(b.logs), "backed_up", b.uploaded, "state", held, "journal_last", last)
	return nil
}

// chain sets uploaded to the end of the chain the bucket holds: the
// oldest of the Keep newest snapshots at or after the journal's base (or the empty
// state before #1, if there is none and the journal is whole) and the
// log objects that follow it without a gap. Counting from the oldest,
// not the newest, makes the next uploads fill a gap in the log objects
// after it (the journal holds those rows: it is trimmed only up to
// batches in log objects), so that a restore that falls back to an
// older snapshot still finds every batch after it. Under mu or before
// the backup is shared.
func (b *backupState) chain() {
	b.uploaded = 0
	// Older snapshots than the newest Keep are leftovers of a pruning
	// that stopped midway (their log objects may be gone): not counted.
	kept := b.snapshots[max(0, len(b.snapshots)-b.opts.Keep):]
	i := slices.IndexFunc(kept, func(s int64) bool { return s >= b.reg.BaseSeq })
	switch {
	case i >= 0:
		b.uploaded = kept[i]
	case len(b.snapshots) > 0:
		// None after the base: the newest, whose gaps only a new
		// snapshot closes (writeSnapshot).
		b.uploaded = b.snapshots[len(b.snapshots)-1]
	}
	slices.SortFunc(b.logs, func(x, y backupKey) int { return cmp.Compare(x.first, y.first) })
	for _, k := range b.logs {
		if k.first <= b.uploaded+1 && k.last > b.uploaded {
			b.uploaded = k.last
		}
	}
}

func kindName(k byte) string {
	if k == kindSnapshot {
		return "snapshot"
	}
	return "log"
}

// loadSnapshot reads one snapshot object (size as listed) and builds the
// state file at path from it; on failure the file is removed.
func loadSnapshot(ctx context.Context, bucket objstore.Bucket, want backupKey, size int64, path string) error {
	if size > MaxSnapshotObject {
		return fmt.Errorf("%w: snapshot of %d bytes over %d", ErrBadBackup, size, MaxSnapshotObject)
	}
	raw, err := getBounded(ctx, bucket, snapshotKey(want.name, want.id, want.last), size, MaxSnapshotObject)
	if err != nil {
		return err
	}
	os.Remove(path)
	l, err := embedded.NewLoader(path)
	if err != nil {
		return err
	}
	_, err = decodeSnapshot(raw, want, l.Put)
	if cerr := l.Close(err == nil); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// getBounded reads a whole object whose listed size was size, never more
// than limit bytes: the listed size is read (an object replaced since the
// listing then fails its checksum); unknown (0), the object's first
// limit+1 bytes, and more than limit is refused.
func getBounded(ctx context.Context, bucket objstore.Bucket, key string, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes over %d", ErrBadBackup, key, size, limit)
	}
	if size > 0 {
		return bucket.GetRange(ctx, key, 0, size)
	}
	raw, err := bucket.GetRange(ctx, key, 0, -1)
	if err == nil && int64(len(raw)) > limit {
		return nil, fmt.Errorf("%w: %s of %d bytes over %d", ErrBadBackup, key, len(raw), limit)
	}
	return raw, err
}

// appended hears a batch the journal holds (replayed or just appended).
func (b *backupState) appended(e journal.Entry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Seq <= b.lastAppended {
		return
	}
	b.lastAppended = e.Seq
	b.sinceSnap += int64(len(e.Batch))
	if e.Seq <= b.uploaded || b.overflow {
		return
	}
	next := b.uploaded + 1
	if n := len(b.pending); n > 0 {
		next = b.pending[n-1].Seq + 1
	}
	if e.Seq != next || b.pendingBytes+int64(len(e.Batch)) > maxPendingBytes {
		b.overflow = true
		b.overflowAt = time.Now()
		if len(b.pendingAt) > 0 {
			b.overflowAt = b.pendingAt[0]
		}
		b.pending, b.pendingAt, b.pendingBytes = nil, nil, 0
		return
	}
	b.pending = append(b.pending, e)
	b.pendingAt = append(b.pendingAt, time.Now())
	b.pendingBytes += int64(len(e.Batch))
	if len(b.pending) >= b.opts.TailBatches {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// stats is safe on a nil backup.
func (b *backupState) stats() BackupStats {
	if b == nil {
		return BackupStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BackupStats{BackedUp: b.uploaded, LagBatches: b.lastAppended - b.uploaded,
		SnapshotsWritten: b.snapWritten, Written: b.written, Failures: b.failures, Trimmed: b.trimmed}
	if n := len(b.snapshots); n > 0 {
		st.Snapshot = b.snapshots[n-1]
	}
	switch {
	case b.overflow:
		st.Lag = time.Since(b.overflowAt)
	case len(b.pendingAt) > 0:
		st.Lag = time.Since(b.pendingAt[0])
	}
	return st
}

// backupLoop uploads the vcluster's log tail every TailInterval (or when
// TailBatches wait) and its snapshots when due, until the vcluster stops;
// then it uploads what is left, for a few seconds at most.
func (v *vcluster) backupLoop() {
	defer close(v.backupDone)
	b := v.backup
	t := time.NewTicker(b.opts.TailInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-v.stop:
			// Let a last upload of the tail finish, briefly.
			select {
			case <-time.After(5 * time.Second):
				cancel()
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-v.stop:
			<-v.loopsDone // the batcher's last appends, too
			if v.failErr == nil {
				// Not after a failed append: whoever opens the vcluster
				// next (a rebuild, another process) lists the bucket and
				// uploads what it lacks, and two uploaders would overlap.
				v.uploadTail(ctx)
			}
			return
		case <-t.C:
		case <-b.wake:
		}
		v.uploadTail(ctx)
		if b.snapshotDue() {
			v.writeSnapshot(ctx)
		}
	}
}

// snapshotDue: none in the bucket yet, enough journaled since the last,
// or the last is old and something changed since.
func (b *backupState) snapshotDue() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Now().Before(b.nextSnapTry) {
		return false
	}
	n := len(b.snapshots)
	return n == 0 || b.sinceSnap >= b.opts.SnapshotBytes ||
		(time.Since(b.snapAt) >= b.opts.SnapshotInterval && b.lastAppended > b.snapshots[n-1])
}

// uploadTail uploads the batches not yet in the bucket, as log objects,
// until none is left or an upload fails. It stops once the lease is lost
// (below leaseCtx): the next leader continues from the bucket's listing.
func (v *vcluster) uploadTail(ctx context.Context) {
	for ctx.Err() == nil {
		lctx, cancel, ok := v.leaseCtx(ctx)
		if !ok {
			return
		}
		more := v.uploadOne(lctx)
		cancel()
		if !more {
			return
		}
	}
}

// leaseCtx bounds ctx by the lease's local deadline; ok is false once
// the lease is lost or past it. A leader uploads and deletes backup
// objects only under its lease, so that a new leader's listing (adopt)
// is not changed behind it, short of a request already on the wire.
func (v *vcluster) leaseCtx(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	left := v.leaseLeft()
	if v.leaseLost.Load() || left <= 0 {
		return ctx, func() {}, false
	}
	c, cancel := context.WithTimeout(ctx, left)
	return c, cancel, true
}

// uploadOne uploads one log object of the batches not yet in the
// bucket; more is true if it did and more may wait.
func (v *vcluster) uploadOne(ctx context.Context) (more bool) {
	b := v.backup
	b.mu.Lock()
	overflow, from, to := b.overflow, b.uploaded+1, b.lastAppended
	var entries []journal.Entry
	if !overflow {
		var size int
		for _, e := range b.pending {
			if len(entries) > 0 && (len(entries) == logObjectBatches || size+len(e.Batch) > logObjectBytes) {
				break
			}
			entries = append(entries, e)
			size += len(e.Batch)
		}
	}
	b.mu.Unlock()
	if from > to {
		return false
	}
	if overflow {
		var err error
		if entries, err = readJournal(ctx, v.journal, v.name, from, to); err != nil {
			v.log.Warn("reading the journal for the backup failed", "from", from, "err", err)
			b.failed()
			return false
		}
	}
	if len(entries) == 0 {
		return false
	}
	first, last := entries[0].Seq, entries[len(entries)-1].Seq
	raw, err := encodeLog(b.header(), entries)
	if err == nil {
		err = b.bucket.Put(ctx, logKey(v.name, b.reg.ID, first, last), raw)
	}
	if err != nil {
		v.log.Warn("uploading the journal tail failed; retrying", "first", first, "last", last, "err", err)
		b.failed()
		return false
	}
	b.mu.Lock()
	b.uploaded = last
	b.written++
	b.logs = append(b.logs, backupKey{name: v.name, id: b.reg.ID, kind: kindLog, first: first, last: last})
	if b.overflow {
		if b.uploaded >= b.lastAppended {
			b.overflow = false // caught up: new batches are held again
		} else {
			b.overflowAt = time.Now() // not known exactly: the lag is at least this
		}
	} else {
		n := 0
		for n < len(b.pending) && b.pending[n].Seq <= last {
			b.pendingBytes -= int64(len(b.pending[n].Batch))
			n++
		}
		b.pending = slices.Delete(b.pending, 0, n)
		b.pendingAt = slices.Delete(b.pendingAt, 0, n)
	}
	b.mu.Unlock()
	return true
}

func (b *backupState) failed() {
	b.mu.Lock()
	b.failures++
	b.mu.Unlock()
}

// readJournal reads the batches from..to (at most a log object's worth)
// back from the journal.
func readJournal(ctx context.Context, j *journal.Journal, name string, from, to int64) ([]journal.Entry, error) {
	errEnough := errors.New("enough")
	var out []journal.Entry
	var size int
	err := j.Read(ctx, name, from, func(e journal.Entry) error {
		if e.Seq > to || len(out) == logObjectBatches || (len(out) > 0 && size+len(e.Batch) > logObjectBytes) {
			return errEnough
		}
		out = append(out, e)
		size += len(e.Batch)
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	return out, nil
}

// writeSnapshot asks the applier for a snapshot between two batches,
// uploads it, and deletes the backups it makes unnecessary.
func (v *vcluster) writeSnapshot(ctx context.Context) {
	b := v.backup
	reply := make(chan *embedded.Snapshot, 1)
	select {
	case v.snapReq <- reply:
	case <-v.stop:
		return
	}
	sn := <-reply
	if sn == nil {
		b.snapshotFailed()
		return
	}
	b.mu.Lock()
	since := b.sinceSnap
	b.mu.Unlock()
	start := time.Now()
	seq := sn.AppliedSeq()
	raw, err := encodeSnapshot(b.header(), sn)
	sn.Close()
	if err == nil && len(raw) > MaxSnapshotObject {
		// A reader would refuse it: an unusable backup is worse than a
		// failure that shows.
		err = fmt.Errorf("snapshot of %d bytes over the %d a reader accepts", len(raw), MaxSnapshotObject)
	}
	if err == nil {
		lctx, cancel, ok := v.leaseCtx(ctx)
		if !ok {
			return // lost the lease meanwhile
		}
		err = b.bucket.Put(lctx, snapshotKey(v.name, b.reg.ID, seq), raw)
		cancel()
	}
	if err != nil {
		v.log.Warn("writing a snapshot failed; retrying later", "seq", seq, "err", err)
		b.snapshotFailed()
		return
	}
	v.log.Info("snapshot written to the bucket", "seq", seq, "bytes", len(raw), "took", time.Since(start).Round(time.Millisecond))
	b.mu.Lock()
	if n := len(b.snapshots); n == 0 || b.snapshots[n-1] < seq {
		b.snapshots = append(b.snapshots, seq)
	}
	b.snapAt = time.Now()
	b.sinceSnap = max(0, b.sinceSnap-since)
	b.snapWritten++
	if b.uploaded < seq && b.uploaded < b.trimmed {
		// The log objects lack batches the journal no longer holds (a
		// bucket that lost objects): the chain starts from this
		// snapshot. Otherwise the log objects go on without a gap, so
		// that an older snapshot's chain stays whole.
		b.uploaded = seq
		b.overflow, b.overflowAt = true, time.Now()
		b.pending, b.pendingAt, b.pendingBytes = nil, nil, 0
	}
	drop := b.prunable()
	b.mu.Unlock()
	for _, k := range drop {
		select {
		case <-v.stop:
			return
		default:
		}
		key := logKey(k.name, k.id, k.first, k.last)
		if k.kind == kindSnapshot {
			key = snapshotKey(k.name, k.id, k.last)
		}
		lctx, cancel, ok := v.leaseCtx(ctx)
		if !ok {
			return
		}
		if err := b.bucket.Delete(lctx, key); err != nil {
			v.log.Warn("deleting an old backup object failed", "key", key, "err", err)
		}
		cancel()
	}
	if b.opts.TrimJournal {
		v.trimJournal(ctx)
	}
}

// trimJournal deletes the journal rows up to the oldest snapshot kept in
// the bucket, once there are Keep of them and that one reads back whole:
// the newer ones are the margin if it is damaged later.
func (v *vcluster) trimJournal(ctx context.Context) {
	b := v.backup
	b.mu.Lock()
	var floor int64
	if len(b.snapshots) >= b.opts.Keep {
		floor = b.snapshots[len(b.snapshots)-b.opts.Keep]
	}
	trimmed, uploaded := b.trimmed, b.uploaded
	b.mu.Unlock()
	if floor <= trimmed || floor > uploaded {
		// Nothing new to trim, or the log objects lag behind the
		// snapshot: their batches must stay in the journal until they
		// are uploaded, so that every kept snapshot's chain is whole.
		return
	}
	want := backupKey{name: v.name, id: b.reg.ID, kind: kindSnapshot, first: floor, last: floor}
	raw, err := getBounded(ctx, b.bucket, snapshotKey(v.name, b.reg.ID, floor), 0, MaxSnapshotObject)
	if err == nil {
		_, err = decodeSnapshot(raw, want, func(_, _, _ []byte) error { return nil })
	}
	if err != nil {
		v.log.Warn("the snapshot to trim the journal to does not read back; not trimming", "seq", floor, "err", err)
		b.failed()
		return
	}
	n, err := v.journal.Trim(ctx, v.name, v.epoch, floor)
	if err != nil {
		v.log.Warn("trimming the journal failed", "seq", floor, "err", err)
		return
	}
	v.log.Info("journal trimmed", "up_to", floor, "rows", n)
	b.mu.Lock()
	b.trimmed = max(b.trimmed, floor)
	b.mu.Unlock()
}

func (b *backupState) snapshotFailed() {
	b.mu.Lock()
	b.failures++
	b.nextSnapTry = time.Now().Add(time.Minute)
	b.mu.Unlock()
}

// prunable removes from the lists, and returns, the objects older than
// the oldest of the Keep newest snapshots: the snapshots before it and
// the log objects that end at or before it.
func (b *backupState) prunable() []backupKey {
	if len(b.snapshots) <= b.opts.Keep {
		return nil
	}
	floor := b.snapshots[len(b.snapshots)-b.opts.Keep]
	var out []backupKey
	for _, s := range b.snapshots {
		if s < floor {
			out = append(out, backupKey{name: b.reg.Name, id: b.reg.ID, kind: kindSnapshot, first: s, last: s})
		}
	}
	b.snapshots = slices.DeleteFunc(b.snapshots, func(s int64) bool { return s < floor })
	b.logs = slices.DeleteFunc(b.logs, func(k backupKey) bool {
		if k.last <= floor {
			out = append(out, k)
			return true
		}
		return false
	})
	return out
}
