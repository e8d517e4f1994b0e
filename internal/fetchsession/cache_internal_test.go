package fetchsession

import (
	"math"
	"testing"
)

// TestNextEpoch: epochs run from 1 to MaxInt32 and wrap to 1, never to 0
// or -1, which mean a new session and none.
func TestNextEpoch(t *testing.T) {
	for _, tc := range []struct{ in, want int32 }{{1, 2}, {41, 42}, {math.MaxInt32 - 1, math.MaxInt32}, {math.MaxInt32, 1}} {
		if got := nextEpoch(tc.in); got != tc.want {
			t.Errorf("nextEpoch(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
