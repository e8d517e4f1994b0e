package agent

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/peernotice"
)

// followInterval is how often the relay checks the live agents.
const followInterval = 100 * time.Millisecond

// relayNotices makes the agent carry its commits' notices to the other
// live agents over their peer listeners, when its store takes a relay
// (metastore.NoticeRelay: PostgreSQL), so that the database does not fan
// every commit out to every agent. It returns what serves the notice
// connections other agents open (nil: the agent takes none, and senders
// fall back to the store).
func (a *Agent) relayNotices(secret []byte) func(context.Context, io.Reader, net.Conn) {
	store, ok := a.store.(metastore.NoticeRelay)
	if !ok || a.cfg.StoreNotices {
		return nil
	}
	sender := peernotice.NewSender(peernotice.Options{
		Secret: secret, TLS: a.cfg.PeerClientTLS, Logger: a.log, Registerer: a.reg,
	})
	receiver := peernotice.NewReceiver(store.HearRelayed, a.log, a.reg)
	members := a.members
	self := members.Self().ID
	follow := func(seen uint64) uint64 {
		g := members.Generation()
		if g == seen {
			return seen
		}
		var others []metastore.AgentInfo
		for _, m := range members.Live() {
			if m.ID != self {
				others = append(others, m)
			}
		}
		sender.SetPeers(others)
		return g
	}
	seen := follow(^uint64(0)) // the peers are known before the first notice
	a.actors.add("notice relay", runUntilStopped(func(ctx context.Context) {
		ticker := time.NewTicker(followInterval)
		defer ticker.Stop()
		for {
			seen = follow(seen)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}))
	store.RelayNotices(sender.Send)
	a.actors.add("notice sender", func() {
		store.RelayNotices(nil)
		sender.Close()
	})
	return receiver.Serve
}
