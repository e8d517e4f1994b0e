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
	r := req.Req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	if r.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		return now(resp), nil
	}
	resp.EndpointType = 1
	resp.ClusterID = h.cfg.ClusterID
	self := h.cfg.Self
	resp.ControllerID = self.NodeID
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: self.NodeID, Host: self.Host, Port: self.Port, Rack: self.Rack}}
	return now(resp), nil
}
