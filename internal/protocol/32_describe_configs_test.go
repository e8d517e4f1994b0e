package protocol_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfigs describes a topic's configs (all of them when names is nil)
// and returns them by name.
func (f *fixture) topicConfigs(topic string, names ...string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	f.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, topic, names
	req.Resources = append(req.Resources, rr)
	sr := do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0]
	if sr.ErrorCode != 0 {
		f.t.Fatalf("describe configs of %s: %s", topic, codeName(sr.ErrorCode))
	}
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range sr.Configs {
		out[c.Name] = c
	}
	return out
}

func TestDescribeConfigs(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1, "retention.ms", "1000")
	brokerID := strconv.Itoa(int(f.metadata(12, false).Brokers[0].NodeID))

	for _, tc := range []struct {
		name     string
		version  int16
		typ      kmsg.ConfigResourceType
		resource string
		names    []string
		synonyms bool
		docs     bool
		wantCode int16
		// want is name → "value@source", with Kafka's config sources:
		// 1 DYNAMIC_TOPIC_CONFIG, 4 STATIC_BROKER_CONFIG, 5 DEFAULT_CONFIG
		// (-1: v0 has no source).
		want      map[string]string
		wantCount int // exact number of configs, when not 0 or -1 (no configs)
	}{
		{name: "topic, set and default", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			want: map[string]string{"retention.ms": "1000@1", "cleanup.policy": "delete@5", "max.message.bytes": "1048588@5"}},
		{name: "topic, one name", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "t", names: []string{"retention.ms"},
			want: map[string]string{"retention.ms": "1000@1"}, wantCount: 1},
		{name: "topic, v0", version: 0, typ: kmsg.ConfigResourceTypeTopic, resource: "t", names: []string{"retention.ms"},
			want: map[string]string{"retention.ms": "1000@-1"}, wantCount: 1},
		// Kafka answers a config name it does not know with nothing, not
		// an error.
		{name: "topic, unknown config", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "t", names: []string{"no.such.config"}, wantCount: -1},
		{name: "unknown topic", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "nope", wantCode: kerr.UnknownTopicOrPartition.Code, wantCount: -1},
		{name: "this broker", version: 4, typ: kmsg.ConfigResourceTypeBroker, resource: brokerID, names: []string{"num.partitions", "auto.create.topics.enable"},
			want: map[string]string{"num.partitions": "1@5", "auto.create.topics.enable": "true@5"}, wantCount: 2},
		{name: "default broker", version: 4, typ: kmsg.ConfigResourceTypeBroker, resource: "", names: []string{"message.max.bytes"},
			want: map[string]string{"message.max.bytes": "1048588@5"}, wantCount: 1},
		// What the agent sets to other than Kafka's default is static.
		{name: "broker, not Kafka's default", version: 4, typ: kmsg.ConfigResourceTypeBroker, resource: "", names: []string{"offsets.topic.replication.factor"},
			want: map[string]string{"offsets.topic.replication.factor": "1@4"}, wantCount: 1},
		// Broker synonyms of topic configs, with Kafka's defaults.
		{name: "broker synonyms", version: 4, typ: kmsg.ConfigResourceTypeBroker, resource: brokerID,
			names: []string{"log.retention.hours", "log.retention.ms", "log.cleanup.policy", "compression.type", "log.segment.bytes", "log.cleaner.min.cleanable.ratio"},
			want: map[string]string{"log.retention.hours": "168@5", "log.retention.ms": "<null>@5", "log.cleanup.policy": "delete@5",
				"compression.type": "producer@5", "log.segment.bytes": "1073741824@5", "log.cleaner.min.cleanable.ratio": "0.5@5"}, wantCount: 6},
		{name: "another broker", version: 4, typ: kmsg.ConfigResourceTypeBroker, resource: "999", wantCode: kerr.InvalidRequest.Code, wantCount: -1},
		{name: "unknown resource type", version: 4, typ: kmsg.ConfigResourceType(99), resource: "x", wantCode: kerr.InvalidRequest.Code, wantCount: -1},
		{name: "synonyms", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "t", names: []string{"retention.ms"}, synonyms: true,
			want: map[string]string{"retention.ms": "1000@1"}, wantCount: 1},
		{name: "documentation", version: 4, typ: kmsg.ConfigResourceTypeTopic, resource: "t", names: []string{"retention.ms"}, docs: true,
			want: map[string]string{"retention.ms": "1000@1"}, wantCount: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDescribeConfigsRequest()
			req.IncludeSynonyms, req.IncludeDocumentation = tc.synonyms, tc.docs
			rr := kmsg.NewDescribeConfigsRequestResource()
			rr.ResourceType, rr.ResourceName, rr.ConfigNames = tc.typ, tc.resource, tc.names
			req.Resources = append(req.Resources, rr)
			sr := do[*kmsg.DescribeConfigsResponse](f, tc.version, req).Resources[0]
			expectCode(t, "describe configs", sr.ErrorCode, tc.wantCode)
			if sr.ResourceName != tc.resource || sr.ResourceType != tc.typ {
				t.Errorf("answered resource %v %q, want %v %q", sr.ResourceType, sr.ResourceName, tc.typ, tc.resource)
			}
			switch {
			case tc.wantCount == -1 && len(sr.Configs) != 0:
				t.Errorf("%d configs, want none", len(sr.Configs))
			case tc.wantCount > 0 && len(sr.Configs) != tc.wantCount:
				t.Errorf("%d configs, want %d", len(sr.Configs), tc.wantCount)
			}
			got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
			for _, c := range sr.Configs {
				got[c.Name] = c
				if tc.synonyms != (len(c.ConfigSynonyms) > 0) {
					t.Errorf("%s: %d synonyms, asked for them: %v", c.Name, len(c.ConfigSynonyms), tc.synonyms)
				}
				if tc.docs != (c.Documentation != nil) {
					t.Errorf("%s: documentation %v, asked for it: %v", c.Name, c.Documentation, tc.docs)
				}
			}
			for name, w := range tc.want {
				c, ok := got[name]
				if !ok {
					t.Errorf("%s missing", name)
					continue
				}
				source := int8(-1)
				if tc.version >= 1 {
					source = int8(c.Source)
				}
				if v := derefOr(c.Value, "<null>") + "@" + strconv.Itoa(int(source)); v != w {
					t.Errorf("%s = %s, want %s (value@source)", name, v, w)
				}
				if tc.version == 0 && c.IsDefault != (c.Name != "retention.ms") {
					t.Errorf("%s: IsDefault %v", name, c.IsDefault)
				}
			}
		})
	}
}

