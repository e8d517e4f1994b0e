package recordbatch

import "encoding/binary"

// Control batches end transactions (docs/transactions.md). A control
// batch has the control and transactional attribute bits, the producer's
// id and epoch, base sequence -1, and one record whose key is the control
// record's type and whose value, for COMMIT and ABORT, is the
// EndTxnMarker, as Kafka's coordinator writes them:
//
//	key:   int16 version (0) | int16 type (0 ABORT, 1 COMMIT)
//	value: int16 version (0) | int32 coordinator epoch
//
// Both are big-endian. Clients skip control batches and use the ABORT
// markers, with the aborted transactions listed in Fetch responses, to
// drop aborted records under read_committed.

// ControlType is the type of a control record, in its key.
type ControlType int16

// The control record types of transaction markers.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// controlKeySize and markerValueSize are the sizes of a marker record's
// key and value.
const (
	controlKeySize  = 4
	markerValueSize = 6
)

// Marker describes the control batch that ends a transaction on one
// partition.
type Marker struct {
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	// CoordinatorEpoch is the EndTxnMarker's coordinator epoch. Kafka
	// writes the epoch of its __transaction_state partition; Floe has
	// none and writes 0.
	CoordinatorEpoch int32
	// Timestamp is the record's and batch's timestamp (Unix ms): when
	// the coordinator ended the transaction.
	Timestamp int64
}

// BuildMarker encodes m as a control batch with base offset 0. Any
// producer id is written as given, 0 included.
func BuildMarker(m Marker) []byte {
	typ := ControlAbort
	if m.Commit {
		typ = ControlCommit
	}
	key := make([]byte, controlKeySize)
	binary.BigEndian.PutUint16(key[2:], uint16(typ))
	value := make([]byte, markerValueSize)
	binary.BigEndian.PutUint32(value[2:], uint32(m.CoordinatorEpoch))
	return build(BuildOptions{
		ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, BaseSequence: -1,
		Transactional: true, Control: true, FirstTimestamp: m.Timestamp,
	}, false, Record{Timestamp: m.Timestamp, Key: key, Value: value})
}

// ParseControlKey reads a control record's type from its key; ok is
// false if the key is too short to be one.
func ParseControlKey(key []byte) (t ControlType, ok bool) {
	if len(key) < controlKeySize {
		return 0, false
	}
	return ControlType(binary.BigEndian.Uint16(key[2:])), true
}
