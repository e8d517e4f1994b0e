package metastore

import (
	"context"
	"errors"
)

// MaxGroupConfigs bounds the configs one group may hold, and
// MaxGroupConfigBytes the length of a config's name or value, so that a
// client cannot grow the store without limit through one group.
const (
	MaxGroupConfigs     = 64
	MaxGroupConfigBytes = 1024
)

// ErrInvalidGroupConfig reports a change past MaxGroupConfigs or
// MaxGroupConfigBytes.
var ErrInvalidGroupConfig = errors.New("invalid group config")

// GroupConfigStore holds groups' dynamic configs: what
// IncrementalAlterConfigs sets on a GROUP resource (type 32), such as a
// share group's share.record.lock.duration.ms. The store keeps names
// and values as given; what they mean and which are allowed is the
// caller's (internal/sharecoord). A group's configs live apart from its
// membership and offsets, as in Kafka: they exist before the group does
// and outlive its deletion. All methods are safe for concurrent use.
type GroupConfigStore interface {
	// GroupConfigs returns the configs set on a group (empty, without
	// error, for a group with none).
	GroupConfigs(ctx context.Context, group string) (map[string]string, error)
	// AlterGroupConfigs applies changes in order (a nil Value deletes the
	// config) atomically and returns the group's configs after them.
	// Past MaxGroupConfigs configs, or a name or value longer than
	// MaxGroupConfigBytes, nothing changes: ErrInvalidGroupConfig.
	AlterGroupConfigs(ctx context.Context, group string, changes []ConfigChange) (map[string]string, error)
	// GroupsWithConfigs returns the names of the groups that have at
	// least one config, shorter names first and names of one length in
	// byte order, at most limit of them: past limit, the rest are left
	// out, and a caller that must know asks for one more than it keeps.
	// A limit below 1 returns none.
	GroupsWithConfigs(ctx context.Context, limit int) ([]string, error)
}

// ApplyGroupConfigChanges applies changes to configs (a copy) and checks
// the bounds, for backends.
func ApplyGroupConfigChanges(configs map[string]string, changes []ConfigChange) (map[string]string, error) {
	out := make(map[string]string, len(configs)+len(changes))
	for k, v := range configs {
		out[k] = v
	}
	for _, c := range changes {
		if len(c.Name) == 0 || len(c.Name) > MaxGroupConfigBytes || c.Value != nil && len(*c.Value) > MaxGroupConfigBytes {
			return nil, ErrInvalidGroupConfig
		}
	}
	out = ApplyConfigChanges(out, changes)
	if len(out) > MaxGroupConfigs {
		return nil, ErrInvalidGroupConfig
	}
	return out, nil
}
