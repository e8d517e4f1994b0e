package protocol

// DescribeConfigs v0-v4.
//
// Topics (resource type 2) report every config Floe accepts, with source
// DYNAMIC_TOPIC_CONFIG when set on the topic and DEFAULT_CONFIG otherwise.
// Brokers (type 4) report the agent's static settings that clients and
// admin tools commonly read. v1+: synonyms (KIP-226); v3+: config types
// and documentation (KIP-569).

import (
	"context"
	"maps"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(32, 0, 4, (*Handler).describeConfigs) }

// Kafka's config resource types and sources.
const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceDynamicTopic = 1
	sourceStaticBroker = 4
	sourceDefault      = 5
)

func (h *Handler) describeConfigs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			if !h.allowed(req, acl.DescribeConfigs, acl.Topic, rr.ResourceName) {
				sr.ErrorCode = kerr.TopicAuthorizationFailed.Code
				break
			}
			t, err := h.store.Topic(ctx, rr.ResourceName)
			if err != nil {
				sr.ErrorCode = errorCode(err)
				sr.ErrorMessage = errMessage(err)
				break
			}
			sr.Configs = describeTopicConfigs(t.Configs, rr.ConfigNames)
		case resourceBroker:
			if !h.allowedOnCluster(req, acl.DescribeConfigs) {
				sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				break
			}
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(h.cfg.Cluster.Self().NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strPtr("unknown broker " + rr.ResourceName)
				break
			}
			sr.Configs = h.describeBrokerConfigs(rr.ConfigNames)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strPtr("unsupported resource type " + strconv.Itoa(int(rr.ResourceType)))
		}
		if r.Version >= 1 && r.IncludeSynonyms {
			for i := range sr.Configs {
				c := &sr.Configs[i]
				c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{{Name: c.Name, Value: c.Value, Source: c.Source}}
			}
		}
		if r.Version < 3 || !r.IncludeDocumentation {
			for i := range sr.Configs {
				sr.Configs[i].Documentation = nil
			}
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

// describeTopicConfigs lists a topic's effective configs, limited to names
// when it is not nil.
func describeTopicConfigs(set map[string]string, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range config.Topics {
		if names != nil && !slices.Contains(names, c.Name) {
			continue
		}
		v, explicit := config.TopicValue(set, c.Name)
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = c.Name
		rc.Value = strPtr(v)
		rc.ConfigType = kmsg.ConfigType(c.Type)
		rc.Documentation = strPtr(c.Doc)
		rc.Source = sourceDefault
		rc.IsDefault = true
		if explicit {
			rc.Source = sourceDynamicTopic
			rc.IsDefault = false
		}
		out = append(out, rc)
	}
	return out
}

func (h *Handler) describeBrokerConfigs(names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	static := []BrokerConfig{
		{"auto.create.topics.enable", strconv.FormatBool(h.cfg.AutoCreateTopics), config.Boolean},
		{"default.replication.factor", "1", config.Short},
		{"fetch.max.bytes", strconv.Itoa(int(h.cfg.Limits.FetchMaxBytes)), config.Int},
		{"log.dirs", h.cfg.LogDir, config.List},
		{"log.retention.ms", "604800000", config.Long},
		{"message.max.bytes", strconv.Itoa(int(h.cfg.MaxMessageBytes)), config.Int},
		{"min.insync.replicas", "1", config.Int},
		{"node.id", strconv.Itoa(int(h.cfg.Cluster.Self().NodeID)), config.Int},
		{"broker.id", strconv.Itoa(int(h.cfg.Cluster.Self().NodeID)), config.Int},
		{"num.partitions", strconv.Itoa(int(h.cfg.DefaultPartitions)), config.Int},
		{"offsets.topic.replication.factor", "1", config.Short},
	}
	if rack := h.cfg.Cluster.Self().Rack; rack != nil {
		static = append(static, BrokerConfig{"broker.rack", *rack, config.String})
	}
	byName := map[string]BrokerConfig{}
	for _, c := range append(static, h.cfg.Broker...) {
		byName[c.Name] = c
	}
	sorted := slices.Sorted(maps.Keys(byName))
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range sorted {
		c := byName[name]
		if names != nil && !slices.Contains(names, c.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value = c.Name, strPtr(c.Value)
		rc.ReadOnly = true
		rc.Source = sourceStaticBroker
		rc.ConfigType = kmsg.ConfigType(c.Type)
		out = append(out, rc)
	}
	return out
}

// BrokerConfig is one broker config DescribeConfigs reports with the
// agent's real value (read-only: agents are configured by their flags).
type BrokerConfig struct {
	Name, Value string
	Type        config.Type
}
