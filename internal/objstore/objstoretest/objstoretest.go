// Package objstoretest is the contract every objstore.Bucket backend must
// pass. A backend's tests call Run with a function that opens a fresh,
// empty bucket; the suite checks the behaviour the rest of Floe relies on.
//
// It must never test more than objstore.Bucket promises (for example it
// does not require overwrites to be refused or allowed), and it must never
// depend on one backend's internals, so that local, S3, GCS and Azure
// backends are held to the same rules.
//
// Deliberately unspecified, so not tested: zero-length reads of non-empty
// objects, reads at exactly the end of a non-empty object with length < 0,
// and a key that is both an object and a prefix of other keys ("a" and
// "a/b"), which a file-system bucket cannot store.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/objstore"
)

// Run runs the contract suite. open must return a new, empty bucket each
// time it is called; it may register cleanup with t.
func Run(t *testing.T, open func(t *testing.T) objstore.Bucket) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b objstore.Bucket)
	}{
		{"PutGetWhole", testPutGetWhole},
		{"GetRanges", testGetRanges},
		{"GetPastEnd", testGetPastEnd},
		{"NotFound", testNotFound},
		{"EmptyObject", testEmptyObject},
		{"NestedKeys", testNestedKeys},
		{"BuffersNotShared", testBuffersNotShared},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"ListOrderAndSizes", testListOrderAndSizes},
		{"ListPrefixes", testListPrefixes},
		{"ListStopsOnError", testListStopsOnError},
		{"Concurrent", testConcurrent},
		{"Canceled", testCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// payload returns n deterministic pseudo-random bytes, different per seed.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustPut(t *testing.T, b objstore.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func mustGet(t *testing.T, b objstore.Bucket, key string, offset, length int64) []byte {
	t.Helper()
	got, err := b.GetRange(context.Background(), key, offset, length)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, offset, length, err)
	}
	return got
}

