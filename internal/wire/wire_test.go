package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, v := range []int16{0, 3, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		topic := "orders"
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
		frame := wire.AppendRequest(nil, 42, "client-a", req)

		body, err := wire.ReadFrame(bytes.NewReader(frame), 1<<20)
		if err != nil {
			t.Fatalf("v%d: read frame: %v", v, err)
		}
		got, err := wire.ParseRequest(body)
		if err != nil {
			t.Fatalf("v%d: parse: %v", v, err)
		}
		if got.CorrelationID != 42 || got.ClientID != "client-a" || got.Key != 3 || got.Version != v {
			t.Fatalf("v%d: header %+v", v, got.Header)
		}
		m := got.Req.(*kmsg.MetadataRequest)
		if len(m.Topics) != 1 || *m.Topics[0].Topic != "orders" {
			t.Fatalf("v%d: topics %+v", v, m.Topics)
		}
	}
}

func TestReadFrameRejectsOversizeBeforeReading(t *testing.T) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 1<<30)
	_, err := wire.ReadFrame(bytes.NewReader(b[:]), 1<<20)
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	binary.BigEndian.PutUint32(b[:], 0xffffffff) // negative
	if _, err := wire.ReadFrame(bytes.NewReader(b[:]), 1<<20); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("negative size: got %v", err)
	}
}

func TestResponseHeaderFlexibility(t *testing.T) {
	// ApiVersions never has a flexible response header, even at v3+.
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(3)
	frame := wire.AppendResponse(nil, 7, av)
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != 7 {
		t.Fatalf("correlation id %d", got)
	}
	if frame[8] != 0 { // error code high byte, not a tag count
		t.Fatalf("unexpected header tag byte")
	}
	if len(frame) != 8+len(av.AppendTo(nil)) {
		t.Fatalf("ApiVersions v3 frame carries a header tag section")
	}
	md := kmsg.NewPtrMetadataResponse()
	for v, headerTags := range map[int16]int{8: 0, 9: 1} {
		md.SetVersion(v)
		frame := wire.AppendResponse(nil, 7, md)
		if want := 8 + headerTags + len(md.AppendTo(nil)); len(frame) != want {
			t.Fatalf("metadata v%d: frame %d bytes, want %d", v, len(frame), want)
		}
	}
}

func TestParseRequestMalformed(t *testing.T) {
	for name, frame := range map[string][]byte{
		"empty":         {},
		"short header":  {0, 3, 0},
		"bad client id": {0, 3, 0, 0, 0, 0, 0, 1, 0, 9, 'x'},
	} {
		if _, err := wire.ParseRequest(frame); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, req := range []kmsg.Request{
		kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrFetchRequest(),
		kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrCreateTopicsRequest(),
	} {
		for _, v := range []int16{0, 3, 9, 12} {
			if v > req.MaxVersion() {
				continue
			}
			req.SetVersion(v)
			frame := wire.AppendRequest(nil, 1, "fuzz", req)
			f.Add(frame[4:])
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := wire.ParseRequest(frame)
		if err != nil {
			return
		}
		if req.Req != nil && req.Version >= 0 && req.Version <= req.Req.MaxVersion() {
			// A decoded request must re-encode without panicking.
			_ = req.Req.AppendTo(nil)
		}
	})
}

func TestReadFrameSizes(t *testing.T) {
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 1 << 20} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 31)
		}
		frame := binary.BigEndian.AppendUint32(nil, uint32(n))
		got, err := wire.ReadFrame(bytes.NewReader(append(frame, body...)), 2<<20)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("frame of %d bytes: %d bytes back, %v", n, len(got), err)
		}
	}
}

// A frame announced at the limit but cut short costs memory in proportion
// to what arrived, not to what was announced.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	frame := binary.BigEndian.AppendUint32(nil, 100<<20)
	frame = append(frame, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := wire.ReadFrame(bytes.NewReader(frame), 100<<20); err == nil {
		t.Fatal("a short frame was accepted")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("a 100 MiB frame cut after 10 bytes allocated %d bytes", n)
	}
}
