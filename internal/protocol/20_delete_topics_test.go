package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteTopics(t *testing.T) {
	f := start(t)
	for _, name := range []string{"a", "b", "c"} {
		f.createTopic(name, 1)
	}
	cID := f.metadata(12, false, "c").Topics[0].TopicID

	for _, tc := range []struct {
		name     string
		version  int16
		req      func(*kmsg.DeleteTopicsRequest)
		wantCode int16
		wantName string // answered topic name, when known
		deleted  string
	}{
		{name: "by name v3", version: 3, req: func(r *kmsg.DeleteTopicsRequest) { r.TopicNames = []string{"a"} }, wantName: "a", deleted: "a"},
		{name: "by name v6", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("b")}}
		}, wantName: "b", deleted: "b"},
		{name: "by id", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: cID}}
		}, wantName: "c", deleted: "c"},
		{name: "deleted already", version: 3, req: func(r *kmsg.DeleteTopicsRequest) { r.TopicNames = []string{"a"} },
			wantCode: kerr.UnknownTopicOrPartition.Code, wantName: "a"},
		{name: "unknown name", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("nope")}}
		}, wantCode: kerr.UnknownTopicOrPartition.Code, wantName: "nope"},
		{name: "unknown id", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: [16]byte{9}}}
		}, wantCode: kerr.UnknownTopicID.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = 10_000
			tc.req(req)
			rt := do[*kmsg.DeleteTopicsResponse](f, tc.version, req).Topics[0]
			expectCode(t, "delete", rt.ErrorCode, tc.wantCode)
			if tc.wantName != "" && (rt.Topic == nil || *rt.Topic != tc.wantName) {
				t.Errorf("answered topic %v, want %s", rt.Topic, tc.wantName)
			}
			if tc.wantCode == 0 && tc.version >= 6 && rt.TopicID == [16]byte{} {
				t.Error("no topic id for a deleted topic")
			}
			if tc.deleted != "" {
				expectCode(t, "metadata after delete", f.metadata(12, false, tc.deleted).Topics[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
			}
		})
	}
}

// TestDeleteTopicsMalformed: entries Kafka's controller refuses one by
// one with INVALID_REQUEST, while the rest of the request is carried out.
func TestDeleteTopicsMalformed(t *testing.T) {
	f := start(t)
	for _, name := range []string{"kept", "gone"} {
		f.createTopic(name, 1)
	}
	keptID := f.metadata(12, false, "kept").Topics[0].TopicID

	for _, tc := range []struct {
		name    string
		version int16
		req     func(*kmsg.DeleteTopicsRequest)
		want    []int16 // per answered entry
	}{
		{name: "name and id", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("kept"), TopicID: keptID}}
		}, want: []int16{kerr.InvalidRequest.Code}},
		{name: "neither name nor id", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{}}
		}, want: []int16{kerr.InvalidRequest.Code}},
		{name: "name twice", version: 3, req: func(r *kmsg.DeleteTopicsRequest) { r.TopicNames = []string{"kept", "kept"} },
			want: []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}},
		{name: "id twice", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: keptID}, {TopicID: keptID}}
		}, want: []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}},
		{name: "the rest is carried out", version: 6, req: func(r *kmsg.DeleteTopicsRequest) {
			r.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("kept"), TopicID: keptID}, {Topic: kmsg.StringPtr("gone")}}
		}, want: []int16{kerr.InvalidRequest.Code, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := kmsg.NewPtrDeleteTopicsRequest()
			req.TimeoutMillis = 10_000
			tc.req(req)
			r := do[*kmsg.DeleteTopicsResponse](f, tc.version, req)
			if len(r.Topics) != len(tc.want) {
				t.Fatalf("%d entries answered, want %d", len(r.Topics), len(tc.want))
			}
			for i, want := range tc.want {
				expectCode(t, "entry", r.Topics[i].ErrorCode, want)
			}
		})
	}
	expectCode(t, "metadata for kept", f.metadata(12, false, "kept").Topics[0].ErrorCode, 0)
	expectCode(t, "metadata for gone", f.metadata(12, false, "gone").Topics[0].ErrorCode, kerr.UnknownTopicOrPartition.Code)
}
