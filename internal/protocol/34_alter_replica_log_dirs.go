package protocol

// AlterReplicaLogDirs v0-v2 (KIP-113).
//
// Kafka moves a replica between the log dirs of one broker. An agent has
// one virtual log dir, the bucket (see DescribeLogDirs), so the only
// move it can be asked for is to where the data already is. Each
// partition is answered as Kafka answers it, in Kafka's order:
//
//   - a dir other than the agent's: LOG_DIR_NOT_FOUND, as Kafka answers a
//     path that is not one of its log.dirs;
//   - an unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION;
//   - a partition another agent leads in the client's view:
//     REPLICA_NOT_AVAILABLE, as Kafka answers a broker that hosts no
//     replica of it (Metadata reports one replica, on its leader);
//   - otherwise success, and nothing happens: the replica is already in
//     that dir, which is a no-op in Kafka too.
//
// A partition named twice takes its last dir, as Kafka's map of the
// request does. Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED
// for every partition).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(34, 0, 2, (*Handler).alterReplicaLogDirs) }

func (h *Handler) alterReplicaLogDirs(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterReplicaLogDirsRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
		type tp struct {
			topic     string
			partition int32
		}
		// The partitions in the order first named, each with its last dir.
		var order []tp
		dirOf := map[tp]string{}
		for _, d := range r.Dirs {
			for _, t := range d.Topics {
				for _, p := range t.Partitions {
					k := tp{t.Topic, p}
					if _, ok := dirOf[k]; !ok {
						order = append(order, k)
					}
					dirOf[k] = d.Dir
				}
			}
		}
		authorized := h.allowedOnCluster(req, acl.Alter)
		view := h.cfg.Cluster.For(req.ClientID)
		self := view.Self().NodeID
		lookup := h.lookup(ctx)
		topicAt := map[string]int{}
		for _, k := range order {
			var code int16
			switch {
			case !authorized:
				code = kerr.ClusterAuthorizationFailed.Code
			case dirOf[k] != h.cfg.LogDir:
				code = kerr.LogDirNotFound.Code
			default:
				t, err := lookup.name(k.topic)
				if code = partitionErr(t, err, k.partition); code == 0 && leadersIn(view, t.ID).leader(k.partition) != self {
					code = kerr.ReplicaNotAvailable.Code
				}
			}
			i, ok := topicAt[k.topic]
			if !ok {
				i = len(resp.Topics)
				topicAt[k.topic] = i
				rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
				rt.Topic = k.topic
				resp.Topics = append(resp.Topics, rt)
			}
			rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
			rp.Partition, rp.ErrorCode = k.partition, code
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
		}
		return resp
	}, nil
}
