package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// TopicsMarkdown renders the catalogue as the table of docs/configs.md:
// one row per config with its type, default, valid values, broker
// synonym and what it does in Floe.
func TopicsMarkdown() string {
	var b strings.Builder
	b.WriteString("| config | type | default | valid values | broker synonym | in Floe |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, t := range Topics {
		name := "`" + t.Name + "`"
		if t.Deprecated != "" {
			name += " (deprecated: " + t.Deprecated + ")"
		}
		effect := "honoured: " + t.Floe
		if t.Effect == NoEffect {
			effect = "**no effect in Floe**: " + t.Floe
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n",
			name, t.Type, code(t.Default), validValues(t), synonyms(t), escape(effect))
	}
	return b.String()
}

// BrokersMarkdown renders Brokers as the broker table of docs/configs.md.
func BrokersMarkdown() string {
	var b strings.Builder
	b.WriteString("| broker config | type | Kafka's default | in Floe |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, name := range slices.Sorted(maps.Keys(Brokers)) {
		c := Brokers[name]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", name, c.Type, code(c.Default), escape(c.Doc))
	}
	return b.String()
}

func code(s string) string {
	if s == "" {
		return "(empty)"
	}
	return "`" + s + "`"
}

func validValues(t Topic) string {
	var parts []string
	if len(t.Allowed) > 0 {
		q := make([]string, len(t.Allowed))
		for i, a := range t.Allowed {
			q[i] = "`" + a + "`"
		}
		sep := ", "
		if t.Type == List {
			parts = append(parts, "list of "+strings.Join(q, sep))
		} else {
			parts = append(parts, "one of "+strings.Join(q, sep))
		}
	}
	if r := t.Range; r != nil {
		if r.Max > 1e300 {
			parts = append(parts, fmt.Sprintf("≥ %v", r.Min))
		} else {
			parts = append(parts, fmt.Sprintf("%v … %v", r.Min, r.Max))
		}
	}
	switch t.Name {
	case "compression.gzip.level":
		parts = append(parts, "1 … 9, or -1")
	case "follower.replication.throttled.replicas", "leader.replication.throttled.replicas":
		parts = append(parts, "`*` or `PARTITION:BROKER,...`")
	case "message.format.version":
		parts = append(parts, "a Kafka version, e.g. `2.8` or `3.0-IV1`")
	}
	if len(parts) == 0 {
		return "any " + t.Type.String()
	}
	return strings.Join(parts, "; ")
}

func synonyms(t Topic) string {
	var names []string
	for _, s := range t.Broker {
		names = append(names, "`"+s.Name+"`")
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func escape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
