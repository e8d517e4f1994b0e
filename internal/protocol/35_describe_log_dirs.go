package protocol

// DescribeLogDirs v0-v5 (KIP-113; v3 top-level error, v4 volume sizes
// (KIP-827), v5 cordoning (KIP-1066)).
//
// An agent has no disk: every partition's data lives in the bucket, so
// each agent answers one virtual log dir named after the bucket
// (Config.LogDir, also its log.dirs broker config). As a Kafka broker
// lists the replicas it hosts, an agent lists the partitions it leads in
// the asking client's view (the rendezvous owner Metadata reports as the
// only replica), so that asking every agent, as admin tools do, counts
// each partition once and the sizes add up to the bucket's bytes.
//
// A partition's size is the bytes of its extents in the bucket (an
// extent straddling the log start offset counts whole: its bytes are
// still stored), from the metadata store; its offset lag is 0 (there is
// no follower to lag) and no log is a future one. The dir's TotalBytes
// and UsableBytes are -1, unknown, as Kafka's field default: a bucket
// has no volume size. It is never cordoned.
//
// As Kafka: null topics mean every topic; named partitions that do not
// exist, or that another agent leads, are left out without an error, as
// are topics with no partition left. Needs DESCRIBE on the cluster;
// without it the answer has no dir, and v3+ says
// CLUSTER_AUTHORIZATION_FAILED. If the metadata store cannot be read the
// dir answers KAFKA_STORAGE_ERROR, as Kafka's does for an offline dir.

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(35, 0, 5, (*Handler).describeLogDirs) }

func (h *Handler) describeLogDirs(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeLogDirsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
		if !h.allowedOnCluster(req, acl.Describe) {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp
		}
		dir := kmsg.NewDescribeLogDirsResponseDir()
		dir.Dir = h.cfg.LogDir
		topics, err := h.logDirTopics(ctx, req, r)
		if err != nil {
			h.log.Warn("describe log dirs: metadata store", "err", err)
			dir.ErrorCode = kerr.KafkaStorageError.Code
			topics = nil
		}
		dir.Topics = topics
		resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
		return resp
	}, nil
}

// logDirTopics lists the partitions this agent leads among those asked
// for (all if r.Topics is null), with their sizes.
func (h *Handler) logDirTopics(ctx context.Context, req *wire.Request, r *kmsg.DescribeLogDirsRequest) ([]kmsg.DescribeLogDirsResponseDirTopic, error) {
	var topics []metastore.Topic
	// asked holds the partitions named for each topic; nil means all.
	var asked map[string]map[int32]bool
	if r.Topics == nil {
		var err error
		if topics, err = h.store.Topics(ctx); err != nil {
			return nil, err
		}
	} else {
		asked = map[string]map[int32]bool{}
		for _, rt := range r.Topics {
			ps := asked[rt.Topic]
			if ps == nil {
				ps = map[int32]bool{}
				asked[rt.Topic] = ps
			}
			for _, p := range rt.Partitions {
				ps[p] = true
			}
		}
		for _, name := range slices.Sorted(maps.Keys(asked)) {
			t, err := h.store.Topic(ctx, name)
			if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				continue
			}
			if err != nil {
				return nil, err
			}
			topics = append(topics, t)
		}
	}
	view := h.cfg.Cluster.For(req.ClientID)
	self := view.Self().NodeID
	var out []kmsg.DescribeLogDirsResponseDirTopic
	for _, t := range topics {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		leaders := leadersIn(view, t.ID)
		var led []int32
		if asked == nil {
			for p := range t.Partitions {
				if leaders.leader(p) == self {
					led = append(led, p)
				}
			}
		} else {
			for _, p := range slices.Sorted(maps.Keys(asked[t.Name])) {
				if p >= 0 && p < t.Partitions && leaders.leader(p) == self {
					led = append(led, p)
				}
			}
		}
		if len(led) == 0 {
			continue
		}
		usage, err := h.store.PartitionUsage(ctx, t.ID)
		if errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = t.Name
		for _, p := range led {
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition = p
			// usage is sorted by partition; a partition created since
			// the topic was read may be missing, and counts as empty.
			if i, ok := slices.BinarySearchFunc(usage, p, func(u metastore.PartitionUsage, p int32) int { return int(u.Partition) - int(p) }); ok {
				rp.Size = usage[i].Bytes
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out, nil
}
