package agent

import "testing"

func TestZoneHint(t *testing.T) {
	for id, want := range map[string]string{
		"":                            "",
		"my-app":                      "",
		"floe_az=us-east-1a":          "us-east-1a",
		"my-app,floe_az=us-east-1b":   "us-east-1b",
		"floe_az=eu-west-1c;team=pay": "eu-west-1c",
		"a floe_az=z1 b":              "z1",
		"x&floe_az=z2&y":              "z2",
	} {
		if got := ZoneHint(id); got != want {
			t.Errorf("ZoneHint(%q) = %q, want %q", id, got, want)
		}
	}
}
