package peernotice

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

// idleTimeout closes a notice connection that brought nothing for that
// long; senders close theirs sooner (maxIdle). A variable for tests.
var idleTimeout = 2 * time.Minute

// Receiver hands the notices other agents relay to this agent's store
// (metastore.NoticeRelay.HearRelayed), which delivers them to its
// watchers as if the store had announced them.
type Receiver struct {
	hear    func(metastore.CommitNotice)
	log     *slog.Logger
	lastLog atomic.Int64
	frames  prometheus.Counter
	bad     prometheus.Counter
}

// NewReceiver returns a Receiver that passes every notice to hear.
func NewReceiver(hear func(metastore.CommitNotice), log *slog.Logger, reg prometheus.Registerer) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		hear: hear, log: log,
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_peer_notice_frames_received_total",
			Help: "Commit-notice frames other agents relayed to this agent.",
		}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_peer_notice_malformed_total",
			Help: "Notice connections closed for a frame breaking the protocol.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.frames, r.bad)
	}
	return r
}

// Serve reads notices from a connection that passed the peer handshake
// (zonecache.ServerOptions.Notices) until it fails, breaks the protocol
// or ctx ends. Every frame is checked before anything is sized by it.
func (r *Receiver) Serve(ctx context.Context, rd io.Reader, nc net.Conn) {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	br := bufio.NewReaderSize(rd, 4<<10) // most frames are small; ReadFrame reads past it
	for ctx.Err() == nil {               // (a deadline set below would undo the one stop sets)
		nc.SetReadDeadline(time.Now().Add(idleTimeout))
		body, err := wire.ReadFrame(br, maxFrameBytes)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) {
				r.malformed(nc, err)
			}
			return
		}
		n, err := decodeFrame(body)
		if err != nil {
			r.malformed(nc, err)
			return
		}
		r.frames.Inc()
		r.hear(n)
	}
}

// malformed counts a broken frame and logs it, at most once a second.
func (r *Receiver) malformed(nc net.Conn, err error) {
	r.bad.Inc()
	now := time.Now().UnixNano()
	last := r.lastLog.Load()
	if now-last < int64(time.Second) || !r.lastLog.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("peer listener: malformed notice frame, connection closed", "remote", nc.RemoteAddr().String(), "err", err)
}
