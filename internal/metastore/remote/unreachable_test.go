package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
)

// TestUnreachable: errors that say the control plane could not be reached
// or did not answer, against refusals and a closed client.
func TestUnreachable(t *testing.T) {
	wire := func(err error) error { return EncodeError(err).Err() } // as it comes back from the server
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", fmt.Errorf("control plane a: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"both addresses refused", errors.Join(fmt.Errorf("a: %w", syscall.ECONNREFUSED), fmt.Errorf("b: %w", ErrNotLeader)), true},
		{"connection lost", fmt.Errorf("control plane a: %w: %w", errConnLost, io.EOF), true},
		{"no answer", fmt.Errorf("control plane a: %w to CommitSegment", ErrNoAnswer), true},
		{"not leader", fmt.Errorf("control plane a: %w: x", ErrNotLeader), true},
		{"vcluster unavailable (server)", wire(ErrUnavailable), true},
		{"state closing (server)", wire(metastore.ErrClosed), true},
		{"server deadline", wire(context.DeadlineExceeded), true},
		{"unknown topic (server)", wire(metastore.ErrUnknownTopicOrPartition), false},
		{"out of order (server)", wire(metastore.ErrOutOfOrderSequence), false},
		{"error without sentinel (server)", wire(errors.New("disk full")), false},
		{"client closed", metastore.ErrClosed, false},
		{"malformed response", errors.New("control plane a: malformed response"), false},
		{"nil", nil, false},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("%s: Unreachable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
