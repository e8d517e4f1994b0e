package protocol

// ListPartitionReassignments v0 (KIP-455).
//
// No reassignment is ever in progress: partitions have no replicas to
// move (AlterPartitionReassignments accepts a target and moves nothing).
// So the answer lists no partition, whether the request names topics or
// not; named topics and partitions, known or not, are left out, as Kafka
// leaves out those that are not being reassigned. Needs DESCRIBE on the
// cluster; without it, CLUSTER_AUTHORIZATION_FAILED with the named
// partitions echoed empty, as Kafka's error answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(46, 0, 0, (*Handler).listPartitionReassignments) }

func (h *Handler) listPartitionReassignments(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !h.allowedOnCluster(req, acl.Describe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = strPtr(kerr.ClusterAuthorizationFailed.Description)
		for _, rt := range r.Topics {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
				rp.Partition = p
				t.Partitions = append(t.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, t)
		}
	}
	return now(resp), nil
}