func derefOr(p *string, or string) string {
	if p == nil {
		return or
	}
	return *p
}

// TestDescribeBrokerConfigsTools: what tools read of a broker is there,
// with the agent's real values.
func TestDescribeBrokerConfigsTools(t *testing.T) {
	f := start(t)
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, ""
	req.Resources = append(req.Resources, rr)
	got := map[string]string{}
	for _, c := range do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].Configs {
		got[c.Name] = derefOr(c.Value, "<null>")
	}
	for name, want := range map[string]string{
		"message.max.bytes":              "1048588",
		"log.retention.hours":            "168",
		"log.retention.bytes":            "-1",
		"compression.type":               "producer",
		"default.replication.factor":     "1",
		"auto.create.topics.enable":      "true",
		"advertised.listeners":           "PLAINTEXT://" + f.a.Addr(),
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT",
		"group.min.session.timeout.ms":   "6000",
		"group.max.session.timeout.ms":   "1800000",
		"offsets.retention.minutes":      "10080",
		"num.partitions":                 "1",
		"quota.window.num":               "11",
		"log.dirs":                       "bucket://floe", // the agent's one virtual log dir
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
}

// TestDescribeTopicConfigSynonyms: with IncludeSynonyms a topic config
// lists its own value, then the broker configs it falls back to, each
// with its source, as Kafka does; the documentation says what Floe does.
func TestDescribeTopicConfigSynonyms(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1, "retention.ms", "1000")
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
	rr.ConfigNames = []string{"retention.ms", "max.message.bytes", "preallocate", "leader.replication.throttled.replicas"}
	req.Resources = append(req.Resources, rr)
	got := map[string]string{}
	docs := map[string]string{}
	for _, c := range do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].Configs {
		var syn []string
		for _, s := range c.ConfigSynonyms {
			syn = append(syn, s.Name+"="+derefOr(s.Value, "<null>")+"@"+strconv.Itoa(int(s.Source)))
		}
		got[c.Name] = strings.Join(syn, " ")
		docs[c.Name] = derefOr(c.Documentation, "")
	}
	for name, want := range map[string]string{
		"retention.ms":      "retention.ms=1000@1 log.retention.hours=168@5",
		"max.message.bytes": "message.max.bytes=1048588@5",
		"preallocate":       "log.preallocate=false@5",
		// No broker synonym and not set: nothing to list.
		"leader.replication.throttled.replicas": "",
	} {
		if got[name] != want {
			t.Errorf("%s synonyms: %q, want %q", name, got[name], want)
		}
	}
	if !strings.Contains(docs["preallocate"], "No effect in Floe") || !strings.Contains(docs["retention.ms"], "In Floe") {
		t.Errorf("documentation does not say what Floe does: %q, %q", docs["preallocate"], docs["retention.ms"])
	}
}
