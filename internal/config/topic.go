// Package config knows the topic configs Floe accepts: their Kafka names,
// defaults, types and validation, and which ones Floe honours today.
// It holds no state.
package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Type is a config's Kafka type, as DescribeConfigs v3+ reports it.
type Type int8

// Kafka's config types (DescribeConfigsResponse ConfigType).
const (
	Boolean Type = 1
	String  Type = 2
	Int     Type = 3
	Short   Type = 4
	Long    Type = 5
	Double  Type = 6
	List    Type = 7
)

// Topic describes one topic config.
type Topic struct {
	Name    string
	Default string
	Type    Type
	// Allowed lists the accepted values of a string or list config; empty
	// means any value of the type.
	Allowed []string
	// Min bounds numeric configs.
	Min float64
	Doc string
}

// Topics lists every topic config Floe accepts, sorted by name. Configs
// that Kafka has but that make no sense without local disks or replicas
// are accepted and stored so that tools which set them keep working; the
// README lists what each one does in Floe.
var Topics = []Topic{
	{Name: "cleanup.policy", Default: "delete", Type: List, Allowed: []string{"delete", "compact"}, Doc: "delete: retention.ms and retention.bytes apply; compact: key compaction keeps the latest record per key (docs/jobs.md)"},
	{Name: "compression.gzip.level", Default: "-1", Type: Int, Min: -1, Doc: "no effect: batches are stored as produced"},
	{Name: "compression.lz4.level", Default: "9", Type: Int, Min: 1, Doc: "no effect: batches are stored as produced"},
	{Name: "compression.type", Default: "producer", Type: String, Allowed: []string{"producer"}, Doc: "batches are stored as produced; only 'producer'"},
	{Name: "compression.zstd.level", Default: "3", Type: Int, Min: -131072, Doc: "no effect: batches are stored as produced"},
	{Name: "delete.retention.ms", Default: "86400000", Type: Long, Doc: "stored; applied by background jobs"},
	{Name: "file.delete.delay.ms", Default: "60000", Type: Long, Doc: "how long an unreferenced object stays in the bucket; the largest among topics applies (docs/jobs.md)"},
	{Name: "floe.latency.target.ms", Default: "0", Type: Long, Min: 0, Doc: "Floe only: the longest time the topic's batches wait in an agent's open segment before their upload starts; below the agent's --linger, the topic shares a faster segment stream with the topics of the same target, paying its PUTs (docs/flush.md). 0: the agent's linger"},
	{Name: "flush.messages", Default: "9223372036854775807", Type: Long, Min: 1, Doc: "no effect: every acknowledged batch is already in the bucket"},
	{Name: "flush.ms", Default: "9223372036854775807", Type: Long, Doc: "no effect: every acknowledged batch is already in the bucket"},
	{Name: "follower.replication.throttled.replicas", Default: "", Type: List, Doc: "no effect: there are no replicas"},
	{Name: "index.interval.bytes", Default: "4096", Type: Int, Doc: "no effect: Floe keeps no local index; extents in the metadata store locate records"},
	{Name: "leader.replication.throttled.replicas", Default: "", Type: List, Doc: "no effect: there are no replicas"},
	{Name: "local.retention.bytes", Default: "-2", Type: Long, Min: -2, Doc: "no effect: there is no local tier, every byte is in the bucket"},
	{Name: "local.retention.ms", Default: "-2", Type: Long, Min: -2, Doc: "no effect: there is no local tier, every byte is in the bucket"},
	{Name: "max.compaction.lag.ms", Default: "9223372036854775807", Type: Long, Min: 1, Doc: "stored; applied by background jobs"},
	{Name: "max.message.bytes", Default: "1048588", Type: Int, Doc: "largest record batch accepted"},
	{Name: "message.downconversion.enable", Default: "true", Type: Boolean, Doc: "no effect (removed in Kafka 4.0, accepted as Kafka 3.x does): Floe serves record batch format v2 only"},
	{Name: "message.format.version", Default: "3.0-IV1", Type: String, Doc: "no effect (deprecated, accepted as Kafka 3.x does): record batch format v2 only"},
	{Name: "message.timestamp.after.max.ms", Default: "3600000", Type: Long, Doc: "records further from the agent's clock are refused with INVALID_TIMESTAMP"},
	{Name: "message.timestamp.before.max.ms", Default: "9223372036854775807", Type: Long, Doc: "records further from the agent's clock are refused with INVALID_TIMESTAMP"},
	{Name: "message.timestamp.difference.max.ms", Default: "9223372036854775807", Type: Long, Doc: "deprecated: when set, bounds both before.max.ms and after.max.ms (INVALID_TIMESTAMP)"},
	{Name: "message.timestamp.type", Default: "CreateTime", Type: String, Allowed: []string{"CreateTime"}, Doc: "only CreateTime: batches are not rewritten"},
	{Name: "min.cleanable.dirty.ratio", Default: "0.5", Type: Double, Doc: "stored; applied by background jobs"},
	{Name: "min.compaction.lag.ms", Default: "0", Type: Long, Doc: "stored; applied by background jobs"},
	{Name: "min.insync.replicas", Default: "1", Type: Int, Min: 1, Doc: "no effect: durability comes from the bucket"},
	{Name: "preallocate", Default: "false", Type: Boolean, Doc: "no effect: there are no local segment files"},
	{Name: "remote.log.copy.disable", Default: "false", Type: Boolean, Doc: "no effect: every byte is in the bucket already"},
	{Name: "remote.log.delete.on.disable", Default: "false", Type: Boolean, Doc: "no effect: every byte is in the bucket already"},
	{Name: "remote.storage.enable", Default: "false", Type: Boolean, Doc: "no effect: every byte is in the bucket already (Floe is all remote storage)"},
	{Name: "retention.bytes", Default: "-1", Type: Long, Min: -1, Doc: "per partition; oldest extents are dropped while the rest holds at least this much"},
	{Name: "retention.ms", Default: "604800000", Type: Long, Min: -1, Doc: "extents whose largest timestamp is older are dropped"},
	{Name: "segment.bytes", Default: "1073741824", Type: Int, Min: 14, Doc: "the largest extent segment compaction merges a partition's extents into (docs/jobs.md)"},
	{Name: "segment.index.bytes", Default: "10485760", Type: Int, Min: 4, Doc: "no effect: Floe keeps no local index"},
	{Name: "segment.jitter.ms", Default: "0", Type: Long, Doc: "no effect: segment compaction decides when extents merge (docs/jobs.md)"},
	{Name: "segment.ms", Default: "604800000", Type: Long, Min: 1, Doc: "segment compaction never merges extents committed further apart than this (docs/jobs.md)"},
	{Name: "unclean.leader.election.enable", Default: "false", Type: Boolean, Doc: "no effect: there are no replicas"},
}

