package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeCluster(t *testing.T) {
	f := start(t)
	md := f.metadata(12, false)
	for _, tc := range []struct {
		name         string
		version      int16
		endpointType int8
		wantCode     int16
	}{
		{name: "v0", version: 0},
		{name: "brokers", version: 1, endpointType: 1},
		// Floe has no controllers to describe, as a Kafka broker.
		{name: "controllers", version: 1, endpointType: 2, wantCode: kerr.UnsupportedEndpointType.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeClusterRequest()
			req.EndpointType = tc.endpointType
			resp := do[*kmsg.DescribeClusterResponse](f, tc.version, req)
			expectCode(t, "describe cluster", resp.ErrorCode, tc.wantCode)
			if tc.wantCode != 0 {
				return
			}
			if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != md.Brokers[0].NodeID ||
				resp.Brokers[0].Host != md.Brokers[0].Host || resp.Brokers[0].Port != md.Brokers[0].Port {
				t.Errorf("brokers %+v, want the one of Metadata %+v", resp.Brokers, md.Brokers)
			}
			if resp.ClusterID != *md.ClusterID || resp.ControllerID != md.ControllerID {
				t.Errorf("cluster %q controller %d, want %q %d as Metadata", resp.ClusterID, resp.ControllerID, *md.ClusterID, md.ControllerID)
			}
		})
	}
}
