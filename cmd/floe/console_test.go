package main

import (
	"flag"
	"io"
	"testing"

	"github.com/floe-io/floe/internal/agent"
)

func TestRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://floe:s3cret@db:5432/floe?sslmode=disable&password=x": "postgres://floe@db:5432/floe",
		"embedded:///var/lib/floe/m.db":                                  "embedded:///var/lib/floe/m.db",
		"postgres://db/floe?password=hunter2":                            "postgres://db/floe",
		"%zz":                                                            "(unparsable URL)",
	} {
		if got := redactedURL(in); got != want {
			t.Errorf("redactedURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsoleFlag(t *testing.T) {
	for args, off := range map[string]bool{"": false, "--console": false, "--console=false": true, "--console=true": false} {
		var cfg agent.Config
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		registerConsoleFlags(fs, &cfg)
		var a []string
		if args != "" {
			a = []string{args}
		}
		if err := fs.Parse(a); err != nil || cfg.NoConsole != off {
			t.Errorf("%q: NoConsole %v (%v), want %v", args, cfg.NoConsole, err, off)
		}
	}
}
