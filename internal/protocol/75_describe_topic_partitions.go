package protocol

// DescribeTopicPartitions v0 (KIP-966).
//
// Metadata's topic answer, paged: topics in name order, at most
// ResponsePartitionLimit partitions per answer (taken between 1 and
// Kafka's max.request.partition.size.limit, 2000), and a NextCursor
// naming the first topic and partition left out, from which the client
// asks again. A page ends inside a topic when its partitions run out,
// or before a topic when the previous one filled the page exactly
// (cursor partition 0, as Kafka).
//
// Leaders, replicas and ISR are Metadata's: a partition's only replica
// is the agent owning it by rendezvous hashing in the asking client's
// view (partitionLeaders), with leader epoch 0. KIP-966's eligible
// leader replicas and the offline replicas are always empty: there is
// no replica to fall out of sync or go offline. No topic is internal.
//
// As Kafka: an empty topic list is every topic, those the principal may
// not DESCRIBE left out; named topics are deduplicated, those before the
// cursor's topic dropped, and answered in name order: without DESCRIBE
// TOPIC_AUTHORIZATION_FAILED and no topic id (after the others, and only
// for topics the page reached), unknown UNKNOWN_TOPIC_OR_PARTITION (an
// illegal name INVALID_TOPIC_EXCEPTION). A cursor whose topic is not
// among the named ones, or whose partition is negative, answers every
// named topic INVALID_REQUEST. The topics' authorized operations
// (KIP-430) are always filled in: the request has no flag for them.
// Topics are never created here.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/fetch"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(75, 0, 0, (*Handler).describeTopicPartitions) }

// maxDescribePartitions is Kafka's max.request.partition.size.limit: the
// most partitions one DescribeTopicPartitions answer holds.
const maxDescribePartitions = 2000

// topicOperations are the ACL operations on a topic (READ, WRITE,
// CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS), as a
// bit field of kmsg.ACLOperation values.
const topicOperations = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11

// noAuthorizedOperations is the AuthorizedOperations of a topic that was
// not described (Kafka's default, -2^31).
const noAuthorizedOperations = -2147483648

// The work is done before the reply, as Metadata's: a metadata store
// that cannot list the topics closes the connection, so that the client
// retries rather than read a page that is wrong.
func (h *Handler) describeTopicPartitions(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeTopicPartitionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)

	var cursorTopic string
	var cursorPartition int32
	if r.Cursor != nil {
		cursorTopic, cursorPartition = r.Cursor.Topic, r.Cursor.Partition
	}
	all := len(r.Topics) == 0
	var names []string
	byName := map[string]metastore.Topic{}
	if all {
		topics, err := h.topics.Topics(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range topics {
			if t.Name >= cursorTopic {
				names = append(names, t.Name)
				byName[t.Name] = t
			}
		}
	} else {
		cursorNamed := false
		seen := make(map[string]bool, len(r.Topics))
		for _, rt := range r.Topics {
			if seen[rt.Topic] {
				continue
			}
			seen[rt.Topic] = true
			cursorNamed = cursorNamed || rt.Topic == cursorTopic
			if rt.Topic >= cursorTopic {
				names = append(names, rt.Topic)
			}
		}
		if r.Cursor != nil && !cursorNamed {
			return now(invalidDescribeTopicPartitions(r, resp)), nil
		}
	}
	if r.Cursor != nil && cursorPartition < 0 {
		return now(invalidDescribeTopicPartitions(r, resp)), nil
	}
	slices.Sort(names)

	view := h.cfg.Cluster.For(req.ClientID)
	remaining := min(max(r.ResponsePartitionLimit, 1), maxDescribePartitions)
	var unauthorized []kmsg.DescribeTopicPartitionsResponseTopic
	lookup := h.lookup(ctx)
	for _, name := range names {
		if all && !h.visible(req, acl.Describe, acl.Topic, name) {
			continue
		}
		if !all && !h.allowed(req, acl.Describe, acl.Topic, name) {
			rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), kerr.TopicAuthorizationFailed.Code
			unauthorized = append(unauthorized, rt)
			continue
		}
		if remaining == 0 {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name}
			break
		}
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		rt.Topic = kmsg.StringPtr(name)
		rt.AuthorizedOperations = h.authorizedOperations(req, acl.Topic, name, topicOperations)
		t, ok := byName[name]
		if !all {
			var err error
			if t, err = lookup.name(name); err != nil {
				rt.ErrorCode = errorCode(err)
				if config.ValidTopicName(name) != nil {
					rt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, rt)
				continue
			}
		} else if !ok {
			continue
		}
		rt.TopicID = t.ID
		start := int32(0)
		if name == cursorTopic {
			start = cursorPartition
		}
		// In int64: a cursor near MaxInt32 must not overflow.
		end := int32(min(int64(t.Partitions), int64(start)+int64(remaining)))
		if end > start {
			rt.Partitions = describePartitions(view, t.ID, start, end)
			remaining -= end - start
		}
		resp.Topics = append(resp.Topics, rt)
		if end < t.Partitions {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: end}
			break
		}
	}
	resp.Topics = append(resp.Topics, unauthorized...)
	return now(resp), nil
}

// describePartitions describes partitions [start, end) of a topic as
// Metadata does.
func describePartitions(view Cluster, id metastore.TopicID, start, end int32) []kmsg.DescribeTopicPartitionsResponseTopicPartition {
	out := make([]kmsg.DescribeTopicPartitionsResponseTopicPartition, 0, end-start)
	// Partitions led by the same agent share one replica list, as in
	// Metadata: the response is only read, to be encoded.
	replicas := map[int32][]int32{}
	leaders := leadersIn(view, id)
	for p := start; p < end; p++ {
		leader := leaders.leader(p)
		list, ok := replicas[leader]
		if !ok {
			list = []int32{leader}
			replicas[leader] = list
		}
		rp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
		rp.Partition, rp.LeaderID, rp.LeaderEpoch = p, leader, fetch.LeaderEpoch
		rp.Replicas, rp.ISR = list, list
		rp.EligibleLeaderReplicas, rp.LastKnownELR, rp.OfflineReplicas = []int32{}, []int32{}, []int32{}
		out = append(out, rp)
	}
	return out
}

// invalidDescribeTopicPartitions is Kafka's answer to an invalid cursor:
// INVALID_REQUEST for every named topic, as requested.
func invalidDescribeTopicPartitions(r *kmsg.DescribeTopicPartitionsRequest, resp *kmsg.DescribeTopicPartitionsResponse) *kmsg.DescribeTopicPartitionsResponse {
	for _, t := range r.Topics {
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		rt.Topic, rt.ErrorCode = kmsg.StringPtr(t.Topic), kerr.InvalidRequest.Code
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
