package zonecache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/floe-io/floe/internal/wire"
)

// The peer protocol, after the handshake (handshake.go), is a sequence of
// request and response frames on one connection, one request at a time:
//
//	frame    = length(4, big endian) body
//	request  = correlation(4) keyLength(2) key objectSize(8) start(8) end(8)
//	response = correlation(4) status(1) payload
//
// A request asks for bytes [start, end) of the object key, whose size the
// asker read from the metadata store. Status 0 means payload is exactly
// those bytes; status 1 means payload is an error text (at most
// maxErrorText bytes) and the asker reads the bucket instead. A frame that
// breaks these rules closes the connection.

// Limits of the protocol. A request frame is never larger than
// maxRequestFrame, so a server reads at most that much from a peer
// before deciding anything.
const (
	// MaxKeyBytes bounds an object key.
	MaxKeyBytes     = 1024
	maxRequestFrame = 4 + 2 + MaxKeyBytes + 3*8
	maxErrorText    = 1024
	statusOK        = 0
	statusError     = 1
)

// Request asks a peer for bytes [Start, End) of object Key.
type Request struct {
	Correlation uint32
	Key         string
	// ObjectSize is the object's size as the asker's metadata says; the
	// server checks it against its own before reading anything.
	ObjectSize int64
	Start, End int64
}

// Response answers a Request: Data holds exactly End-Start bytes, or Err
// says why the server could not serve them.
type Response struct {
	Correlation uint32
	Err         string
	Data        []byte
}

// errMalformed reports a frame that breaks the protocol.
var errMalformed = errors.New("malformed peer frame")

// AppendTo appends the request's frame, length included.
func (r Request) AppendTo(dst []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, r.Correlation)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Key)))
	dst = append(dst, r.Key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.ObjectSize))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.Start))
	dst = binary.BigEndian.AppendUint64(dst, uint64(r.End))
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// Validate checks what a request must satisfy whoever sent it: a key of
// 1 to MaxKeyBytes bytes and a non-empty range inside the claimed size.
func (r Request) Validate() error {
	switch {
	case r.Key == "" || len(r.Key) > MaxKeyBytes:
		return fmt.Errorf("%w: key of %d bytes", errMalformed, len(r.Key))
	case r.ObjectSize <= 0 || r.Start < 0 || r.End <= r.Start || r.End > r.ObjectSize:
		return fmt.Errorf("%w: range [%d, %d) of an object of %d bytes", errMalformed, r.Start, r.End, r.ObjectSize)
	}
	return nil
}

// DecodeRequest decodes a request body (the frame without its length)
// and validates it.
func DecodeRequest(body []byte) (Request, error) {
	if len(body) < 4+2 {
		return Request{}, fmt.Errorf("%w: request of %d bytes", errMalformed, len(body))
	}
	var r Request
	r.Correlation = binary.BigEndian.Uint32(body)
	n := int(binary.BigEndian.Uint16(body[4:]))
	rest := body[6:]
	if len(rest) != n+3*8 {
		return Request{}, fmt.Errorf("%w: key of %d bytes in a request of %d", errMalformed, n, len(body))
	}
	r.Key = string(rest[:n])
	rest = rest[n:]
	r.ObjectSize = int64(binary.BigEndian.Uint64(rest))
	r.Start = int64(binary.BigEndian.Uint64(rest[8:]))
	r.End = int64(binary.BigEndian.Uint64(rest[16:]))
	return r, r.Validate()
}

// AppendTo appends the response's frame, length included. An error text
// is cut to maxErrorText bytes.
func (r Response) AppendTo(dst []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, r.Correlation)
	if r.Err != "" {
		dst = append(dst, statusError)
		dst = append(dst, r.Err[:min(len(r.Err), maxErrorText)]...)
	} else {
		dst = append(dst, statusOK)
		dst = append(dst, r.Data...)
	}
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// readResponse reads the answer to req: its frame may be no larger than
// the bytes req asked for (or an error text), so a peer cannot make the
// asker allocate more than it chose to.
func readResponse(r io.Reader, req Request) (Response, error) {
	limit := 4 + 1 + max(req.End-req.Start, maxErrorText)
	frame, err := wire.ReadFrame(r, int32(min(limit, 1<<30)))
	if err != nil {
		return Response{}, err
	}
	return decodeResponse(frame, req)
}

// decodeResponse decodes a response body and checks it answers req.
func decodeResponse(body []byte, req Request) (Response, error) {
	if len(body) < 5 {
		return Response{}, fmt.Errorf("%w: response of %d bytes", errMalformed, len(body))
	}
	resp := Response{Correlation: binary.BigEndian.Uint32(body)}
	if resp.Correlation != req.Correlation {
		return Response{}, fmt.Errorf("%w: response %d to request %d", errMalformed, resp.Correlation, req.Correlation)
	}
	payload := body[5:]
	switch body[4] {
	case statusOK:
		if int64(len(payload)) != req.End-req.Start {
			return Response{}, fmt.Errorf("%w: %d bytes for [%d, %d)", errMalformed, len(payload), req.Start, req.End)
		}
		resp.Data = payload
	case statusError:
		if len(payload) == 0 || len(payload) > maxErrorText {
			return Response{}, fmt.Errorf("%w: error text of %d bytes", errMalformed, len(payload))
		}
		resp.Err = string(payload)
	default:
		return Response{}, fmt.Errorf("%w: status %d", errMalformed, body[4])
	}
	return resp, nil
}
