package protocol

// DescribeConfigs v0-v4.
//
// Topics (resource type 2) report every config of internal/config's
// catalogue, with source DYNAMIC_TOPIC_CONFIG when set on the topic, else
// their broker synonym's (STATIC_BROKER_CONFIG when an agent flag sets it
// to other than Kafka's default, DEFAULT_CONFIG otherwise). Brokers (type
// 4) report the broker synonyms of every topic config and the agent's
// settings that clients and admin tools read, all read-only. v1+:
// synonyms (KIP-226), the topic's value then its broker synonyms; v3+:
// config types and documentation (KIP-569). Groups (type 32): the
// share-group configs (group_configs.go). docs/configs.md.

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
	broker := h.brokerValues()
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
			sr.Configs = describeTopicConfigs(t.Configs, rr.ConfigNames, broker)
		case resourceBroker:
			if !h.allowedOnCluster(req, acl.DescribeConfigs) {
				sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				break
			}
			if !h.isThisBroker(rr.ResourceName) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strPtr("unknown broker " + rr.ResourceName)
				break
			}
			sr.Configs = describeBrokerConfigs(broker, rr.ConfigNames)
		case resourceGroup:
			sr.Configs, sr.ErrorCode, sr.ErrorMessage = h.describeGroupConfigs(ctx, req, rr.ResourceName, rr.ConfigNames)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strPtr("unsupported resource type " + strconv.Itoa(int(rr.ResourceType)))
		}
		for i := range sr.Configs {
			c := &sr.Configs[i]
			if r.Version < 1 || !r.IncludeSynonyms {
				c.ConfigSynonyms = nil
			}
			if r.Version < 3 || !r.IncludeDocumentation {
				c.Documentation = nil
			}
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

// isThisBroker reports whether a broker resource name is this agent (its
// node id) or the cluster default (empty).
func (h *Handler) isThisBroker(name string) bool {
	return name == "" || name == strconv.Itoa(int(h.cfg.Cluster.Self().NodeID))
}

// brokerValue is a broker config as this agent reports it.
type brokerValue struct {
	value  *string // nil: not set
	typ    config.Type
	source int8
	doc    string
}

// brokerValues are this agent's broker configs: the broker synonyms of
// every topic config (Kafka's defaults unless the agent sets them) and
// the configs the handler and the agent know. A value equal to Kafka's
// default has source DEFAULT_CONFIG, any other STATIC_BROKER_CONFIG.
func (h *Handler) brokerValues() map[string]brokerValue {
	out := map[string]brokerValue{}
	for _, t := range config.Topics {
		for _, s := range t.Broker {
			bv := brokerValue{typ: s.Type, source: sourceDefault,
				doc: "Default of the topic config " + t.Name + " for topics that do not set it. " + t.Documentation()}
			if bv.typ == 0 {
				bv.typ = t.Type
			}
			if s.Value != "" {
				bv.value = strPtr(s.Value)
			}
			out[s.Name] = bv
		}
	}
	for _, c := range append(h.staticBrokerConfigs(), h.cfg.Broker...) {
		bv := out[c.Name]
		bv.value, bv.typ, bv.source = strPtr(c.Value), c.Type, sourceStaticBroker
		def, known := "", false
		if b, ok := config.Brokers[c.Name]; ok {
			if bv.doc == "" {
				bv.doc = b.Doc
			}
			if b.Type != 0 {
				bv.typ = b.Type
			}
			def, known = b.Default, b.Default != ""
		}
		if _, s, ok := config.BrokerSynonym(c.Name); ok && s.Value != "" {
			def, known = s.Value, true
		}
		if known && def == c.Value {
			bv.source = sourceDefault
		}
		out[c.Name] = bv
	}
	return out
}

// describeTopicConfigs lists a topic's effective configs, limited to names
// when it is not nil, with their synonyms: the topic's own value, then the
// broker configs it falls back to, in Kafka's order.
func describeTopicConfigs(set map[string]string, names []string, broker map[string]brokerValue) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, c := range config.Topics {
		if names != nil && !slices.Contains(names, c.Name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = c.Name
		rc.ConfigType = kmsg.ConfigType(c.Type)
		rc.Documentation = strPtr(c.Documentation())
		rc.Value, rc.Source, rc.IsDefault = strPtr(c.Default), sourceDefault, true
		if v, ok := set[c.Name]; ok {
			rc.Value, rc.Source, rc.IsDefault = strPtr(v), sourceDynamicTopic, false
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: c.Name, Value: rc.Value, Source: sourceDynamicTopic})
		}
		resolved := rc.Source == sourceDynamicTopic
		for _, s := range c.Broker {
			bv, ok := broker[s.Name]
			if !ok || bv.value == nil {
				continue
			}
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: s.Name, Value: bv.value, Source: kmsg.ConfigSource(bv.source)})
			// The first broker synonym with a value gives the default; an
			// agent flag sets only those in the topic config's own unit.
			if !resolved {
				resolved = true
				if bv.source == sourceStaticBroker && s.Type == 0 {
					rc.Value, rc.Source = bv.value, sourceStaticBroker
				}
			}
		}
		out = append(out, rc)
	}
	return out
}

