// Package embedded is the single-file metadata store: a metastore.Store
// backed by one bbolt file, for `floe playground`, the tests and
// single-agent deployments. Every call is one bbolt transaction, so a
// segment commit is atomic and the sequencer is bbolt's single writer.
//
// It must never be shared by more than one process (the file is locked) and
// never see record payloads: it stores only where records are, not what
// they are.
package embedded

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/floe-io/floe/internal/kv"
	"github.com/floe-io/floe/internal/metastore"
)

// lockTimeout bounds how long Open waits for the file lock, so that a
// second process gets an error instead of hanging.
const lockTimeout = 2 * time.Second

// URLScheme is the scheme OpenURL accepts: embedded:///abs/path/to/file.
const URLScheme = "embedded"

// Options configure a Store.
type Options struct {
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Now is the store's clock; nil is time.Now. A replicated state
	// machine (internal/control) sets it to the time its leader stamped
	// on the command being applied, so that replaying a journal gives
	// the same records.
	Now func() time.Time
	// Rand is where topic ids and the cluster secret come from; nil is
	// crypto/rand. internal/control sets it to bytes its leader stamped
	// on the command, for the same reason.
	Rand io.Reader
	// NoSync skips fsync on every write, and the freelist's write: for a
	// store whose durability is elsewhere (internal/control's journal),
	// never for a store of record.
	NoSync bool
	// Memory keeps the whole state in memory (kv.Memory) instead of the
	// file: Open loads the file at path if there is one and never writes
	// it again. For a store whose durability is elsewhere
	// (internal/control's journal and snapshots), never for a store of
	// record: what is committed is lost on Close.
	Memory bool
}

// Store is the embedded metadata store. It is safe for concurrent use.
type Store struct {
	metastore.Watchers      // commit notices for agents sharing this store in one process
	metastore.TopicWatchers // topic notices, likewise

	db     kv.DB
	path   string
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader
	closed atomic.Bool
	fold   foldLimits // the defaults (rounds in memory) but in tests
	// foldByRecord: trims fold the oldest records' extents alone
	// (folder.foldRecords), for a store in memory.
	foldByRecord bool
	// slabs hold the folded extents of a store in memory (nil on file).
	slabs *extentSlabs
	// later trims the extent log of a store on file after its commits
	// (trimlater.go); nil: commits trim it.
	later *laterTrimmer
}

var _ metastore.Store = (*Store)(nil)

