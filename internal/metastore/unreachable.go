package metastore

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Unreachable reports whether err looks like a store that could not be
// reached or did not answer (connections refused, reset or closed,
// network timeouts, a deadline), after which a mutation may or may not
// have been applied; a store's refusal (a sentinel such as
// ErrUnknownTopicOrPartition) is not. Backends whose clients say more
// (remote.Unreachable) extend it.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}
