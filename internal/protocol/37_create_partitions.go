package protocol

// CreatePartitions v0-v3.
//
// Raises a topic's partition count. No partition lives on a particular
// agent, so assignments decide nothing, but they are checked as Kafka
// checks them (INVALID_REPLICA_ASSIGNMENT, Kafka's messages): one per new
// partition, each naming live agents, none twice, as many as the topic's
// replication factor (one: Metadata lists one replica per partition). The count is bounded
// as CreateTopics' (limits.go); v3+ are refused THROTTLING_QUOTA_EXCEEDED
// by the controller mutation quota, older versions answered late.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(37, 0, 3, (*Handler).createPartitions) }

func (h *Handler) createPartitions(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	client := quotaKey(req.Principal, req.ClientID)
	old := r.Version < 3
	if ok, wait := h.mutations.admit(client); !ok && old {
		// Too old to be refused: the connection is not read from until
		// the client is within its quota, as Kafka mutes its channel.
		sleepCtx(ctx, wait)
	}
	var throttle time.Duration
	if !r.ValidateOnly {
		release, err := h.creationTurn(ctx)
		if err != nil {
			for _, rt := range r.Topics {
				resp.Topics = append(resp.Topics, kmsg.CreatePartitionsResponseTopic{Topic: rt.Topic, ErrorCode: kerr.RequestTimedOut.Code})
			}
			return now(resp), nil
		}
		defer release()
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !h.allowed(req, acl.Alter, acl.Topic, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := h.store.Topic(ctx, rt.Topic)
		var code int16
		var limitErr error
		var assignErr error
		if err == nil && rt.Count > t.Partitions {
			code, limitErr = h.checkCreate(ctx, rt.Topic, t.Partitions, rt.Count)
			assignErr = h.checkAssignment(rt, t.Partitions)
		}
		ok, wait := h.mutations.admit(client)
		switch {
		case err != nil:
			st.ErrorCode = errorCode(err)
		case rt.Count <= t.Partitions:
			st.ErrorCode = kerr.InvalidPartitions.Code
			st.ErrorMessage = strPtr(fmt.Sprintf("topic currently has %d partitions, which is higher than or equal to the requested %d", t.Partitions, rt.Count))
		case assignErr != nil:
			st.ErrorCode, st.ErrorMessage = kerr.InvalidReplicaAssignment.Code, errMessage(assignErr)
		case code != 0:
			st.ErrorCode, st.ErrorMessage = code, errMessage(limitErr)
		case r.ValidateOnly:
		case !ok && !old:
			st.ErrorCode, st.ErrorMessage = throttlingQuotaExceeded, quotaMessage(wait)
			throttle = max(throttle, wait)
		default:
			if _, err := h.store.CreatePartitions(ctx, rt.Topic, rt.Count); err != nil {
				st.ErrorCode = errorCode(err)
				st.ErrorMessage = errMessage(err)
			} else {
				h.log.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count)
				throttle = max(throttle, h.mutations.record(client, float64(rt.Count-t.Partitions)))
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return throttled(resp, throttle, old), nil
}

// checkAssignment checks a CreatePartitions replica assignment as Kafka
// does, with Kafka's messages; nil when there is none. Every partition
// of a Floe topic has one replica (Metadata lists its leader), so a new
// partition's assignment names exactly one live agent, as Kafka requires
// the topic's replication factor.
func (h *Handler) checkAssignment(rt kmsg.CreatePartitionsRequestTopic, current int32) error {
	if rt.Assignment == nil {
		return nil
	}
	if want := rt.Count - current; int32(len(rt.Assignment)) != want {
		return fmt.Errorf("Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", want, len(rt.Assignment))
	}
	live := map[int32]bool{}
	for _, b := range h.cfg.Cluster.Brokers() {
		live[b.NodeID] = true
	}
	for _, a := range rt.Assignment {
		if len(a.Replicas) == 0 {
			return errors.New("The manual partition assignment includes an empty replica list.")
		}
		seen := map[int32]bool{}
		for _, id := range a.Replicas {
			if seen[id] {
				return fmt.Errorf("The manual partition assignment includes the broker %d more than once.", id)
			}
			seen[id] = true
			if !live[id] {
				return fmt.Errorf("The manual partition assignment includes broker %d, but no broker with that ID is registered.", id)
			}
		}
		if len(a.Replicas) != 1 {
			return fmt.Errorf("The manual partition assignment includes a partition with %d replica(s), but this is not consistent with previous partitions, which have 1 replica(s).", len(a.Replicas))
		}
	}
	return nil
}
