package protocol_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAlterConfigs: the non-incremental AlterConfigs replaces a topic's
// whole set of explicit configs.
func TestAlterConfigs(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1, "retention.ms", "1000")

	for _, tc := range []struct {
		name         string
		typ          kmsg.ConfigResourceType
		resource     string
		configs      []string // name, value pairs
		validateOnly bool
		wantCode     int16
		wantMsg      string
		want         map[string]string // value@source afterwards
	}{
		{name: "validate only", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"retention.bytes", "100"}, validateOnly: true,
			want: map[string]string{"retention.ms": "1000@1", "retention.bytes": "-1@5"}},
		{name: "replaces the set", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"retention.bytes", "100"},
			want: map[string]string{"retention.ms": "604800000@5", "retention.bytes": "100@1"}},
		{name: "bad value", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"retention.bytes", "lots"}, wantCode: kerr.InvalidConfig.Code,
			want: map[string]string{"retention.bytes": "100@1"}},
		{name: "unknown config", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"no.such.config", "1"}, wantCode: kerr.InvalidConfig.Code,
			want: map[string]string{"retention.bytes": "100@1"}},
		{name: "unknown topic", typ: kmsg.ConfigResourceTypeTopic, resource: "nope", configs: []string{"retention.ms", "1"}, wantCode: kerr.UnknownTopicOrPartition.Code},
		// Agent settings are static flags in Floe.
		// Agent settings are static flags in Floe: Kafka's answer for
		// configs that cannot be updated dynamically.
		{name: "broker", typ: kmsg.ConfigResourceTypeBroker, resource: "", configs: []string{"num.partitions", "3", "log.retention.ms", "1"}, wantCode: kerr.InvalidRequest.Code,
			wantMsg: "Cannot update these configs dynamically: [log.retention.ms, num.partitions]"},
		{name: "broker, nothing to change", typ: kmsg.ConfigResourceTypeBroker, resource: ""},
		{name: "another broker", typ: kmsg.ConfigResourceTypeBroker, resource: "999", configs: []string{"num.partitions", "3"}, wantCode: kerr.InvalidRequest.Code, wantMsg: "unknown broker 999"},
		{name: "compression.type zstd", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"compression.type", "zstd", "message.timestamp.type", "LogAppendTime", "preallocate", "true"},
			want: map[string]string{"compression.type": "zstd@1", "message.timestamp.type": "LogAppendTime@1", "preallocate": "true@1"}},
		{name: "out of range", typ: kmsg.ConfigResourceTypeTopic, resource: "t", configs: []string{"min.cleanable.dirty.ratio", "2"}, wantCode: kerr.InvalidConfig.Code,
			wantMsg: "value must be no less than 0 and no greater than 1", want: map[string]string{"compression.type": "zstd@1"}},
		{name: "empty set clears", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			want: map[string]string{"retention.bytes": "-1@5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrAlterConfigsRequest()
			req.ValidateOnly = tc.validateOnly
			rr := kmsg.NewAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = tc.typ, tc.resource
			for i := 0; i+1 < len(tc.configs); i += 2 {
				rr.Configs = append(rr.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: tc.configs[i], Value: kmsg.StringPtr(tc.configs[i+1])})
			}
			req.Resources = append(req.Resources, rr)
			sr := do[*kmsg.AlterConfigsResponse](f, 2, req).Resources[0]
			expectCode(t, "alter configs", sr.ErrorCode, tc.wantCode)
			if msg := derefOr(sr.ErrorMessage, ""); !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.wantMsg)
			}
			expectConfigs(t, f, "t", tc.want)
		})
	}
}

// expectConfigs checks a topic's configs as value@source.
func expectConfigs(t *testing.T, f *fixture, topic string, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	got := f.topicConfigs(topic)
	for name, w := range want {
		c := got[name]
		if v := derefOr(c.Value, "<null>") + "@" + strconv.Itoa(int(c.Source)); v != w {
			t.Errorf("%s = %s, want %s (value@source)", name, v, w)
		}
	}
}
