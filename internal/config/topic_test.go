package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestTopicsCatalogue(t *testing.T) {
	if !slices.IsSortedFunc(Topics, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Topics must be sorted by name")
	}
	for i, c := range Topics {
		if i > 0 && Topics[i-1].Name == c.Name {
			t.Errorf("%s is listed twice", c.Name)
		}
		if err := c.Validate(c.Default); err != nil {
			t.Errorf("default of %s is invalid: %v", c.Name, err)
		}
		if c.Doc == "" || c.Floe == "" {
			t.Errorf("%s needs Doc and Floe", c.Name)
		}
		if typeNames[c.Type] == "" {
			t.Errorf("%s has no type", c.Name)
		}
		for _, s := range c.Broker {
			if s.Name == "" {
				t.Errorf("%s has a synonym without a name", c.Name)
			}
		}
	}
}

func TestBrokersCatalogue(t *testing.T) {
	for name, b := range Brokers {
		if b.Doc == "" || typeNames[b.Type] == "" {
			t.Errorf("%s needs a type and Doc", name)
		}
		if _, _, ok := BrokerSynonym(name); ok {
			t.Errorf("%s is a topic config's broker synonym already", name)
		}
	}
}

// kafka4Topics are the topic configs of Kafka 4.x (LogConfig), and the
// ones Kafka 3.x still accepted; each must be in the catalogue.
var kafka4Topics = []string{
	"cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type", "compression.zstd.level",
	"delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
	"follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
	"local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
	"message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
	"min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
	"remote.copy.lag.bytes", "remote.copy.lag.ms", "remote.log.copy.disable", "remote.log.delete.on.disable",
	"remote.storage.enable", "retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes",
	"segment.jitter.ms", "segment.ms", "unclean.leader.election.enable",
	// Kafka 3.x only.
	"message.downconversion.enable", "message.format.version", "message.timestamp.difference.max.ms",
}

func TestEveryKafkaTopicConfig(t *testing.T) {
	for _, name := range kafka4Topics {
		if _, ok := LookupTopic(name); !ok {
			t.Errorf("%s is missing", name)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"retention.ms", "1000", true},
		{"retention.ms", "-1", true},
		{"retention.ms", " 1000 ", true},
		{"retention.ms", "-2", false},
		{"retention.ms", "soon", false},
		{"retention.ms", "", false},
		{"retention.bytes", "-5", true}, // Kafka has no bound
		{"cleanup.policy", "compact,delete", true},
		{"cleanup.policy", "compact, delete", true},
		{"cleanup.policy", "archive", false},
		{"compression.type", "zstd", true},
		{"compression.type", "uncompressed", true},
		{"compression.type", "none", false},
		{"compression.type", "ZSTD", false},
		{"compression.gzip.level", "-1", true},
		{"compression.gzip.level", "9", true},
		{"compression.gzip.level", "0", false},
		{"compression.gzip.level", "10", false},
		{"compression.lz4.level", "17", true},
		{"compression.lz4.level", "18", false},
		{"compression.zstd.level", "-131072", true},
		{"compression.zstd.level", "23", false},
		{"message.timestamp.type", "LogAppendTime", true},
		{"message.timestamp.type", "logappendtime", false},
		{"message.timestamp.after.max.ms", "-1", false},
		{"max.message.bytes", "99999999999", false},
		{"max.message.bytes", "-1", false},
		{"min.cleanable.dirty.ratio", "0.1", true},
		{"min.cleanable.dirty.ratio", "1.5", false},
		{"min.cleanable.dirty.ratio", "-0.1", false},
		{"min.cleanable.dirty.ratio", "NaN", false},
		{"segment.bytes", "1048576", true},
		{"segment.bytes", "1048575", false},
		{"segment.index.bytes", "3", false},
		{"min.insync.replicas", "0", false},
		{"unclean.leader.election.enable", "yes", false},
		{"unclean.leader.election.enable", "TRUE", true},
		{"preallocate", "false", true},
		{"leader.replication.throttled.replicas", "*", true},
		{"leader.replication.throttled.replicas", "0:1,1:2", true},
		{"leader.replication.throttled.replicas", "", true},
		{"leader.replication.throttled.replicas", "0-1", false},
		{"follower.replication.throttled.replicas", "*,0:1", false},
		{"message.format.version", "2.8", true},
		{"message.format.version", "3.0-IV1", true},
		{"message.format.version", "0.10.2", true},
		{"message.format.version", "latest", false},
		{"message.downconversion.enable", "false", true},
		{"local.retention.ms", "-2", true},
		{"local.retention.ms", "-3", false},
		{"no.such.config", "1", false},
	} {
		err := ValidateTopic(tc.name, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%q: err %v, want ok=%v", tc.name, tc.value, err, tc.ok)
		}
	}
}

// TestDocsTable keeps docs/configs.md's tables equal to the catalogue;
// FLOE_UPDATE_DOCS=1 rewrites them.
func TestDocsTable(t *testing.T) {
	const path = "../../docs/configs.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := string(doc)
	for _, table := range []struct{ what, text string }{{"topic configs", TopicsMarkdown()}, {"broker configs", BrokersMarkdown()}} {
		begin, end := "<!-- "+table.what+": generated from internal/config, do not edit -->\n", "<!-- end of "+table.what+" -->\n"
		before, rest, ok1 := strings.Cut(want, begin)
		_, after, ok2 := strings.Cut(rest, end)
		if !ok1 || !ok2 {
			t.Fatalf("%s lacks the markers %q and %q", path, begin, end)
		}
		want = before + begin + table.text + end + after
	}
	if want == string(doc) {
		return
	}
	if os.Getenv("FLOE_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s is out of date with the catalogue; run FLOE_UPDATE_DOCS=1 go test ./internal/config -run TestDocsTable", path)
}

func TestValidTopicName(t *testing.T) {
	for name, ok := range map[string]bool{
		"orders": true, "a.b_c-D9": true, "": false, ".": false, "..": false,
		"has space": false, "ünicode": false, strings.Repeat("x", 249): true, strings.Repeat("x", 250): false,
	} {
		if err := ValidTopicName(name); (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", name, err, ok)
		}
	}
}