// LookupTopic returns the description of a topic config.
func LookupTopic(name string) (Topic, bool) {
	i, ok := slices.BinarySearchFunc(Topics, name, func(t Topic, n string) int { return strings.Compare(t.Name, n) })
	if !ok {
		return Topic{}, false
	}
	return Topics[i], true
}

// ValidateTopic checks one name=value pair.
func ValidateTopic(name, value string) error {
	t, ok := LookupTopic(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	return t.Validate(value)
}

// Validate checks a value against the config's type and allowed values.
func (t Topic) Validate(value string) error {
	switch t.Type {
	case Boolean:
		if value != "true" && value != "false" {
			return fmt.Errorf("%s: %q is not a boolean", t.Name, value)
		}
	case Int, Short, Long:
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", t.Name, value)
		}
		if t.Type == Int && (n > 1<<31-1 || n < -1<<31) {
			return fmt.Errorf("%s: %q is out of range", t.Name, value)
		}
		if t.Min != 0 && float64(n) < t.Min {
			return fmt.Errorf("%s: %d is below the minimum %v", t.Name, n, t.Min)
		}
	case Double:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", t.Name, value)
		}
		if t.Min != 0 && f < t.Min {
			return fmt.Errorf("%s: %v is below the minimum %v", t.Name, f, t.Min)
		}
	case String:
		if len(t.Allowed) > 0 && !slices.Contains(t.Allowed, value) {
			return fmt.Errorf("%s: %q is not supported (allowed: %s)", t.Name, value, strings.Join(t.Allowed, ", "))
		}
	case List:
		for _, v := range SplitList(value) {
			if len(t.Allowed) > 0 && !slices.Contains(t.Allowed, v) {
				return fmt.Errorf("%s: %q is not supported (allowed: %s)", t.Name, v, strings.Join(t.Allowed, ", "))
			}
		}
	}
	return nil
}

// SplitList splits a Kafka list value ("a,b").
func SplitList(value string) []string {
	var out []string
	for _, v := range strings.Split(value, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// TopicValue returns the effective value of name for a topic whose
// explicit configs are set, and whether it was set explicitly.
func TopicValue(set map[string]string, name string) (string, bool) {
	if v, ok := set[name]; ok {
		return v, true
	}
	t, _ := LookupTopic(name)
	return t.Default, false
}

// TopicInt returns an integer config's effective value.
func TopicInt(set map[string]string, name string) int64 {
	v, _ := TopicValue(set, name)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// ValidTopicName reports whether name is a legal Kafka topic name.
func ValidTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is illegal", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return nil
}
