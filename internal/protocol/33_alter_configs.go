package protocol

// AlterConfigs v0-v2.
//
// Replaces the whole set of explicit configs of a topic, as Kafka's
// non-incremental AlterConfigs does. Broker configs are static in Floe
// (set by flags): altering them gets Kafka's answer for configs that
// cannot be updated dynamically, INVALID_REQUEST naming them.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(33, 0, 2, (*Handler).alterConfigs) }

func (h *Handler) alterConfigs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch {
		case rr.ResourceType == resourceTopic && !h.allowed(req, acl.AlterConfigs, acl.Topic, rr.ResourceName):
			sr.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case rr.ResourceType == resourceBroker && !h.allowedOnCluster(req, acl.AlterConfigs):
			sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		}
		if sr.ErrorCode != 0 {
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if rr.ResourceType == resourceBroker {
			names := make([]string, len(rr.Configs))
			for i, c := range rr.Configs {
				names[i] = c.Name
			}
			sr.ErrorCode, sr.ErrorMessage = h.alterBrokerConfigs(rr.ResourceName, names)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if rr.ResourceType != resourceTopic {
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strPtr("only topic configs can be altered; agent settings are static flags")
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		want := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				want[c.Name] = *c.Value
			}
		}
		sr.ErrorCode, sr.ErrorMessage = h.replaceTopicConfigs(ctx, rr.ResourceName, want, r.ValidateOnly)
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

// replaceTopicConfigs validates want and makes it the topic's explicit
// config set.
func (h *Handler) replaceTopicConfigs(ctx context.Context, topic string, want map[string]string, validateOnly bool) (int16, *string) {
	t, err := h.store.Topic(ctx, topic)
	if err != nil {
		return errorCode(err), nil
	}
	for k, v := range want {
		if err := config.ValidateTopic(k, v); err != nil {
			return kerr.InvalidConfig.Code, errMessage(err)
		}
	}
	if validateOnly {
		return 0, nil
	}
	var changes []metastore.ConfigChange
	for k := range t.Configs {
		if _, keep := want[k]; !keep {
			changes = append(changes, metastore.ConfigChange{Name: k})
		}
	}
	for k, v := range want {
		changes = append(changes, metastore.ConfigChange{Name: k, Value: &v})
	}
	if _, err := h.store.AlterTopicConfigs(ctx, topic, changes); err != nil {
		return errorCode(err), errMessage(err)
	}
	h.log.Info("topic configs altered", "topic", topic, "configs", want)
	return 0, nil
}

// alterBrokerConfigs answers an AlterConfigs or IncrementalAlterConfigs
// of a broker resource as Kafka answers configs it cannot update
// dynamically: INVALID_REQUEST, naming them. Every broker config of an
// agent is a flag.
func (h *Handler) alterBrokerConfigs(resource string, names []string) (int16, *string) {
	if !h.isThisBroker(resource) {
		return kerr.InvalidRequest.Code, strPtr("unknown broker " + resource)
	}
	if len(names) == 0 {
		return 0, nil
	}
	slices.Sort(names)
	return kerr.InvalidRequest.Code, strPtr(fmt.Sprintf("Invalid config value for resource ConfigResource(type=BROKER, name='%s'): Cannot update these configs dynamically: [%s] (an agent's configs are its flags)",
		resource, strings.Join(slices.Compact(names), ", ")))
}
