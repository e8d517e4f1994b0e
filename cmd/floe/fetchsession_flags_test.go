package main

import "testing"

// TestFetchSessionFlags: --fetch-session-cache-slots is Kafka's
// max.incremental.fetch.session.cache.slots, 1000 by default and 0 for
// none (the agent's Slots < 0, since its zero value means the default).
func TestFetchSessionFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		slots int
		parts int
	}{
		{nil, 1000, 1_000_000},
		{[]string{"--fetch-session-cache-slots", "10", "--fetch-session-cache-partitions", "5000"}, 10, 5000},
		{[]string{"--fetch-session-cache-slots", "0"}, -1, 1_000_000},
	} {
		cfg, err := parseAgentFlags(tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		if o := cfg.FetchSessions; o.Slots != tc.slots || o.MaxPartitions != tc.parts {
			t.Errorf("%q: slots %d, partitions %d; want %d, %d", tc.args, o.Slots, o.MaxPartitions, tc.slots, tc.parts)
		}
	}
}
