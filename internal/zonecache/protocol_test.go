package zonecache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestRequestRoundTrip(t *testing.T) {
	want := Request{Correlation: 7, Key: "segments/abc", ObjectSize: 1 << 30, Start: 4 << 20, End: 8 << 20}
	frame := want.AppendTo(nil)
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("length prefix %d, frame body %d", n, len(frame)-4)
	}
	got, err := DecodeRequest(frame[4:])
	if err != nil || got != want {
		t.Fatalf("DecodeRequest = %+v, %v; want %+v", got, err, want)
	}
}

func TestDecodeRequestRejects(t *testing.T) {
	valid := Request{Correlation: 1, Key: "k", ObjectSize: 100, Start: 0, End: 100}
	long := string(bytes.Repeat([]byte{'k'}, MaxKeyBytes+1))
	for name, body := range map[string][]byte{
		"empty":           {},
		"short":           {0, 0, 0, 1, 0},
		"key past end":    valid.AppendTo(nil)[4 : 4+6+1],
		"trailing bytes":  append(valid.AppendTo(nil)[4:], 0),
		"empty key":       Request{Key: "", ObjectSize: 1, End: 1}.AppendTo(nil)[4:],
		"long key":        Request{Key: long, ObjectSize: 1, End: 1}.AppendTo(nil)[4:],
		"empty range":     Request{Key: "k", ObjectSize: 10, Start: 5, End: 5}.AppendTo(nil)[4:],
		"reversed range":  Request{Key: "k", ObjectSize: 10, Start: 6, End: 5}.AppendTo(nil)[4:],
		"negative start":  Request{Key: "k", ObjectSize: 10, Start: -1, End: 5}.AppendTo(nil)[4:],
		"past the object": Request{Key: "k", ObjectSize: 10, Start: 0, End: 11}.AppendTo(nil)[4:],
		"negative size":   Request{Key: "k", ObjectSize: -1 << 62, Start: -1 << 62, End: 1}.AppendTo(nil)[4:],
	} {
		if _, err := DecodeRequest(body); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v, want errMalformed", name, err)
		}
	}
}

func TestResponseChecks(t *testing.T) {
	req := Request{Correlation: 3, Key: "k", ObjectSize: 10, Start: 2, End: 6}
	ok := Response{Correlation: 3, Data: []byte("abcd")}
	if got, err := readResponse(bytes.NewReader(ok.AppendTo(nil)), req); err != nil || string(got.Data) != "abcd" {
		t.Fatalf("ok response: %+v, %v", got, err)
	}
	failed := Response{Correlation: 3, Err: string(bytes.Repeat([]byte{'e'}, 5000))}
	got, err := readResponse(bytes.NewReader(failed.AppendTo(nil)), req)
	if err != nil || len(got.Err) != maxErrorText {
		t.Fatalf("error response: %d bytes of text, %v; want it cut to %d", len(got.Err), err, maxErrorText)
	}
	for name, frame := range map[string][]byte{
		"wrong correlation": Response{Correlation: 4, Data: []byte("abcd")}.AppendTo(nil),
		"short data":        Response{Correlation: 3, Data: []byte("abc")}.AppendTo(nil),
		"long data":         Response{Correlation: 3, Data: []byte("abcde")}.AppendTo(nil),
		"bad status":        {0, 0, 0, 5, 0, 0, 0, 3, 9},
		// A peer announcing far more than was asked is refused before
		// anything is allocated for it.
		"huge frame": {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 3, 0},
	} {
		if _, err := readResponse(bytes.NewReader(frame), req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeRequest: any bytes decode to an error or to a request that
// is valid and encodes back to the same bytes.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(Request{Correlation: 1, Key: "segments/x", ObjectSize: 100, Start: 0, End: 50}.AppendTo(nil)[4:])
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(body)
		if err != nil {
			return
		}
		if r.Validate() != nil {
			t.Fatalf("decoded an invalid request %+v", r)
		}
		if again := r.AppendTo(nil)[4:]; !bytes.Equal(again, body) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", body, r, again)
		}
	})
}
