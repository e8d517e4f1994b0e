// Package peernotice carries commit notices from agent to agent over the
// peer listener, so that a database shared by many agents does not have to
// fan every commit's notice out to all of them.
//
// An agent that commits a segment tells every other live agent which
// partitions moved; they wake their waiting fetches and drop their stale
// extents, exactly as for a notice from the store (metastore.CommitNotice).
// On PostgreSQL that notice used to travel through LISTEN/NOTIFY, where the
// database signals every listening agent's backend for every notifying
// commit: agents × commits per second of work on the one machine that
// cannot be scaled out (docs/postgres.md, "Commit notices"). Here the
// agents share that work instead.
//
// A notice only makes agents re-read, so the relay may lose one: the
// store's lost-notice poll announces a partition whose notice never came
// within two poll intervals. The store falls back to its own channel
// whenever the relay cannot reach every other agent (Sender.Send).
package peernotice

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/floe-io/floe/internal/metastore"
)

// A notice connection, after the peer handshake
// (zonecache.HandshakeNotices), carries frames from the sender only:
//
//	frame = length(4, big endian) kind(1) count(4) count × (topicID(16) partition(4))
//
// Kind 0 names the partitions that moved; kind 1 ("everything") says any
// partition may have moved and has no partitions. A frame that breaks
// these rules closes the connection.
const (
	kindPartitions = 0
	kindEverything = 1

	headerBytes    = 1 + 4
	partitionBytes = 16 + 4
	// maxFramePartitions bounds one frame; a larger notice is split.
	maxFramePartitions = 4096
	maxFrameBytes      = headerBytes + maxFramePartitions*partitionBytes
)

var errMalformed = errors.New("malformed notice frame")

// appendFrames appends the frames of a notice: everything, or parts in
// frames of at most maxFramePartitions.
func appendFrames(dst []byte, parts []metastore.TopicPartition, everything bool) []byte {
	if everything {
		return appendFrame(dst, kindEverything, nil)
	}
	for len(parts) > 0 {
		n := min(len(parts), maxFramePartitions)
		dst = appendFrame(dst, kindPartitions, parts[:n])
		parts = parts[n:]
	}
	return dst
}

func appendFrame(dst []byte, kind byte, parts []metastore.TopicPartition) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(headerBytes+len(parts)*partitionBytes))
	dst = append(dst, kind)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(parts)))
	for _, tp := range parts {
		dst = append(dst, tp.TopicID[:]...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(tp.Partition))
	}
	return dst
}

// decodeFrame decodes a frame's body (without its length): a notice with
// nil Partitions means everything.
func decodeFrame(body []byte) (metastore.CommitNotice, error) {
	var n metastore.CommitNotice
	if len(body) < headerBytes {
		return n, fmt.Errorf("%w: %d bytes", errMalformed, len(body))
	}
	kind, count := body[0], binary.BigEndian.Uint32(body[1:])
	rest := body[headerBytes:]
	switch {
	case kind == kindEverything && count == 0 && len(rest) == 0:
		return n, nil
	case kind != kindPartitions:
		return n, fmt.Errorf("%w: kind %d with %d partitions", errMalformed, kind, count)
	case count == 0 || count > maxFramePartitions || uint64(len(rest)) != uint64(count)*partitionBytes:
		return n, fmt.Errorf("%w: %d partitions in %d bytes", errMalformed, count, len(rest))
	}
	n.Partitions = make([]metastore.TopicPartition, count)
	for i := range n.Partitions {
		tp := &n.Partitions[i]
		copy(tp.TopicID[:], rest)
		p := int32(binary.BigEndian.Uint32(rest[16:]))
		if p < 0 {
			return metastore.CommitNotice{}, fmt.Errorf("%w: partition %d", errMalformed, p)
		}
		tp.Partition = p
		rest = rest[partitionBytes:]
	}
	return n, nil
}
