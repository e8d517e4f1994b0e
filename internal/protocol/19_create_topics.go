package protocol

// CreateTopics v0-v7.
//
// v1+: ValidateOnly. v5+: the response describes the created topic
// (partitions, replication factor, configs; KIP-525). v7+: topic IDs.
// Replication factor: Floe keeps one copy of every byte in the bucket, so
// any factor is accepted and each partition reports one replica.
// Manual replica assignments are accepted only for their partition count;
// with one, NumPartitions and ReplicationFactor must be -1
// (INVALID_REQUEST otherwise, as in Kafka).
// Limits (limits.go): partitions per topic (INVALID_PARTITIONS), topics
// and partitions in the cluster (POLICY_VIOLATION), and KIP-599's
// controller mutation quota: v6+ are refused THROTTLING_QUOTA_EXCEEDED
// while the client owes time, older versions are answered late.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(19, 0, 7, (*Handler).createTopics) }

func (h *Handler) createTopics(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	client := quotaKey(req.Principal, req.ClientID)
	old := r.Version < 6
	if ok, wait := h.mutations.admit(client); !ok && old {
		// Too old to be refused: the connection is not read from until
		// the client is within its quota, as Kafka mutes its channel.
		sleepCtx(ctx, wait)
	}
	var throttle time.Duration
	seen := map[string]int{}
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[rt.Topic] > 1 {
			// Kafka rejects every copy of a name given twice.
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = strPtr("topic '" + rt.Topic + "' appears more than once in the request")
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !h.mayCreateTopic(req, rt.Topic) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		partitions := rt.NumPartitions
		if len(rt.ReplicaAssignment) > 0 {
			// As Kafka's controller: an assignment stands for the count
			// and the factor, which must then be left at -1 (checked
			// after the name).
			msg := ""
			switch {
			case config.ValidTopicName(rt.Topic) != nil:
			case rt.ReplicationFactor != -1:
				msg = "A manual partition assignment was specified, but replication factor was not set to -1."
			case rt.NumPartitions != -1:
				msg = "A manual partition assignment was specified, but numPartitions was not set to -1."
			}
			if msg != "" {
				st.ErrorCode, st.ErrorMessage = kerr.InvalidRequest.Code, strPtr(msg)
				resp.Topics = append(resp.Topics, st)
				continue
			}
			partitions = int32(len(rt.ReplicaAssignment))
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		if ok, wait := h.mutations.admit(client); !ok && !old && !r.ValidateOnly {
			st.ErrorCode, st.ErrorMessage = throttlingQuotaExceeded, quotaMessage(wait)
			throttle = max(throttle, wait)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, code, err := h.createTopic(ctx, rt.Topic, partitions, rt.ReplicationFactor, configs, r.ValidateOnly)
		st.ErrorCode = code
		st.ErrorMessage = errMessage(err)
		if code == 0 && !r.ValidateOnly {
			throttle = max(throttle, h.mutations.record(client, float64(t.Partitions)))
		}
		if code == 0 {
			st.TopicID = t.ID
			st.NumPartitions = t.Partitions
			st.ReplicationFactor = 1
			if !h.visible(req, acl.DescribeConfigs, acl.Topic, rt.Topic) {
				st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			for _, c := range describeTopicConfigs(t.Configs, nil, h.brokerValues()) {
				st.Configs = append(st.Configs, kmsg.CreateTopicsResponseTopicConfig{
					Name: c.Name, Value: c.Value, ReadOnly: c.ReadOnly, Source: int8(c.Source), IsSensitive: c.IsSensitive,
				})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return throttled(resp, throttle, old), nil
}
