package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
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

// TestAdminAdvertiseAndPeerCA: --admin-advertise takes only a base
// http(s) URL, and --admin-peer-ca must hold a certificate.
func TestAdminAdvertiseAndPeerCA(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--admin-advertise", "https://10.0.0.1:9644"}, true},
		{[]string{"--admin-advertise", "http://agent-1.internal:9644/"}, true},
		{[]string{"--admin-advertise", "10.0.0.1:9644"}, false},
		{[]string{"--admin-advertise", "javascript:alert(1)"}, false},
		{[]string{"--admin-advertise", "http://u:p@10.0.0.1:9644"}, false},
		{[]string{"--admin-advertise", "http://10.0.0.1:9644/console"}, false},
		{[]string{"--admin-peer-ca", notPEM}, false},
		{[]string{"--admin-peer-ca", filepath.Join(dir, "missing.pem")}, false},
	} {
		var cfg agent.Config
		var f securityFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.register(fs, &cfg)
		err := fs.Parse(tc.args)
		if err == nil {
			err = f.apply(&cfg)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}
