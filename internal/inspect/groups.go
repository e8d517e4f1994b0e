package inspect

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/floe-io/floe/internal/groups"
	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/metastore"
)

// GroupRow is one partition of one consumer group (or the group alone,
// Topic empty, when it has no committed offset), as `floe groups`
// prints it.
type GroupRow struct {
	Group     string `json:"group"`
	State     string `json:"state"`
	Protocol  string `json:"protocol,omitempty"`
	Members   int    `json:"members"`
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"` // client id/member id of the consuming member
	Error     string `json:"error,omitempty"`
	// Type is "share" for a share group (KIP-932), whose Committed is
	// the share-partition start offset and Lag the records between it
	// and End neither acknowledged nor archived; empty for consumer
	// groups.
	Type string `json:"type,omitempty"`
	// InFlight counts a share partition's in-flight records by state,
	// when known (from the metadata store, not through the Kafka
	// protocol, which has no API for it).
	InFlight *ShareInFlight `json:"in_flight,omitempty"`
}

// GroupReader is the part of the metadata store Groups reads.
type GroupReader interface {
	ListGroups(ctx context.Context) ([]metastore.GroupSummary, error)
	LoadGroup(ctx context.Context, name string) (metastore.Group, bool, error)
	FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error)
	Topics(ctx context.Context) ([]metastore.Topic, error)
	Offsets(ctx context.Context, id metastore.TopicID, partition int32) (metastore.PartitionOffsets, error)
}

// Groups reads the named groups (every group when names is empty) from
// the metadata store: the state and members of each group's last record
// (what its coordinator saved when it last became stable or empty, or
// lost a member) and, per partition, the committed offset, the high
// watermark and the lag. Rows are sorted by group, topic and partition.
// Unknown names are left out.
func Groups(ctx context.Context, store GroupReader, names []string) ([]GroupRow, error) {
	summaries, err := store.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
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
	for _, s := range summaries {
		if len(names) > 0 && !slices.Contains(names, s.Name) {
			continue
		}
		base := GroupRow{Group: s.Name, State: s.State, Protocol: s.ProtocolType}
		if base.State == "" {
			base.State = "Empty"
		}
		var members map[metastore.TopicPartition]string
		rec, found, err := store.LoadGroup(ctx, s.Name)
		if err != nil {
			return nil, fmt.Errorf("group %s: %w", s.Name, err)
		}
		if found {
			base.Members, members = recordMembers(rec.Data)
		}
		offs, err := store.FetchOffsets(ctx, s.Name)
		if err != nil {
			return nil, fmt.Errorf("group %s offsets: %w", s.Name, err)
		}
		if len(offs) == 0 {
			rows = append(rows, base)
			continue
		}
		var groupRows []GroupRow
		for _, o := range offs {
			r := base
			r.Topic, r.Partition, r.Committed = topicNames[o.TopicID], o.Partition, o.Offset
			if r.Topic == "" {
				r.Topic = fmt.Sprintf("(deleted topic %x)", o.TopicID[:])
			}
			r.Member = members[metastore.TopicPartition{TopicID: o.TopicID, Partition: o.Partition}]
			po, err := store.Offsets(ctx, o.TopicID, o.Partition)
			switch {
			case errors.Is(err, metastore.ErrUnknownTopicOrPartition):
				r.End, r.Lag, r.Error = -1, -1, "unknown topic or partition"
			case err != nil:
				return nil, fmt.Errorf("group %s: partition offsets: %w", s.Name, err)
			default:
				r.End = po.HighWatermark
				r.Lag = max(po.HighWatermark-o.Offset, 0)
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

// recordMembers counts the members of a stored group record and, for
// consumer-protocol groups, names the member each partition is assigned
// to (classic assignments are the client's bytes, not read here).
func recordMembers(data []byte) (int, map[metastore.TopicPartition]string) {
	if consumer.IsSnapshot(data) {
		s, err := consumer.UnmarshalSnapshot(data)
		if err != nil {
			return 0, nil
		}
		owners := map[metastore.TopicPartition]string{}
		for _, m := range s.Members {
			for _, p := range m.Assigned {
				owners[metastore.TopicPartition{TopicID: metastore.TopicID(p.Topic), Partition: p.Partition}] = m.ClientID + "/" + m.ID
			}
		}
		return len(s.Members), owners
	}
	s, err := groups.UnmarshalSnapshot(data)
	if err != nil {
		return 0, nil
	}
	return len(s.Members), nil
}
