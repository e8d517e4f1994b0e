package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestIncrementalAlterConfigs(t *testing.T) {
	f := start(t)
	f.createTopic("t", 1, "retention.ms", "1000")
	type op struct {
		name  string
		op    kmsg.IncrementalAlterConfigOp
		value *string
	}
	v := kmsg.StringPtr
	// The cases run in order on the same topic.
	for _, tc := range []struct {
		name         string
		typ          kmsg.ConfigResourceType
		resource     string
		ops          []op
		validateOnly bool
		wantCode     int16
		want         map[string]string // value@source afterwards
	}{
		{name: "set keeps the others", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:  []op{{"retention.bytes", kmsg.IncrementalAlterConfigOpSet, v("100")}},
			want: map[string]string{"retention.ms": "1000@1", "retention.bytes": "100@1"}},
		{name: "validate only", typ: kmsg.ConfigResourceTypeTopic, resource: "t", validateOnly: true,
			ops:  []op{{"retention.bytes", kmsg.IncrementalAlterConfigOpSet, v("200")}},
			want: map[string]string{"retention.bytes": "100@1"}},
		{name: "delete goes back to the default", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:  []op{{"retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil}},
			want: map[string]string{"retention.ms": "604800000@5", "retention.bytes": "100@1"}},
		{name: "append to a list", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:  []op{{"cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, v("compact")}},
			want: map[string]string{"cleanup.policy": "delete,compact@1"}},
		{name: "subtract from a list", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:  []op{{"cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, v("delete")}},
			want: map[string]string{"cleanup.policy": "compact@1"}},
		// Kafka 4 (the KRaft controller) answers INVALID_CONFIG here.
		{name: "append to a non-list", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:      []op{{"retention.ms", kmsg.IncrementalAlterConfigOpAppend, v("1")}},
			wantCode: kerr.InvalidConfig.Code, want: map[string]string{"retention.ms": "604800000@5"}},
		{name: "bad value", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:      []op{{"retention.bytes", kmsg.IncrementalAlterConfigOpSet, v("lots")}},
			wantCode: kerr.InvalidConfig.Code, want: map[string]string{"retention.bytes": "100@1"}},
		{name: "unknown config", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:      []op{{"no.such.config", kmsg.IncrementalAlterConfigOpSet, v("1")}},
			wantCode: kerr.InvalidConfig.Code},
		{name: "one bad op fails the resource", typ: kmsg.ConfigResourceTypeTopic, resource: "t",
			ops:      []op{{"retention.ms", kmsg.IncrementalAlterConfigOpSet, v("5")}, {"no.such.config", kmsg.IncrementalAlterConfigOpSet, v("1")}},
			wantCode: kerr.InvalidConfig.Code, want: map[string]string{"retention.ms": "604800000@5"}},
		{name: "unknown topic", typ: kmsg.ConfigResourceTypeTopic, resource: "nope",
			ops:      []op{{"retention.ms", kmsg.IncrementalAlterConfigOpSet, v("5")}},
			wantCode: kerr.UnknownTopicOrPartition.Code},
		{name: "broker", typ: kmsg.ConfigResourceTypeBroker, resource: "",
			ops:      []op{{"num.partitions", kmsg.IncrementalAlterConfigOpSet, v("3")}},
			wantCode: kerr.InvalidRequest.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.ValidateOnly = tc.validateOnly
			rr := kmsg.NewIncrementalAlterConfigsRequestResource()
			rr.ResourceType, rr.ResourceName = tc.typ, tc.resource
			for _, o := range tc.ops {
				rr.Configs = append(rr.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: o.name, Op: o.op, Value: o.value})
			}
			req.Resources = append(req.Resources, rr)
			sr := do[*kmsg.IncrementalAlterConfigsResponse](f, 1, req).Resources[0]
			expectCode(t, "incremental alter configs", sr.ErrorCode, tc.wantCode)
			expectConfigs(t, f, "t", tc.want)
		})
	}
}
