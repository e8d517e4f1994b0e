package remote

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// cborHead appends a CBOR item head of major type m and argument n.
func cborHead(b []byte, m byte, n int) []byte {
	switch {
	case n < 24:
		return append(b, m<<5|byte(n))
	case n < 1<<8:
		return append(b, m<<5|24, byte(n))
	case n < 1<<16:
		return append(b, m<<5|25, byte(n>>8), byte(n))
	default:
		return append(b, m<<5|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func cborText(b []byte, s string) []byte { return append(cborHead(b, 3, len(s)), s...) }

// hostileArgs are op arguments that a naive decoder turns into far more
// memory than their size: one-byte items (an empty map) that each become
// a whole struct, nested so that the per-array count limit does not bound
// the total. pad adds a field no struct has (skipped by the decoder) of
// pad bytes, to make the same shape cheaper per byte.
func hostileArgs(pad int) map[string][]byte {
	const budget = MaxFrame - 4096
	padding := func(b []byte) []byte {
		b = cborText(b, "Pad")
		b = cborHead(b, 2, pad)
		return append(b, make([]byte, pad)...)
	}
	pairs := func(n int) int {
		if pad > 0 {
			return n + 1
		}
		return n
	}
	out := map[string][]byte{}
	// ReplaceExtents: [{"New": [{} × m]} × k]
	{
		m := MaxArrayElements
		if pad > 0 {
			m /= 16 // a smaller unit, so that padding can balance it
		}
		k := max(1, (budget-pad)/(m+16))
		var args []byte
		args = cborHead(args, 4, k)
		for i := range k {
			if i == 0 {
				args = cborHead(args, 5, pairs(1))
				if pad > 0 {
					args = padding(args)
				}
			} else {
				args = cborHead(args, 5, 1)
			}
			args = cborText(args, "New")
			args = cborHead(args, 4, m)
			args = append(args, bytes.Repeat([]byte{0xa0}, m)...)
		}
		out["ReplaceExtents"] = args
	}
	// CommitSegment: {"Batches": [[h'', 0 × 8, false] × n]}: the
	// smallest batch the decoder takes (11 bytes for a struct of 80),
	// bounded by the count limit.
	{
		n := MaxArrayElements
		var args []byte
		args = cborHead(args, 5, pairs(1))
		if pad > 0 {
			args = padding(args)
		}
		args = cborText(args, "Batches")
		args = cborHead(args, 4, n)
		zero := append([]byte{0x8a, 0x40}, make([]byte, 8)...)
		args = append(args, bytes.Repeat(append(zero, 0xf4), n)...)
		out["CommitSegment"] = args
	}
	// [{} × n], many small structs: ACLs, and segments of nothing.
	{
		n := MaxArrayElements
		var args []byte
		args = cborHead(args, 4, n)
		if pad > 0 {
			args = cborHead(args, 5, 1)
			args = padding(args)
			n--
		}
		args = append(args, bytes.Repeat([]byte{0xa0}, n)...)
		out["CreateACLs"] = args
		out["CommitSegments"] = args
	}
	return out
}

func request(op string, args []byte) []byte {
	var b []byte
	b = cborHead(b, 5, 2)
	b = cborText(b, "op")
	b = cborText(b, op)
	b = cborText(b, "args")
	return append(b, args...)
}

// decodeRequest is what the server does with a request's payload before
// it runs it: the envelope, then the op's arguments.
func decodeRequest(payload []byte) error {
	var req Request
	if err := Unmarshal(payload, &req); err != nil {
		return err
	}
	o, _ := Lookup(req.Op)
	_, err := o.Decode(req.Args)
	return err
}

// maxDecodeFactor is the bound: decoding a request allocates at most this
// many times its bytes, plus decodeOverhead.
const (
	maxDecodeFactor = 8
	decodeOverhead  = 1 << 20
)

// TestDecodeMemoryBounded decodes hostile requests and measures what the
// decoding allocated: at most maxDecodeFactor times the frame, plus a
// constant, whether the request is refused or not. Each shape is tried as
// is (refused) and padded until the server's estimate just admits it (so
// the estimate is checked against what decoding really allocates).
func TestDecodeMemoryBounded(t *testing.T) {
	for op := range hostileArgs(0) {
		// The least padding that the estimate admits (a bisection: the
		// shape's size depends on the padding).
		o, _ := Lookup(op)
		typ := reflect.TypeOf(must1(o.Decode(nil)))
		lo, hi := 0, MaxFrame-(64<<10)
		for range 24 {
			if hi-lo <= 1024 {
				break
			}
			mid := (lo + hi) / 2
			if checkDecodeCost(hostileArgs(mid)[op], typ) == nil {
				hi = mid
			} else {
				lo = mid
			}
		}
		pad := hi
		for _, p := range []int{0, pad} {
			payload := request(op, hostileArgs(p)[op])
			t.Run(fmt.Sprintf("%s/pad=%d", op, p), func(t *testing.T) {
				if len(payload) > MaxFrame {
					t.Fatalf("test request of %d bytes over the frame limit", len(payload))
				}
				alloc, err := measureAlloc(func() error { return decodeRequest(payload) })
				t.Logf("%d-byte request, allocated %d bytes decoding (%.1f×), err=%v",
					len(payload), alloc, float64(alloc)/float64(len(payload)), err)
				if p > 0 && err != nil {
					t.Fatalf("padded request refused: %v", err)
				}
				if limit := uint64(maxDecodeFactor*len(payload) + decodeOverhead); alloc > limit {
					t.Fatalf("decoding a %d-byte request allocated %d bytes, over %d", len(payload), alloc, limit)
				}
			})
		}
	}
}

func must1[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func measureAlloc(fn func() error) (uint64, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, err
}

// TestDecodeCostAdmitsRealRequests checks that the bound does not refuse
// what a client sends: the largest segment commit the count limit
// allows, a replacement of many extents, a group with members.
func TestDecodeCostAdmitsRealRequests(t *testing.T) {
	batches := make([]metastore.BatchCommit, MaxArrayElements)
	for i := range batches {
		batches[i] = metastore.BatchCommit{Partition: int32(i), ByteOffset: int64(i) * 100, ByteLength: 100, OffsetCount: 1, ProducerID: -1}
	}
	extents := make([]metastore.Extent, 10000)
	for i := range extents {
		extents[i] = metastore.Extent{BaseOffset: int64(i), EndOffset: int64(i + 1), Object: "o", ObjectSize: 1, ByteLength: 1, CommittedAt: time.Unix(int64(i), 0)}
	}
	acls := make([]metastore.ACL, 20000)
	cases := map[string]any{
		"CommitSegment":  metastore.SegmentCommit{Object: "segments/x", Size: 1 << 30, Batches: batches},
		"ReplaceExtents": []metastore.PartitionReplacement{{Partition: 1, New: extents}},
		"CreateACLs":     acls,
		"CommitSegments": []metastore.SegmentCommit{
			{Object: "segments/x", Size: 1 << 30, Batches: batches[:MaxArrayElements/2]},
			{Object: "segments/y", Size: 1 << 30, Batches: batches[MaxArrayElements/2:]},
		},
	}
	for op, args := range cases {
		raw, err := Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := Lookup(op)
		var alloc uint64
		alloc, err = measureAlloc(func() error { _, err := o.Decode(raw); return err })
		t.Logf("%s: %d bytes of arguments, allocated %d decoding (%.1f×)", op, len(raw), alloc, float64(alloc)/float64(len(raw)))
		if err != nil {
			t.Fatalf("%s refused: %v", op, err)
		}
	}
}

// TestDecodeCostWalksArrayStructs checks that the estimate follows the
// fields of a struct encoded as an array: a slice inside one counts as
// it does inside a map-encoded struct.
func TestDecodeCostWalksArrayStructs(t *testing.T) {
	type arrayed struct {
		_     struct{} `cbor:",toarray"`
		Name  string
		Items []metastore.Extent
	}
	const n = 10000
	var raw []byte
	raw = cborHead(raw, 4, 2)
	raw = cborText(raw, "x")
	raw = cborHead(raw, 4, n)
	raw = append(raw, bytes.Repeat([]byte{0xa0}, n)...) // n empty maps: n whole Extents
	err := checkDecodeCost(raw, reflect.TypeFor[arrayed]())
	if !errors.Is(err, ErrDecodeCost) {
		t.Fatalf("%d empty extents in an array-encoded struct (%d bytes): %v, want ErrDecodeCost", n, len(raw), err)
	}
	if err := checkDecodeCost(must1(Marshal(arrayed{Name: "x", Items: make([]metastore.Extent, 3)})), reflect.TypeFor[arrayed]()); err != nil {
		t.Fatalf("a real value refused: %v", err)
	}
}
