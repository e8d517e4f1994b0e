package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/peernotice"
	"github.com/floe-io/floe/internal/zonecache"
)

// relaySecret is the cluster secret of a benchmark's notice relay.
var relaySecret = []byte("floe bench metastore")

// RelayNotices connects stores as agents relay commit notices to each
// other (internal/peernotice): each store gets a peer listener on
// loopback that takes notices, and a sender to every other store's
// listener, all in this process and over real TCP. It returns once every
// sender is connected to all its peers (or fails after 30 s), with what
// stops it all. Every store must be a metastore.NoticeRelay.
func RelayNotices(stores []metastore.Store, log *slog.Logger) (stop func(), err error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stopAll()
		}
	}()
	relays := make([]metastore.NoticeRelay, len(stores))
	peers := make([]metastore.AgentInfo, len(stores))
	for i, s := range stores {
		relay, ok := s.(metastore.NoticeRelay)
		if !ok {
			return nil, fmt.Errorf("store %d (%T) takes no notice relay", i, s)
		}
		relays[i] = relay
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv, err := zonecache.Serve(ln, zonecache.ServerOptions{
			Secret: relaySecret, Sizes: s, Blocks: noBlocks{}, Logger: log,
			Notices: peernotice.NewReceiver(relay.HearRelayed, log, nil).Serve,
		})
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { srv.Close() })
		peers[i] = metastore.AgentInfo{PeerAddr: srv.Addr().String()}
	}
	senders := make([]*peernotice.Sender, len(stores))
	for i := range stores {
		s := peernotice.NewSender(peernotice.Options{Secret: relaySecret, Logger: log})
		others := append(append([]metastore.AgentInfo{}, peers[:i]...), peers[i+1:]...)
		s.SetPeers(others)
		senders[i] = s
		relays[i].RelayNotices(s.Send)
		stops = append(stops, func() {
			relays[i].RelayNotices(nil)
			s.Close()
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range senders {
		for {
			c, of := s.Connected()
			if c == of {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("store %d's notice relay connected to %d of %d peers in 30 s", i, c, of)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return stopAll, nil
}

// noBlocks serves no blocks: a benchmark's peer listeners carry notices
// only.
type noBlocks struct{}

func (noBlocks) ReadRange(context.Context, string, int64, int64, int64) ([]byte, error) {
	return nil, errors.New("this peer listener serves no blocks")
}
