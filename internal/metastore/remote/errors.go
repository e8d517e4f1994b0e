package remote

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/floe-io/floe/internal/metastore"
)

// WireError is an error as it crosses the network: the name of the
// sentinel it wraps (so that errors.Is works on the other side), its
// message, and the partitions of a *metastore.ReplaceConflictError.
type WireError struct {
	Code       string                     `cbor:"code,omitempty"`
	Msg        string                     `cbor:"msg"`
	Partitions []metastore.TopicPartition `cbor:"partitions,omitempty"`
}

// ErrUnavailable reports a virtual cluster that stopped serving on the
// control plane: its journal refused an append (a newer leader took it
// over, or the database failed). Agents retry; another connection may
// reach its new leader.
var ErrUnavailable = errors.New("virtual cluster unavailable")

// ErrNotLeader reports a control process that knows the vcluster and key
// but does not lead it: another process does (or will, once its lease is
// taken over). The client tries its other addresses.
var ErrNotLeader = errors.New("not the leader of the virtual cluster")

// ErrNoAnswer reports a mutation sent to the control plane whose answer
// did not come within mutationTimeout: the connection was dropped, and the
// mutation may or may not have been applied.
var ErrNoAnswer = errors.New("no answer from the control plane")

// Unreachable reports whether err, from a Client call, means the control
// plane could not be reached or did not answer (the call may have been
// applied), rather than a refusal: metastore.Unreachable's network
// errors, the connection's loss, no answer in time, a vcluster that
// stopped serving (its journal failed, or it is being taken over) or no
// process leading it. A Client closed by its owner is not.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var re *remoteError
	if errors.As(err, &re) {
		// The control plane answered, with an error of its own state.
		switch re.sentinel {
		case ErrUnavailable, metastore.ErrClosed, context.DeadlineExceeded, context.Canceled:
			return true
		}
		return false
	}
	if errors.Is(err, metastore.ErrClosed) {
		return false // this client was closed
	}
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoAnswer) ||
		errors.Is(err, errConnLost) || metastore.Unreachable(err)
}

// unknownOp reports the answer of a control plane that does not know the
// op it was asked (an older build): it applied nothing.
func unknownOp(err error) bool {
	var re *remoteError
	return errors.As(err, &re) && re.sentinel == nil && strings.HasPrefix(re.msg, "unknown op")
}

// errConnLost marks a call that failed because its connection ended.
var errConnLost = errors.New("connection lost")

// sentinels are the errors callers test with errors.Is, by the stable
// name they have on the wire. A new metastore sentinel is added here.
var sentinels = map[string]error{
	"TopicExists":             metastore.ErrTopicExists,
	"UnknownTopicOrPartition": metastore.ErrUnknownTopicOrPartition,
	"InvalidPartitions":       metastore.ErrInvalidPartitions,
	"OutOfOrderSequence":      metastore.ErrOutOfOrderSequence,
	"InvalidProducerEpoch":    metastore.ErrInvalidProducerEpoch,
	"UnknownProducerID":       metastore.ErrUnknownProducerID,
	"Closed":                  metastore.ErrClosed,
	"GroupVersionConflict":    metastore.ErrGroupVersionConflict,
	"UnknownGroup":            metastore.ErrUnknownGroup,
	"LeaseLost":               metastore.ErrLeaseLost,
	"OffsetOutOfRange":        metastore.ErrOffsetOutOfRange,
	"ExtentsChanged":          metastore.ErrExtentsChanged,
	"InvalidReplacement":      metastore.ErrInvalidReplacement,
	"ObjectReferenced":        metastore.ErrObjectReferenced,
	"InvalidQuota":            metastore.ErrInvalidQuota,
	"NoCredential":            metastore.ErrNoCredential,
	"TxnVersionConflict":      metastore.ErrTxnVersionConflict,
	"InvalidTxnState":         metastore.ErrInvalidTxnState,
	"UnknownTxn":              metastore.ErrUnknownTxn,
	"ShareVersionConflict":    metastore.ErrShareVersionConflict,
	"InvalidShareState":       metastore.ErrInvalidShareState,
	"FeaturesChanged":         metastore.ErrFeaturesChanged,
	"InvalidGroupConfig":      metastore.ErrInvalidGroupConfig,
	"OutageManifestTaken":     metastore.ErrOutageManifestTaken,
	"GroupsUnsupported":       metastore.ErrGroupsUnsupported,
	"Unavailable":             ErrUnavailable,
	"Canceled":                context.Canceled,
	"DeadlineExceeded":        context.DeadlineExceeded,
}

// sentinelOrder fixes which name an error matching several sentinels
// gets: the most specific first (a conflict error also matches
// ErrExtentsChanged).
var sentinelOrder = func() []string {
	names := make([]string, 0, len(sentinels))
	for name := range sentinels {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// EncodeError turns err into its wire form; nil stays nil.
func EncodeError(err error) *WireError {
	if err == nil {
		return nil
	}
	w := &WireError{Msg: err.Error()}
	var conflict *metastore.ReplaceConflictError
	if errors.As(err, &conflict) {
		w.Code = "ReplaceConflict"
		w.Partitions = conflict.Partitions
		return w
	}
	for _, name := range sentinelOrder {
		if errors.Is(err, sentinels[name]) {
			w.Code = name
			break
		}
	}
	return w
}

// Err turns a wire error back into an error that wraps its sentinel.
func (w *WireError) Err() error {
	if w == nil {
		return nil
	}
	if w.Code == "ReplaceConflict" {
		return &metastore.ReplaceConflictError{Partitions: w.Partitions}
	}
	return &remoteError{msg: w.Msg, sentinel: sentinels[w.Code]}
}

// remoteError is an error the server returned: its message as the server
// wrote it, matching its sentinel (nil for an error without one).
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
