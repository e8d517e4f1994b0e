package protocol

// ListConfigResources v0-v1 (v0 is KIP-714's ListClientMetricsResources;
// v1 lists every kind of config resource, KIP-1142).
//
// As Kafka 4.1: v0 asks for client-metrics resources only; v1 asks for
// the types it names, or, naming none, every type the version supports
// (topics, brokers, broker loggers, client metrics, groups); a type
// outside those is UNSUPPORTED_VERSION, with nothing listed. Listed are
// every topic, every agent as a broker (those Metadata shows the
// client), and every group with at least one dynamic config (set with
// IncrementalAlterConfigs; see group_configs.go), the first
// maxListedGroups of them, shorter names first, when there are more
// (the response has no way to say it is cut short; the agent logs it).
// What Floe does not have is not listed: broker loggers (an agent's log
// level is a flag, not a config DescribeConfigs serves) and
// client-metrics subscriptions (the agent's options decide what clients
// push, see GetTelemetrySubscriptions). Needs DESCRIBE_CONFIGS on the
// cluster (CLUSTER_AUTHORIZATION_FAILED), as in Kafka; a group's own
// ACLs do not hide it.

import (
	"context"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(74, 0, 1, (*Handler).listConfigResources) }

// Config resource types of KIP-1142 beyond the topic and broker ones.
const (
	resourceBrokerLogger  = 8
	resourceClientMetrics = 16
	resourceGroup         = 32
)

// maxListedGroups bounds the groups one response lists, so that a
// cluster with very many configured groups answers in a bounded time
// and size.
const maxListedGroups = 10_000

func (h *Handler) listConfigResources(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.ListConfigResourcesRequest)
	resp := r.ResponseKind().(*kmsg.ListConfigResourcesResponse)
	if !h.allowedOnCluster(req, acl.DescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	supported := []int8{resourceClientMetrics}
	if r.Version >= 1 {
		supported = []int8{resourceTopic, resourceBroker, resourceBrokerLogger, resourceClientMetrics, resourceGroup}
	}
	types := r.ResourceTypes
	if r.Version == 0 || len(types) == 0 {
		types = supported
	}
	for _, t := range types {
		if !slices.Contains(supported, t) {
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			return now(resp), nil
		}
	}
	add := func(name string, t int8) {
		c := kmsg.NewListConfigResourcesResponseConfigResource()
		c.Name, c.Type = name, t
		resp.ConfigResources = append(resp.ConfigResources, c)
	}
	if slices.Contains(types, resourceBroker) {
		for _, b := range h.cfg.Cluster.For(req.ClientID).Brokers() {
			add(strconv.Itoa(int(b.NodeID)), resourceBroker)
		}
	}
	if slices.Contains(types, resourceTopic) {
		topics, err := h.store.Topics(ctx)
		if err != nil {
			resp.ErrorCode, resp.ConfigResources = errorCode(err), nil
			return now(resp), nil
		}
		for _, t := range topics {
			add(t.Name, resourceTopic)
		}
	}
	if slices.Contains(types, resourceGroup) {
		groups, err := h.store.GroupsWithConfigs(ctx, maxListedGroups+1)
		if err != nil {
			resp.ErrorCode, resp.ConfigResources = errorCode(err), nil
			return now(resp), nil
		}
		if len(groups) > maxListedGroups {
			h.log.Warn("list config resources: more groups with configs than one response lists", "listed", maxListedGroups, "client", req.ClientID)
			groups = groups[:maxListedGroups]
		}
		for _, g := range groups {
			add(g, resourceGroup)
		}
	}
	return now(resp), nil
}
