package sharecoord

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/sharegroup"
	"github.com/floe-io/floe/internal/sharepart"
)

// Share-group configs (KIP-932) set per group with IncrementalAlterConfigs
// on a GROUP resource, stored in the metadata store (GroupConfigStore),
// over the agent's defaults (Options). Each is validated against the
// broker-level bounds Kafka 4 has (group.share.min.* and group.share.max.*),
// widened to take in the agent's own default when a flag sets it outside
// them.
const (
	ConfigLockDuration       = "share.record.lock.duration.ms"
	ConfigDeliveryCountLimit = "share.delivery.count.limit"
	ConfigAutoOffsetReset    = "share.auto.offset.reset"
	ConfigSessionTimeout     = "share.session.timeout.ms"
	ConfigHeartbeatInterval  = "share.heartbeat.interval.ms"
	ConfigIsolationLevel     = "share.isolation.level"
)

// ConfigNames lists the share-group configs in the order DescribeConfigs
// shows them.
var ConfigNames = []string{
	ConfigAutoOffsetReset, ConfigDeliveryCountLimit, ConfigHeartbeatInterval,
	ConfigIsolationLevel, ConfigLockDuration, ConfigSessionTimeout,
}

// Kafka 4's broker-level bounds of the share-group configs.
var kafkaBounds = map[string][2]int64{
	ConfigLockDuration:       {15_000, 60_000}, // group.share.{min,max}.record.lock.duration.ms
	ConfigDeliveryCountLimit: {2, 10},          // group.share.{min,max}.delivery.count.limit
	ConfigSessionTimeout:     {45_000, 60_000}, // group.share.{min,max}.session.timeout.ms
	ConfigHeartbeatInterval:  {5_000, 15_000},  // group.share.{min,max}.heartbeat.interval.ms
}

// BrokerSynonyms are the broker configs whose values a group's configs
// default to.
var BrokerSynonyms = map[string]string{
	ConfigLockDuration:       "group.share.record.lock.duration.ms",
	ConfigDeliveryCountLimit: "group.share.delivery.count.limit",
	ConfigAutoOffsetReset:    "share.auto.offset.reset",
	ConfigSessionTimeout:     "group.share.session.timeout.ms",
	ConfigHeartbeatInterval:  "group.share.heartbeat.interval.ms",
	ConfigIsolationLevel:     "share.isolation.level",
}

// GroupConfig is a share group's configs in effect.
type GroupConfig struct {
	Partition     sharepart.Config
	Group         sharegroup.Config
	Reset         sharepart.Reset
	ReadCommitted bool
}

// Defaults are the agent's share-group configs, as strings, for
// DescribeConfigs.
func (c *Coordinator) Defaults() map[string]string {
	d := c.defaults()
	return map[string]string{
		ConfigLockDuration:       strconv.FormatInt(d.Partition.LockDuration.Milliseconds(), 10),
		ConfigDeliveryCountLimit: strconv.Itoa(d.Partition.DeliveryCountLimit),
		ConfigAutoOffsetReset:    d.Reset.String(),
		ConfigSessionTimeout:     strconv.FormatInt(d.Group.SessionTimeout.Milliseconds(), 10),
		ConfigHeartbeatInterval:  strconv.FormatInt(d.Group.HeartbeatInterval.Milliseconds(), 10),
		ConfigIsolationLevel:     isolationName(d.ReadCommitted),
	}
}

func isolationName(readCommitted bool) string {
	if readCommitted {
		return "read_committed"
	}
	return "read_uncommitted"
}

// defaults is the agent's configuration with Kafka's defaults filled in.
func (c *Coordinator) defaults() GroupConfig {
	p := c.opts.Partition
	if p.LockDuration <= 0 {
		p.LockDuration = sharepart.DefaultLockDuration
	}
	if p.DeliveryCountLimit <= 0 {
		p.DeliveryCountLimit = sharepart.DefaultDeliveryCountLimit
	}
	return GroupConfig{Partition: p, Group: c.opts.Group, Reset: c.opts.Reset, ReadCommitted: c.opts.ReadCommitted}
}

// bounds are a numeric config's allowed values on this agent.
func (c *Coordinator) bounds(name string) (lo, hi int64) {
	b := kafkaBounds[name]
	def, _ := strconv.ParseInt(c.Defaults()[name], 10, 64)
	return min(b[0], def), max(b[1], def)
}

