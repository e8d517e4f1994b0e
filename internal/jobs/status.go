package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Status is what an operator sees of the jobs: who holds which lease, and
// how much of the bucket each topic takes.
type Status struct {
	// Now is the time the report was made (the reader's clock).
	Now    time.Time         `json:"now"`
	Leases []metastore.Lease `json:"leases"`
	Topics []TopicUsage      `json:"topics"`
	// Objects totals the ledger: referenced objects (whole sizes, shared
	// by topics) and unreferenced ones waiting for the cleaner.
	Objects metastore.ObjectUsage `json:"objects"`
}

// TopicUsage sums a topic's partitions.
type TopicUsage struct {
	Name       string `json:"name"`
	Partitions int32  `json:"partitions"`
	// Extents and Bytes count the extents that hold the topic's records
	// and the bytes they cover in their objects.
	Extents int64 `json:"extents"`
	Bytes   int64 `json:"bytes"`
	// Records is the sum of high watermark minus log start offset.
	Records int64 `json:"records"`
}

// StatusStore is what ReadStatus reads.
type StatusStore interface {
	Leases(ctx context.Context) ([]metastore.Lease, error)
	ObjectUsage(ctx context.Context) (metastore.ObjectUsage, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	PartitionUsage(ctx context.Context, id metastore.TopicID) ([]metastore.PartitionUsage, error)
}

// ReadStatus reads a Status from the metadata store.
func ReadStatus(ctx context.Context, store StatusStore) (Status, error) {
	st := Status{Now: time.Now(), Leases: []metastore.Lease{}, Topics: []TopicUsage{}}
	var err error
	if st.Leases, err = store.Leases(ctx); err != nil {
		return st, err
	}
	if st.Objects, err = store.ObjectUsage(ctx); err != nil {
		return st, err
	}
	topics, err := store.Topics(ctx)
	if err != nil {
		return st, err
	}
	for _, t := range topics {
		us, err := store.PartitionUsage(ctx, t.ID)
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("topic %s: %w", t.Name, err)
		}
		tu := TopicUsage{Name: t.Name, Partitions: t.Partitions}
		for _, u := range us {
			tu.Extents += u.Extents
			tu.Bytes += u.Bytes
			tu.Records += u.HighWatermark - u.LogStartOffset
		}
		st.Topics = append(st.Topics, tu)
	}
	return st, nil
}
