package remote

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// TestRequestEnvelope checks that AppendRequest writes what Marshal
// writes for a Request, and that DecodeRequest reads what Unmarshal
// reads, on the fast path and off it.
func TestRequestEnvelope(t *testing.T) {
	for _, op := range []string{"", "Topics", "CommitSegment", strings.Repeat("x", 23), strings.Repeat("y", 24), strings.Repeat("z", 255), strings.Repeat("w", 256), strings.Repeat("v", 70000)} {
		for _, args := range [][]byte{nil, {0xa0}, must1(Marshal(map[string]int{"a": 1})), must1(Marshal([]string{"p", "q"}))} {
			want := must1(Marshal(Request{Op: op, Args: args}))
			got := AppendRequest(nil, op, args)
			if !bytes.Equal(got, want) {
				t.Fatalf("op of %d bytes, args %x: AppendRequest wrote %x, Marshal %x", len(op), args, got, want)
			}
			var ref Request
			if err := Unmarshal(want, &ref); err != nil {
				t.Fatal(err)
			}
			req, err := DecodeRequest(got)
			if err != nil || req.Op != ref.Op || !bytes.Equal(req.Args, ref.Args) {
				t.Fatalf("op of %d bytes, args %x: DecodeRequest read %q %x (%v), Unmarshal %q %x", len(op), args, req.Op, req.Args, err, ref.Op, ref.Args)
			}
		}
	}
	// Other shapes go to Unmarshal: the keys the other way round, an
	// extra key, no args, not a map, garbage.
	other := []any{
		map[string]any{"args": []int{1}, "op": "Topics"},
		map[string]any{"op": "Topics", "args": 1, "x": 2},
		map[string]any{"op": "Topics"},
		[]any{"op", "Topics"},
	}
	for _, v := range other {
		p := must1(cbor.Marshal(v))
		var ref Request
		refErr := Unmarshal(p, &ref)
		req, err := DecodeRequest(p)
		if (err == nil) != (refErr == nil) || req.Op != ref.Op || !bytes.Equal(req.Args, ref.Args) {
			t.Errorf("%x: DecodeRequest %q %x %v, Unmarshal %q %x %v", p, req.Op, req.Args, err, ref.Op, ref.Args, refErr)
		}
	}
	for _, p := range [][]byte{nil, {0xa2}, {0xa2, 0x62, 'o', 'p'}, {0xa2, 0x62, 'o', 'p', 0x66, 'T'}, {0xa2, 0x62, 'o', 'p', 0x61, 'T', 0x64, 'a', 'r', 'g', 's'}} {
		if _, err := DecodeRequest(p); err == nil {
			t.Errorf("%x: no error", p)
		}
	}
}

// FuzzDecodeRequest checks DecodeRequest against Unmarshal on any
// payload: where Unmarshal reads a request, DecodeRequest reads the same
// one; where DecodeRequest takes the fast path, its arguments are the
// payload's tail.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(AppendRequest(nil, "CommitSegment", []byte{0xa0}))
	f.Add(AppendRequest(nil, "Topics", nil))
	f.Add([]byte{0xa2, 0x62, 'o', 'p', 0x61, 'T', 0x64, 'a', 'r', 'g', 's', 0x01, 0x02})
	f.Fuzz(func(t *testing.T, p []byte) {
		req, err := DecodeRequest(p)
		var ref Request
		if Unmarshal(p, &ref) == nil {
			if err != nil || req.Op != ref.Op || !bytes.Equal(req.Args, ref.Args) {
				t.Fatalf("%x: DecodeRequest %q %x %v, Unmarshal %q %x", p, req.Op, req.Args, err, ref.Op, ref.Args)
			}
		}
		// On the fast path only: the codec copies what it reads.
		if _, _, fast := splitRequest(p); fast && err == nil && len(req.Args) > 0 && !bytes.HasSuffix(p, req.Args) {
			t.Fatalf("%x: arguments %x not the payload's tail", p, req.Args)
		}
	})
}
