package control

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore"
)

// RestoreOptions say what Restore rebuilds, from where, into what.
type RestoreOptions struct {
	Bucket  objstore.Bucket
	Journal *journal.Journal
	// VCluster restores one vcluster by name; "" restores every one the
	// bucket holds.
	VCluster string
	// ID picks the incarnation of VCluster to restore when the bucket
	// holds several (a vcluster deleted and created again, or restored
	// before); "" requires there to be one.
	ID string
	// Dir holds the state while it is rebuilt ("" a temporary directory).
	Dir    string
	Logger *slog.Logger
}

// Restored is what Restore did for one vcluster.
type Restored struct {
	Name string
	// FromID is the incarnation read from the bucket, ID the new one
	// registered in the journal (whose backups start with a snapshot of
	// the restored state).
	FromID, ID string
	// Snapshot is the batch of the snapshot the state started from, Last
	// the last batch replayed after it from the log objects: the restored
	// vcluster holds every command journaled up to Last.
	Snapshot, Last int64
	Replayed       int64
}

// ErrAmbiguousBackup reports a name with several incarnations in the
// bucket and no RestoreOptions.ID to choose.
var ErrAmbiguousBackup = errors.New("the bucket holds several incarnations of the virtual cluster: choose one with --id")

// Restore rebuilds vclusters from the bucket alone into a journal that
// does not know them: for each, the newest snapshot that reads back whole
// and the log objects after it are applied to a fresh state, a snapshot
// of that state is written under a new id, and the vcluster is registered
// in the journal with its agent key's hash, starting after that
// snapshot's batch. A control process on that journal then serves it.
func Restore(ctx context.Context, opts RestoreOptions) ([]Restored, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.VCluster != "" {
		if err := journal.CheckName(opts.VCluster); err != nil {
			return nil, err
		}
	}
	if opts.ID != "" && opts.VCluster == "" {
		return nil, errors.New("restore: an id needs a virtual cluster name")
	}
	keys, sizes, err := listBackups(ctx, opts.Bucket, opts.VCluster, "")
	if err != nil {
		return nil, err
	}
	// name → id → keys
	found := map[string]map[string][]backupKey{}
	for _, k := range keys {
		if found[k.name] == nil {
			found[k.name] = map[string][]backupKey{}
		}
		found[k.name][k.id] = append(found[k.name][k.id], k)
	}
	if opts.VCluster != "" && len(found[opts.VCluster]) == 0 {
		return nil, fmt.Errorf("restore: no backup of virtual cluster %s in the bucket", opts.VCluster)
	}
	names := make([]string, 0, len(found))
	for name := range found {
		names = append(names, name)
	}
	sort.Strings(names)
	dir := opts.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "floe-restore-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	var out []Restored
	var errs []error
	for _, name := range names {
		ids := found[name]
		id := opts.ID
		if id == "" {
			if len(ids) > 1 {
				var list []string
				for id, ks := range ids {
					list = append(list, fmt.Sprintf("%s (up to #%d)", id, maxSeq(ks)))
				}
				sort.Strings(list)
				errs = append(errs, fmt.Errorf("%w: %s: %v", ErrAmbiguousBackup, name, list))
				continue
			}
			for only := range ids {
				id = only
			}
		}
		if len(ids[id]) == 0 {
			errs = append(errs, fmt.Errorf("restore %s: no backup with id %s", name, id))
			continue
		}
		r, err := restoreOne(ctx, opts, log, dir, name, id, ids[id], sizes)
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %s (%s): %w", name, id, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func maxSeq(ks []backupKey) int64 {
	var m int64
	for _, k := range ks {
		m = max(m, k.last)
	}
	return m
}

func restoreOne(ctx context.Context, opts RestoreOptions, log *slog.Logger, dir, name, id string, keys []backupKey, sizes map[backupKey]int64) (Restored, error) {
	r := Restored{Name: name, FromID: id}
	if _, err := opts.Journal.VCluster(ctx, name); err == nil {
		return r, fmt.Errorf("%w: %s: the journal knows it already (delete it first, or restore into another journal)", journal.ErrVClusterExists, name)
	} else if !errors.Is(err, journal.ErrUnknownVCluster) {
		return r, err
	}
	if last, err := opts.Journal.LastSeq(ctx, name); err != nil {
		return r, err
	} else if last != 0 {
		return r, fmt.Errorf("the journal holds rows of %s up to #%d without a registry entry", name, last)
	}
	var snaps []int64
	var logs []backupKey
	for _, k := range keys {
		if k.kind == kindSnapshot {
			snaps = append(snaps, k.last)
		} else {
			logs = append(logs, k)
		}
	}
	if len(snaps) == 0 {
		return r, errors.New("no snapshot in the bucket")
	}
	slices.Sort(snaps)
	slices.SortFunc(logs, func(x, y backupKey) int { return cmp.Compare(x.first, y.first) })
	vdir, err := os.MkdirTemp(dir, "restore-"+name+"-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(vdir)
	path := filepath.Join(vdir, "state.db")
	var hdr BackupHeader
	loaded := false
	for i := len(snaps) - 1; i >= 0; i-- {
		want := backupKey{name: name, id: id, kind: kindSnapshot, first: snaps[i], last: snaps[i]}
		if err := loadSnapshot(ctx, opts.Bucket, want, sizes[want], path); err != nil {
			log.Warn("snapshot unusable; trying an older one", "vcluster", name, "seq", snaps[i], "err", err)
			continue
		}
		r.Snapshot, loaded = snaps[i], true
		break
	}
	if !loaded {
		return r, errors.New("no snapshot in the bucket reads back whole")
	}
	v := &vcluster{name: name, log: log.With("vcluster", name)}
	v.store, err = embedded.Open(path, embedded.Options{Logger: v.log, Now: v.now, Rand: randSource{v}, NoSync: true, Memory: true})
	if err != nil {
		return r, err
	}
	defer v.store.Close()
	seq, at, err := v.store.AppliedSeq(ctx)
	if err != nil || seq != r.Snapshot {
		return r, fmt.Errorf("snapshot #%d holds applied sequence %d (%v)", r.Snapshot, seq, err)
	}
	v.lastAt, v.appliedAt = at, at
	// The log objects after the snapshot, in order, without a gap.
	for _, k := range logs {
		if k.last <= seq {
			continue
		}
		if k.first > seq+1 {
			return r, fmt.Errorf("log objects jump from #%d to #%d..#%d: batches missing from the bucket", seq, k.first, k.last)
		}
		raw, err := getBounded(ctx, opts.Bucket, logKey(name, id, k.first, k.last), sizes[k], MaxLogObject)
		if err != nil {
			return r, fmt.Errorf("log object #%d..#%d: %w", k.first, k.last, err)
		}
		h, err := decodeLog(raw, k, func(e journal.Entry) error {
			if e.Seq <= seq {
				return nil
			}
			if _, err := v.replay(e); err != nil {
				return err
			}
			seq = e.Seq
			r.Replayed++
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("log object #%d..#%d: %w", k.first, k.last, err)
		}
		hdr = h
	}
	r.Last = seq
	if hdr.VCluster == "" {
		// No log object after the snapshot: the registry entry comes
		// from the snapshot's header.
		snapKey := backupKey{name: name, id: id, kind: kindSnapshot, first: r.Snapshot, last: r.Snapshot}
		raw, err := getBounded(ctx, opts.Bucket, snapshotKey(name, id, r.Snapshot), sizes[snapKey], MaxSnapshotObject)
		if err != nil {
			return r, err
		}
		if hdr, err = decodeSnapshot(raw, backupKey{name: name, id: id, kind: kindSnapshot, first: r.Snapshot, last: r.Snapshot},
			func(_, _, _ []byte) error { return nil }); err != nil {
			return r, err
		}
	}
	// A snapshot of the restored state under a new id, then the registry
	// entry: the entry never points at a state the bucket lacks.
	r.ID = uuid.NewString()
	sn, err := v.store.BeginSnapshot()
	if err != nil {
		return r, err
	}
	nh := BackupHeader{VCluster: name, ID: r.ID, KeyHash: hdr.KeyHash, CreatedAt: hdr.CreatedAt, WrittenAt: time.Now().UnixNano(), RestoredFrom: id}
	raw, err := encodeSnapshot(nh, sn)
	sn.Close()
	if err != nil {
		return r, err
	}
	if err := opts.Bucket.Put(ctx, snapshotKey(name, r.ID, seq), raw); err != nil {
		return r, fmt.Errorf("write the restored snapshot: %w", err)
	}
	if err := opts.Journal.RestoreVCluster(ctx, name, r.ID, hdr.KeyHash, time.Unix(0, hdr.CreatedAt), seq); err != nil {
		return r, err
	}
	log.Info("virtual cluster restored", "vcluster", name, "from_id", id, "id", r.ID, "snapshot", r.Snapshot, "last", r.Last, "replayed", r.Replayed)
	return r, nil
}

// BackupInfo describes one vcluster incarnation's backup in a bucket, as
// listed (nothing is read or checked but the keys).
type BackupInfo struct {
	Name, ID  string
	Snapshots []int64 // batches of its snapshots, increasing
	// Last is the last batch a restore would reach if every object reads
	// back: the newest snapshot and the log objects after it without a
	// gap.
	Last     int64
	Objects  int
	Modified time.Time // the newest object's
}

// ListBackups lists the vcluster incarnations backed up in bucket, by
// name then id.
func ListBackups(ctx context.Context, bucket objstore.Bucket) ([]BackupInfo, error) {
	type key struct{ name, id string }
	infos := map[key]*BackupInfo{}
	logs := map[key][]backupKey{}
	err := bucket.List(ctx, backupRoot, func(o objstore.ObjectInfo) error {
		k, ok := parseBackupKey(o.Key)
		if !ok {
			return nil
		}
		ik := key{k.name, k.id}
		in := infos[ik]
		if in == nil {
			in = &BackupInfo{Name: k.name, ID: k.id}
			infos[ik] = in
		}
		in.Objects++
		if o.Modified.After(in.Modified) {
			in.Modified = o.Modified
		}
		if k.kind == kindSnapshot {
			in.Snapshots = append(in.Snapshots, k.last)
		} else {
			logs[ik] = append(logs[ik], k)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	out := make([]BackupInfo, 0, len(infos))
	for ik, in := range infos {
		slices.Sort(in.Snapshots)
		if n := len(in.Snapshots); n > 0 {
			in.Last = in.Snapshots[n-1]
			ls := logs[ik]
			slices.SortFunc(ls, func(x, y backupKey) int { return cmp.Compare(x.first, y.first) })
			for _, k := range ls {
				if k.first <= in.Last+1 && k.last > in.Last {
					in.Last = k.last
				}
			}
		}
		out = append(out, *in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
