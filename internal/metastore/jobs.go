package metastore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Background jobs (retention, compaction, cleanup) change what the store
// refers to, never what a commit wrote: offsets are never reassigned, and
// an object is never changed, only referenced or not. The store keeps
// three kinds of state for them:
//
//   - leases, so that exactly one agent runs each job at a time;
//   - the partition's log start offset and its extents, which retention
//     trims from the front and compaction replaces in place;
//   - a ledger of objects: how many extents refer to each committed
//     object, and since when an object nobody refers to any more has been
//     unreferenced, so that the cleaner deletes it only after a grace
//     period (a fetch that read the old extents may still be reading it).
//
// Object keys are never reused: a commit and a replacement always name
// objects that were PUT for them, under fresh keys. The ledger relies on
// it: an object it has forgotten is never referenced again.

// JobStore is what background jobs need from the metadata store.
type JobStore interface {
	LeaseStore
	RetentionStore
	ExtentReplacer
	ObjectLedger
}

// Lease is a named, time-limited right to run one job. Times are on the
// store's clock, so agents with skewed clocks agree on who holds what.
type Lease struct {
	Name   string
	Holder string // "" if nobody ever took it
	// Epoch increases every time the lease passes to a holder (a fresh
	// acquisition, not a renewal); it orders holders and can fence
	// writes of a holder that lost its lease.
	Epoch int64
	// Acquired is when Holder took the lease (this epoch began).
	Acquired time.Time
	// Renewed is the store's clock at the last acquisition or renewal:
	// the holder may compare it with its own clock.
	Renewed time.Time
	// Expires is when the lease is free again unless renewed; a released
	// lease expires at its release.
	Expires time.Time
}

// HeldAt reports whether the lease is held at t (store clock).
func (l Lease) HeldAt(t time.Time) bool { return l.Holder != "" && t.Before(l.Expires) }

// ErrLeaseLost reports a renewal or release of a lease the caller no
// longer holds: it expired and was taken, or was released.
var ErrLeaseLost = errors.New("lease not held")

// LeaseStore hands out job leases. All methods are safe for concurrent
// use, from any number of agents: at any instant of the store's clock, at
// most one holder has an unexpired lease of a name.
type LeaseStore interface {
	// AcquireLease takes the named lease for holder until the store's
	// now + ttl, if it is free (never taken, released or expired) or
	// already held by holder (then it is a renewal and keeps its Epoch).
	// Otherwise it returns the current lease and acquired = false, which
	// is not an error. A fresh acquisition gets Epoch = previous + 1.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (l Lease, acquired bool, err error)
	// RenewLease extends l to now + ttl if l.Holder still holds it with
	// l.Epoch and it has not expired; otherwise ErrLeaseLost. A holder
	// must stop working on the job once it cannot renew.
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease frees l at once so another agent may take it. Releasing
	// a lease no longer held (another epoch or holder) does nothing.
	ReleaseLease(ctx context.Context, l Lease) error
	// Leases lists every lease ever taken, held or not, sorted by name.
	Leases(ctx context.Context) ([]Lease, error)
}

// LogStartHighWatermark asks AdvanceLogStart to move the log start offset
// to the high watermark, as DeleteRecords' offset -1 does.
const LogStartHighWatermark = -1

// ErrOffsetOutOfRange reports a log start offset beyond the high
// watermark (or negative, other than LogStartHighWatermark).
var ErrOffsetOutOfRange = errors.New("offset out of range")

// PartitionUsage summarises one partition for retention and for the admin
// view.
type PartitionUsage struct {
	Partition int32
	PartitionOffsets
	// Extents and Bytes count the partition's extents and the bytes they
	// cover (the sum of ByteLength). An extent straddling the log start
	// offset counts whole: its bytes are still stored.
	Extents int64
	Bytes   int64
	// First is the partition's first extent in offset order (the one
	// retention looks at first); zero when Extents is 0.
	First Extent
}