func listAll(t *testing.T, b objstore.Bucket, prefix string) []objstore.ObjectInfo {
	t.Helper()
	var got []objstore.ObjectInfo
	err := b.List(context.Background(), prefix, func(oi objstore.ObjectInfo) error {
		got = append(got, oi)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func keysOf(infos []objstore.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, oi := range infos {
		keys[i] = oi.Key
	}
	return keys
}

func testPutGetWhole(t *testing.T, b objstore.Bucket) {
	for _, n := range []int{1, 100, 1 << 20} {
		key := fmt.Sprintf("whole/%d", n)
		want := payload(1, n)
		mustPut(t, b, key, want)
		if got := mustGet(t, b, key, 0, -1); !bytes.Equal(got, want) {
			t.Errorf("GetRange(%q, 0, -1) returned %d bytes, not the %d put", key, len(got), n)
		}
		if got := mustGet(t, b, key, 0, int64(n)); !bytes.Equal(got, want) {
			t.Errorf("GetRange(%q, 0, %d) differs from what was put", key, n)
		}
	}
}

func testGetRanges(t *testing.T, b objstore.Bucket) {
	const size = 10_000
	data := payload(2, size)
	mustPut(t, b, "ranges", data)
	tests := []struct {
		offset, length int64
	}{
		{0, 1},
		{0, 4096},
		{1, 1},
		{4095, 2},
		{1234, 5678},
		{size - 1, 1},
		{size - 100, 100},
		{size - 100, -1},
		{1, -1},
		{size - 1, -1},
	}
	for _, tt := range tests {
		got := mustGet(t, b, "ranges", tt.offset, tt.length)
		end := int64(size)
		if tt.length >= 0 {
			end = tt.offset + tt.length
		}
		if want := data[tt.offset:end]; !bytes.Equal(got, want) {
			t.Errorf("GetRange(%d, %d) returned %d bytes, want %d bytes of data[%d:%d]",
				tt.offset, tt.length, len(got), len(want), tt.offset, end)
		}
	}
}

func testGetPastEnd(t *testing.T, b objstore.Bucket) {
	const size = 1000
	mustPut(t, b, "short", payload(3, size))
	tests := []struct {
		offset, length int64
	}{
		{0, size + 1},
		{size - 1, 2},
		{size, 1},
		{size + 1, 1},
		{size + 1, -1},
		{size + 1000, -1},
		{-1, 1},
	}
	for _, tt := range tests {
		got, err := b.GetRange(context.Background(), "short", tt.offset, tt.length)
		if err == nil {
			t.Errorf("GetRange(%d, %d) of a %d-byte object returned %d bytes and no error",
				tt.offset, tt.length, size, len(got))
		}
	}
}

func testNotFound(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "dir/present", []byte("x"))
	for _, key := range []string{"missing", "dir/missing", "missing-dir/x", "dir/present/below"} {
		for _, r := range [][2]int64{{0, -1}, {0, 1}, {10, 5}} {
			_, err := b.GetRange(context.Background(), key, r[0], r[1])
			if !errors.Is(err, objstore.ErrNotFound) {
				t.Errorf("GetRange(%q, %d, %d) = %v, want an error wrapping objstore.ErrNotFound",
					key, r[0], r[1], err)
			}
		}
	}
	// A prefix of existing keys is not an object.
	if _, err := b.GetRange(context.Background(), "dir", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetRange of a key prefix %q = %v, want objstore.ErrNotFound", "dir", err)
	}
}

func testEmptyObject(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "empty", nil)
	mustPut(t, b, "empty2", []byte{})
	for _, key := range []string{"empty", "empty2"} {
		if got := mustGet(t, b, key, 0, -1); len(got) != 0 {
			t.Errorf("GetRange(%q, 0, -1) = %d bytes, want 0", key, len(got))
		}
		if _, err := b.GetRange(context.Background(), key, 0, 1); err == nil {
			t.Errorf("GetRange(%q, 0, 1) of an empty object: no error", key)
		}
	}
	infos := listAll(t, b, "empty")
	if len(infos) != 2 || infos[0].Size != 0 || infos[1].Size != 0 {
		t.Errorf("List(%q) = %+v, want two objects of size 0", "empty", infos)
	}
}

func testNestedKeys(t *testing.T, b objstore.Bucket) {
	keys := []string{
		"a/b/c/d/e/f.seg",
		"segments/0193c6f1-2b4c-7d3e-9f10-1234567890ab",
		"with spaces/and+plus=eq@at,comma/ünïcödé~tilde",
		"dots.in.names/x.y.z",
		"trailing-dash-/-leading",
	}
	for i, key := range keys {
		mustPut(t, b, key, payload(uint64(10+i), 100+i))
	}
	for i, key := range keys {
		if got := mustGet(t, b, key, 0, -1); !bytes.Equal(got, payload(uint64(10+i), 100+i)) {
			t.Errorf("GetRange(%q) differs from what was put", key)
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if got := keysOf(listAll(t, b, "")); !slices.Equal(got, want) {
		t.Errorf("List(\"\") = %q, want %q", got, want)
	}
	for _, key := range keys {
		if err := b.Delete(context.Background(), key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
	}
	if got := listAll(t, b, ""); len(got) != 0 {
		t.Errorf("List after deleting everything = %q, want nothing", keysOf(got))
	}
}

func testBuffersNotShared(t *testing.T, b objstore.Bucket) {
	data := []byte("immutable")
	mustPut(t, b, "k", data)
	data[0] = 'X' // the caller may reuse its buffer once Put returns
	got := mustGet(t, b, "k", 0, -1)
	if string(got) != "immutable" {
		t.Fatalf("after changing the Put buffer, GetRange = %q, want %q", got, "immutable")
	}
	got[0] = 'Y' // the caller owns what GetRange returns
	if got := mustGet(t, b, "k", 0, -1); string(got) != "immutable" {
		t.Errorf("after changing a GetRange result, GetRange = %q, want %q", got, "immutable")
	}
}

func testDeleteIdempotent(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	mustPut(t, b, "d/x", []byte("x"))
	mustPut(t, b, "d/y", []byte("y"))
	for i := range 2 {
		if err := b.Delete(ctx, "d/x"); err != nil {
			t.Fatalf("Delete #%d of d/x: %v", i+1, err)
		}
	}
	if err := b.Delete(ctx, "never/existed"); err != nil {
		t.Errorf("Delete of a key never written: %v", err)
	}
	if err := b.Delete(ctx, "d"); err != nil {
		t.Errorf("Delete of a key prefix %q: %v", "d", err)
	}
	if _, err := b.GetRange(ctx, "d/x", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetRange after Delete = %v, want objstore.ErrNotFound", err)
	}
	if got := mustGet(t, b, "d/y", 0, -1); string(got) != "y" {
		t.Errorf("Delete of d/x disturbed d/y: got %q", got)
	}
	if got := keysOf(listAll(t, b, "")); !slices.Equal(got, []string{"d/y"}) {
		t.Errorf("List after Delete = %q, want [d/y]", got)
	}
}

// listKeys are chosen so that a naive depth-first walk of directories
// returns them out of order: '-' < '/' < '0' < 's'.
var listKeys = map[string]int{
	"idx/a":    1,
	"seg-z":    2,
	"seg/0001": 30,
	"seg/0002": 40,
	"seg/01/x": 5,
	"segs":     6,
	"z":        0,
}

func putListKeys(t *testing.T, b objstore.Bucket) {
	t.Helper()
	for key, size := range listKeys {
		mustPut(t, b, key, payload(uint64(size), size))
	}
}

func testListOrderAndSizes(t *testing.T, b objstore.Bucket) {
	putListKeys(t, b)
	got := listAll(t, b, "")
	want := slices.Sorted(func(yield func(string) bool) {
		for k := range listKeys {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keysOf(got), want) {
		t.Fatalf("List(\"\") = %q, want %q", keysOf(got), want)
	}
	for _, oi := range got {
		if oi.Size != int64(listKeys[oi.Key]) {
			t.Errorf("List: %q has size %d, want %d", oi.Key, oi.Size, listKeys[oi.Key])
		}
		if oi.Modified.IsZero() {
			t.Errorf("List: %q has no modification time", oi.Key)
		}
	}
}

func testListPrefixes(t *testing.T, b objstore.Bucket) {
	putListKeys(t, b)
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"idx/a", "seg-z", "seg/0001", "seg/0002", "seg/01/x", "segs", "z"}},
		{"seg", []string{"seg-z", "seg/0001", "seg/0002", "seg/01/x", "segs"}},
		{"seg/", []string{"seg/0001", "seg/0002", "seg/01/x"}},
		{"seg/0", []string{"seg/0001", "seg/0002", "seg/01/x"}},
		{"seg/00", []string{"seg/0001", "seg/0002"}},
		{"seg/01", []string{"seg/01/x"}},
		{"seg/01/", []string{"seg/01/x"}},
		{"seg/01/x", []string{"seg/01/x"}},
		{"seg/01/xy", nil},
		{"idx", []string{"idx/a"}},
		{"z", []string{"z"}},
		{"zz", nil},
		{"nope/", nil},
		{"a", nil},
	}
	for _, tt := range tests {
		if got := keysOf(listAll(t, b, tt.prefix)); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func testListStopsOnError(t *testing.T, b objstore.Bucket) {
	putListKeys(t, b)
	stop := errors.New("stop here")
	var calls int
	err := b.List(context.Background(), "", func(objstore.ObjectInfo) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the error fn returned", err)
	}
	if calls != 2 {
		t.Errorf("List called fn %d times after it returned an error at call 2", calls)
	}
}

func testConcurrent(t *testing.T, b objstore.Bucket) {
	const workers, rounds = 16, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := context.Background()
			for r := range rounds {
				key := fmt.Sprintf("conc/%02d/%02d", w, r)
				want := payload(uint64(w*rounds+r), 1000+w*10+r)
				if err := b.Put(ctx, key, want); err != nil {
					t.Errorf("Put(%q): %v", key, err)
					return
				}
				got, err := b.GetRange(ctx, key, 0, -1)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("GetRange(%q) = %d bytes, %v; want what was put", key, len(got), err)
					return
				}
				got, err = b.GetRange(ctx, key, 7, 100)
				if err != nil || !bytes.Equal(got, want[7:107]) {
					t.Errorf("GetRange(%q, 7, 100) = %d bytes, %v; want what was put", key, len(got), err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := listAll(t, b, "conc/"); len(got) != workers*rounds {
		t.Errorf("List(conc/) after concurrent puts = %d objects, want %d", len(got), workers*rounds)
	}
}

func testCanceled(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "exists", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	if err := b.Put(ctx, "canceled", []byte("data")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context = %v, want context.Canceled", err)
	}
	// A failed Put must not leave an object, whole or partial.
	if _, err := b.GetRange(context.Background(), "canceled", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("GetRange after a canceled Put = %v, want objstore.ErrNotFound", err)
	}
	if _, err := b.GetRange(ctx, "exists", 0, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("GetRange with a canceled context = %v, want context.Canceled", err)
	}
	err := b.List(ctx, "", func(objstore.ObjectInfo) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled context = %v, want context.Canceled", err)
	}
}
