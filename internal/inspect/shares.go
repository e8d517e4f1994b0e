package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharecoord"
)

// ShareInFlight counts the in-flight records of a share partition (from
// its start offset up to the end of what it has handed out) by state.
// Acquisitions are not stored, so from the metadata store a record being
// delivered counts as available.
type ShareInFlight struct {
	Available    int64 `json:"available"`
	Acquired     int64 `json:"acquired"`
	Acknowledged int64 `json:"acknowledged"`
	Archived     int64 `json:"archived"`
	// MaxDeliveryCount is the highest delivery count of the in-flight
	// records.
	MaxDeliveryCount int16 `json:"max_delivery_count"`
	// Live: counted from the memory of the agent leading the share
	// partition (acquisitions included), not from the store.
	Live bool `json:"live,omitempty"`
}

// ShareReader is the part of the metadata store ShareGroups reads.
type ShareReader interface {
	ListShareGroups(ctx context.Context) ([]string, error)
	LoadShareStates(ctx context.Context, group string) ([]metastore.ShareState, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error)
}

// ShareGroups reads the share groups with stored share-partition states
// (those of names, or all when names is empty) from the metadata store:
// one row per share partition with its start offset (as Committed), the
// high watermark, the lag and the in-flight records by state, sorted by
// group, topic and partition. Membership is not stored: the state is
// "Unknown" and the members 0.
func ShareGroups(ctx context.Context, store ShareReader, names []string) ([]GroupRow, error) {
	return ShareGroupsLive(ctx, store, names, nil)
}

// ShareGroupsLive is ShareGroups with what an agent holds in memory laid
// over the store (live may be nil): the state and members of the groups
// it coordinates, and the in-flight records, acquisitions and delivery
// counts of the share partitions it leads.
func ShareGroupsLive(ctx context.Context, store ShareReader, names []string, live func(group string) sharecoord.LiveGroup) ([]GroupRow, error) {
	groups, err := store.ListShareGroups(ctx)
	if err != nil {
		return nil, err
	}
	topics, err := store.Topics(ctx)
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	topicNames := make(map[metastore.TopicID]string, len(topics))
	for _, t := range topics {
		topicNames[t.ID] = t.Name
	}
	var rows []GroupRow
	for _, g := range groups {
		if len(names) > 0 && !slices.Contains(names, g) {
			continue
		}
		states, err := store.LoadShareStates(ctx, g)
		if err != nil {
			return nil, fmt.Errorf("share group %s: %w", g, err)
		}
		var lg sharecoord.LiveGroup
		if live != nil {
			lg = live(g)
		}
		var groupRows []GroupRow
		for _, st := range states {
			r := GroupRow{Group: g, Type: "share", Protocol: "share", State: "Unknown",
				Partition: st.Partition, Committed: st.StartOffset, InFlight: inFlight(st)}
			if lg.Coordinated {
				r.State, r.Members = lg.State, lg.Members
			}
			if f, ok := lg.Parts[sharecoord.TP{Topic: st.TopicID, Partition: st.Partition}]; ok {
				r.InFlight = &ShareInFlight{Available: f.Available, Acquired: f.Acquired, Acknowledged: f.Acknowledged,
					Archived: f.Archived, MaxDeliveryCount: f.MaxDeliveryCount, Live: true}
			}
			r.Topic = topicNames[st.TopicID]
			if r.Topic == "" {
				r.Topic = fmt.Sprintf("(deleted topic %x)", st.TopicID[:])
			}
			po, err := store.Offsets(ctx, st.TopicID, st.Partition)
			switch {
			case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
				r.End, r.Lag, r.Error = -1, -1, "unknown topic or partition"
			case err != nil:
				return nil, fmt.Errorf("share group %s: partition offsets: %w", g, err)
			default:
				r.End, r.Lag = po.HighWatermark, sharecoord.Lag(st, po.HighWatermark)
			}
			groupRows = append(groupRows, r)
		}
		slices.SortFunc(groupRows, func(a, b GroupRow) int {
			if a.Topic != b.Topic {
				if a.Topic < b.Topic {
					return -1
				}
				return 1
			}
			return int(a.Partition) - int(b.Partition)
		})
		rows = append(rows, groupRows...)
	}
	return rows, nil
}

func inFlight(st metastore.ShareState) *ShareInFlight {
	f := &ShareInFlight{}
	for _, b := range st.Batches {
		n := b.Last - b.First + 1
		f.MaxDeliveryCount = max(f.MaxDeliveryCount, b.DeliveryCount)
		switch b.State {
		case metastore.ShareAvailable:
			f.Available += n
		case metastore.ShareAcknowledged:
			f.Acknowledged += n
		case metastore.ShareArchived:
			f.Archived += n
		}
	}
	return f
}
