package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestControlURLErrors checks that a floe:// metastore URL is parsed
// before anything is dialled, and that errors never show the key.
func TestControlURLErrors(t *testing.T) {
	for _, raw := range []string{
		"floe://127.0.0.1:1/?key=sekrit", // no vcluster
		"floe:///prod?key=sekrit",        // no address
		"floe://127.0.0.1:1/prod",        // no key
		"floe://127.0.0.1:1/prod?key=sekrit&ca=/nonexistent/ca.pem",
		"floe://127.0.0.1:1/prod?key=sekrit", // nothing listens there
	} {
		_, err := openMetastoreURL(t.Context(), raw, nil)
		if err == nil {
			t.Errorf("%s: opened", raw)
			continue
		}
		if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("%s: error shows the key: %v", raw, err)
		}
	}
}

func TestControlCommandUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"control", "--listen", "127.0.0.1:0"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--journal") {
		t.Errorf("control without --journal: %v", err)
	}
	if err := run([]string{"control", "vcluster", "rename", "x", "--control", "127.0.0.1:1"}, &out, &errOut); err == nil {
		t.Error("unknown vcluster verb accepted")
	}
	if err := run([]string{"control", "vcluster", "create", "x", "--control", "127.0.0.1:1"}, &out, &errOut); err == nil {
		t.Error("create against no control plane succeeded")
	}
	// Backup flags are checked before anything is dialled.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"control", "--journal", "postgres://127.0.0.1:1/x", "--trim-journal"}, "--trim-journal needs --bucket"},
		{[]string{"control", "--journal", "postgres://127.0.0.1:1/x", "--keep-snapshots", "1"}, "--keep-snapshots"},
		{[]string{"control", "--journal", "postgres://127.0.0.1:1/x", "--backup-interval", "0s"}, "must be positive"},
		{[]string{"control", "--journal", "postgres://127.0.0.1:1/x", "--bucket", "ftp://nope"}, "--bucket"},
		{[]string{"control", "restore", "--journal", "postgres://127.0.0.1:1/x"}, "--bucket and --journal are required"},
		{[]string{"control", "restore", "--bucket", "file:///tmp/x"}, "--bucket and --journal are required"},
		{[]string{"control", "restore", "--bucket", "file:///tmp/x", "--journal", "postgres://127.0.0.1:1/x", "extra"}, "unexpected arguments"},
	} {
		if err := run(tc.args, &out, &errOut); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}
