package fetch

import (
	"math/bits"
	"sync"
)

// Buffers recycles the large byte slices of the read path: the records
// a Read returns and the response frames they are encoded into. A
// catch-up consumer's every fetch needs megabytes of each, and Go zeroes
// every new slice, so allocating them afresh costs a pass over every
// byte served on top of the copy, plus the garbage collector's work.
//
// Capacities are powers of two from 64 KiB to 16 MiB, one pool each;
// smaller and larger slices are allocated and left to the garbage
// collector. A slice must be given back (Put) only once nothing refers to
// it any more: its bytes are handed to the next Get as they are. A nil
// *Buffers pools nothing.
type Buffers struct {
	classes [numClasses]sync.Pool // of *[]byte
}

const (
	minClassBits = 16 // 64 KiB
	maxClassBits = 24 // 16 MiB
	numClasses   = maxClassBits - minClassBits + 1
)

// classOf returns the class of capacity n: the smallest power of two
// holding it, or -1 when n is outside the pooled sizes.
func classOf(n int) int {
	if n <= 0 || n > 1<<maxClassBits {
		return -1
	}
	b := max(bits.Len(uint(n-1)), minClassBits)
	return b - minClassBits
}

// Get returns an empty slice with room for at least n bytes; its
// contents beyond its length are whatever they were.
func (p *Buffers) Get(n int) []byte {
	c := classOf(n)
	if p == nil || c < 0 || n < 1<<(minClassBits-1) {
		// Small reads (the live edge) are cheap to allocate and would
		// waste most of a 64 KiB buffer.
		return make([]byte, 0, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(c+minClassBits))
}

// Put gives b back for a later Get. Slices whose capacity is not one of
// the pooled sizes are left to the garbage collector.
func (p *Buffers) Put(b []byte) {
	n := cap(b)
	c := classOf(n)
	if p == nil || c < 0 || n != 1<<(c+minClassBits) {
		return
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
