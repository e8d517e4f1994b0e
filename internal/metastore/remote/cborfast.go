package remote

import (
	"math"
)

// The hot payloads (a request's envelope, a response's, a segment
// commit's arguments and results, extents) are written and read by hand
// in hotcodec.go: the reflection-driven codec walks every field through
// interfaces and type caches, which was the larger part of the sessions'
// CPU on both sides. The bytes written are the codec's, byte for byte;
// what is read by hand is exactly what the codec writes for those types
// (fields in order, shortest heads or not), and anything else, however
// valid, goes to the codec: the codec stays the definition of the
// encoding, and the hand-written paths are checked against it
// (TestHotCodecsAgree, FuzzHotDecoders).

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

const (
	cborFalse = 0xf4
	cborTrue  = 0xf5
	cborNull  = 0xf6
)

// appendHead appends an item's head with the shortest argument, as the
// codec writes it.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, majorNegInt, uint64(^v))
	}
	return appendHead(b, majorUint, uint64(v))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, cborTrue)
	}
	return append(b, cborFalse)
}

func appendTextString(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

func appendByteString(b []byte, p []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(p))), p...)
}

// cborIn reads items from b. Any method that meets what it does not
// expect sets bad and returns a zero value; the caller checks bad once,
// at the end, and goes to the codec if it is set.
type cborIn struct {
	b   []byte
	bad bool
}

func (r *cborIn) fail() { r.bad = true }

// peek is the next byte, or 0 (and bad) at the end.
func (r *cborIn) peek() byte {
	if r.bad || len(r.b) == 0 {
		r.fail()
		return 0
	}
	return r.b[0]
}

// head reads an item's head: its major type and argument. Indefinite
// lengths and reserved arguments are refused, as the codec (with
// IndefLengthForbidden) refuses them.
func (r *cborIn) head() (major byte, arg uint64) {
	major, arg, n, ok := readHead(r.b)
	if r.bad || !ok {
		r.fail()
		return 0, 0
	}
	r.b = r.b[n:]
	return major, arg
}

// readHead reads the head at the start of b: its major type, argument
// and length. ok is false for a head cut short, an indefinite length or
// a reserved argument.
func readHead(b []byte) (major byte, arg uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, 0, false
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, true
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	default:
		return 0, 0, 0, false
	}
	if len(b) < 1+n {
		return 0, 0, 0, false
	}
	for _, c := range b[1 : 1+n] {
		arg = arg<<8 | uint64(c)
	}
	return major, arg, 1 + n, true
}

// int64 reads an integer that fits an int64.
func (r *cborIn) int64() int64 {
	major, arg := r.head()
	if r.bad || (major != majorUint && major != majorNegInt) || arg > math.MaxInt64 {
		r.fail()
		return 0
	}
	if major == majorNegInt {
		return -1 - int64(arg)
	}
	return int64(arg)
}

// intIn reads an integer in [lo, hi].
func (r *cborIn) intIn(lo, hi int64) int64 {
	v := r.int64()
	if v < lo || v > hi {
		r.fail()
		return 0
	}
	return v
}

func (r *cborIn) bool() bool {
	switch r.peek() {
	case cborFalse:
		r.b = r.b[1:]
		return false
	case cborTrue:
		r.b = r.b[1:]
		return true
	}
	r.fail()
	return false
}

// null reads a null if one is next.
func (r *cborIn) null() bool {
	if !r.bad && len(r.b) > 0 && r.b[0] == cborNull {
		r.b = r.b[1:]
		return true
	}
	return false
}

// str reads a string of the given major type (text or bytes), sharing
// r's bytes.
func (r *cborIn) str(want byte) []byte {
	major, n := r.head()
	if r.bad || major != want || n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

// key reads a map key that must be the text k.
func (r *cborIn) key(k string) {
	if s := r.str(majorText); r.bad || string(s) != k {
		r.fail()
	}
}

// count reads the head of an array or map (want) and returns its count,
// bounded as the codec bounds it and by the bytes left (every element
// takes one at least).
func (r *cborIn) count(want byte) int {
	major, n := r.head()
	if r.bad || major != want || n > MaxArrayElements || n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// maxSkipDepth is the codec's MaxNestedLevels.
const maxSkipDepth = 32

// skip steps over one well-formed item and returns its bytes. It is
// stricter than the codec (no tags, no simple values but false, true,
// null and undefined, beside floats): what it refuses goes to the codec.
func (r *cborIn) skip() []byte {
	start := r.b
	r.skipItem(1)
	if r.bad {
		return nil
	}
	return start[:len(start)-len(r.b)]
}

func (r *cborIn) skipItem(depth int) {
	if depth > maxSkipDepth {
		r.fail()
		return
	}
	if b := r.peek(); b>>5 == majorSimple {
		switch ai := b & 0x1f; {
		case ai >= 20 && ai <= 23: // false, true, null, undefined
			r.b = r.b[1:]
		case ai >= 25 && ai <= 27: // floats of 2, 4 and 8 bytes
			n := 1 << (ai - 24)
			if len(r.b) < 1+n {
				r.fail()
				return
			}
			r.b = r.b[1+n:]
		default:
			r.fail()
		}
		return
	}
	major, arg := r.head()
	switch major {
	case majorUint, majorNegInt:
	case majorBytes, majorText:
		if arg > uint64(len(r.b)) {
			r.fail()
			return
		}
		r.b = r.b[arg:]
	case majorArray, majorMap:
		if arg > MaxArrayElements || arg > uint64(len(r.b)) {
			r.fail()
			return
		}
		n := int(arg)
		if major == majorMap {
			n *= 2
		}
		for range n {
			r.skipItem(depth + 1)
			if r.bad {
				return
			}
		}
	default:
		r.fail()
	}
}

// end checks that everything was read.
func (r *cborIn) end() bool { return !r.bad && len(r.b) == 0 }