// RetentionStore moves partitions' log start offsets.
type RetentionStore interface {
	// AdvanceLogStart raises the log start offset of a partition to
	// offset (LogStartHighWatermark: the high watermark at the time of
	// the call) and drops, in the same transaction, every extent that
	// ends at or below it (EndOffset <= offset). An extent that straddles
	// the new log start stays whole: as in Kafka, the log start may point
	// inside a batch, fetches below it fail with OFFSET_OUT_OF_RANGE and
	// ListOffsets earliest answers it. The offset never moves backwards:
	// an offset at or below the current log start changes nothing and is
	// not an error. An offset beyond the high watermark, or negative
	// other than LogStartHighWatermark, fails with ErrOffsetOutOfRange.
	//
	// Objects whose last extent is dropped become unreferenced (see
	// ObjectLedger). When anything changed, every watcher hears a
	// CommitNotice naming the partition, so that agents drop cached
	// extents and offsets. It returns the offsets after the call.
	AdvanceLogStart(ctx context.Context, id TopicID, partition int32, offset int64) (PartitionOffsets, error)
	// PartitionUsage summarises every partition of a topic, sorted by
	// partition (ErrUnknownTopicOrPartition for an unknown topic).
	PartitionUsage(ctx context.Context, id TopicID) ([]PartitionUsage, error)
}

// ExtentRef names one stored extent: its partition is given by the
// PartitionReplacement it belongs to.
type ExtentRef struct {
	BaseOffset int64
	Object     string
}

// PartitionReplacement swaps consecutive extents of one partition for new
// ones holding the same offsets (see ExtentReplacer).
type PartitionReplacement struct {
	TopicID   TopicID
	Partition int32
	// Old are the extents to remove, in offset order, as read from the
	// store: consecutive (each ends where the next begins), at least one.
	Old []ExtentRef
	// New are the extents that take their place, in offset order,
	// consecutive, covering exactly [first Old BaseOffset, last Old
	// EndOffset). Their TopicID and Partition may be left zero (they are
	// set from the replacement). Each must have BaseOffset < EndOffset,
	// a non-empty Object, ByteLength > 0 and ByteOffset+ByteLength <=
	// ObjectSize. A zero CommittedAt is set to the latest CommittedAt of
	// the old extents it overlaps; MaxTimestamp is the caller's to set
	// (the largest timestamp of the records it holds).
	New []Extent
	// DropAborted names aborted-index entries removed with the swap, by
	// the offset of their ABORT marker (AbortedTxn.LastOffset), each
	// inside the old range: key compaction drops a marker whose
	// transaction has no record left, and its entry must go with it, or
	// a read_committed reader would skip the producer's later batches
	// waiting for a marker that is gone. A name with no entry is ignored.
	DropAborted []int64
}

// ErrExtentsChanged reports a replacement whose old extents are not all
// in the store any more, exactly as named: retention dropped some, another
// compaction replaced them, or the topic was deleted. Nothing was changed;
// the caller re-reads and plans again, and the objects it wrote for the
// replacement are orphans the cleaner deletes after its grace period.
var ErrExtentsChanged = errors.New("extents changed since they were read")

// ErrInvalidReplacement reports a replacement that no correct caller
// sends: new extents that do not cover the old range exactly, overlap, or
// lie outside their object; or new extents in an object that is already
// unreferenced (it may be being deleted).
var ErrInvalidReplacement = errors.New("invalid extent replacement")

// ReplaceConflictError is the error of a replacement that found changed
// extents: it lists every such partition, so that a caller replacing
// many partitions at once can retry without them. It matches
// ErrExtentsChanged with errors.Is.
type ReplaceConflictError struct {
	Partitions []TopicPartition
}

func (e *ReplaceConflictError) Error() string {
	return fmt.Sprintf("%v: %d partition(s)", ErrExtentsChanged, len(e.Partitions))
}

// Unwrap makes errors.Is(err, ErrExtentsChanged) hold.
func (e *ReplaceConflictError) Unwrap() error { return ErrExtentsChanged }

