package inspect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/sharegroup"
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
	// Pending counts the records neither acknowledged nor archived
	// (available or acquired) by their delivery count so far (0: never
	// delivered; from the store, a record being delivered has its
	// delivery counted).
	Pending map[int16]int64 `json:"pending_by_delivery_count,omitempty"`
	// Live: counted from the memory of the agent leading the share
	// partition (acquisitions included), not from the store.
	Live bool `json:"live,omitempty"`
}

// ShareReader is the part of the metadata store ShareGroups reads.
type ShareReader interface {
	ListShareGroups(ctx context.Context) ([]string, error)
	LoadShareStates(ctx context.Context, group string) ([]metastore.ShareState, error)
	LoadShareGroup(ctx context.Context, group string) (metastore.ShareGroupRecord, bool, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error)
}

// ShareGroups reads the share groups with stored share-partition states
// (those of names, or all when names is empty) from the metadata store:
// one row per share partition with its start offset (as Committed), the
// high watermark, the lag and the in-flight records by state, sorted by
// group, topic and partition. The state and members are those of the
// group's stored membership record (StoredMembership).
func ShareGroups(ctx context.Context, store ShareReader, names []string) ([]GroupRow, error) {
	return ShareGroupsLive(ctx, store, names, nil)
}

// ShareGroupsLive is ShareGroups with what an agent holds in memory laid
// over the store (live may be nil): the state and members of the groups
// it coordinates, and the in-flight records, acquisitions and delivery
// counts of the share partitions it leads. Groups it does not coordinate
// show their stored membership (StoredMembership).
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
		stored := StoredMembership(ctx, store, g)
		if !lg.Coordinated {
			lg.State, lg.Members = stored.State, stored.Members
		}
		var groupRows []GroupRow
		for _, st := range states {
			r := GroupRow{Group: g, Type: "share", Protocol: "share", State: "Unknown",
				Partition: st.Partition, Committed: st.StartOffset, InFlight: inFlight(st)}
			r.State, r.Members = lg.State, lg.Members
			r.Member = strings.Join(stored.Assigned[sharecoord.TP{Topic: st.TopicID, Partition: st.Partition}], ",")
			if f, ok := lg.Parts[sharecoord.TP{Topic: st.TopicID, Partition: st.Partition}]; ok {
				r.InFlight = &ShareInFlight{Available: f.Available, Acquired: f.Acquired, Acknowledged: f.Acknowledged,
					Archived: f.Archived, MaxDeliveryCount: f.MaxDeliveryCount, Pending: f.Pending, Live: true}
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
	f := &ShareInFlight{Pending: map[int16]int64{}}
	for _, b := range st.Batches {
		n := b.Last - b.First + 1
		f.MaxDeliveryCount = max(f.MaxDeliveryCount, b.DeliveryCount)
		switch b.State {
		case metastore.ShareAvailable:
			f.Available += n
			f.Pending[b.DeliveryCount] += n
		case metastore.ShareAcknowledged:
			f.Acknowledged += n
		case metastore.ShareArchived:
			f.Archived += n
		}
	}
	return f
}

// Membership is a share group as its stored membership record has it.
type Membership struct {
	// State is Stable with members, Empty without, "Unknown" when no
	// record is stored or it cannot be read.
	State   string
	Members int
	// Assigned names the members (client id/member id, sorted) assigned
	// each partition.
	Assigned map[sharecoord.TP][]string
}

// StoredMembership reads a share group's state, members and assignment
// from its stored membership record, as the coordinator last wrote it
// (at every change of membership or assignment). A member that died is
// counted until its coordinator removes it, a session timeout after its
// last heartbeat, and writes the record again.
func StoredMembership(ctx context.Context, store ShareReader, group string) Membership {
	m := Membership{State: "Unknown"}
	rec, found, err := store.LoadShareGroup(ctx, group)
	if err != nil || !found {
		return m
	}
	g, err := sharegroup.Restore(group, sharegroup.Config{}, rec.Data, time.Time{})
	if err != nil {
		return m
	}
	d := g.Describe()
	m.State, m.Members = d.State, len(d.Members)
	m.Assigned = map[sharecoord.TP][]string{}
	for _, md := range d.Members {
		for topic, ps := range md.Assignment {
			for _, p := range ps {
				tp := sharecoord.TP{Topic: metastore.TopicID(topic), Partition: p}
				m.Assigned[tp] = append(m.Assigned[tp], md.ClientID+"/"+md.MemberID)
			}
		}
	}
	for _, names := range m.Assigned {
		slices.Sort(names)
	}
	return m
}

// PendingString writes f.Pending as "COUNT:RECORDS" pairs by delivery
// count ("1:88,2:4"), "-" when no record is pending.
func (f *ShareInFlight) PendingString() string {
	if f == nil || len(f.Pending) == 0 {
		return "-"
	}
	counts := slices.Sorted(maps.Keys(f.Pending))
	parts := make([]string, 0, len(counts))
	for _, c := range counts {
		if f.Pending[c] > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d", c, f.Pending[c]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
