package kv

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// lessAgrees checks less against bytes.Compare for one pair.
func lessAgrees(t *testing.T, a, b []byte) {
	t.Helper()
	if got, want := less(probe(a), probe(b)), bytes.Compare(a, b) < 0; got != want {
		t.Fatalf("less(%x, %x) = %v, bytes.Compare says %v", a, b, got, want)
	}
}

// TestLessOrdersAsBytesCompare draws keys that share long prefixes and
// differ in a byte anywhere, or in length, as the store's keys do.
func TestLessOrdersAsBytesCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte {
		k := make([]byte, rng.IntN(41))
		for i := range k {
			k[i] = byte(rng.IntN(3)) * 0x7f // 0x00, 0x7f, 0xfe: signed and unsigned orders differ
		}
		return k
	}
	for range 200_000 {
		a := key()
		b := append([]byte(nil), a...)
		switch rng.IntN(4) {
		case 0:
			b = key()
		case 1:
			if len(b) > 0 {
				b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
			}
		case 2:
			b = b[:rng.IntN(len(b)+1)]
		case 3:
			b = append(b, byte(rng.IntN(256)))
		}
		lessAgrees(t, a, b)
		lessAgrees(t, b, a)
	}
}
