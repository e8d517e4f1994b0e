package protocol

// ElectLeaders v0-v2 (KIP-183; v1 election types, KIP-460).
//
// A partition's one replica is its leader, the agent owning it by
// rendezvous hashing; it is also its preferred replica, and a partition
// always has a leader while an agent is alive. So no election is ever
// needed: a preferred election (type 0, and every v0 request) finds the
// preferred replica leading, an unclean one (type 1) finds a leader,
// and Kafka answers both ELECTION_NOT_NEEDED. Leadership moves only when
// agents join or leave.
//
// As Kafka's controller: named partitions are each answered
// ELECTION_NOT_NEEDED, or UNKNOWN_TOPIC_OR_PARTITION; null topics mean
// every partition, and leave out those that needed no election, so every
// topic is listed with no partition. An unknown election type is
// INVALID_REQUEST for the request and every named partition. Needs ALTER
// on the cluster; without it CLUSTER_AUTHORIZATION_FAILED likewise (v0
// has no top-level error: only the partitions carry it).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(43, 0, 2, (*Handler).electLeaders) }

func (h *Handler) electLeaders(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ElectLeadersRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
		var fail int16
		var failMessage *string
		switch {
		case !h.allowedOnCluster(req, acl.Alter):
			fail, failMessage = kerr.ClusterAuthorizationFailed.Code, strPtr(kerr.ClusterAuthorizationFailed.Description)
		case r.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1:
			fail, failMessage = kerr.InvalidRequest.Code, strPtr(fmt.Sprintf("Unknown election type %d", r.ElectionType))
		}
		if fail != 0 {
			resp.ErrorCode = fail
			for _, rt := range r.Topics {
				st := kmsg.NewElectLeadersResponseTopic()
				st.Topic = rt.Topic
				for _, p := range rt.Partitions {
					sp := kmsg.NewElectLeadersResponseTopicPartition()
					sp.Partition, sp.ErrorCode, sp.ErrorMessage = p, fail, failMessage
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		}
		if r.Topics == nil {
			topics, err := h.store.Topics(ctx)
			if err != nil {
				// Kafka's answer when its controller fails: the error
				// for the request, no partition named to carry it.
				resp.ErrorCode = errorCode(err)
				return resp
			}
			for _, t := range topics {
				st := kmsg.NewElectLeadersResponseTopic()
				st.Topic = t.Name
				st.Partitions = []kmsg.ElectLeadersResponseTopicPartition{}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		}
		lookup := h.lookup(ctx)
		for _, rt := range r.Topics {
			t, terr := lookup.name(rt.Topic)
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewElectLeadersResponseTopicPartition()
				sp.Partition = p
				switch code := partitionErr(t, terr, p); code {
				case 0:
					sp.ErrorCode = kerr.ElectionNotNeeded.Code
					sp.ErrorMessage = strPtr(kerr.ElectionNotNeeded.Description)
				case kerr.UnknownTopicOrPartition.Code:
					sp.ErrorCode = code
					sp.ErrorMessage = strPtr(fmt.Sprintf("No such partition as %s-%d", rt.Topic, p))
				default:
					sp.ErrorCode, sp.ErrorMessage = code, errMessage(terr)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}, nil
}
