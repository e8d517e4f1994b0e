package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

// TestClockSkewFlag: --clock-skew offsets the agent's clock and is left
// out of the usage.
func TestClockSkewFlag(t *testing.T) {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	var f agentFlags
	f.register(fs, "")
	if err := fs.Parse([]string{"--clock-skew", "-90s"}); err != nil {
		t.Fatal(err)
	}
	if err := f.finish(); err != nil {
		t.Fatal(err)
	}
	if f.cfg.Clock == nil {
		t.Fatal("--clock-skew set no clock")
	}
	if d := time.Until(f.cfg.Clock()); d > -89*time.Second || d < -91*time.Second {
		t.Errorf("the skewed clock is %v from now, want -90s", d)
	}
	fs.Usage()
	if strings.Contains(usage.String(), "clock-skew") || !strings.Contains(usage.String(), "-linger") {
		t.Errorf("usage shows --clock-skew or misses other flags:\n%s", usage.String())
	}

	var g agentFlags
	gs := flag.NewFlagSet("agent", flag.ContinueOnError)
	g.register(gs, "")
	if err := gs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := g.finish(); err != nil {
		t.Fatal(err)
	}
	if g.cfg.Clock != nil {
		t.Errorf("without --clock-skew the agent's clock is replaced")
	}
}
