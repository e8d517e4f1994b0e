package protocol

// AlterPartitionReassignments v0-v1 (KIP-455; v1 AllowReplicationFactorChange,
// KIP-860).
//
// Floe has no replicas to move: a partition's data is in the bucket and
// any agent serves it. A reassignment Kafka would accept is validated as
// Kafka validates it and answered with success, and nothing changes:
// Metadata goes on reporting the agent that owns the partition by
// rendezvous hashing as its one replica, and ListPartitionReassignments
// never shows one in progress. Per partition, in Kafka's order:
//
//   - an unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
//   - null replicas (a cancellation): NO_REASSIGNMENT_IN_PROGRESS;
//   - no replica, a broker id that is not a live agent, or one named
//     twice: INVALID_REPLICA_ASSIGNMENT, with Kafka's message;
//   - v1 with AllowReplicationFactorChange false and other than one
//     replica (the replication factor Metadata reports):
//     INVALID_REPLICATION_FACTOR;
//   - otherwise success.
//
// Live agents stand for Kafka's registered brokers. Needs ALTER on the
// cluster; without it CLUSTER_AUTHORIZATION_FAILED for the request and
// every partition, as Kafka's error answer.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(45, 0, 1, (*Handler).alterPartitionReassignments) }

func (h *Handler) alterPartitionReassignments(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterPartitionAssignmentsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		resp.AllowReplicationFactorChange = r.AllowReplicationFactorChange
		authorized := h.allowedOnCluster(req, acl.Alter)
		if !authorized {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			resp.ErrorMessage = strPtr(kerr.ClusterAuthorizationFailed.Description)
		}
		live := map[int32]bool{}
		for _, b := range h.cfg.Cluster.Brokers() {
			live[b.NodeID] = true
		}
		lookup := h.lookup(ctx)
		for _, rt := range r.Topics {
			t, terr := lookup.name(rt.Topic)
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				switch {
				case !authorized:
					sp.ErrorCode, sp.ErrorMessage = resp.ErrorCode, resp.ErrorMessage
				case terr != nil:
					sp.ErrorCode, sp.ErrorMessage = errorCode(terr), errMessage(terr)
					if sp.ErrorCode == kerr.UnknownTopicOrPartition.Code {
						sp.ErrorMessage = strPtr(fmt.Sprintf("Unable to find a topic named %s.", rt.Topic))
					}
				case rp.Partition < 0 || rp.Partition >= t.Partitions:
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					sp.ErrorMessage = strPtr(fmt.Sprintf("Unable to find partition %s:%d.", rt.Topic, rp.Partition))
				case rp.Replicas == nil:
					sp.ErrorCode = kerr.NoReassignmentInProgress.Code
					sp.ErrorMessage = strPtr(kerr.NoReassignmentInProgress.Description)
				default:
					sp.ErrorCode, sp.ErrorMessage = checkReassignment(rp.Replicas, live, r.Version >= 1 && !r.AllowReplicationFactorChange)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, nil
}

// checkReassignment validates a partition's target replicas as Kafka's
// controller validates a manual assignment: not empty, and then, going
// through the ids in ascending order, each registered (here: a live
// agent) and none twice, the first failure named. It finds that id in
// one pass, with memory bounded by the live agents, not by the list.
// With fixedFactor, the target must keep the replication factor, 1.
func checkReassignment(replicas []int32, live map[int32]bool, fixedFactor bool) (int16, *string) {
	if len(replicas) == 0 {
		return kerr.InvalidReplicaAssignment.Code, strPtr("The manual partition assignment includes an empty replica list.")
	}
	var unregistered, twice int32
	var anyUnregistered, anyTwice bool
	seen := make(map[int32]bool, len(live))
	for _, id := range replicas {
		switch {
		case !live[id]:
			if !anyUnregistered || id < unregistered {
				unregistered, anyUnregistered = id, true
			}
		case seen[id]:
			if !anyTwice || id < twice {
				twice, anyTwice = id, true
			}
		default:
			seen[id] = true
		}
	}
	// In ascending order an unregistered id fails at its first
	// occurrence, a repeated one at its second: the smaller id is met
	// first.
	if anyUnregistered && (!anyTwice || unregistered < twice) {
		return kerr.InvalidReplicaAssignment.Code, strPtr(fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", unregistered))
	}
	if anyTwice {
		return kerr.InvalidReplicaAssignment.Code, strPtr(fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", twice))
	}
	if fixedFactor && len(replicas) != 1 {
		return kerr.InvalidReplicationFactor.Code, strPtr(fmt.Sprintf("The replication factor is changed from 1 to %d", len(replicas)))
	}
	return 0, nil
}
