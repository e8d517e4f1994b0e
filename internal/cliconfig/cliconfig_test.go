package cliconfig_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/cliconfig"
)

type values struct {
	cacheBytes int64
	linger     time.Duration
	listen     string
	auto       bool
	roles      string
	password   string
}

func newFlags(v *values) *flag.FlagSet {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int64Var(&v.cacheBytes, "cache-bytes", 256, "")
	fs.DurationVar(&v.linger, "linger", 250*time.Millisecond, "")
	fs.StringVar(&v.listen, "listen", "127.0.0.1:9092", "")
	fs.BoolVar(&v.auto, "auto-create-topics", true, "")
	fs.StringVar(&v.roles, "roles", "produce,fetch,jobs", "")
	fs.StringVar(&v.password, "sasl-password", "", "")
	return fs
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "floe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func byName(settings []cliconfig.Setting) map[string]cliconfig.Setting {
	m := map[string]cliconfig.Setting{}
	for _, s := range settings {
		m[s.Name] = s
	}
	return m
}

// TestPrecedence: flag > environment > file > default, per flag, and the
// origin of each value is reported.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
cache-bytes: 1000        # flag and env too: the flag wins
linger: 100ms            # env too: env wins
listen: 0.0.0.0:9999     # file only
roles: [produce, fetch]  # a list
auto-create-topics: false
`)
	var v values
	fs := newFlags(&v)
	settings, err := cliconfig.Parse(fs, []string{"--config", file, "--cache-bytes", "7"}, cliconfig.Options{
		LookupEnv: env(map[string]string{"FLOE_CACHE_BYTES": "8", "FLOE_LINGER": "50ms"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.cacheBytes != 7 || v.linger != 50*time.Millisecond || v.listen != "0.0.0.0:9999" || v.auto || v.roles != "produce,fetch" {
		t.Fatalf("values %+v", v)
	}
	got := byName(settings)
	for name, want := range map[string]struct {
		origin cliconfig.Origin
		where  string
	}{
		"cache-bytes":        {cliconfig.FromFlag, ""},
		"linger":             {cliconfig.FromEnv, "FLOE_LINGER"},
		"listen":             {cliconfig.FromFile, file},
		"roles":              {cliconfig.FromFile, file},
		"auto-create-topics": {cliconfig.FromFile, file},
		"sasl-password":      {cliconfig.FromDefault, ""},
		"config":             {cliconfig.FromFlag, ""},
	} {
		if s := got[name]; s.Origin != want.origin || s.Where != want.where {
			t.Errorf("%s: origin %s %q, want %s %q", name, s.Origin, s.Where, want.origin, want.where)
		}
	}
}

// TestConfigFromEnv: FLOE_CONFIG names the file when --config is absent.
func TestConfigFromEnv(t *testing.T) {
	file := writeFile(t, "linger: 1s\n")
	var v values
	settings, err := cliconfig.Parse(newFlags(&v), nil, cliconfig.Options{LookupEnv: env(map[string]string{"FLOE_CONFIG": file})})
	if err != nil {
		t.Fatal(err)
	}
	if v.linger != time.Second {
		t.Fatalf("linger %v", v.linger)
	}
	if s := byName(settings)["config"]; s.Origin != cliconfig.FromEnv || s.Value != file {
		t.Fatalf("config setting %+v", s)
	}
}

// TestFileErrors: what the file may not hold, each error naming the key
// or line.
func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "linger: 1s\ncache-byte: 5\n", `unknown key "cache-byte"`},
		{"bad value", "linger: soon\n", `key "linger": invalid value`},
		{"duplicate", "linger: 1s\nlinger: 2s\n", `key "linger" given twice`},
		{"nested", "linger:\n  a: 1\n", `key "linger": want a value`},
		{"null", "linger:\n", `key "linger" has no value`},
		{"not a mapping", "- linger\n", "want a mapping"},
		{"two documents", "linger: 1s\n---\nlisten: x\n", "more than one YAML document"},
		{"config in config", "config: other.yaml\n", "cannot name another"},
		{"secret value not echoed", "sasl-password: [a, [b]]\n", "plain values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v values
			_, err := cliconfig.Parse(newFlags(&v), []string{"--config", writeFile(t, tc.body)}, cliconfig.Options{LookupEnv: env(nil)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	var v values
	if _, err := cliconfig.Parse(newFlags(&v), []string{"--config", "/nonexistent/floe.yaml"}, cliconfig.Options{LookupEnv: env(nil)}); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := cliconfig.Parse(newFlags(&v), []string{"--config", writeFile(t, "# nothing\n")}, cliconfig.Options{LookupEnv: env(nil)}); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

// TestEnvErrorHidesValue: a refused environment value is named by its
// variable, never echoed (it may be a secret).
func TestEnvErrorHidesValue(t *testing.T) {
	var v values
	_, err := cliconfig.Parse(newFlags(&v), nil, cliconfig.Options{LookupEnv: env(map[string]string{"FLOE_CACHE_BYTES": "hunter2"})})
	if err == nil || !strings.Contains(err.Error(), "FLOE_CACHE_BYTES") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}

func TestHelp(t *testing.T) {
	var v values
	if _, err := cliconfig.Parse(newFlags(&v), []string{"-h"}, cliconfig.Options{}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"sasl-password", "hunter2", cliconfig.Redacted},
		{"sasl-password", "", ""},
		{"admin-token-file", "/etc/floe/token", "/etc/floe/token"},
		{"peer-secret-file", "/run/secret", "/run/secret"},
		{"metastore", "postgres://floe:hunter2@db:5432/floe?sslmode=disable", "postgres://floe:xxxxx@db:5432/floe?sslmode=disable"},
		{"metastore", "postgres://floe@db/floe?password=hunter2&sslmode=require", "postgres://floe@db/floe?password=xxxxx&sslmode=require"},
		{"bucket", "s3://b/p?endpoint=http://127.0.0.1:7070&path_style=true", "s3://b/p?endpoint=http://127.0.0.1:7070&path_style=true"},
		{"listeners", "PLAINTEXT://u:pw@h:1,SSL://h:2", "PLAINTEXT://u:xxxxx@h:1,SSL://h:2"},
		{"metastore", "host=db user=floe password=hunter2", cliconfig.Redacted},
		{"linger", "250ms", "250ms"},
	} {
		if got := cliconfig.Redact(tc.name, tc.value); got != tc.want {
			t.Errorf("Redact(%s, %s) = %s, want %s", tc.name, tc.value, got, tc.want)
		}
		if tc.want != tc.value && strings.Contains(cliconfig.Redact(tc.name, tc.value), "hunter2") {
			t.Errorf("%s: secret shown", tc.name)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := cliconfig.EnvName("cache-bytes"); got != "FLOE_CACHE_BYTES" {
		t.Fatal(got)
	}
}
