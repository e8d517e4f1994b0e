package wire_test

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

// header returns a request header for key and version, with the empty
// header tag section of flexible versions.
func header(key, version int16) []byte {
	b := kbin.AppendInt16(nil, key)
	b = kbin.AppendInt16(b, version)
	b = kbin.AppendInt32(b, 1)
	b = kbin.AppendNullableString(b, nil)
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return b
}

// allocated returns the bytes fn allocates and how long it takes.
func allocated(fn func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

func TestHostileCountsAreRejectedBeforeDecoding(t *testing.T) {
	const body = 1 << 20
	cases := []struct {
		name    string
		key, v  int16
		payload []byte
		// kmsgToo also measures kmsg alone (not for the tag count:
		// that costs about a minute of CPU).
		kmsgToo bool
	}{
		{
			// Produce v7: null transactional id, acks, timeout, then a
			// topic count as large as the bytes that follow. kmsg
			// allocates a ProduceRequestTopic per byte.
			name: "produce topics count", key: 0, v: 7,
			payload: append(binary.BigEndian.AppendUint32([]byte{0xff, 0xff, 0, 1, 0, 0, 0, 0}, body), make([]byte, body)...),
			kmsgToo: true,
		},
		{
			// Metadata v12: a compact topic count of one element per
			// byte, each topic a 16-byte id, a compact name and tags.
			name: "metadata topics count", key: 3, v: 12,
			payload: append(binary.AppendUvarint(nil, body+1), make([]byte, body)...),
			kmsgToo: true,
		},
		{
			// CreateTopics v5: no topics, then 2^32-1 tagged fields in a
			// few bytes; kmsg loops once per tag after its input ends
			// (measured: 68 s of CPU for this 22-byte frame).
			name: "create topics tag count", key: 19, v: 5,
			payload: append([]byte{1, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frame := append(header(c.key, c.v), c.payload...)
			var err error
			bytes, took := allocated(func() { _, err = wire.ParseRequest(frame) })
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("ParseRequest: %v, want ErrMalformed", err)
			}
			t.Logf("ParseRequest: %v in %v, %d bytes allocated for a %d-byte frame", err, took, bytes, len(frame))
			if bytes > 1<<20 || took > 100*time.Millisecond {
				t.Fatalf("rejecting a %d-byte frame allocated %d bytes in %v", len(frame), bytes, took)
			}
			if testing.Short() || !c.kmsgToo {
				return
			}
			// What kmsg alone would have spent, for the record.
			req := kmsg.RequestForKey(c.key)
			req.SetVersion(c.v)
			bytes, took = allocated(func() { _ = req.ReadFrom(c.payload) })
			t.Logf("kmsg alone: %d bytes allocated in %v", bytes, took)
		})
	}
}

// TestRealisticRequestsPass: requests with many elements of the smallest
// size still pass the scan.
func TestRealisticRequestsPass(t *testing.T) {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	for range 10000 {
		req.Topics = append(req.Topics, kmsg.MetadataRequestTopic{TopicID: [16]byte{1}})
	}
	frame := wire.AppendRequest(nil, 1, "c", req)
	got, err := wire.ParseRequest(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Req.(*kmsg.MetadataRequest).Topics); n != 10000 {
		t.Fatalf("%d topics", n)
	}
}
