package console

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// The console asks the other agents' admin APIs for their status
// (/api/status) and forwards group actions to a group's coordinator
// (/api/console/…). Their answers are as hostile as any network input:
// bounded in time and size, decoded into fixed types and checked.
const (
	// peerTimeout is the most a page waits for the other agents' status;
	// they are asked in parallel.
	peerTimeout = 1500 * time.Millisecond
	// maxPeerAnswer bounds an answer read from another agent.
	maxPeerAnswer = 4 << 20
	// peerSpan is how long status samples are kept for rates.
	peerSpan       = rateSpan + 10*time.Second
	maxPeerSamples = 32
	maxPeerTopics  = 10_000
	maxPeerText    = 200
)

func newPeerClient(tc *tls.Config) *http.Client {
	if tc != nil {
		tc = tc.Clone()
	}
	return &http.Client{
		Transport: &http.Transport{
			// Agents talk to each other directly, never through a proxy.
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: peerTimeout}).DialContext,
			TLSClientConfig:        tc,
			TLSHandshakeTimeout:    peerTimeout,
			ResponseHeaderTimeout:  requestTimeout,
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        time.Minute,
			MaxResponseHeaderBytes: 16 << 10,
		},
		Timeout: requestTimeout + 5*time.Second,
		// An agent's admin API never redirects its peers: a redirect is
		// refused rather than followed with the token.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// peerURL joins an agent's registered admin base URL and a path. Only
// http and https URLs with a host and nothing else are accepted.
func peerURL(admin, path string) (string, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("agent registered an unusable admin address %q", clipPeer(admin))
	}
	return u.Scheme + "://" + u.Host + path, nil
}

// peerError is a non-2xx answer from another agent.
type peerError struct {
	code int
	msg  string
}

func (e *peerError) Error() string {
	if e.code == http.StatusUnauthorized || e.code == http.StatusForbidden {
		return fmt.Sprintf("HTTP %d: the agents' admin tokens differ", e.code)
	}
	if e.msg != "" {
		return fmt.Sprintf("HTTP %d: %s", e.code, e.msg)
	}
	if e.code == http.StatusNotFound {
		return "HTTP 404: its console is off (--console=false) or older than this one"
	}
	return fmt.Sprintf("HTTP %d", e.code)
}

// peerDo sends a request to another agent's admin API with this agent's
// admin token (the agents of a cluster share it) and decodes its JSON
// answer into out.
func (c *Console) peerDo(ctx context.Context, method, admin, path string, body, out any) error {
	u, err := peerURL(admin, path)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.peerClient.Do(req)
	if err != nil {
		c.log.Debug("console: asking another agent", "url", u, "err", err)
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("no answer in time")
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			return errors.New("no answer in time")
		}
		return errors.New("cannot connect")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerAnswer+1))
	if err != nil {
		return errors.New("answer cut short")
	}
	if len(raw) > maxPeerAnswer {
		return errors.New("answer too large")
	}
	if resp.StatusCode/100 != 2 {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &m)
		return &peerError{code: resp.StatusCode, msg: clipPeer(m.Message)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return errors.New("answer is not what an agent answers")
	}
	return nil
}

// clip bounds a string from another agent for showing.
func clipPeer(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxPeerText {
		s = s[:maxPeerText] + "…"
	}
	return strings.ToValidUTF8(s, "")
}

type peerSample struct {
	at time.Time
	st Status
}

// peerState is what the console knows of another agent.
type peerState struct {
	samples []peerSample // oldest first
	err     string       // the last ask's failure, "" after a success
}

// peers keeps the other agents' status. It is asked for only while
// someone looks at a page that shows it, at most once per sample
// interval whatever the number of viewers.
type peers struct {
	c    *Console
	poll sync.Mutex // one round of asking at a time

	mu     sync.Mutex
	polled time.Time
	state  map[string]*peerState // by agent ID
}

