package protocol

// Group configs: DescribeConfigs and IncrementalAlterConfigs on a GROUP
// resource (type 32, KIP-848/KIP-932), as Kafka 4 has them. Floe's
// groups take the share-group configs (share.record.lock.duration.ms,
// share.delivery.count.limit, share.auto.offset.reset,
// share.session.timeout.ms, share.heartbeat.interval.ms,
// share.isolation.level), each validated against the broker-level
// bounds, stored in the metadata store and honoured by the share
// coordinator (internal/sharecoord). Any other name is INVALID_CONFIG.
// ALTER_CONFIGS, resp. DESCRIBE_CONFIGS, on the group is required
// (GROUP_AUTHORIZATION_FAILED).

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/config"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharecoord"
	"github.com/floe-io/floe/internal/wire"
)

// sourceGroup is ConfigSource GROUP_CONFIG.
const sourceGroup = 8

// alterGroupConfigs applies IncrementalAlterConfigs operations to a
// group's configs: SET and DELETE (the share configs are no lists:
// APPEND and SUBTRACT are INVALID_CONFIG), all or nothing.
func (h *Handler) alterGroupConfigs(ctx context.Context, req *wire.Request, group string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, validateOnly bool) (int16, *string) {
	if !h.allowed(req, acl.AlterConfigs, acl.Group, group) {
		return kerr.GroupAuthorizationFailed.Code, nil
	}
	co, code := h.sharesOrErr()
	if code != 0 {
		return code, nil
	}
	if group == "" {
		return kerr.InvalidRequest.Code, strPtr("a group name is needed")
	}
	stored, err := co.StoredConfigs(ctx, group)
	if err != nil {
		return errorCode(err), errMessage(err)
	}
	changes := make([]metastore.ConfigChange, 0, len(ops))
	for _, op := range ops {
		switch op.Op {
		case 0: // SET
			if op.Value == nil {
				return kerr.InvalidRequest.Code, strPtr("SET needs a value for " + op.Name)
			}
			if err := co.ValidateConfig(op.Name, *op.Value); err != nil {
				return kerr.InvalidConfig.Code, strPtr(err.Error())
			}
			changes = append(changes, metastore.ConfigChange{Name: op.Name, Value: op.Value})
		case 1: // DELETE
			if err := co.ValidateConfig(op.Name, co.Defaults()[op.Name]); err != nil {
				return kerr.InvalidConfig.Code, strPtr(err.Error())
			}
			changes = append(changes, metastore.ConfigChange{Name: op.Name})
		case 2, 3: // APPEND, SUBTRACT
			return kerr.InvalidConfig.Code, strPtr(op.Name + " is not a list config")
		default:
			return kerr.InvalidRequest.Code, strPtr("unknown config operation")
		}
	}
	want, err := metastore.ApplyGroupConfigChanges(stored, changes)
	if err != nil {
		return kerr.InvalidConfig.Code, strPtr(err.Error())
	}
	if err := co.ValidateConfigs(want); err != nil {
		return kerr.InvalidConfig.Code, strPtr(err.Error())
	}
	if validateOnly {
		return 0, nil
	}
	if err := co.AlterConfigs(ctx, group, changes); err != nil {
		if errors.Is(err, metastore.ErrInvalidGroupConfig) {
			return kerr.InvalidConfig.Code, strPtr(err.Error())
		}
		return errorCode(err), errMessage(err)
	}
	h.log.Info("group configs changed", "group", group, "configs", want)
	return 0, nil
}

// describeGroupConfigs lists a group's share configs in effect: the
// group's own value (GROUP_CONFIG) or the agent's default, with the
// broker config it comes from as a synonym.
func (h *Handler) describeGroupConfigs(ctx context.Context, req *wire.Request, group string, names []string) ([]kmsg.DescribeConfigsResponseResourceConfig, int16, *string) {
	if !h.allowed(req, acl.DescribeConfigs, acl.Group, group) {
		return nil, kerr.GroupAuthorizationFailed.Code, nil
	}
	co, code := h.sharesOrErr()
	if code != 0 {
		return nil, code, nil
	}
	stored, err := co.StoredConfigs(ctx, group)
	if err != nil {
		return nil, errorCode(err), errMessage(err)
	}
	defaults := co.Defaults()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range sharecoord.ConfigNames {
		if names != nil && !containsString(names, name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name = name
		rc.ConfigType = kmsg.ConfigType(config.Int)
		if name == sharecoord.ConfigAutoOffsetReset || name == sharecoord.ConfigIsolationLevel {
			rc.ConfigType = kmsg.ConfigType(config.String)
		}
		def := strPtr(defaults[name])
		rc.Value, rc.Source, rc.IsDefault = def, sourceDefault, true
		if v, ok := stored[name]; ok {
			rc.Value, rc.Source, rc.IsDefault = strPtr(v), sourceGroup, false
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: name, Value: rc.Value, Source: sourceGroup})
		}
		rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: sharecoord.BrokerSynonyms[name], Value: def, Source: sourceDefault})
		out = append(out, rc)
	}
	return out, 0, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
