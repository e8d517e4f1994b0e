package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/sasl"
)

// TestUsersSet: floe users set stores a SCRAM credential (never the
// password) that the password read from stdin verifies; list shows it
// and delete removes it.
func TestUsersSet(t *testing.T) {
	dir := t.TempDir()
	run := func(in string, args ...string) (string, error) {
		stdin = strings.NewReader(in)
		defer func() { stdin = os.Stdin }()
		var out, errOut bytes.Buffer
		err := usersCmd(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if _, err := run("s3cret\n", "set", "--data-dir", dir, "admin", "--mechanism", "SCRAM-SHA-256", "--iterations", "4096"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("", "set", "--data-dir", dir, "nopw"); err == nil {
		t.Fatal("an empty password was accepted")
	}
	if _, err := run("x\n", "set", "--data-dir", dir, "--iterations", "10", "weak"); err == nil {
		t.Fatal("10 iterations were accepted")
	}
	out, err := run("", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "admin  SCRAM-SHA-256  4096") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	store, err := embedded.Open(filepath.Join(dir, "metadata.db"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := store.ScramCredential(context.Background(), "admin", metastore.ScramSHA256)
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	salted, _ := sasl.SaltedPassword(metastore.ScramSHA256, []byte("s3cret"), c.Salt, int(c.Iterations))
	if want := sasl.NewCredential(metastore.ScramSHA256, salted, c.Salt, c.Iterations); !bytes.Equal(want.StoredKey, c.StoredKey) {
		t.Fatal("the stored key does not come from the password on stdin")
	}
	if _, err := run("", "delete", "--data-dir", dir, "--mechanism", "SCRAM-SHA-256", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("", "delete", "--data-dir", dir, "--mechanism", "SCRAM-SHA-256", "admin"); err == nil {
		t.Fatal("deleting twice succeeded")
	}
}
