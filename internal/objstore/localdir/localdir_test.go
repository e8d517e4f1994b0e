package localdir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/objstore/objstoretest"
)

func openTemp(t *testing.T) *localdir.Bucket {
	t.Helper()
	b, err := localdir.Open(filepath.Join(t.TempDir(), "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Bucket { return openTemp(t) })
}

func TestBadKeys(t *testing.T) {
	b := openTemp(t)
	ctx := context.Background()
	bad := []string{
		"",
		"/abs",
		"/",
		"..",
		"../escape",
		"a/../../escape",
		"a/..",
		"a/./b",
		".",
		"a//b",
		"trailing/",
		"nul\x00byte",
		`back\slash`,
		".tmp",
		".tmp/put-123",
	}
	for _, key := range bad {
		if err := b.Put(ctx, key, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if _, err := b.GetRange(ctx, key, 0, -1); err == nil || errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q) = %v, want a bad-key error", key, err)
		}
		if err := b.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded, want an error", key)
		}
	}
	// Nothing escaped the bucket directory.
	entries, err := os.ReadDir(filepath.Dir(b.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("bucket's parent directory has %d entries, want only the bucket", len(entries))
	}
	// Names that merely contain dots are fine.
	for _, key := range []string{"a..b", "..a", "a/.hidden", "x/.tmp/y", ".tmpfoo"} {
		if err := b.Put(ctx, key, []byte("x")); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}
}

func TestLayout(t *testing.T) {
	b := openTemp(t)
	ctx := context.Background()
	if err := b.Put(ctx, "segments/abc", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(b.Dir(), "segments", "abc"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("file for key segments/abc = %q, %v; want %q", got, err, "hello")
	}
	// Puts leave no temporary files behind, and List never shows .tmp.
	tmp, err := os.ReadDir(filepath.Join(b.Dir(), ".tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf(".tmp holds %d entries (%v) after a Put, want 0", len(tmp), err)
	}
	if err := os.WriteFile(filepath.Join(b.Dir(), ".tmp", "put-in-progress"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(oi objstore.ObjectInfo) error {
		keys = append(keys, oi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"segments/abc"}) {
		t.Errorf("List = %q, want [segments/abc]", keys)
	}
}

func TestOpenRemovesStaleTemporaryFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bucket")
	if _, err := localdir.Open(dir); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".tmp", "put-stale")
	fresh := filepath.Join(dir, ".tmp", "put-fresh")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := localdir.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary file survived Open: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temporary file (maybe a Put in progress) was removed: %v", err)
	}
}

func TestOpenEmptyDir(t *testing.T) {
	if _, err := localdir.Open(""); err == nil {
		t.Error("Open(\"\") succeeded, want an error")
	}
}
