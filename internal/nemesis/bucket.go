package nemesis

import (
	"context"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BucketFaults is what the bucket proxy does to object requests (PUTs
// and GETs of keys, not requests on the bucket itself): fractions of
// requests, drawn independently per request.
type BucketFaults struct {
	PutFail float64 // PUTs answered 503 SlowDown without reaching the server
	GetFail float64 // GETs answered 503 SlowDown
	// GetSlow GETs are held back Slowness to twice that before they are
	// forwarded (a hedge may win meanwhile).
	GetSlow  float64
	Slowness time.Duration
	// Timeout requests are held, unanswered, for Hang, then their
	// connection is closed: a server that stopped answering.
	Timeout float64
	Hang    time.Duration
	// Reset requests have their connection closed without an answer.
	Reset float64
	// PutLost PUTs are forwarded and stored, then answered 500 as if the
	// response failed: the object exists, the client believes it does
	// not.
	PutLost float64
	// Outage fails every object request with 503.
	Outage bool
}

// BucketProxy is an HTTP proxy in front of an S3-compatible server that
// injects BucketFaults into path-style object requests.
type BucketProxy struct {
	// URL is the endpoint to give the agents (http://127.0.0.1:PORT).
	URL    string
	bucket string
	srv    *http.Server

	mu sync.Mutex
	f  BucketFaults
	// rng draws per-request fates; seeded, though request timing is not.
	rng *rand.Rand

	PutFailed, GetFailed, GetDelayed, TimedOut, Reset, PutLost, Forwarded atomic.Int64
}

// StartBucketProxy proxies to the S3 server at target (http://HOST:PORT);
// bucket is the bucket path-style requests name first.
func StartBucketProxy(target, bucket string, seed int64) (*BucketProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &BucketProxy{bucket: bucket, rng: rand.New(rand.NewPCG(uint64(seed), 0x627563))}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// The request is signed for the Host the client sent it to
			// (the proxy); the server checks the signature against it.
			r.Out.Host = r.In.Host
		},
		// Requests a hedge made moot are canceled mid-copy: not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.srv = &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	p.URL = "http://" + ln.Addr().String()
	return p, nil
}

// Set replaces the faults injected from now on.
func (p *BucketProxy) Set(f BucketFaults) {
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *BucketProxy) Close() error { return p.srv.Close() }

func (p *BucketProxy) draw() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Float64()
}

// isObject reports whether a path-style request names an object (not the
// bucket itself, as List does).
func (p *BucketProxy) isObject(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+p.bucket+"/")
	return ok && rest != ""
}

func (p *BucketProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		f := p.f
		p.mu.Unlock()
		if !p.isObject(r) || (r.Method != http.MethodPut && r.Method != http.MethodGet) {
			p.Forwarded.Add(1)
			next.ServeHTTP(w, r)
			return
		}
		put := r.Method == http.MethodPut
		if f.Outage || (put && p.draw() < f.PutFail) || (!put && p.draw() < f.GetFail) {
			if put {
				p.PutFailed.Add(1)
				io.Copy(io.Discard, r.Body)
			} else {
				p.GetFailed.Add(1)
			}
			slowDown(w)
			return
		}
		if p.draw() < f.Reset {
			p.Reset.Add(1)
			reset(w)
			return
		}
		if p.draw() < f.Timeout {
			p.TimedOut.Add(1)
			select {
			case <-time.After(f.Hang):
			case <-r.Context().Done():
			}
			reset(w)
			return
		}
		if !put && f.Slowness > 0 && p.draw() < f.GetSlow {
			p.GetDelayed.Add(1)
			select {
			case <-time.After(f.Slowness + rand.N(f.Slowness)):
			case <-r.Context().Done():
				return // the client gave up (a hedge won)
			}
		}
		if put && p.draw() < f.PutLost {
			// Forward, keep the server's answer, and answer 500 instead.
			rec := &discardWriter{h: http.Header{}}
			next.ServeHTTP(rec, r)
			p.PutLost.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>InternalError</Code><Message>The object was stored; its response was lost (injected by the nemesis).</Message></Error>`)
			return
		}
		p.Forwarded.Add(1)
		next.ServeHTTP(w, r)
	})
}

// discardWriter takes a response and drops it.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// reset closes the request's connection without an answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, not FIN
	}
	c.Close()
}

// slowDown answers as S3 does when it sheds load.
func slowDown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Retry-After", "0")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by the nemesis).</Message></Error>`)
}

// DefaultBucketErrors is the mix the bucket-errors fault injects: a
// quarter of object requests answered 503, some connections reset, some
// requests hanging for 3s, some PUTs stored but answered 500, GETs slow.
var DefaultBucketErrors = BucketFaults{
	PutFail: 0.25, GetFail: 0.25,
	GetSlow: 0.1, Slowness: 300 * time.Millisecond,
	Timeout: 0.05, Hang: 3 * time.Second,
	Reset:   0.05,
	PutLost: 0.1,
}

// BucketErrors is the fault that sets f on the proxy and clears it on
// Heal.
func BucketErrors(p *BucketProxy, f BucketFaults) Fault {
	return New("bucket-errors", "bucket",
		func(context.Context) error { p.Set(f); return nil },
		func(context.Context) error { p.Set(BucketFaults{}); return nil })
}

// Partitioner cuts clients off an upstream and heals the cut: kproxy's
// Proxy is one.
type Partitioner interface {
	Cut(upstream string)
	Heal(upstream string)
}

// Partition is the fault that cuts the clients off the agent at upstream
// (named name) through p, and heals it.
func Partition(p Partitioner, name, upstream string) Fault {
	return New("partition", name,
		func(context.Context) error { p.Cut(upstream); return nil },
		func(context.Context) error { p.Heal(upstream); return nil })
}
