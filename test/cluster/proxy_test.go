package cluster

// A fault-injecting HTTP proxy in front of the S3 server: agents pointed at
// it see object PUTs and GETs fail with 503 SlowDown, GETs answer late,
// and, during an outage, every object request fail.

import (
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
	"testing"
	"time"
)

// faults is what the proxy does to object requests; fractions of
// requests, drawn independently per request.
type faults struct {
	putFail  float64       // PUTs answered 503 without reaching the server
	getFail  float64       // GETs answered 503
	getSlow  float64       // GETs held back before they are forwarded
	slowness time.Duration // how long, at least (up to twice that)
	outage   bool          // every object PUT and GET fails
}

type faultProxy struct {
	url    string // http://127.0.0.1:PORT, the endpoint for the agents
	bucket string

	mu sync.Mutex
	f  faults

	putFailed, getFailed, getDelayed, forwarded atomic.Int64
}

// startFaultProxy proxies to the S3 server at target; bucket is the
// bucket path-style requests name first.
func startFaultProxy(t *testing.T, target, bucket string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{bucket: bucket}
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
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p.handler(rp), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}

func (p *faultProxy) set(f faults) {
	p.mu.Lock()
	p.f = f
	p.mu.Unlock()
}

// isObject reports whether a path-style request names an object (not the
// bucket itself, as List does).
func (p *faultProxy) isObject(r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+p.bucket+"/")
	return ok && rest != ""
}

func (p *faultProxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		f := p.f
		p.mu.Unlock()
		if p.isObject(r) {
			switch r.Method {
			case http.MethodPut:
				if f.outage || rand.Float64() < f.putFail {
					p.putFailed.Add(1)
					io.Copy(io.Discard, r.Body)
					slowDown(w)
					return
				}
			case http.MethodGet:
				if f.outage || rand.Float64() < f.getFail {
					p.getFailed.Add(1)
					slowDown(w)
					return
				}
				if rand.Float64() < f.getSlow {
					p.getDelayed.Add(1)
					select {
					case <-time.After(f.slowness + rand.N(f.slowness)):
					case <-r.Context().Done():
						return // the client gave up (a hedge won)
					}
				}
			}
		}
		p.forwarded.Add(1)
		next.ServeHTTP(w, r)
	})
}

// slowDown answers as S3 does when it sheds load.
func slowDown(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Retry-After", "0")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by the test proxy).</Message></Error>`)
}
