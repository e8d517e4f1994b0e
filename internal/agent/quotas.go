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

// throttle records a produce or fetch against the client's quota and
// returns how long the client must wait, after setting it in resp.
func (c *conn) throttle(in inflight, resp kmsg.Response) time.Duration {
	q := c.a.quotas
	if q == nil {
		return 0
	}
	user := quota.User(c.principal)
	var d time.Duration
	switch in.hdr.Key {
	case 0:
		d = q.Record(quota.Produce, user, in.hdr.ClientID, int64(in.size))
	case 1:
		fr, ok := resp.(*kmsg.FetchResponse)
		if !ok {
			return 0
		}
		var n int64
		for _, t := range fr.Topics {
			for _, p := range t.Partitions {
				n += int64(len(p.RecordBatches))
			}
		}
		if n == 0 {
			return 0
		}
		d = q.Record(quota.Fetch, user, in.hdr.ClientID, n)
	default:
		return 0
	}
	if d > 0 {
		if tr, ok := resp.(kmsg.SetThrottleResponse); ok {
			tr.SetThrottle(int32(min(d.Milliseconds()+1, 1<<31-1)))
		}
	}
	return d
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
