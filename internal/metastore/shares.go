package metastore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Share groups (KIP-932) keep the state of each share partition here:
// where the group's start offset is, and what it has done with every
// in-flight offset above it (acknowledged, archived, or available again
// after a number of deliveries). Acquisitions (which member holds which
// record until when) are not stored: they end with the agent that
// handed them out, and a new owner delivers those records again. So an
// agent that takes a share partition over loses no acknowledgement and
// never delivers an acknowledged or archived record again.
// docs/share-groups.md has the whole design.

// ShareBatch is a run of in-flight offsets with one state and delivery
// count. States are Kafka's codes: 0 available, 2 acknowledged, 4
// archived (1, acquired, is never stored).
type ShareBatch struct {
	First, Last   int64
	State         int8
	DeliveryCount int16
}

// Share record states as stored.
const (
	ShareAvailable    int8 = 0
	ShareAcknowledged int8 = 2
	ShareArchived     int8 = 4
)

// ShareState is the durable state of one share partition of a group.
type ShareState struct {
	TopicID   TopicID
	Partition int32
	// StateEpoch changes when the state is reset (the group's offsets
	// altered or deleted), so that a coordinator holding the old state
	// knows its view is stale even where versions alone would not say
	// why.
	StateEpoch  int32
	StartOffset int64
	Batches     []ShareBatch
	// Version increases with every write; WriteShareStates compares it,
	// so that two agents that both think they own the share partition
	// cannot overwrite each other unnoticed.
	Version   int64
	UpdatedAt time.Time
}

// MaxShareWindow bounds the offsets a stored state describes above its
// start offset, and so the batches it has.
const MaxShareWindow = 1 << 20

// ErrShareVersionConflict reports a WriteShareStates whose expected
// version of a share partition is not the stored one.
var ErrShareVersionConflict = errors.New("share partition was changed by another coordinator")

// ErrInvalidShareState reports a state no share partition can be in.
var ErrInvalidShareState = errors.New("invalid share partition state")

// ShareStore holds share groups' share-partition states. All methods are
// safe for concurrent use.
type ShareStore interface {
	// LoadShareStates returns every stored share-partition state of a
	// group (none, without error, for an unknown group), sorted by topic
	// id and partition.
	LoadShareStates(ctx context.Context, group string) ([]ShareState, error)
	// ListShareGroups returns the names of the groups with at least one
	// stored share-partition state or a stored membership record, each
	// once, sorted bytewise: every share group the store knows.
	ListShareGroups(ctx context.Context) ([]string, error)
	// WriteShareStates writes states of one group all or nothing: each
	// state is written only if its Version is the stored one (0 when none
	// is stored), and then gets Version+1, returned in call order. One
	// mismatch fails the whole call with ErrShareVersionConflict; an
	// unknown topic or partition with ErrUnknownTopicOrPartition; a
	// malformed state or a partition named twice with
	// ErrInvalidShareState. A zero UpdatedAt is set from the store's clock.
	WriteShareStates(ctx context.Context, group string, states []ShareState) ([]int64, error)
	// DeleteShareStates removes the group's states of the given
	// partitions, or all of them when partitions is nil. Partitions
	// without a state are ignored.
	DeleteShareStates(ctx context.Context, group string, partitions []TopicPartition) error

	// LoadShareGroup returns a share group's membership record as its
	// coordinator last saved it; found is false when none is stored.
	LoadShareGroup(ctx context.Context, group string) (rec ShareGroupRecord, found bool, err error)
	// SaveShareGroup writes a share group's membership record if the
	// stored version equals rec.Version (0 when none is stored) and
	// returns the new version; empty Data deletes the record (and
	// returns 0). Otherwise it fails with ErrShareVersionConflict and
	// writes nothing; Data longer than MaxShareGroupRecordBytes fails
	// with ErrInvalidShareState. A zero UpdatedAt is set from the
	// store's clock.
	SaveShareGroup(ctx context.Context, group string, rec ShareGroupRecord) (int64, error)
}

// ShareGroupRecord is a share group's membership (members, their epochs
// and assignments, the group epoch), so that a coordinator that takes
// the group over continues it instead of fencing every member. The
// store never interprets Data: internal/sharegroup encodes it. It is
// kept apart from consumer groups' records (GroupStore): a share group
// and a consumer group may have one name.
type ShareGroupRecord struct {
	Data []byte
	// Version increases with every SaveShareGroup, which compares it, so
	// that two agents that both think they coordinate the group cannot
	// overwrite each other unnoticed.
	Version   int64
	UpdatedAt time.Time
}

