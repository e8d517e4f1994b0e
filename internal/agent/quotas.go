package agent

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/quota"
	"github.com/floe-io/floe/internal/wire"
)

// Client quotas on a connection (internal/quota decides): produce request
// bytes and fetch response bytes count against the client's byte-rate
// quota; a client over it gets its response with throttle_time_ms set
// and is not read again until then. A fetch is never asked for more than
// its quota allows over the whole window (KAFKA-9677), and a throttled
// fetch keeps its records: Kafka drops them and sends them again after
// the throttle, which reads every byte twice for the same rate.

// Versions from which clients honour throttle_time_ms themselves
// (KIP-219); older ones get a delayed response instead.
const (
	produceMutesFrom = 6
	fetchMutesFrom   = 8
)

func mutes(h wire.Header) bool {
	switch h.Key {
	case 0:
		return h.Version >= produceMutesFrom
	case 1:
		return h.Version >= fetchMutesFrom
	}
	return true
}

// waitsInPurgatory reports the requests whose reply mostly waits (for
// the linger and the commit, a long poll, a rebalance): as in Kafka,
// where they wait in purgatory off the request threads, that wait is not
// request time.
func waitsInPurgatory(key int16) bool {
	switch key {
	case 0, 1, 11, 14: // Produce, Fetch, JoinGroup, SyncGroup
		return true
	}
	return false
}

// throttle records a request against the client's quotas (produce or
// fetch bytes, and the agent's time handling it) and returns how long the
// client must wait, after setting it in resp.
func (c *conn) throttle(in inflight, resp kmsg.Response) time.Duration {
	q := c.a.quotas
	if q == nil {
		return 0
	}
	user := quota.User(c.principal)
	d := q.Record(quota.RequestTime, user, in.hdr.ClientID, quota.RequestPercent(in.work))
	switch in.hdr.Key {
	case 0:
		d = max(d, q.Record(quota.Produce, user, in.hdr.ClientID, float64(in.size)))
	case 1:
		if fr, ok := resp.(*kmsg.FetchResponse); ok {
			var n int64
			for _, t := range fr.Topics {
				for _, p := range t.Partitions {
					n += int64(len(p.RecordBatches))
				}
			}
			if n > 0 {
				d = max(d, q.Record(quota.Fetch, user, in.hdr.ClientID, float64(n)))
			}
		}
	}
	if d > 0 && resp != nil {
		if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
			tr.SetThrottle(int32(min(d.Milliseconds()+1, 1<<31-1)))
		}
	}
	return d
}

// recordWork counts the time spent encoding a response as request time;
// a client it puts over its quota is muted for the throttle (its next
// response carries it).
func (c *conn) recordWork(in inflight, d time.Duration) {
	if c.a.quotas == nil {
		return
	}
	t := c.a.quotas.Record(quota.RequestTime, quota.User(c.principal), in.hdr.ClientID, quota.RequestPercent(d))
	if t > 0 && mutes(in.hdr) {
		until := time.Now().Add(t).UnixNano()
		if until > c.mutedUntil.Load() {
			c.mutedUntil.Store(until)
		}
	}
}

// capFetch bounds a fetch of a client with a consumer quota to what the
// quota allows over its window (KAFKA-9677).
func (c *conn) capFetch(req *wire.Request) {
	fr, ok := req.Req.(*kmsg.FetchRequest)
	if !ok || c.a.quotas == nil {
		return
	}
	limit, ok := c.a.quotas.MaxFetchBytes(quota.User(c.principal), req.ClientID)
	if !ok {
		return
	}
	fr.MaxBytes = min(fr.MaxBytes, limit)
	for i := range fr.Topics {
		for j := range fr.Topics[i].Partitions {
			p := &fr.Topics[i].Partitions[j]
			p.PartitionMaxBytes = min(p.PartitionMaxBytes, limit)
		}
	}
}

// waitUnmuted holds the reader while the client is throttled.
func (c *conn) waitUnmuted() {
	if d := time.Until(time.Unix(0, c.mutedUntil.Load())); d > 0 {
		c.sleep(d)
	}
}

// sleep waits for d or until the connection stops reading.
func (c *conn) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.stopped:
	}
}
