package fetchsession_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/floe-io/floe/internal/fetchsession"
)

// TestConcurrent runs connections that open, use and drop sessions at
// once, with a cache too small for all of them, under the race detector;
// the cache's counts must add up at the end.
func TestConcurrent(t *testing.T) {
	c := fetchsession.New(fetchsession.Options{Slots: 8, MaxPartitions: 200, PerConnection: 1})
	var wg sync.WaitGroup
	for conn := range uint64(16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts := make([]fetchsession.Partition, 10)
			for i := range parts {
				parts[i].Key = fetchsession.Key{Topic: fmt.Sprint("t", conn), Partition: int32(i)}
			}
			results := make([]fetchsession.Result, len(parts))
			var id, epoch int32
			for round := range 200 {
				req := fetchsession.Request{Conn: conn, SessionID: id, Epoch: epoch}
				if epoch == 0 {
					req.Partitions = parts
				} else if round%7 == 0 {
					req.Forgotten = []fetchsession.Key{parts[round%10].Key}
				} else {
					req.Partitions = parts[round%10 : round%10+1]
				}
				f, err := c.Begin(req)
				if err != nil {
					id, epoch = 0, 0
					continue
				}
				rs := results[:len(f.Partitions)]
				for i := range rs {
					rs[i] = fetchsession.Result{HighWatermark: int64(round), Records: i%3 == 0}
				}
				got, _, err := c.Finish(f, rs)
				switch {
				case err != nil || got == 0:
					id, epoch = 0, 0
				case f.Kind == fetchsession.Full:
					id, epoch = got, 1
				default:
					epoch++
				}
				if round%50 == 49 {
					c.CloseConn(conn)
					id, epoch = 0, 0
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	sum := 0
	for _, s := range c.Sessions() {
		sum += s.Partitions
	}
	if len(c.Sessions()) != st.Sessions || sum != st.Partitions || st.Sessions > 8 || st.Partitions > 200 {
		t.Errorf("stats %+v, sessions %d holding %d partitions; want them equal and within 8 sessions, 200 partitions", st, len(c.Sessions()), sum)
	}
	for conn := range uint64(16) {
		c.CloseConn(conn)
	}
	if st := c.Stats(); st != (fetchsession.Stats{}) {
		t.Errorf("after every connection closed: %+v", st)
	}
}
