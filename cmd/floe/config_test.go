package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "floe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrint: floe config print shows every flag's effective value
// and its origin, flag over environment over file over default, with
// secrets redacted; its output is itself a valid --config file.
func TestConfigPrint(t *testing.T) {
	file := writeConfig(t, `
bucket: s3://floe/prod?endpoint=http://127.0.0.1:7070&path_style=true
metastore: postgres://floe:hunter2@db:5432/floe?sslmode=disable
linger: 100ms
cache-bytes: 1024
admin-token-file: /run/secrets/admin-token
`)
	t.Setenv("FLOE_CACHE_BYTES", "2048")
	t.Setenv("FLOE_ZONE", "eu-west-1a")
	t.Setenv("FLOE_ADMIN_TOKEN", "s3cr3t-token-value")
	var out, errOut bytes.Buffer
	if err := run([]string{"config", "print", "agent", "--config", file, "--linger", "50ms"}, &out, &errOut); err != nil {
		t.Fatalf("config print: %v\n%s", err, errOut.String())
	}
	got := out.String()
	t.Logf("\n%s", got)
	norm := map[string]string{}
	for _, l := range strings.Split(got, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			norm[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	for key, want := range map[string]string{
		"linger":           "50ms # flag",
		"cache-bytes":      "2048 # env FLOE_CACHE_BYTES",
		"zone":             "eu-west-1a # env FLOE_ZONE",
		"metastore":        "postgres://floe:xxxxx@db:5432/floe?sslmode=disable # file " + file,
		"bucket":           "s3://floe/prod?endpoint=http://127.0.0.1:7070&path_style=true # file " + file,
		"admin-token-file": "/run/secrets/admin-token # file " + file,
		"segment-bytes":    "8388608 # default",
	} {
		if norm[key] != want {
			t.Errorf("%s: %q, want %q", key, norm[key], want)
		}
	}
	for _, secret := range []string{"hunter2", "s3cr3t-token-value"} {
		if strings.Contains(got, secret) {
			t.Errorf("config print shows the secret %q", secret)
		}
	}
	if !strings.Contains(got, "# FLOE_ADMIN_TOKEN: <redacted> from the environment") {
		t.Error("config print does not say FLOE_ADMIN_TOKEN is set")
	}
	// What it prints is a configuration file that gives the same values.
	again := writeConfig(t, got)
	os.Unsetenv("FLOE_CACHE_BYTES")
	out.Reset()
	if err := run([]string{"config", "print", "agent", "--config", again}, &out, &errOut); err != nil {
		t.Fatalf("config print of its own output: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "cache-bytes: 2048") || !strings.Contains(out.String(), "linger: 50ms") {
		t.Errorf("printed configuration does not round-trip:\n%s", out.String())
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "print", "agent", "--config", writeConfig(t, "linger: 1s\ncache-byts: 5\n")}, `unknown key "cache-byts"`},
		{[]string{"playground", "--config", writeConfig(t, "lingr: 1s\n")}, `unknown key "lingr"`},
		{[]string{"config", "print", "check"}, "takes no configuration file"},
		{[]string{"config", "show"}, "unknown config command"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestPlaygroundConfigFileAndEnv: a playground takes its settings from the
// file and the environment, the environment winning.
func TestPlaygroundConfigFileAndEnv(t *testing.T) {
	file := writeConfig(t, "cluster-id: from-file\ndefault-partitions: 3\n")
	t.Setenv("FLOE_CLUSTER_ID", "from-env")
	p := startPlayground(t, "--config", file)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.Bootstrap), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != "from-env" {
		t.Errorf("cluster id %q, want from-env (FLOE_CLUSTER_ID over the file)", meta.Cluster)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto"].Partitions); n != 3 {
		t.Errorf("auto-created topic has %d partitions, want 3 (default-partitions from the file)", n)
	}
}
