package protocol

// DeleteTopics v0-v6.
//
// v6 names topics by name or by ID (KIP-516); an entry with both or
// neither, and a name or ID given twice, is INVALID_REQUEST. Deleting a
// topic removes its metadata at once; its objects are left for the
// cleaner, which deletes them after a grace period, because fetches in
// flight may still read them. A deleted topic's partitions count against
// the controller mutation quota (KIP-599): v5+ are refused
// THROTTLING_QUOTA_EXCEEDED while the client owes time, older versions
// answered late.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(20, 0, 6, (*Handler).deleteTopics) }

func (h *Handler) deleteTopics(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.Version < 6 {
		for i := range r.TopicNames {
			targets = append(targets, target{name: &r.TopicNames[i]})
		}
	} else {
		for _, t := range r.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	// Malformed entries are refused one by one, as Kafka's controller
	// does, and the rest of the request is carried out: a name and an id
	// together, neither, or a name or id given twice (every copy).
	names, ids := map[string]int{}, map[[16]byte]int{}
	for _, tg := range targets {
		if tg.name != nil {
			names[*tg.name]++
		} else {
			ids[tg.id]++
		}
	}
	invalid := func(tg target) string {
		switch {
		case tg.name != nil && tg.id != [16]byte{}:
			return "You may not specify both topic name and topic id."
		case tg.name == nil && tg.id == [16]byte{}:
			return "Neither topic name nor id were specified."
		case tg.name != nil && names[*tg.name] > 1:
			return "Duplicate topic name."
		case tg.name == nil && ids[tg.id] > 1:
			return "Duplicate topic id."
		}
		return ""
	}
	client := quotaKey(req.Principal, req.ClientID)
	old := r.Version < 5
	if ok, wait := h.mutations.admit(client); !ok && old {
		// Too old to be refused: the connection is not read from until
		// the client is within its quota, as Kafka mutes its channel.
		sleepCtx(ctx, wait)
	}
	var throttle time.Duration
	lookup := h.lookup(ctx)
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		if msg := invalid(tg); msg != "" {
			st.ErrorCode, st.ErrorMessage = kerr.InvalidRequest.Code, strPtr(msg)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		name := ""
		if tg.name != nil {
			name = *tg.name
		} else {
			t, err := lookup.id(tg.id)
			if err != nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if !h.allowed(req, acl.Describe, acl.Topic, t.Name) {
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			name = t.Name
			st.Topic = &t.Name
		}
		if !h.allowed(req, acl.Delete, acl.Topic, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if ok, wait := h.mutations.admit(client); !ok && !old {
			st.ErrorCode, st.ErrorMessage = throttlingQuotaExceeded, quotaMessage(wait)
			throttle = max(throttle, wait)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := h.store.DeleteTopic(ctx, name)
		st.ErrorCode = errorCode(err)
		if err == nil {
			throttle = max(throttle, h.mutations.record(client, float64(t.Partitions)))
			st.TopicID = t.ID
			h.log.Info("topic deleted", "topic", name, "id", topicIDString(t.ID))
			h.cfg.FetchServed.Forget(name)
		} else if st.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			st.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return throttled(resp, throttle, old), nil
}
