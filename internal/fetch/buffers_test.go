package fetch

import "testing"

func TestBuffersClasses(t *testing.T) {
	var p Buffers
	for _, tc := range []struct{ n, wantCap int }{
		{1, 1}, {100, 100}, {32 << 10, 64 << 10}, {64 << 10, 64 << 10}, {64<<10 + 1, 128 << 10},
		{1 << 20, 1 << 20}, {3 << 20, 4 << 20}, {16 << 20, 16 << 20}, {16<<20 + 1, 16<<20 + 1},
	} {
		b := p.Get(tc.n)
		if len(b) != 0 || cap(b) != tc.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want 0 and %d", tc.n, len(b), cap(b), tc.wantCap)
		}
	}
	// A slice given back is handed out again for a size of its class,
	// not for a larger one.
	b := p.Get(1 << 20)
	b = append(b, 1, 2, 3)
	p.Put(b)
	again := p.Get(700 << 10)
	if cap(again) != 1<<20 || len(again) != 0 {
		t.Fatalf("Get after Put: len %d cap %d", len(again), cap(again))
	}
	if big := p.Get(2 << 20); cap(big) != 2<<20 {
		t.Fatalf("Get(2 MiB): cap %d", cap(big))
	}
	// Capacities that are not a class are not kept.
	p.Put(make([]byte, 0, 3<<20))
	p.Put(nil)
}

func TestNilBuffersPoolNothing(t *testing.T) {
	var p *Buffers
	if b := p.Get(1 << 20); cap(b) != 1<<20 || len(b) != 0 {
		t.Fatalf("nil Buffers Get: len %d cap %d", len(b), cap(b))
	}
	p.Put(make([]byte, 0, 1<<20))
}
