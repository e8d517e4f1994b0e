package fetchsession_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/floe-io/floe/internal/fetchsession"
)

// TestMemoryPerPartition measures the heap one cached partition costs,
// the figure the package comment and the defaults rely on (about 140
// bytes, so DefaultMaxPartitions is about 140 MB). Topic names are
// shared with the request, as they are in the agent.
func TestMemoryPerPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	const n = 100_000
	parts := make([]fetchsession.Partition, n)
	topics := make([]string, n/1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic-%04d", i)
	}
	for i := range parts {
		parts[i].Key = fetchsession.Key{Topic: topics[i/1000], Partition: int32(i % 1000)}
	}
	results := make([]fetchsession.Result, n)
	c := fetchsession.New(fetchsession.Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f, err := c.Begin(fetchsession.Request{Conn: 1, Partitions: parts})
	if err != nil {
		t.Fatal(err)
	}
	if id, _, _ := c.Finish(f, results); id == 0 {
		t.Fatal("no session")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// The request's partitions and the results are still referenced
	// (below), so only the session's own memory is counted.
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per cached partition", per)
	if per > 200 {
		t.Errorf("%.0f bytes per cached partition, more than the 200 the bounds are documented with", per)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(parts)
	runtime.KeepAlive(results)
}
