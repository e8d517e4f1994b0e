package config

import (
	"slices"
	"strings"
	"testing"
)

func TestTopicsSortedForLookup(t *testing.T) {
	if !slices.IsSortedFunc(Topics, func(a, b Topic) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatal("Topics must be sorted by name")
	}
	for _, c := range Topics {
		if err := c.Validate(c.Default); err != nil {
			t.Errorf("default of %s is invalid: %v", c.Name, err)
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
		{"retention.ms", "-2", false},
		{"retention.ms", "soon", false},
		{"cleanup.policy", "compact,delete", true},
		{"cleanup.policy", "archive", false},
		{"compression.type", "zstd", false},
		{"message.timestamp.type", "LogAppendTime", false},
		{"max.message.bytes", "99999999999", false},
		{"min.cleanable.dirty.ratio", "0.1", true},
		{"unclean.leader.election.enable", "yes", false},
		{"no.such.config", "1", false},
	} {
		err := ValidateTopic(tc.name, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%s: err %v, want ok=%v", tc.name, tc.value, err, tc.ok)
		}
	}
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
