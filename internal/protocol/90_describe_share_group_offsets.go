package protocol

// DescribeShareGroupOffsets v0-v1 (KIP-932; v1 adds Lag, KIP-1226).
//
// The share-partition start offset of each share partition of a group, as
// stored (every acknowledgement is stored before it is answered), and from
// v1 the lag: records between the start offset and the high watermark the
// group has neither acknowledged nor archived. Topics null asks for every
// share partition the group has; a partition without a share state
// answers start offset -1 (and lag -1). GROUP_ID_NOT_FOUND for a group
// with no share state that the coordinator does not know,
// NOT_COORDINATOR on another agent, GROUP_AUTHORIZATION_FAILED; per
// partition UNKNOWN_TOPIC_OR_PARTITION and TOPIC_AUTHORIZATION_FAILED.
// Leader epochs are -1, as Floe keeps none for share partitions.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(90, 0, 1, (*Handler).describeShareGroupOffsets) }

func (h *Handler) describeShareGroupOffsets(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeShareGroupOffsetsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
		co, code := h.sharesOrErr()
		lookup := h.lookup(ctx)
		for _, rg := range r.Groups {
			g := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
			g.GroupID = rg.GroupID
			switch {
			case !h.allowed(req, acl.Describe, acl.Group, rg.GroupID):
				g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			case code != 0:
				g.ErrorCode = code
			case rg.GroupID == "":
				g.ErrorCode = kerr.InvalidGroupID.Code
			}
			var states []metastore.ShareState
			if g.ErrorCode == 0 {
				states, g.ErrorCode = co.StoredStates(ctx, rg.GroupID)
			}
			if g.ErrorCode != 0 {
				resp.Groups = append(resp.Groups, g)
				continue
			}
			byTP := make(map[sharecoord.TP]metastore.ShareState, len(states))
			for _, st := range states {
				byTP[sharecoord.TP{Topic: st.TopicID, Partition: st.Partition}] = st
			}
			partition := func(t metastore.Topic, p int32) kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition {
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag = p, -1, -1, -1
				st, ok := byTP[sharecoord.TP{Topic: t.ID, Partition: p}]
				switch {
				case p < 0 || p >= t.Partitions:
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				case ok:
					rp.StartOffset = st.StartOffset
					if offs, err := h.reader.Offsets(ctx, t.ID, p); err == nil {
						rp.Lag = sharecoord.Lag(st, offs.HighWatermark)
					}
				}
				return rp
			}
			if rg.Topics == nil {
				// Every share partition the group has, by topic.
				idx := map[metastore.TopicID]int{}
				for _, st := range states {
					t, err := lookup.id(st.TopicID)
					if err != nil || !h.allowed(req, acl.Describe, acl.Topic, t.Name) {
						continue
					}
					i, ok := idx[t.ID]
					if !ok {
						i = len(g.Topics)
						idx[t.ID] = i
						rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
						rt.Topic, rt.TopicID = t.Name, t.ID
						g.Topics = append(g.Topics, rt)
					}
					g.Topics[i].Partitions = append(g.Topics[i].Partitions, partition(t, st.Partition))
				}
				resp.Groups = append(resp.Groups, g)
				continue
			}
			for _, rt := range rg.Topics {
				ot := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
				ot.Topic = rt.Topic
				t, err := lookup.name(rt.Topic)
				denied := !h.allowed(req, acl.Describe, acl.Topic, rt.Topic)
				if err == nil && !denied {
					ot.TopicID = t.ID
				}
				for _, p := range rt.Partitions {
					var rp kmsg.DescribeShareGroupOffsetsResponseGroupTopicPartition
					switch {
					case denied:
						rp = kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
						rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag, rp.ErrorCode = p, -1, -1, -1, kerr.TopicAuthorizationFailed.Code
					case err != nil:
						rp = kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
						rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag, rp.ErrorCode = p, -1, -1, -1, kerr.UnknownTopicOrPartition.Code
					default:
						rp = partition(t, p)
					}
					ot.Partitions = append(ot.Partitions, rp)
				}
				g.Topics = append(g.Topics, ot)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
