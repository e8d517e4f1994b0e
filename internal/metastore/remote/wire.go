// Package remote is the metadata store served over the network by
// `floe control` (internal/control): the frames both sides speak, the
// table of operations (one per metastore.Store method) and a client that
// implements metastore.Store with them. docs/control-plane.md describes
// the protocol.
//
// Everything read from the network is hostile: a frame's length is
// checked before anything is allocated for it, and a payload is decoded
// only from a frame already bounded.
package remote

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/floe-io/floe/internal/metastore"
)

// Version is the protocol version a hello carries. Version 2 encodes a
// segment commit's batches and their results as CBOR arrays of their
// fields instead of maps keyed by field name (a quarter of the bytes,
// decoded in half the time); arguments journaled in version 1 are still
// read back (olderArgs).
const Version = 2

// MaxFrame bounds a frame's length (kind, id and payload).
const MaxFrame = 16 << 20

// MaxInFlight bounds the requests of one connection that the server runs
// at once; the server stops reading the connection beyond it.
const MaxInFlight = 256

// Frame kinds.
const (
	KindHello        byte = 1 // client → server, first frame
	KindWelcome      byte = 2 // server → client, answer to the hello
	KindRequest      byte = 3
	KindResponse     byte = 4
	KindCommitNotice byte = 5 // server → client, id 0
	KindTopicNotice  byte = 6 // server → client, id 0
	KindSchedule     byte = 7 // server → client, id 0: a metastore.Schedule (schedule.go)
	// KindPing asks the server for a KindPong with the same id and no
	// payload; a client sends it only to a server whose welcome set
	// Ping (an older server closes the connection on a kind it does not
	// know). The server answers it as it reads it, not behind requests.
	KindPing          byte = 8 // client → server, empty payload
	KindPong          byte = 9 // server → client, the ping's id, empty payload
	frameHeaderLength      = 1 + 8
)

// Frame is one message of the protocol.
type Frame struct {
	Kind    byte
	ID      uint64
	Payload []byte
}

// ErrFrameTooLarge reports a frame longer than MaxFrame.
var ErrFrameTooLarge = errors.New("frame too large")

// MaxHelloFrame bounds the first frame of a connection, which arrives
// before the peer is authenticated.
const MaxHelloFrame = 4 << 10

// ReadFrame reads one frame, refusing lengths outside [9, MaxFrame]
// before allocating.
func ReadFrame(r *bufio.Reader) (Frame, error) { return ReadFrameMax(r, MaxFrame) }

// ReadFrameMax reads one frame of at most limit bytes.
func ReadFrameMax(r *bufio.Reader, limit uint32) (Frame, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < frameHeaderLength || n > limit {
		return Frame{}, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Frame{}, err
	}
	return Frame{Kind: buf[0], ID: binary.BigEndian.Uint64(buf[1:9]), Payload: buf[9:]}, nil
}

// AppendFrame appends f's encoding to b.
func AppendFrame(b []byte, f Frame) ([]byte, error) {
	n := frameHeaderLength + len(f.Payload)
	if n > MaxFrame {
		return b, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, f.Kind)
	b = binary.BigEndian.AppendUint64(b, f.ID)
	return append(b, f.Payload...), nil
}

// Hello is the client's first frame.
type Hello struct {
	V        int    `cbor:"v"`
	VCluster string `cbor:"vcluster"`
	Key      string `cbor:"key"`
}

// Welcome answers a hello: an empty Err admits the session. NotLeader
// says that the server knows the vcluster and key but another control
// process leads it: the client tries its other addresses.
// Ping says that the server answers KindPing frames.
type Welcome struct {
	Err       string `cbor:"err,omitempty"`
	NotLeader bool   `cbor:"notleader,omitempty"`
	Ping      bool   `cbor:"ping,omitempty"`
}

// Request asks for one operation.
type Request struct {
	Op   string     `cbor:"op"`
	Args RawMessage `cbor:"args"`
}

// Response answers a request: Result, or Err. Commits and Topics are the
// notices the operation caused, for the caller to announce to its own
// watchers before its call returns.
type Response struct {
	Result  RawMessage               `cbor:"result,omitempty"`
	Err     *WireError               `cbor:"err,omitempty"`
	Commits []metastore.CommitNotice `cbor:"commits,omitempty"`
	Topics  []metastore.TopicNotice  `cbor:"topics,omitempty"`
}
