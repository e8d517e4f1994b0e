package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// LatencyProxy is an HTTP reverse proxy on loopback that holds every
// request for a random delay before forwarding it to an object store's
// endpoint. Put in front of a local S3-compatible server, it makes each
// bucket request cross a real network hop and wait the way a request to a
// cloud bucket does, while the SDK, its signing, retries and hedged GETs
// all run as they would against the cloud.
//
// It forwards the client's Host header unchanged, because SigV4 signs it:
// this works with S3-compatible servers addressed path-style, not with a
// cloud endpoint that routes on its own host name.
type LatencyProxy struct {
	lat    LatencyRange
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	proxy  *httputil.ReverseProxy

	mu       sync.Mutex
	requests map[string]int64 // by HTTP method
}

// StartLatencyProxy starts a proxy on a free loopback port that forwards
// to endpoint (http://host:port or https://host:port, optionally with a
// path prefix) after delaying each request by a draw from lat.
func StartLatencyProxy(endpoint string, lat LatencyRange, log *slog.Logger) (*LatencyProxy, error) {
	target, err := url.Parse(endpoint)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("latency proxy: endpoint %q: want http://HOST:PORT", endpoint)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The agent keeps many requests in flight; without idle connections
	// to reuse, every one would pay a new TCP handshake on top of the
	// injected delay.
	transport.MaxIdleConnsPerHost = 64
	p := &LatencyProxy{lat: lat, target: target, requests: map[string]int64{}}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // signed by the client
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A cancelled request (the loser of a hedged GET) is normal.
			if !errors.Is(err, context.Canceled) {
				log.Warn("latency proxy", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(p.ln)
	return p, nil
}

// ServeHTTP delays the request, then forwards it. A request whose client
// gives up during the delay is dropped without reaching the server.
func (p *LatencyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests[r.Method]++
	p.mu.Unlock()
	if err := p.lat.sleep(r.Context()); err != nil {
		return
	}
	p.proxy.ServeHTTP(w, r)
}

// Endpoint is the proxy's URL, with the target's path: use it in place of
// the target endpoint.
func (p *LatencyProxy) Endpoint() string {
	return (&url.URL{Scheme: "http", Host: p.ln.Addr().String(), Path: p.target.Path}).String()
}

// Stats counts the requests received so far by HTTP method, such as
// "312 requests (GET 40, PUT 270, ...)". They include the SDK's retries
// and hedged GETs, which the agent's own metrics count once.
func (p *LatencyProxy) Stats() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var total int64
	parts := make([]string, 0, len(p.requests))
	for m, n := range p.requests {
		total += n
		parts = append(parts, fmt.Sprintf("%s %d", m, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d requests (%s)", total, strings.Join(parts, ", "))
}

// Close stops accepting requests and waits briefly for those in flight.
func (p *LatencyProxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.srv.Shutdown(ctx)
}

// draw returns a delay uniformly distributed in [Min, Max].
func (l LatencyRange) draw() time.Duration {
	d := l.Min
	if spread := l.Max - l.Min; spread > 0 {
		d += rand.N(spread + 1)
	}
	return d
}

// sleep waits for one draw, or until ctx is done.
func (l LatencyRange) sleep(ctx context.Context) error {
	if l.Max <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(l.draw())
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
