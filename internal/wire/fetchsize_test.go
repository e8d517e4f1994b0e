package wire_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func fetchResponse() *kmsg.FetchResponse {
	r := kmsg.NewPtrFetchResponse()
	r.SessionID = 7
	for ti, name := range []string{"a", "a-much-longer-topic-name-for-the-bound", ""} {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = name
		t.TopicID[0] = byte(ti + 1)
		for p := range 5 {
			pr := kmsg.NewFetchResponseTopicPartition()
			pr.Partition = int32(p)
			pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = 1<<40, 1<<40, 1<<39
			pr.PreferredReadReplica = -1
			pr.RecordBatches = bytes.Repeat([]byte{byte(p)}, p*100_000+p)
			for a := range p {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = int64(a)<<40, int64(a)<<41
				pr.AbortedTransactions = append(pr.AbortedTransactions, at)
			}
			if p == 4 {
				pr.DivergingEpoch.Epoch, pr.DivergingEpoch.EndOffset = 3, 1<<50
				pr.CurrentLeader.LeaderID, pr.CurrentLeader.LeaderEpoch = 2, 9
			}
			t.Partitions = append(t.Partitions, pr)
		}
		r.Topics = append(r.Topics, t)
	}
	return r
}

// The size estimate bounds the encoding at every version, so that
// AppendResponse sizes the buffer once and record bytes are copied once.
func TestFetchResponseSizeBoundsTheEncoding(t *testing.T) {
	r := fetchResponse()
	for v := int16(0); v <= r.MaxVersion(); v++ {
		r.SetVersion(v)
		if got, bound := len(r.AppendTo(nil)), wire.FetchResponseSize(r); got > bound {
			t.Errorf("v%d: encodes to %d bytes, bound %d", v, got, bound)
		}
		// AppendResponse sizes the buffer once, to the bound, and never
		// re-grows it while encoding: what it allocates is about one
		// frame (re-growing would allocate about twice that).
		frame := 4 + 4 + 1 + wire.FetchResponseSize(r)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 4 {
			wire.AppendResponse(nil, 1, r)
		}
		runtime.ReadMemStats(&after)
		if per := int(after.TotalAlloc-before.TotalAlloc) / 4; per > frame+frame/8+64<<10 {
			t.Errorf("v%d: AppendResponse allocated %d bytes for a frame bound of %d: re-grown while encoding", v, per, frame)
		}
		dst := make([]byte, 0, frame)
		if out := wire.AppendResponse(dst, 1, r); &out[0] != &dst[:1][0] {
			t.Errorf("v%d: a buffer of the bound's size was re-grown", v)
		}
	}
}
