package protocol

// DescribeCluster v0-v1 (KIP-700). v1 adds the endpoint type; only brokers
// (1) are described, controllers (2) get UNSUPPORTED_ENDPOINT_TYPE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func init() { register(60, 0, 1, (*Handler).describeCluster) }

func (h *Handler) describeCluster(_ context.Context, req *wire.Request) (Reply, error) {
	view := h.cfg.Cluster.For(req.ClientID)
	r := req.Req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return now(resp), nil
	}
	resp.EndpointType = 1
	resp.ClusterID = h.cfg.ClusterID
	resp.ControllerID = view.Self().NodeID
	for _, b := range view.Brokers() {
		resp.Brokers = append(resp.Brokers, kmsg.DescribeClusterResponseBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	return now(resp), nil
}
