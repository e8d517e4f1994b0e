package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
)

// RetentionPolicy is a topic's retention, in Kafka's terms.
type RetentionPolicy struct {
	// Delete is set when cleanup.policy includes delete: only then do
	// retention.ms and retention.bytes apply (as in Kafka; DeleteRecords
	// works whatever the policy).
	Delete bool
	Ms     int64 // retention.ms; < 0: unlimited
	Bytes  int64 // retention.bytes per partition; < 0: unlimited
}

// TopicRetention reads a topic's retention from its explicit configs,
// with Kafka's defaults for the rest.
func TopicRetention(configs map[string]string) RetentionPolicy {
	policy, _ := config.TopicValue(configs, "cleanup.policy")
	return RetentionPolicy{
		Delete: slices.Contains(config.SplitList(policy), "delete"),
		Ms:     config.TopicInt(configs, "retention.ms"),
		Bytes:  config.TopicInt(configs, "retention.bytes"),
	}
}

// Active reports whether the policy can ever drop anything.
func (p RetentionPolicy) Active() bool { return p.Delete && (p.Ms >= 0 || p.Bytes >= 0) }

// ExtentTime is the time retention.ms measures an extent's age from: its
// largest record timestamp, as Kafka uses a segment's largest timestamp,
// or its commit time when the batches carry no timestamps (-1).
func ExtentTime(e metastore.Extent) time.Time {
	if e.MaxTimestamp < 0 {
		return e.CommittedAt
	}
	return time.UnixMilli(e.MaxTimestamp)
}

// expired reports whether an extent is past retention.ms at now, as
// Kafka's now - largestTimestamp > retention.ms.
func (p RetentionPolicy) expired(e metastore.Extent, now time.Time) bool {
	return p.Ms >= 0 && now.Sub(ExtentTime(e)) > time.Duration(p.Ms)*time.Millisecond
}

// RetentionDue reports, from a partition's summary alone, whether
// retention may drop something from it, and how long the oldest data past
// retention.ms has been due (the job's lag). Partitions that are not due
// are skipped without reading their extents.
func RetentionDue(u metastore.PartitionUsage, p RetentionPolicy, now time.Time) (due bool, lag time.Duration) {
	if !p.Active() || u.Extents == 0 {
		return false, 0
	}
	if p.expired(u.First, now) {
		due = true
		lag = now.Sub(ExtentTime(u.First)) - time.Duration(p.Ms)*time.Millisecond
	}
	if p.Bytes >= 0 && u.Bytes-u.First.ByteLength >= p.Bytes {
		due = true
	}
	return due, lag
}

// RetentionDecision is what retention does to one partition.
type RetentionDecision struct {
	// LogStart is the new log start offset: the end of the last extent
	// dropped, or the current log start when nothing is.
	LogStart int64
	Extents  int   // extents dropped
	Bytes    int64 // their bytes
}

// PlanRetention decides a partition's retention. extents are its first
// extents in offset order (from the log start; a prefix is enough, the
// decision stops at its end). As Kafka does with segments, it drops
// extents from the front while they are past retention.ms, then while
// the partition would still hold at least retention.bytes without them.
// An extent straddling the log start counts whole.
func PlanRetention(u metastore.PartitionUsage, extents []metastore.Extent, p RetentionPolicy, now time.Time) RetentionDecision {
	d := RetentionDecision{LogStart: u.LogStartOffset}
	if !p.Active() {
		return d
	}
	size := u.Bytes
	i := 0
	drop := func(e metastore.Extent) {
		d.LogStart = max(d.LogStart, min(e.EndOffset, u.HighWatermark))
		d.Extents++
		d.Bytes += e.ByteLength
		size -= e.ByteLength
		i++
	}
	for i < len(extents) && p.expired(extents[i], now) {
		drop(extents[i])
	}
	for i < len(extents) && p.Bytes >= 0 && size-extents[i].ByteLength >= p.Bytes {
		drop(extents[i])
	}
	return d
}

// RetentionStore is what the retention job reads and changes.
type RetentionStore interface {
	Topics(ctx context.Context) ([]metastore.Topic, error)
	PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error)
	Extents(ctx context.Context, id metastore.TopicID, partition int32, from int64, limit int) ([]metastore.Extent, error)
	AdvanceLogStart(ctx context.Context, id metastore.TopicID, partition int32, offset int64) (metastore.PartitionOffsets, error)
}

// Retention is the job that applies retention.ms and retention.bytes: it
// advances log start offsets, dropping extents; the objects left
// unreferenced are the cleaner's.
type Retention struct {
	Store  RetentionStore
	Logger *slog.Logger
	// PageExtents bounds the extents read per partition and pass
	// (default 1000); a partition with more to drop continues next pass.
	PageExtents int
}

var _ Job = (*Retention)(nil)

// Name implements Job.
func (*Retention) Name() string { return "retention" }

// Run implements Job: one pass over every topic.
func (r *Retention) Run(ctx context.Context, env *Env) error {
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page := r.PageExtents
	if page <= 0 {
		page = 1000
	}
	topics, err := r.Store.Topics(ctx)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	var lag time.Duration
	var errs []error
	for _, t := range topics {
		p := TopicRetention(t.Configs)
		if !p.Active() {
			continue
		}
		usage, err := r.Store.PartitionUsage(ctx, t.ID)
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			continue // deleted meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("retention %s: %w", t.Name, err))
			continue
		}
		for _, u := range usage {
			now := env.Now()
			due, l := RetentionDue(u, p, now)
			lag = max(lag, l)
			if !due {
				continue
			}
			if err := r.partition(ctx, env, t, u, p, page, log); err != nil {
				errs = append(errs, err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	env.Stats.Lag(lag)
	return errors.Join(errs...)
}

func (r *Retention) partition(ctx context.Context, env *Env, t metastore.Topic, u metastore.PartitionUsage, p RetentionPolicy, page int, log *slog.Logger) error {
	extents, err := r.Store.Extents(ctx, t.ID, u.Partition, u.LogStartOffset, page)
	if err != nil {
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			return nil
		}
		return fmt.Errorf("retention %s/%d: %w", t.Name, u.Partition, err)
	}
	d := PlanRetention(u, extents, p, env.Now())
	if d.LogStart <= u.LogStartOffset {
		return nil
	}
	offs, err := r.Store.AdvanceLogStart(ctx, t.ID, u.Partition, d.LogStart)
	if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("retention %s/%d: %w", t.Name, u.Partition, err)
	}
	env.Stats.In(d.Extents, d.Bytes)
	log.Info("retention advanced the log start offset", "topic", t.Name, "partition", u.Partition,
		"log_start_offset", offs.LogStartOffset, "extents", d.Extents, "bytes", d.Bytes)
	return nil
}