// ValidateConfig checks one share-group config's value: a known name
// and a value within the bounds.
func (c *Coordinator) ValidateConfig(name, value string) error {
	switch name {
	case ConfigLockDuration, ConfigDeliveryCountLimit, ConfigSessionTimeout, ConfigHeartbeatInterval:
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", name, value)
		}
		if lo, hi := c.bounds(name); n < lo || n > hi {
			return fmt.Errorf("%s: %d is outside [%d, %d]", name, n, lo, hi)
		}
	case ConfigAutoOffsetReset:
		if _, err := sharepart.ParseReset(value); err != nil {
			return err
		}
	case ConfigIsolationLevel:
		if value != "read_committed" && value != "read_uncommitted" {
			return fmt.Errorf("%s: %q is neither read_committed nor read_uncommitted", name, value)
		}
	default:
		return fmt.Errorf("unknown or unsupported group config %s (Floe's groups take the share.* configs)", name)
	}
	return nil
}

// ValidateConfigs checks a group's configs together: each one, and the
// heartbeat interval below the session timeout.
func (c *Coordinator) ValidateConfigs(configs map[string]string) error {
	for name, v := range configs {
		if err := c.ValidateConfig(name, v); err != nil {
			return err
		}
	}
	cfg := c.resolve(configs)
	if cfg.Group.HeartbeatInterval >= cfg.Group.SessionTimeout {
		return fmt.Errorf("%s (%v) must be below %s (%v)", ConfigHeartbeatInterval, cfg.Group.HeartbeatInterval, ConfigSessionTimeout, cfg.Group.SessionTimeout)
	}
	return nil
}

// resolve applies a group's stored configs over the defaults; a value
// that does not parse (stored by an older version, or by hand) keeps
// the default.
func (c *Coordinator) resolve(configs map[string]string) GroupConfig {
	cfg := c.defaults()
	cfg.Group = cfg.Group.WithDefaults()
	ms := func(name string, into *time.Duration) {
		if v, ok := configs[name]; ok {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil && n > 0 {
				*into = time.Duration(n) * time.Millisecond
			}
		}
	}
	ms(ConfigLockDuration, &cfg.Partition.LockDuration)
	ms(ConfigSessionTimeout, &cfg.Group.SessionTimeout)
	ms(ConfigHeartbeatInterval, &cfg.Group.HeartbeatInterval)
	if v, ok := configs[ConfigDeliveryCountLimit]; ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			cfg.Partition.DeliveryCountLimit = n
		}
	}
	if v, ok := configs[ConfigAutoOffsetReset]; ok {
		if r, err := sharepart.ParseReset(v); err == nil {
			cfg.Reset = r
		}
	}
	if v, ok := configs[ConfigIsolationLevel]; ok {
		cfg.ReadCommitted = v == "read_committed"
	}
	return cfg
}

// configTTL is how long an agent uses a group's configs before reading
// them again: a change made through another agent is seen within it.
const configTTL = 2 * time.Second

type cachedConfig struct {
	cfg GroupConfig
	at  time.Time
}

// configCache holds groups' resolved configs, at most MaxGroups of them.
type configCache struct {
	mu     sync.Mutex
	groups map[string]cachedConfig
}

// Config returns a share group's configs in effect: its stored ones over
// the agent's defaults, read again after configTTL. When the store
// cannot be read, the last known (or default) configs are used.
func (c *Coordinator) Config(ctx context.Context, group string) GroupConfig {
	now := time.Now()
	c.configs.mu.Lock()
	cached, ok := c.configs.groups[group]
	c.configs.mu.Unlock()
	if ok && now.Sub(cached.at) < configTTL {
		return cached.cfg
	}
	stored, err := c.store.GroupConfigs(ctx, group)
	if err != nil {
		c.log.Warn("share group configs not read; using the last known", "group", group, "err", err)
		if ok {
			return cached.cfg
		}
		return c.resolve(nil)
	}
	cfg := c.resolve(stored)
	c.configs.mu.Lock()
	if c.configs.groups == nil {
		c.configs.groups = map[string]cachedConfig{}
	}
	if _, had := c.configs.groups[group]; !had && len(c.configs.groups) >= c.opts.MaxGroups {
		for name := range c.configs.groups {
			delete(c.configs.groups, name)
			break
		}
	}
	c.configs.groups[group] = cachedConfig{cfg: cfg, at: now}
	c.configs.mu.Unlock()
	return cfg
}

// ForgetConfig drops a group's cached configs, after this agent changed
// them.
func (c *Coordinator) ForgetConfig(group string) {
	c.configs.mu.Lock()
	delete(c.configs.groups, group)
	c.configs.mu.Unlock()
}

// StoredConfigs returns the configs set on a group.
func (c *Coordinator) StoredConfigs(ctx context.Context, group string) (map[string]string, error) {
	return c.store.GroupConfigs(ctx, group)
}

// AlterConfigs changes a group's stored configs (validated by the
// caller with ValidateConfig and ValidateConfigs); this agent uses them
// at once, the others within configTTL.
func (c *Coordinator) AlterConfigs(ctx context.Context, group string, changes []metastore.ConfigChange) error {
	if _, err := c.store.AlterGroupConfigs(ctx, group, changes); err != nil {
		return err
	}
	c.ForgetConfig(group)
	return nil
}
