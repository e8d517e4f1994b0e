package protocol

// IncrementalAlterConfigs v0-v1 (KIP-339).
//
// Operations: SET (0), DELETE (1), APPEND (2) and SUBTRACT (3), the last
// two for list configs such as cleanup.policy. Topics (type 2) and
// groups (type 32, the share-group configs: group_configs.go).

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(44, 0, 1, (*Handler).incrementalAlterConfigs) }

func (h *Handler) incrementalAlterConfigs(ctx context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
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
		if rr.ResourceType == resourceGroup {
			sr.ErrorCode, sr.ErrorMessage = h.alterGroupConfigs(ctx, req, rr.ResourceName, rr.Configs, r.ValidateOnly)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		if rr.ResourceType != resourceTopic {
			sr.ErrorCode = kerr.InvalidRequest.Code
			sr.ErrorMessage = strPtr("only topic configs can be altered; agent settings are static flags")
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		t, err := h.store.Topic(ctx, rr.ResourceName)
		if err != nil {
			sr.ErrorCode = errorCode(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		want := maps.Clone(t.Configs)
		if want == nil {
			want = map[string]string{}
		}
		for _, c := range rr.Configs {
			if code, msg := applyConfigOp(want, c); code != 0 {
				sr.ErrorCode, sr.ErrorMessage = code, msg
				break
			}
		}
		if sr.ErrorCode == 0 {
			sr.ErrorCode, sr.ErrorMessage = h.replaceTopicConfigs(ctx, rr.ResourceName, want, r.ValidateOnly)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

func applyConfigOp(set map[string]string, c kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, *string) {
	def, ok := config.LookupTopic(c.Name)
	if !ok {
		return kerr.InvalidConfig.Code, strPtr("unknown topic config " + c.Name)
	}
	switch c.Op {
	case 0: // SET
		if c.Value == nil {
			return kerr.InvalidRequest.Code, strPtr("SET needs a value for " + c.Name)
		}
		set[c.Name] = *c.Value
	case 1: // DELETE
		delete(set, c.Name)
	case 2, 3: // APPEND, SUBTRACT
		if def.Type != config.List {
			return kerr.InvalidConfig.Code, strPtr(c.Name + " is not a list config")
		}
		cur, _ := config.TopicValue(set, c.Name)
		items := config.SplitList(cur)
		var arg []string
		if c.Value != nil {
			arg = config.SplitList(*c.Value)
		}
		for _, v := range arg {
			if c.Op == 2 && !slices.Contains(items, v) {
				items = append(items, v)
			}
			if c.Op == 3 {
				items = slices.DeleteFunc(items, func(s string) bool { return s == v })
			}
		}
		set[c.Name] = strings.Join(items, ",")
	default:
		return kerr.InvalidRequest.Code, strPtr("unknown config operation")
	}
	return 0, nil
}