// refresh asks every other live agent with an admin address for its
// status, in parallel, unless that was done less than half a sample
// interval ago. It returns within peerTimeout.
func (p *peers) refresh(ctx context.Context, agents []metastore.AgentInfo, selfID string) {
	p.poll.Lock()
	defer p.poll.Unlock()
	p.mu.Lock()
	fresh := time.Since(p.polled) < p.c.opts.SampleInterval/2
	p.mu.Unlock()
	if fresh {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	type result struct {
		st  Status
		err error
	}
	results := make([]result, len(agents))
	var wg sync.WaitGroup
	for i, a := range agents {
		if a.ID == selfID || a.Admin == "" {
			continue
		}
		wg.Go(func() {
			var st Status
			err := p.c.peerDo(ctx, http.MethodGet, a.Admin, "/api/status", nil, &st)
			if err == nil {
				err = checkStatus(&st, a)
			}
			results[i] = result{st, err}
		})
	}
	wg.Wait()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polled = now
	old := p.state
	p.state = map[string]*peerState{}
	for i, a := range agents {
		if a.ID == selfID || a.Admin == "" {
			continue
		}
		ps := old[a.ID]
		if ps == nil {
			ps = &peerState{}
		}
		if err := results[i].err; err != nil {
			ps.err = err.Error()
		} else {
			ps.err = ""
			ps.samples = append(ps.samples, peerSample{at: now, st: results[i].st})
		}
		for len(ps.samples) > 0 && (now.Sub(ps.samples[0].at) > peerSpan || len(ps.samples) > maxPeerSamples) {
			ps.samples = ps.samples[1:]
		}
		p.state[a.ID] = ps
	}
}

// checkStatus refuses an answer that is not the agent asked, and bounds
// what will be shown of it.
func checkStatus(st *Status, a metastore.AgentInfo) error {
	if st.ID != a.ID {
		return errors.New("answered for another agent")
	}
	st.Version, st.Health = clipPeer(st.Version), clipPeer(st.Health)
	if len(st.Fetch) > maxPeerTopics {
		st.Fetch = nil
	}
	for t, s := range st.Fetch {
		if (!validTopic(t) && t != otherTopics) || s.Records < 0 || s.Bytes < 0 {
			delete(st.Fetch, t)
		}
	}
	for _, f := range []*float64{&st.Connections, &st.Goroutines, &st.CPUSeconds, &st.RSSBytes, &st.Bucket.Puts, &st.Bucket.Gets, &st.Bucket.AppendedBytes} {
		*f = max(*f, 0)
	}
	return nil
}

// otherTopics is protocol.OtherTopics: the series of the topics beyond
// an agent's limit of named ones.
const otherTopics = "~other"

// peerView is what a page shows of another agent.
type peerView struct {
	Known     bool // asked at least once
	Reachable bool
	Err       string
	Status    Status
	CPU       float64           // CPU seconds per second
	Fetch     map[string]Served // per second, by topic
	Bucket    BucketTotals      // per second
	Warm      bool              // two answers to take rates from
}

func (p *peers) view(id string) peerView {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.state[id]
	if ps == nil {
		return peerView{}
	}
	v := peerView{Known: true, Err: ps.err, Reachable: ps.err == "" && len(ps.samples) > 0}
	if len(ps.samples) == 0 {
		return v
	}
	cur := ps.samples[len(ps.samples)-1]
	v.Status = cur.st
	old := ps.samples[0]
	dt := cur.at.Sub(old.at).Seconds()
	if len(ps.samples) < 2 || dt <= 0 {
		return v
	}
	v.Warm = true
	perSec := func(a, b float64) float64 {
		if b < a { // restarted
			return 0
		}
		return (b - a) / dt
	}
	v.CPU = perSec(old.st.CPUSeconds, cur.st.CPUSeconds)
	ob, cb := old.st.Bucket, cur.st.Bucket
	v.Bucket = BucketTotals{Puts: perSec(ob.Puts, cb.Puts), Gets: perSec(ob.Gets, cb.Gets), AppendedBytes: perSec(ob.AppendedBytes, cb.AppendedBytes)}
	v.Fetch = map[string]Served{}
	for t, s := range cur.st.Fetch {
		o := old.st.Fetch[t]
		v.Fetch[t] = Served{Records: perSec(o.Records, s.Records), Bytes: perSec(o.Bytes, s.Bytes)}
	}
	return v
}

// fetchRates are the records and bytes per second Fetch served by topic,
// over the last minute: this agent's, plus every other live agent's that
// answered. agents counts the agents with fetch counters in the sum,
// of total live agents.
type fetchRates struct {
	ByTopic       map[string]Served
	Agents, Total int
}

// clusterFetchRates asks the other agents (refresh) and adds up.
func (c *Console) clusterFetchRates(ctx context.Context) fetchRates {
	out := fetchRates{ByTopic: c.samples.fetchRates()}
	out.Agents, out.Total = c.eachWarmPeer(ctx, func(v peerView) {
		for t, s := range v.Fetch {
			sum := out.ByTopic[t]
			sum.Records += s.Records
			sum.Bytes += s.Bytes
			out.ByTopic[t] = sum
		}
	})
	return out
}

// eachWarmPeer asks the other live agents (refresh) and calls add with
// the view of each one that answered and has rates (Warm). It returns
// the agents counted, this one included, of total live agents (1 of 1
// when the live list cannot be read).
func (c *Console) eachWarmPeer(ctx context.Context, add func(peerView)) (agents, total int) {
	live, err := c.opts.Store.LiveAgents(ctx)
	if err != nil {
		return 1, 1
	}
	self := c.opts.Self().ID
	c.peers.refresh(ctx, live, self)
	agents = 1
	for _, a := range live {
		total++
		if a.ID == self {
			continue
		}
		v := c.peers.view(a.ID)
		if !v.Reachable || !v.Warm {
			continue
		}
		agents++
		add(v)
	}
	return agents, max(total, 1)
}

// bucketRates are PUTs, GETs and appended bytes per second: this
// agent's, plus every other live agent's that answered (Agents of Total
// live agents).
type bucketRates struct {
	BucketTotals
	Agents, Total int
}

// clusterBucketRates asks the other agents (refresh) and adds up their
// bucket rates to own, this agent's.
func (c *Console) clusterBucketRates(ctx context.Context, own BucketTotals) bucketRates {
	out := bucketRates{BucketTotals: own}
	out.Agents, out.Total = c.eachWarmPeer(ctx, func(v peerView) {
		out.Puts += v.Bucket.Puts
		out.Gets += v.Bucket.Gets
		out.AppendedBytes += v.Bucket.AppendedBytes
	})
	return out
}
