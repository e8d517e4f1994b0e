package coordinator

import "testing"

// A group name is whatever bytes a client sends; the lag gauges must not
// panic on one that is not UTF-8 (TestHandlerMutatedRequests found it
// through OffsetCommit).
func TestMetricsTakeGroupNamesThatAreNotUTF8(t *testing.T) {
	m := NewMetrics(nil)
	m.set("\x87", "t", 0, 1, 2)
	m.forget("\x87")
}
