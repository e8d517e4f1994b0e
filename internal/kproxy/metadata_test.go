package kproxy_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil/agenttest"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/kproxy"
	"github.com/floe-io/floe/internal/testutil"
)

// TestBrokersPointAtTheProxy: with two agents behind it, the proxy hands
// out one listener of its own per agent, in Metadata and
// DescribeCluster, and a client that talks to both stays on the proxy.
func TestBrokersPointAtTheProxy(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	b := agenttest.StartPeer(t, a, agenttest.Options{})
	// Bootstrap through b, which joined last and so knows a already.
	p, addr, err := kproxy.Start(b.Addr(), testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("via-proxy"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	admin := kadm.NewClient(cl)
	agents := map[string]bool{a.Addr(): true, b.Addr(): true}
	var meta kadm.Metadata
	for deadline := time.Now().Add(10 * time.Second); ; {
		if meta, err = admin.Metadata(ctx); err != nil {
			t.Fatal(err)
		}
		if len(meta.Brokers) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(meta.Brokers) != 2 {
		t.Fatalf("brokers %v, want both agents", meta.Brokers)
	}
	seen := map[string]bool{}
	for _, br := range meta.Brokers {
		hp := net.JoinHostPort(br.Host, itoa(br.Port))
		if agents[hp] || seen[hp] || br.Host != "127.0.0.1" {
			t.Errorf("broker %d at %s: want a distinct proxy listener", br.NodeID, hp)
		}
		seen[hp] = true
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Brokers) == 0 {
		t.Errorf("DescribeCluster lists no brokers")
	}
	for _, br := range dc.Brokers {
		if hp := net.JoinHostPort(br.Host, itoa(br.Port)); !seen[hp] {
			t.Errorf("DescribeCluster names %s, not a proxy listener", hp)
		}
	}
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, "via-proxy"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
