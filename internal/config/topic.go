// Package config knows the topic configs Floe accepts: their Kafka names,
// types, defaults, validation, broker-level synonyms and documentation,
// and what each one does in Floe. It holds no state.
//
// Topics is the catalogue: one row per config. Adding a config is adding
// a row (kept sorted by name); CreateTopics, AlterConfigs,
// IncrementalAlterConfigs and DescribeConfigs read it, and so does the
// table in docs/configs.md, which TestDocsTable checks (regenerate it with
// `FLOE_UPDATE_DOCS=1 go test ./internal/config -run TestDocsTable`).
package config

import (
	"fmt"
	"math"
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

var typeNames = map[Type]string{Boolean: "boolean", String: "string", Int: "int", Short: "short", Long: "long", Double: "double", List: "list"}

func (t Type) String() string { return typeNames[t] }

// Effect says whether Floe acts on a config.
type Effect int8

const (
	// Honoured: Floe does what the config asks (perhaps translated to
	// its objects; Floe says how).
	Honoured Effect = iota
	// NoEffect: accepted, stored and described so that tools which set
	// it keep working, but nothing in Floe reads it.
	NoEffect
)

// Range bounds a numeric config, both ends included.
type Range struct{ Min, Max float64 }

func atLeast(min float64) *Range      { return &Range{Min: min, Max: math.Inf(1)} }
func between(min, max float64) *Range { return &Range{Min: min, Max: max} }

// Synonym is a broker config that gives a topic config its default, as
// Kafka's broker synonyms do (log.retention.hours for retention.ms).
type Synonym struct {
	Name string
	// Value is the broker's value; empty means the broker config is not
	// set (Kafka reports it with a null value).
	Value string
	// Type defaults to the topic config's type.
	Type Type
}

// Topic describes one topic config.
type Topic struct {
	Name    string
	Type    Type
	Default string
	// Range bounds numeric values (nil: any value of the type).
	Range *Range
	// Allowed lists the accepted values of a string config, or of each
	// element of a list config; empty means any value.
	Allowed []string
	// Check is a validator beyond type, range and allowed values.
	Check func(string) error
	// Broker lists the broker configs that set this config's default, in
	// Kafka's order of precedence; the last one with a value applies.
	Broker []Synonym
	Effect Effect
	// Doc says what the config means in Kafka, in our own words;
	// DescribeConfigs v3+ reports it followed by Floe.
	Doc string
	// Floe says what the config does in Floe.
	Floe string
	// Deprecated, when set, says since when Kafka deprecates or has
	// removed the config; Floe still accepts it as Kafka 3.x does.
	Deprecated string
}

// Documentation is what DescribeConfigs reports as the config's
// documentation.
func (t Topic) Documentation() string {
	doc := t.Doc
	if t.Deprecated != "" {
		doc += " Deprecated: " + t.Deprecated + "."
	}
	if t.Effect == NoEffect {
		return doc + " No effect in Floe: " + t.Floe
	}
	return doc + " In Floe: " + t.Floe
}

const longMax = "9223372036854775807"

// Topics lists every topic config Floe accepts, sorted by name: every
// topic config of Kafka 4.x, the ones Kafka 3.x still accepted, and
// Floe's own (floe.*). docs/configs.md is generated from it.
var Topics = []Topic{
	{Name: "cleanup.policy", Type: List, Default: "delete", Allowed: []string{"compact", "delete"},
		Broker: []Synonym{{Name: "log.cleanup.policy", Value: "delete"}},
		Doc:    "What happens to old records: delete drops them by retention.ms and retention.bytes; compact keeps the latest record of each key; both may be given.",
		Floe:   "delete by the retention job, compact by key compaction (docs/jobs.md); records without a key are refused on a compacted topic (INVALID_RECORD)."},
	{Name: "compression.gzip.level", Type: Int, Default: "-1", Check: gzipLevel,
		Broker: []Synonym{{Name: "compression.gzip.level", Value: "-1"}},
		Doc:    "Level of gzip compression when compression.type is gzip: 1 (fastest) to 9 (smallest), -1 for the codec's default.",
		Floe:   "used when the agent recompresses batches to gzip."},
	{Name: "compression.lz4.level", Type: Int, Default: "9", Range: between(1, 17),
		Broker: []Synonym{{Name: "compression.lz4.level", Value: "9"}},
		Doc:    "Level of lz4 compression when compression.type is lz4, 1 to 17.",
		Floe:   "used when the agent recompresses batches to lz4: 1 is lz4's fast mode, 2 to 9 its high-compression levels, above 9 the same as 9."},
	{Name: "compression.type", Type: String, Default: "producer", Allowed: []string{"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"},
		Broker: []Synonym{{Name: "compression.type", Value: "producer"}},
		Doc:    "Codec of the batches the topic keeps: producer keeps the codec each producer chose, uncompressed or a codec name makes the broker recompress batches that differ.",
		Floe:   "the agent recompresses batches whose codec differs before they are written to the bucket; records, offsets, timestamps, headers and producer fields are kept."},
	{Name: "compression.zstd.level", Type: Int, Default: "3", Range: between(-131072, 22),
		Broker: []Synonym{{Name: "compression.zstd.level", Value: "3"}},
		Doc:    "Level of zstd compression when compression.type is zstd, -131072 to 22.",
		Floe:   "used when the agent recompresses batches to zstd, mapped to the encoder's four speeds: fastest below 3, default from 3, better from 6, best from 10."},
	{Name: "delete.retention.ms", Type: Long, Default: "86400000", Range: atLeast(0),
		Broker: []Synonym{{Name: "log.cleaner.delete.retention.ms", Value: "86400000"}},
		Doc:    "How long a tombstone (a record with a key and no value) stays in a compacted topic, so that consumers see the deletion.",
		Floe:   "key compaction drops a tombstone this long after it was committed."},
	{Name: "file.delete.delay.ms", Type: Long, Default: "60000", Range: atLeast(0),
		Broker: []Synonym{{Name: "log.segment.delete.delay.ms", Value: "60000"}},
		Doc:    "How long a deleted log file is kept before it is removed from disk.",
		Floe:   "how long an object no longer referenced stays in the bucket; the largest value among topics applies (docs/jobs.md)."},
	{Name: "floe.latency.target.ms", Type: Long, Default: "0", Range: between(0, 3600000),
		Doc:  "Floe's own: the longest time the topic's batches should wait in an agent's open segment before their upload starts; 0 is the agent's --linger.",
		Floe: "a target below the agent's linger puts the topic in a faster segment stream shared with the topics of the same target, which pays its own PUTs while the others keep the cheap one (docs/flush.md)."},
	{Name: "flush.messages", Type: Long, Default: longMax, Range: atLeast(1), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.flush.interval.messages", Value: longMax}},
		Doc:    "Records written to a partition's log between two fsyncs.",
		Floe:   "an acknowledged batch is already in the bucket."},
	{Name: "flush.ms", Type: Long, Default: longMax, Range: atLeast(0), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.flush.interval.ms"}, {Name: "log.flush.scheduler.interval.ms", Value: longMax}},
		Doc:    "Longest time between two fsyncs of a partition's log.",
		Floe:   "an acknowledged batch is already in the bucket."},
	{Name: "follower.replication.throttled.replicas", Type: List, Default: "", Check: throttledReplicas, Effect: NoEffect,
		Doc:  "Replicas (partition:broker pairs, or * for all) whose replication is throttled on the follower side.",
		Floe: "there are no replicas to throttle."},
	{Name: "index.interval.bytes", Type: Int, Default: "4096", Range: atLeast(0), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.index.interval.bytes", Value: "4096"}},
		Doc:    "Bytes of log between two entries of the offset index.",
		Floe:   "there is no local index; extents in the metadata store locate records."},
	{Name: "leader.replication.throttled.replicas", Type: List, Default: "", Check: throttledReplicas, Effect: NoEffect,
		Doc:  "Replicas (partition:broker pairs, or * for all) whose replication is throttled on the leader side.",
		Floe: "there are no replicas to throttle."},
	{Name: "local.retention.bytes", Type: Long, Default: "-2", Range: atLeast(-2), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.local.retention.bytes", Value: "-2"}},
		Doc:    "With tiered storage, the bytes of a partition kept on local disk (-2: retention.bytes).",
		Floe:   "there is no local tier; every byte is in the bucket."},
	{Name: "local.retention.ms", Type: Long, Default: "-2", Range: atLeast(-2), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.local.retention.ms", Value: "-2"}},
		Doc:    "With tiered storage, how long records stay on local disk (-2: retention.ms).",
		Floe:   "there is no local tier; every byte is in the bucket."},
	{Name: "max.compaction.lag.ms", Type: Long, Default: longMax, Range: atLeast(1),
		Broker: []Synonym{{Name: "log.cleaner.max.compaction.lag.ms", Value: longMax}},
		Doc:    "Longest time a record may stay uncompacted in a compacted topic, whatever the dirty ratio.",
		Floe:   "key compaction rewrites a partition once a record it would remove is older than this."},
	{Name: "max.message.bytes", Type: Int, Default: "1048588", Range: atLeast(0),
		Broker: []Synonym{{Name: "message.max.bytes", Value: "1048588"}},
		Doc:    "Largest record batch the topic accepts, after the broker's recompression.",
		Floe:   "larger batches get MESSAGE_TOO_LARGE, also when recompression makes them larger."},
	{Name: "message.downconversion.enable", Type: Boolean, Default: "true", Effect: NoEffect, Deprecated: "removed in Kafka 4.0",
		Doc:  "Whether the broker converts batches to an old message format for old consumers.",
		Floe: "only record batch format v2 is served, to consumers new enough to read it."},
	{Name: "message.format.version", Type: String, Default: "3.0-IV1", Check: messageFormatVersion, Effect: NoEffect, Deprecated: "since Kafka 3.0, removed in 4.0",
		Broker: []Synonym{{Name: "log.message.format.version", Value: "3.0-IV1"}},
		Doc:    "The message format version the broker writes a topic's batches in.",
		Floe:   "batches are always record batch format v2."},
	{Name: "message.timestamp.after.max.ms", Type: Long, Default: "3600000", Range: atLeast(0),
		Broker: []Synonym{{Name: "log.message.timestamp.after.max.ms", Value: "3600000"}},
		Doc:    "How far in the future of the broker's clock a record's timestamp may be, with message.timestamp.type CreateTime.",
		Floe:   "records further ahead of the agent's clock get INVALID_TIMESTAMP with per-record errors."},
	{Name: "message.timestamp.before.max.ms", Type: Long, Default: longMax, Range: atLeast(0),
		Broker: []Synonym{{Name: "log.message.timestamp.before.max.ms", Value: longMax}},
		Doc:    "How far in the past of the broker's clock a record's timestamp may be, with message.timestamp.type CreateTime.",
		Floe:   "records further behind the agent's clock get INVALID_TIMESTAMP with per-record errors."},
	{Name: "message.timestamp.difference.max.ms", Type: Long, Default: longMax, Range: atLeast(0), Deprecated: "since Kafka 3.6, removed in 4.0",
		Broker: []Synonym{{Name: "log.message.timestamp.difference.max.ms", Value: longMax}},
		Doc:    "How far from the broker's clock, either way, a record's timestamp may be; replaced by the before and after bounds.",
		Floe:   "when set, narrows both message.timestamp.before.max.ms and after.max.ms."},
	{Name: "message.timestamp.type", Type: String, Default: "CreateTime", Allowed: []string{"CreateTime", "LogAppendTime"},
		Broker: []Synonym{{Name: "log.message.timestamp.type", Value: "CreateTime"}},
		Doc:    "Whose clock a record's timestamp comes from: the producer's (CreateTime) or the broker's when it appends the batch (LogAppendTime).",
		Floe:   "with LogAppendTime the agent stamps each batch with its clock when it accepts it, and Produce answers that time."},
	{Name: "min.cleanable.dirty.ratio", Type: Double, Default: "0.5", Range: between(0, 1),
		Broker: []Synonym{{Name: "log.cleaner.min.cleanable.ratio", Value: "0.5"}},
		Doc:    "Share of a compacted log's bytes not yet cleaned at which the cleaner cleans it.",
		Floe:   "key compaction rewrites a partition once the bytes written since its last pass reach this share of the cleanable range (docs/jobs.md)."},
	{Name: "min.compaction.lag.ms", Type: Long, Default: "0", Range: atLeast(0),
		Broker: []Synonym{{Name: "log.cleaner.min.compaction.lag.ms", Value: "0"}},
		Doc:    "Shortest time a record stays uncompacted in a compacted topic.",
		Floe:   "key compaction leaves extents younger than this alone."},
	{Name: "min.insync.replicas", Type: Int, Default: "1", Range: atLeast(1), Effect: NoEffect,
		Broker: []Synonym{{Name: "min.insync.replicas", Value: "1"}},
		Doc:    "Replicas that must have a batch before an acks=all produce succeeds.",
		Floe:   "durability comes from the bucket; there are no replicas."},
	{Name: "preallocate", Type: Boolean, Default: "false", Effect: NoEffect,
		Broker: []Synonym{{Name: "log.preallocate", Value: "false"}},
		Doc:    "Whether a new log segment file is allocated on disk in full when it is created.",
		Floe:   "there are no local segment files."},
	{Name: "remote.copy.lag.bytes", Type: Long, Default: "0", Range: atLeast(-1), Effect: NoEffect,
		Doc:  "With tiered storage, bytes of a partition's local log allowed to wait before they are copied to remote storage.",
		Floe: "every byte is in the bucket before it is acknowledged."},
	{Name: "remote.copy.lag.ms", Type: Long, Default: "0", Range: atLeast(-1), Effect: NoEffect,
		Doc:  "With tiered storage, how long local records may wait before they are copied to remote storage.",
		Floe: "every byte is in the bucket before it is acknowledged."},
	{Name: "remote.log.copy.disable", Type: Boolean, Default: "false", Effect: NoEffect,
		Doc:  "With tiered storage, stops copying the topic's segments to remote storage.",
		Floe: "every byte is in the bucket already."},
	{Name: "remote.log.delete.on.disable", Type: Boolean, Default: "false", Effect: NoEffect,
		Doc:  "With tiered storage, deletes the topic's remote data when remote storage is disabled for it.",
		Floe: "every byte is in the bucket already."},
	{Name: "remote.storage.enable", Type: Boolean, Default: "false", Effect: NoEffect,
		Doc:  "Whether the topic uses tiered storage.",
		Floe: "all of Floe is remote storage."},
	{Name: "retention.bytes", Type: Long, Default: "-1",
		Broker: []Synonym{{Name: "log.retention.bytes", Value: "-1"}},
		Doc:    "Largest size of a partition before its oldest records are deleted (-1: no limit), with cleanup.policy delete.",
		Floe:   "per partition; the oldest extents are dropped while the rest holds at least this much (docs/jobs.md)."},
	{Name: "retention.ms", Type: Long, Default: "604800000", Range: atLeast(-1),
		Broker: []Synonym{{Name: "log.retention.ms"}, {Name: "log.retention.minutes", Type: Int}, {Name: "log.retention.hours", Value: "168", Type: Int}},
		Doc:    "How long records are kept before they are deleted (-1: forever), with cleanup.policy delete.",
		Floe:   "extents whose largest timestamp is older are dropped (docs/jobs.md)."},
	{Name: "segment.bytes", Type: Int, Default: "1073741824", Range: atLeast(1 << 20),
		Broker: []Synonym{{Name: "log.segment.bytes", Value: "1073741824"}},
		Doc:    "Size at which a partition's log rolls to a new segment file.",
		Floe:   "the largest extent segment compaction merges a partition's extents into (docs/jobs.md)."},
	{Name: "segment.index.bytes", Type: Int, Default: "10485760", Range: atLeast(4), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.index.size.max.bytes", Value: "10485760"}},
		Doc:    "Size of a segment's offset index file.",
		Floe:   "there is no local index."},
	{Name: "segment.jitter.ms", Type: Long, Default: "0", Range: atLeast(0), Effect: NoEffect,
		Broker: []Synonym{{Name: "log.roll.jitter.ms"}, {Name: "log.roll.jitter.hours", Value: "0", Type: Int}},
		Doc:    "Random time subtracted from segment.ms so that segments do not all roll at once.",
		Floe:   "segment compaction decides when extents merge."},
	{Name: "segment.ms", Type: Long, Default: "604800000", Range: atLeast(1),
		Broker: []Synonym{{Name: "log.roll.ms"}, {Name: "log.roll.hours", Value: "168", Type: Int}},
		Doc:    "Time after which a partition's log rolls to a new segment even if it is not full.",
		Floe:   "segment compaction never merges extents committed further apart than this (docs/jobs.md)."},
	{Name: "unclean.leader.election.enable", Type: Boolean, Default: "false", Effect: NoEffect,
		Broker: []Synonym{{Name: "unclean.leader.election.enable", Value: "false"}},
		Doc:    "Whether a replica that is not in sync may become leader, at the price of losing records.",
		Floe:   "there are no replicas; any agent serves every partition from the bucket."},
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

// Validate checks a value as Kafka's ConfigDef does: parsed by type
// (numbers and booleans trimmed, booleans in any case), then range,
// allowed values and the config's own check.
func (t Topic) Validate(value string) error {
	switch t.Type {
	case Boolean:
		if v := strings.ToLower(strings.TrimSpace(value)); v != "true" && v != "false" {
			return fmt.Errorf("invalid value %s for configuration %s: expected value to be either true or false", value, t.Name)
		}
	case Int, Short, Long:
		bits := map[Type]int{Int: 32, Short: 16, Long: 64}[t.Type]
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, bits)
		if err != nil {
			return fmt.Errorf("invalid value %s for configuration %s: not a number of type %s", value, t.Name, t.Type)
		}
		if err := t.checkRange(float64(n), value); err != nil {
			return err
		}
	case Double:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("invalid value %s for configuration %s: not a number of type double", value, t.Name)
		}
		if err := t.checkRange(f, value); err != nil {
			return err
		}
	case String:
		if len(t.Allowed) > 0 && !slices.Contains(t.Allowed, value) {
			return fmt.Errorf("invalid value %s for configuration %s: string must be one of: %s", value, t.Name, strings.Join(t.Allowed, ", "))
		}
	case List:
		for _, v := range SplitList(value) {
			if len(t.Allowed) > 0 && !slices.Contains(t.Allowed, v) {
				return fmt.Errorf("invalid value %s for configuration %s: string must be one of: %s", v, t.Name, strings.Join(t.Allowed, ", "))
			}
		}
	}
	if t.Check != nil {
		if err := t.Check(value); err != nil {
			return fmt.Errorf("invalid value %s for configuration %s: %w", value, t.Name, err)
		}
	}
	return nil
}