// ExtentReplacer swaps extents for compaction.
type ExtentReplacer interface {
	// ReplaceExtents applies every replacement in one transaction, all or
	// nothing:
	//
	//   - every Old extent must be in the store with exactly that
	//     BaseOffset and Object, and the Old extents of a partition must
	//     be consecutive in the store (no extent between them). If any is
	//     missing or differs, in any partition, nothing changes and the
	//     error is a *ReplaceConflictError (errors.Is ErrExtentsChanged)
	//     naming every partition that failed;
	//   - malformed input fails with ErrInvalidReplacement;
	//   - otherwise the Old extents are deleted and the New ones inserted,
	//     except new extents that end at or below the log start offset
	//     (retention moved it meanwhile, into the old range), which are
	//     dropped at once as retention would. Offsets, the high watermark
	//     and the log start offset do not change.
	//
	// Readers see the old extents or the new ones, never a gap or an
	// overlap: Extents and the other reads are single transactions. A
	// fetch that read the old extents before the swap may go on reading
	// their objects: the objects left without references become
	// unreferenced now and are deleted only after the cleaner's grace
	// period. The objects of the new extents are registered (their size
	// is the extents' ObjectSize) and become referenced; they must have
	// been PUT under fresh keys, within the cleaner's orphan grace period
	// (an object the store does not know and older than that may be
	// deleted as an orphan). Several replacements, and several new
	// extents, may share one object; a partition may appear only once.
	//
	// Every watcher hears a CommitNotice naming the replaced partitions,
	// so agents drop cached extents pointing at the old objects.
	ReplaceExtents(ctx context.Context, rs []PartitionReplacement) error
}

// UnreferencedObject is a committed object that no extent refers to any
// more.
type UnreferencedObject struct {
	Key  string
	Size int64
	// Since is when its last extent went (store clock).
	Since time.Time
}

// ObjectUsage totals the ledger.
type ObjectUsage struct {
	ReferencedObjects   int64
	ReferencedBytes     int64 // whole object sizes
	UnreferencedObjects int64
	UnreferencedBytes   int64
}

// ErrObjectReferenced reports ForgetObject of an object that extents
// still refer to.
var ErrObjectReferenced = errors.New("object is referenced")

// ObjectLedger is the store's record of committed objects, for the
// cleaner. Every object a commit or replacement referenced is known until
// forgotten; it is referenced while at least one extent names it, and
// unreferenced from the moment its last extent goes (retention,
// replacement, topic deletion). An object of the bucket the ledger does
// not know was never committed (a PUT whose commit failed or never
// happened), or was forgotten after deletion.
type ObjectLedger interface {
	// ListDeletable returns up to limit (<= 0: all) unreferenced objects
	// that have been unreferenced since before `before` (store clock),
	// oldest first.
	ListDeletable(ctx context.Context, before time.Time, limit int) ([]UnreferencedObject, error)
	// ForgetObject removes an unreferenced object from the ledger, once
	// the cleaner has deleted it from the bucket. It fails with
	// ErrObjectReferenced if extents refer to it; forgetting an unknown
	// object does nothing.
	ForgetObject(ctx context.Context, key string) error
	// KnownObjects returns the subset of keys the ledger knows
	// (referenced or not yet forgotten), for the orphan scan.
	KnownObjects(ctx context.Context, keys []string) (map[string]bool, error)
	// ObjectUsage totals referenced and unreferenced objects.
	ObjectUsage(ctx context.Context) (ObjectUsage, error)
	// ObjectSize returns the size of an object the ledger knows
	// (referenced or not yet forgotten); known is false for any other key.
	// Agents check the sizes other agents claim against it.
	ObjectSize(ctx context.Context, key string) (size int64, known bool, err error)
}

// NewLogStart decides AdvanceLogStart for a partition whose offsets are
// cur, asked to move its log start to offset: the log start to set, and
// whether it moves at all (never backwards), or ErrOffsetOutOfRange
// (wrapped). Backends call it inside the transaction that read cur.
func NewLogStart(cur PartitionOffsets, offset int64) (to int64, advance bool, err error) {
	to = offset
	if to == LogStartHighWatermark {
		to = cur.HighWatermark
	}
	if to < 0 || to > cur.HighWatermark {
		return 0, false, fmt.Errorf("%w: %d not in [0, %d]", ErrOffsetOutOfRange, offset, cur.HighWatermark)
	}
	return to, to > cur.LogStartOffset, nil
}

// SortDeletable puts unreferenced objects in ListDeletable's order:
// oldest first, then by key.
func SortDeletable(objects []UnreferencedObject) {
	slices.SortFunc(objects, func(a, b UnreferencedObject) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// CheckLeaseArgs validates the arguments of AcquireLease and RenewLease,
// for backends.
func CheckLeaseArgs(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return errors.New("empty lease name")
	case holder == "":
		return errors.New("empty holder")
	case ttl <= 0:
		return fmt.Errorf("ttl %v is not positive", ttl)
	}
	return nil
}