// Open opens or creates the store file at path. It fails after a couple of
// seconds if another process holds the file.
func Open(path string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	boltOpts := *bolt.DefaultOptions
	boltOpts.Timeout = lockTimeout
	if opts.NoSync {
		// The file is a cache of state kept elsewhere: no fsync, no
		// freelist written on every commit, and a mapping large enough
		// that growing the file does not remap it (a remap waits for
		// every reader).
		boltOpts.NoSync = true
		boltOpts.NoGrowSync = true
		boltOpts.NoFreelistSync = true
		boltOpts.FreelistType = bolt.FreelistMapType
		boltOpts.InitialMmapSize = 1 << 30
	}
	bdb, err := bolt.Open(path, 0o600, &boltOpts)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open metadata store %s: file is locked by another process or store (gave up after %s): %w", path, lockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	var db kv.DB = kv.NewBolt(bdb)
	if opts.Memory {
		m, err := loadMemory(db)
		bdb.Close()
		if err != nil {
			return nil, fmt.Errorf("open metadata store %s in memory: %w", path, err)
		}
		db = m
	}
	err = db.Update(func(tx kv.Tx) error {
		for _, name := range buckets() {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		if err := upgradeObjects(tx); err != nil {
			return err
		}
		if err := upgradePartitions(tx); err != nil {
			return err
		}
		if err := upgradeSeqStates(tx); err != nil {
			return err
		}
		return putPartitionsFormat(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	log.Info("metadata store opened", "path", path, "memory", opts.Memory)
	s := &Store{db: db, path: path, log: log, now: opts.Now, rand: opts.Rand, foldByRecord: opts.Memory}
	if opts.Memory {
		s.slabs = newExtentSlabs()
		s.fold = foldLimits{records: memoryFoldRecords, extents: memoryFoldExtents, roundRecords: defaultFoldRoundRecords, roundExtents: defaultFoldRoundExtents}
	}
	if !opts.Memory {
		s.startLaterTrimmer()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// OpenURL opens the store named by a URL of the form
// embedded:///abs/path/to/file, creating the parent directory if needed.
func OpenURL(raw string) (*Store, error) {
	path, err := pathFromURL(raw)
	if err != nil {
		return nil, fmt.Errorf("open metadata store %q: %w", raw, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open metadata store %q: %w", raw, err)
	}
	return Open(path, Options{})
}

func pathFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	switch {
	case u.Scheme != URLScheme:
		return "", fmt.Errorf("scheme must be %q", URLScheme)
	case u.Opaque != "" || u.Host != "" || !filepath.IsAbs(u.Path):
		return "", fmt.Errorf("want %s:///absolute/path/to/file", URLScheme)
	case u.RawQuery != "" || u.Fragment != "":
		return "", errors.New("query and fragment are not supported")
	}
	return filepath.Clean(u.Path), nil
}

// Close closes the file; later calls return metastore.ErrClosed. It waits
// for transactions in progress. Closing twice is a no-op.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.stopLaterTrimmer()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close metadata store %s: %w", s.path, err)
	}
	s.log.Info("metadata store closed", "path", s.path)
	return nil
}

// StateSize is, for a store held in memory (Options.Memory), the keys it
// holds and the bytes of those keys and values; ok is false for a file.
func (s *Store) StateSize() (keys, bytes int64, ok bool) {
	m, ok := s.db.(*kv.Memory)
	if !ok {
		return 0, 0, false
	}
	keys, bytes = m.Size()
	return keys, bytes, true
}

// Objects returns, sorted, the key of every object that a commit has ever
// referenced, for the cleaner: an object of the bucket missing here was
// never committed. Keys stay listed when their extents are deleted.
func (s *Store) Objects(ctx context.Context) ([]string, error) {
	var keys []string
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Bucket([]byte(bucketObjects)).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return keys, nil
}

// view runs fn in a read-only transaction, or in the batch's (Batch).
func (s *Store) view(ctx context.Context, fn func(kv.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if b, ok := ctx.Value(batchKey{}).(*batch); ok && b.store == s {
		return b.run(fn)
	}
	return closedErr(s.db.View(fn))
}

// update runs fn in a read-write transaction, or in the batch's (Batch);
// an error from fn rolls it back.
func (s *Store) update(ctx context.Context, fn func(kv.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if b, ok := ctx.Value(batchKey{}).(*batch); ok && b.store == s {
		return b.run(fn)
	}
	return closedErr(s.db.Update(fn))
}

// updateStates is update for the calls that go through a committer:
// fn reads and changes partition states in held (heldStates) instead of
// the partstates bucket. Alone, they are written when fn returns; in a
// batch, they stay held, decoded, for the batch's next commit, and are
// written before any other call of the batch or its commit.
func (s *Store) updateStates(ctx context.Context, fn func(tx kv.Tx, held *heldStates) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	if b, ok := ctx.Value(batchKey{}).(*batch); ok && b.store == s {
		return b.runStates(fn)
	}
	var (
		wake   bool
		values [][]byte
	)
	err := s.db.Update(func(tx kv.Tx) error {
		held := s.newHeldStates()
		if s.later != nil {
			held.later = laterLimitsOf(held.limits)
		}
		if _, onFile := s.db.(*kv.Bolt); onFile {
			held.values = &values // bbolt is done with them after Update
		}
		if err := fn(tx, held); err != nil {
			return err
		}
		err := held.write(tx)
		wake = held.wake
		return err
	})
	recycleValues(values)
	if err == nil && wake {
		s.wakeLaterTrimmer()
	}
	return closedErr(err)
}

// ErrBatchFailed reports a Batch in which a transaction function failed:
// nothing of the batch was committed.
var ErrBatchFailed = errors.New("a call of the batch failed; nothing was committed")

type batchKey struct{}

// batch is one Batch's transaction.
type batch struct {
	store  *Store
	tx     kv.Tx
	held   *heldStates // the partition states of the batch's commits so far
	failed bool
}

// run runs a call that reads the stored states: those held are written
// first.
func (b *batch) run(fn func(kv.Tx) error) error {
	return b.runStates(func(tx kv.Tx, held *heldStates) error {
		if err := held.write(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (b *batch) runStates(fn func(kv.Tx, *heldStates) error) error {
	if b.failed {
		return ErrBatchFailed
	}
	if err := fn(b.tx, b.held); err != nil {
		// fn may have written part of its changes: the batch is lost.
		b.failed = true
		return err
	}
	return nil
}

// Batch runs fn with a context under which every call of this store's
// methods runs in one read-write transaction, committed when fn returns
// nil: many calls then cost one commit. Calls made with that context
// must be sequential, on fn's goroutine; calls with other contexts (other
// goroutines' reads) see the store as it was before the batch until it
// commits.
//
// A method whose transaction function fails (a conflict, an unknown
// topic found inside the transaction) may have written part of its
// changes, which cannot be undone alone: the whole batch then fails with
// ErrBatchFailed, nothing is committed, and the caller applies the calls
// again one by one. Every call that succeeded in a batch that committed
// behaves as it would have alone, in the same order. Watchers hear a
// call's notices when it returns, before the batch commits: a caller
// using Batch holds them back until Batch returns (internal/control does).
func (s *Store) Batch(fn func(ctx context.Context) error) error {
	tx, err := s.runBatch(fn)
	if err != nil {
		return err
	}
	return closedErr(tx.Commit())
}

// runBatch runs fn in a new read-write transaction (Batch) and writes
// the states it held: the transaction, to commit or prepare, or an
// error after rolling it back.
func (s *Store) runBatch(fn func(ctx context.Context) error) (kv.Tx, error) {
	if err := s.ready(context.Background()); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return nil, closedErr(err)
	}
	b := &batch{store: s, tx: tx, held: s.newHeldStates()}
	err = fn(context.WithValue(context.Background(), batchKey{}, b))
	if b.failed {
		err = ErrBatchFailed
	}
	if err == nil {
		err = b.held.write(tx)
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// Prepared is a batch whose transaction is done but held back from
// readers (BatchPrepare).
type Prepared struct {
	p *kv.Prepared
}

// Commit shows the batch to readers. Batches are committed in the order
// they were prepared, each only once every batch before it was.
func (p *Prepared) Commit() error { return closedErr(p.p.Publish()) }

// Rollback drops the batch and every batch prepared after it.
func (p *Prepared) Rollback() { p.p.Discard() }

// ErrNotPreparable reports BatchPrepare on a store on file.
var ErrNotPreparable = errors.New("embedded: only a store in memory prepares batches")

// BatchPrepare is Batch whose transaction, once fn returned nil, is
// prepared instead of committed (a store in memory only): the next
// batch, or any other write, builds on it at once, while readers see
// the store without it until Commit. A write that is not a batch
// prepared waits for every prepared batch to be committed. A batch
// that began on a prepared one rolled back is rolled back too
// (kv.ErrDiscarded). internal/control applies a batch while the one
// before is still being journaled.
func (s *Store) BatchPrepare(fn func(ctx context.Context) error) (*Prepared, error) {
	if _, ok := s.db.(*kv.Memory); !ok {
		return nil, ErrNotPreparable
	}
	tx, err := s.runBatch(fn)
	if err != nil {
		return nil, err
	}
	p, err := tx.(interface{ Prepare() (*kv.Prepared, error) }).Prepare()
	if err != nil {
		return nil, closedErr(err)
	}
	return &Prepared{p: p}, nil
}

func (s *Store) ready(ctx context.Context) error {
	if s.closed.Load() {
		return metastore.ErrClosed
	}
	return ctx.Err()
}

// closedErr maps bbolt's error for a closed file, which a call racing with
// Close may see, to the interface's.
func closedErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) || errors.Is(err, kv.ErrClosed) {
		return metastore.ErrClosed
	}
	return err
}

// loadMemory copies every bucket of db into a new kv.Memory.
func loadMemory(db kv.DB) (*kv.Memory, error) {
	m := kv.NewMemory()
	err := db.View(func(src kv.Tx) error {
		return m.Update(func(dst kv.Tx) error {
			return src.ForEach(func(name []byte, sb kv.Bucket) error {
				b, err := dst.CreateBucket(name)
				if err != nil {
					return err
				}
				return forEachValue(name, sb, b.Put)
			})
		})
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
