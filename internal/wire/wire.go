// Package wire reads and writes Kafka protocol frames: the size prefix, the
// request header (with KIP-482 tagged fields) and the response header.
// Request and response bodies are encoded by franz-go's kmsg.
//
// It never trusts a length from the network before checking it against a
// limit, and never panics on malformed input: every decoding error is
// returned so the caller can close the connection.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxFrameBytes matches Kafka's socket.request.max.bytes default.
const DefaultMaxFrameBytes = 100 << 20

// ApiVersionsKey is the one API whose response header is never flexible.
const ApiVersionsKey = 18

var (
	// ErrFrameTooLarge reports a size prefix above the configured limit;
	// the frame is not read.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMalformed reports a frame that could not be decoded.
	ErrMalformed = errors.New("malformed frame")
)

// ReadFrame reads one size-prefixed frame. It rejects sizes above max (and
// negative ones) before allocating anything.
func ReadFrame(r io.Reader, max int32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > max {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	// The buffer grows with the bytes that actually arrive, so a peer that
	// announces a large frame and sends little costs little memory.
	frame := make([]byte, min(int(n), frameChunk))
	for read := 0; ; {
		if _, err := io.ReadFull(r, frame[read:]); err != nil {
			return nil, fmt.Errorf("read frame body: %w", err)
		}
		read = len(frame)
		if read == int(n) {
			return frame, nil
		}
		frame = append(frame, make([]byte, min(int(n)-read, read))...)
	}
}

// frameChunk is the buffer ReadFrame starts with; it doubles as the bytes
// arrive.
const frameChunk = 64 << 10

// Header is a request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
}

// Request is a decoded request frame. Req is nil when the API key is not
// known to kmsg; Body then holds the undecoded bytes.
type Request struct {
	Header
	Req  kmsg.Request
	Body []byte
	// ClientHost is the client's address as the connection saw it ("/IP",
	// Kafka's form); set by the server, not decoded.
	ClientHost string
	// Principal is who the connection authenticated as, in Kafka's form
	// ("User:alice"); AnonymousPrincipal without authentication. Set by
	// the server, not decoded.
	Principal string
	// Conn identifies the connection the request came on, unique within
	// the server (fetch sessions belong to their connection); set by the
	// server, not decoded.
	Conn uint64
}

// AnonymousPrincipal is the principal of an unauthenticated connection,
// as Kafka names it.
const AnonymousPrincipal = "User:ANONYMOUS"

// ParseRequest decodes a frame into its header and, when the key is
// known, a kmsg request of the requested version. Decoding a body of a
// version kmsg does not know fails, except for ApiVersions, whose body may
// be unreadable by design (KIP-511: a client may probe with a newer
// version); then Req is left empty and the caller answers UNSUPPORTED_VERSION.
// A body with a count that the bytes after it cannot hold is malformed,
// found before kmsg sees it (scanBody).
func ParseRequest(frame []byte) (*Request, error) {
	r := kbin.Reader{Src: frame}
	h := Header{
		Key:           r.Int16(),
		Version:       r.Int16(),
		CorrelationID: r.Int32(),
	}
	if id := r.NullableString(); id != nil {
		h.ClientID = *id
	}
	if !r.Ok() {
		return nil, fmt.Errorf("%w: short request header", ErrMalformed)
	}
	req := &Request{Header: h}
	kreq := kmsg.RequestForKey(h.Key)
	if kreq == nil {
		req.Body = r.Src
		return req, nil
	}
	kreq.SetVersion(h.Version)
	if kreq.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return nil, fmt.Errorf("%w: request header tagged fields", ErrMalformed)
		}
	}
	req.Body = r.Src
	if h.Version < 0 || h.Version > kreq.MaxVersion() {
		// Unknown version: the body cannot be decoded. The caller decides.
		req.Req = kreq
		return req, nil
	}
	l, err := requestLayout(h.Key, h.Version)
	if err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	if err := scanBody(l, r.Src); err != nil {
		return nil, fmt.Errorf("%s v%d body: %w", kmsg.NameForKey(h.Key), h.Version, err)
	}
	if err := decodeBody(kreq, r.Src); err != nil {
		return nil, fmt.Errorf("%w: %s v%d body: %v", ErrMalformed, kmsg.NameForKey(h.Key), h.Version, err)
	}
	req.Req = kreq
	return req, nil
}

// decodeBody guards against panics in the generated decoder, so that no
// input can take the agent down.
func decodeBody(req kmsg.Request, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return req.ReadFrom(body)
}

func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint() // tag
		size := r.Uvarint()
		if int64(size) > int64(len(r.Src)) {
			r.Span(len(r.Src) + 1) // marks the reader as failed
			return
		}
		r.Span(int(size))
	}
}

// AppendResponse appends a complete size-prefixed response frame. A
// Fetch response is sized before encoding (FetchResponseSize), so that
// its record bytes are copied once instead of re-growing the buffer.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	if n := ResponseSizeBound(resp); cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, correlationID)
	if resp.IsFlexible() && resp.Key() != ApiVersionsKey {
		dst = append(dst, 0) // no tagged fields in the header
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendRequest appends a complete size-prefixed request frame; it is the
// client side of ParseRequest, used by tests and tools.
func AppendRequest(dst []byte, correlationID int32, clientID string, req kmsg.Request) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt16(dst, req.Key())
	dst = kbin.AppendInt16(dst, req.GetVersion())
	dst = kbin.AppendInt32(dst, correlationID)
	dst = kbin.AppendNullableString(dst, &clientID)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ResponseSizeBound returns an upper bound of the frame AppendResponse
// makes of resp, for the responses that are sized before encoding
// (Fetch), and 0 for the others: a caller may provide a buffer that
// large.
func ResponseSizeBound(resp kmsg.Response) int {
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		return 4 + 4 + 1 + FetchResponseSize(f)
	}
	return 0
}

// FetchResponseSize returns an upper bound of the bytes r encodes to, at
// any version: its record bytes plus a generous allowance per topic,
// partition and aborted transaction for the fixed fields, lengths and
// tags. It reads only lengths, so it costs a pass over the partitions.
func FetchResponseSize(r *kmsg.FetchResponse) int {
	n := 64
	for i := range r.Topics {
		t := &r.Topics[i]
		n += 64 + len(t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += 96 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}
