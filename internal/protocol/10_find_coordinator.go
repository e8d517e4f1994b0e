package protocol

// FindCoordinator v0-v4.
//
// Consumer groups and transactions arrive with their own issues; until
// then every key gets COORDINATOR_NOT_AVAILABLE, which clients treat as
// retriable. v4 batches keys (KIP-699).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(10, 0, 4, (*Handler).findCoordinator) }

func (h *Handler) findCoordinator(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	msg := "consumer groups are not supported by Floe yet"
	if r.Version < 4 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ErrorMessage = &msg
		resp.NodeID = -1
		return now(resp), nil
	}
	for _, key := range r.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID = -1
		c.ErrorCode = kerr.CoordinatorNotAvailable.Code
		c.ErrorMessage = &msg
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return now(resp), nil
}