// MaxShareGroupRecordBytes bounds a stored membership record; with
// room to spare in a control-plane frame (remote.MaxFrame, 16 MiB).
const MaxShareGroupRecordBytes = 8 << 20

// CheckShareGroupRecord validates a SaveShareGroup call, for backends.
func CheckShareGroupRecord(rec ShareGroupRecord) error {
	switch {
	case len(rec.Data) > MaxShareGroupRecordBytes:
		return fmt.Errorf("membership record of %d bytes, more than %d: %w", len(rec.Data), MaxShareGroupRecordBytes, ErrInvalidShareState)
	case rec.Version < 0:
		return fmt.Errorf("membership record version %d: %w", rec.Version, ErrInvalidShareState)
	}
	return nil
}

// CheckShareStates validates the states of a WriteShareStates call, for
// backends: batches ascending, not overlapping, at or above the start
// offset and within MaxShareWindow of it, with a storable state and a
// delivery count that is not negative; no partition twice.
func CheckShareStates(states []ShareState) error {
	seen := make(map[TopicPartition]bool, len(states))
	for _, s := range states {
		tp := TopicPartition{TopicID: s.TopicID, Partition: s.Partition}
		if seen[tp] {
			return fmt.Errorf("%x-%d named twice: %w", s.TopicID[:], s.Partition, ErrInvalidShareState)
		}
		seen[tp] = true
		if err := checkShareState(s); err != nil {
			return fmt.Errorf("%x-%d: %w", s.TopicID[:], s.Partition, err)
		}
	}
	return nil
}

func checkShareState(s ShareState) error {
	if s.StartOffset < 0 || s.Version < 0 {
		return fmt.Errorf("start offset %d, version %d: %w", s.StartOffset, s.Version, ErrInvalidShareState)
	}
	prev := s.StartOffset - 1
	for _, b := range s.Batches {
		if b.First <= prev || b.Last < b.First || b.Last-s.StartOffset >= MaxShareWindow {
			return fmt.Errorf("batch %d-%d after %d: %w", b.First, b.Last, prev, ErrInvalidShareState)
		}
		if b.State != ShareAvailable && b.State != ShareAcknowledged && b.State != ShareArchived || b.DeliveryCount < 0 {
			return fmt.Errorf("batch %d-%d state %d delivery count %d: %w", b.First, b.Last, b.State, b.DeliveryCount, ErrInvalidShareState)
		}
		prev = b.Last
	}
	return nil
}

// SortShareStates puts states in LoadShareStates' order.
func SortShareStates(states []ShareState) {
	slices.SortFunc(states, func(a, b ShareState) int {
		return cmp.Or(bytes.Compare(a.TopicID[:], b.TopicID[:]), cmp.Compare(a.Partition, b.Partition))
	})
}

// shareBatchSize is the encoded size of one ShareBatch.
const shareBatchSize = 8 + 8 + 1 + 2

// EncodeShareBatches encodes batches for a backend: each is First and
// Last (8 bytes big-endian), State (1 byte), DeliveryCount (2 bytes).
func EncodeShareBatches(batches []ShareBatch) []byte {
	b := make([]byte, 0, len(batches)*shareBatchSize)
	for _, sb := range batches {
		b = binary.BigEndian.AppendUint64(b, uint64(sb.First))
		b = binary.BigEndian.AppendUint64(b, uint64(sb.Last))
		b = append(b, byte(sb.State))
		b = binary.BigEndian.AppendUint16(b, uint16(sb.DeliveryCount))
	}
	return b
}

// DecodeShareBatches decodes EncodeShareBatches' bytes.
func DecodeShareBatches(b []byte) ([]ShareBatch, error) {
	if len(b)%shareBatchSize != 0 || len(b)/shareBatchSize > MaxShareWindow {
		return nil, fmt.Errorf("share batches of %d bytes: %w", len(b), ErrInvalidShareState)
	}
	if len(b) == 0 {
		return nil, nil
	}
	out := make([]ShareBatch, 0, len(b)/shareBatchSize)
	for ; len(b) > 0; b = b[shareBatchSize:] {
		out = append(out, ShareBatch{
			First:         int64(binary.BigEndian.Uint64(b)),
			Last:          int64(binary.BigEndian.Uint64(b[8:])),
			State:         int8(b[16]),
			DeliveryCount: int16(binary.BigEndian.Uint16(b[17:])),
		})
	}
	return out, nil
}