// describeBrokerConfigs lists an agent's broker configs, sorted by name,
// limited to names when it is not nil. All are read-only: agents are
// configured by their flags.
func describeBrokerConfigs(broker map[string]brokerValue, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range slices.Sorted(maps.Keys(broker)) {
		if names != nil && !slices.Contains(names, name) {
			continue
		}
		bv := broker[name]
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value = name, bv.value
		rc.ReadOnly = true
		rc.Source = kmsg.ConfigSource(bv.source)
		rc.IsDefault = bv.source == sourceDefault
		rc.ConfigType = kmsg.ConfigType(bv.typ)
		if bv.doc != "" {
			rc.Documentation = strPtr(bv.doc)
		}
		if bv.value != nil {
			rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{{Name: name, Value: bv.value, Source: rc.Source}}
		}
		out = append(out, rc)
	}
	return out
}

// staticBrokerConfigs are the broker configs the handler knows.
func (h *Handler) staticBrokerConfigs() []BrokerConfig {
	id := strconv.Itoa(int(h.cfg.Cluster.Self().NodeID))
	static := []BrokerConfig{
		{"auto.create.topics.enable", strconv.FormatBool(h.cfg.AutoCreateTopics), config.Boolean},
		{"default.replication.factor", "1", config.Int},
		{"delete.topic.enable", "true", config.Boolean},
		{"fetch.max.bytes", strconv.Itoa(int(h.cfg.Limits.FetchMaxBytes)), config.Int},
		{"log.cleaner.enable", "true", config.Boolean},
		{"log.dirs", h.cfg.LogDir, config.List},
		{"message.max.bytes", strconv.Itoa(int(h.cfg.MaxMessageBytes)), config.Int},
		{"node.id", id, config.Int},
		{"broker.id", id, config.Int},
		{"num.partitions", strconv.Itoa(int(h.cfg.DefaultPartitions)), config.Int},
		{"offsets.topic.replication.factor", "1", config.Short},
		{"transaction.state.log.min.isr", "1", config.Int},
		{"transaction.state.log.replication.factor", "1", config.Short},
	}
	if rack := h.cfg.Cluster.Self().Rack; rack != nil {
		static = append(static, BrokerConfig{"broker.rack", *rack, config.String})
	}
	return static
}

// BrokerConfig is one broker config DescribeConfigs reports with the
// agent's real value (read-only: agents are configured by their flags).
// A broker synonym of a topic config (log.segment.delete.delay.ms) also
// sets the default of topics that do not set it.
type BrokerConfig struct {
	Name, Value string
	Type        config.Type
}