func (t Topic) checkRange(v float64, value string) error {
	if t.Range == nil || (v >= t.Range.Min && v <= t.Range.Max) {
		return nil
	}
	if math.IsInf(t.Range.Max, 1) {
		return fmt.Errorf("invalid value %s for configuration %s: value must be at least %v", value, t.Name, t.Range.Min)
	}
	return fmt.Errorf("invalid value %s for configuration %s: value must be no less than %v and no greater than %v", value, t.Name, t.Range.Min, t.Range.Max)
}

// gzipLevel accepts what Kafka's gzip level validator accepts: 1 to 9,
// or -1 for the default.
func gzipLevel(v string) error {
	n, _ := strconv.Atoi(strings.TrimSpace(v))
	if n == -1 || (n >= 1 && n <= 9) {
		return nil
	}
	return fmt.Errorf("value must be between 1 and 9, or -1 for the default")
}

// throttledReplicas accepts what Kafka's throttled replica list validator
// accepts: empty, "*", or partition:broker pairs of non-negative numbers.
func throttledReplicas(v string) error {
	items := SplitList(v)
	if len(items) == 1 && items[0] == "*" {
		return nil
	}
	for _, it := range items {
		p, b, ok := strings.Cut(it, ":")
		if !ok || !digits(strings.TrimSpace(p)) || !digits(strings.TrimSpace(b)) {
			return fmt.Errorf("must be the literal '*' or a list of replicas in the form [partitionId]:[brokerId],[partitionId]:[brokerId],...")
		}
	}
	return nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// messageFormatVersion accepts the versions Kafka 3.x accepted for
// message.format.version: a release ("0.10.2", "2.8", "3.0") with an
// optional "-IVn" suffix.
func messageFormatVersion(v string) error {
	base, iv, hasIV := strings.Cut(v, "-")
	if hasIV && (!strings.HasPrefix(iv, "IV") || !digits(iv[2:])) {
		return fmt.Errorf("not a Kafka version")
	}
	parts := strings.Split(base, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("not a Kafka version")
	}
	for _, p := range parts {
		if !digits(p) {
			return fmt.Errorf("not a Kafka version")
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
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
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
