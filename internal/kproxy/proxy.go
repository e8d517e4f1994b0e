// Package kproxy is a Kafka proxy on loopback that can break the
// guarantees Floe gives, on command, so that the checker can be shown to
// catch each break: it drops one acknowledged record from every fetch
// response that carries it, swaps two records of a batch, writes a
// produced batch twice, or lets read_committed consumers see what
// transactions did not commit. Without a fault armed it forwards frames
// unchanged, except that it rewrites broker addresses in Metadata,
// FindCoordinator and DescribeCluster responses to its own listeners, so
// that clients never leave it.
//
// It is a test instrument: it listens on loopback only, trusts the agent
// behind it, and must never be put in front of real clients.
package kproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/wire"
)

// Fault is a way the proxy breaks Kafka's guarantees.
type Fault int

const (
	// None forwards everything as it is.
	None Fault = iota
	// DropRecord removes the second record of the first fetched batch of
	// three or more records, from that response and every later one, so
	// every reader sees the same log without it: an acknowledged write
	// lost, and readers that skip its offset.
	DropRecord
	// SwapRecords exchanges the keys, values and headers of the first two
	// records of the first fetched batch of three or more records (their
	// offsets stay), in every response that carries it: one producer's
	// records out of the order it sent them, at offsets that disagree with
	// their acknowledgements.
	SwapRecords
	// DuplicateBatch writes the first produced batch a second time, as a
	// non-idempotent batch right after the original on the same
	// connection, and swallows the copy's response: every value in it is
	// in the log at two offsets.
	DuplicateBatch
	// ReorderBatches puts the second of the first two adjacent batches of
	// a partition seen in one fetch response before the first, in every
	// response that carries both. A client that drops records below its
	// position (franz-go does) never delivers the first batch's records to
	// a reader that got both at once: readers skip them, and the final
	// read, which gets them together, loses them.
	ReorderBatches
	// RewindCommits stores every group commit one offset lower than the
	// client asked (offsets above 0): the group's committed offsets, read
	// back, are below commits the cluster acknowledged.
	RewindCommits
	// AdvanceCommits stores every group commit one offset higher than the
	// client asked: the group's committed offsets, read back, are offsets
	// no member committed, and a member given a partition afterwards
	// starts past a record the group never read.
	AdvanceCommits
	// HideAborts empties the aborted transactions list of every fetch
	// response: read_committed consumers keep the records of aborted
	// transactions, as if the agent had forgotten its aborted index.
	HideAborts
	// ReadUncommitted forwards every read_committed fetch as a
	// read_uncommitted one: read_committed consumers read up to the high
	// watermark, past transactions still open (their own included) and
	// through aborted ones, as if the agent ignored the last stable
	// offset.
	ReadUncommitted
)

func (f Fault) String() string {
	switch f {
	case None:
		return "none"
	case DropRecord:
		return "drop-record"
	case SwapRecords:
		return "swap-records"
	case DuplicateBatch:
		return "duplicate-batch"
	case ReorderBatches:
		return "reorder-batches"
	case RewindCommits:
		return "rewind-commits"
	case AdvanceCommits:
		return "advance-commits"
	case HideAborts:
		return "hide-aborts"
	case ReadUncommitted:
		return "read-uncommitted"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// Injection says what an armed fault did.
type Injection struct {
	Fault     Fault
	Topic     string
	Partition int32
	// Offset is the first offset of the batch the fault chose (for
	// DuplicateBatch, -1: the copy's offset is the agent's to assign; for
	// ReorderBatches, the first of the two).
	Offset int64
	// Records is the number of records in that batch.
	Records int
	// Next is, for ReorderBatches, the first offset of the batch moved
	// before it.
	Next int64
	// Applied counts the responses or requests rewritten.
	Applied int
}

const (
	maxFrame    = wire.DefaultMaxFrameBytes
	maxPending  = 1024 // requests in flight per connection
	dialTimeout = 5 * time.Second
)

// Proxy forwards Kafka connections from its listeners to agents.
type Proxy struct {
	log *slog.Logger

	mu        sync.Mutex
	listeners map[string]*listener // by upstream host:port
	fault     Fault
	inj       *Injection // the batch the armed fault chose, once chosen
	closed    bool
	conns     map[net.Conn]struct{}
	// cut holds the upstreams partitioned away (Cut): their connections
	// are closed and new ones hang unanswered until Heal.
	cut map[string]bool
	// byUpstream holds the client connections of each upstream.
	byUpstream map[string]map[net.Conn]struct{}
	// topicNames maps the topic IDs seen in Metadata answers to names,
	// for requests and answers that name topics by ID only (Produce v13,
	// Fetch v13+, OffsetCommit v10): faults are chosen and reported by
	// name. At most maxTopicNames entries.
	topicNames map[[16]byte]string

	wg sync.WaitGroup
}

type listener struct {
	ln       net.Listener
	upstream string
}

// Start listens on a free loopback port and forwards to upstream, an
// agent's HOST:PORT; Addr is the bootstrap address to give clients.
func Start(upstream string, log *slog.Logger) (*Proxy, string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{log: log, listeners: map[string]*listener{}, conns: map[net.Conn]struct{}{},
		cut: map[string]bool{}, byUpstream: map[string]map[net.Conn]struct{}{}, topicNames: map[[16]byte]string{}}
	l, err := p.listen(upstream)
	if err != nil {
		return nil, "", err
	}
	return p, l.ln.Addr().String(), nil
}

// Arm sets the fault to inject from now on; the batch it applies to is
// chosen when one passes. Arming again forgets the earlier choice.
func (p *Proxy) Arm(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	p.inj = nil
}

// Injected returns what the armed fault did, and false until it chose a
// batch.
func (p *Proxy) Injected() (Injection, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inj == nil {
		return Injection{}, false
	}
	return *p.inj, true
}

// Close stops the listeners, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for _, l := range p.listeners {
		l.ln.Close()
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// listen returns the listener forwarding to upstream, starting it on first
// use. The caller must not hold p.mu.
func (p *Proxy) listen(upstream string) (*listener, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.listeners[upstream]; ok {
		return l, nil
	}
	if p.closed {
		return nil, errors.New("kproxy: closed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &listener{ln: ln, upstream: upstream}
	p.listeners[upstream] = l
	p.wg.Add(1)
	go p.accept(l)
	return l, nil
}

func (p *Proxy) accept(l *listener) {
	defer p.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c, l.upstream)
		}()
	}
}

// track registers c for Close; it returns false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// inflight is a request whose response is on its way back.
type inflight struct {
	key, version int16
	swallow      bool // the proxy's own request: drop the response
}

// Listen returns the proxy's address for upstream, an agent's HOST:PORT,
// starting a listener for it if there is none yet: a bootstrap address
// for clients that must reach that agent through the proxy.
func (p *Proxy) Listen(upstream string) (string, error) {
	l, err := p.listen(upstream)
	if err != nil {
		return "", err
	}
	return l.ln.Addr().String(), nil
}

// Cut partitions the clients from upstream: the proxy closes every
// connection it holds to it (requests in flight get no answer), and
// connections made until Heal are accepted but never answered nor
// forwarded, as across a network that drops every packet.
func (p *Proxy) Cut(upstream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut[upstream] = true
	for c := range p.byUpstream[upstream] {
		c.Close()
	}
}

// Heal ends Cut: the connections that hung are closed, so clients
// reconnect, and new ones are forwarded again.
func (p *Proxy) Heal(upstream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cut, upstream)
	for c := range p.byUpstream[upstream] {
		c.Close()
	}
}

// hold keeps a client connection of a cut upstream open, reading and
// discarding what it sends, until it is closed (by Heal or the client).
func hold(client net.Conn) {
	io.Copy(io.Discard, client)
}

func (p *Proxy) serve(client net.Conn, upstream string) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	p.mu.Lock()
	if p.byUpstream[upstream] == nil {
		p.byUpstream[upstream] = map[net.Conn]struct{}{}
	}
	p.byUpstream[upstream][client] = struct{}{}
	cut := p.cut[upstream]
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.byUpstream[upstream], client)
		p.mu.Unlock()
	}()
	if cut {
		hold(client)
		return
	}
	agent, err := net.DialTimeout("tcp", upstream, dialTimeout)
	if err != nil {
		p.log.Warn("kproxy dial", "upstream", upstream, "err", err)
		return
	}
	if !p.track(agent) {
		agent.Close()
		return
	}
	defer p.untrack(agent)
	pending := make(chan inflight, maxPending)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer agent.Close()
		defer client.Close()
		if err := p.responses(agent, client, pending); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			p.log.Debug("kproxy responses", "err", err)
		}
	}()
	if err := p.requests(client, agent, pending, done); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		p.log.Debug("kproxy requests", "err", err)
	}
	close(pending)
	agent.Close()
	<-done
}

// requests forwards the client's requests, noting each for its response.
// It stops when the response side has (done closed).
func (p *Proxy) requests(client, agent net.Conn, pending chan<- inflight, done <-chan struct{}) error {
	note := func(in inflight) error {
		select {
		case pending <- in:
			return nil
		case <-done:
			return net.ErrClosed
		}
	}
	for {
		frame, err := wire.ReadFrame(client, maxFrame)
		if err != nil {
			return err
		}
		req, err := wire.ParseRequest(frame)
		if err != nil {
			return err
		}
		var dup []byte
		expectResponse := true
		if produce, ok := req.Req.(*kmsg.ProduceRequest); ok {
			expectResponse = produce.Acks != 0
			dup = p.duplicate(produce, req.ClientID)
		}
		if commit, ok := req.Req.(*kmsg.OffsetCommitRequest); ok && p.moveCommit(commit) {
			frame = wire.AppendRequest(nil, req.CorrelationID, req.ClientID, commit)[4:]
		}
		if fetch, ok := req.Req.(*kmsg.FetchRequest); ok && p.uncommit(fetch) {
			frame = wire.AppendRequest(nil, req.CorrelationID, req.ClientID, fetch)[4:]
		}
		if expectResponse {
			if err := note(inflight{key: req.Key, version: req.Version}); err != nil {
				return err
			}
		}
		if err := writeFrame(agent, frame); err != nil {
			return err
		}
		if dup != nil {
			if err := note(inflight{key: 0, swallow: true}); err != nil {
				return err
			}
			if _, err := agent.Write(dup); err != nil {
				return err
			}
		}
	}
}

func writeFrame(w io.Writer, frame []byte) error {
	buf := make([]byte, 4, 4+len(frame))
	buf[0], buf[1], buf[2], buf[3] = byte(len(frame)>>24), byte(len(frame)>>16), byte(len(frame)>>8), byte(len(frame))
	_, err := w.Write(append(buf, frame...))
	return err
}

// responses forwards the agent's responses, rewriting those that name
// brokers and, with a fault armed, fetched batches.
func (p *Proxy) responses(agent, client net.Conn, pending <-chan inflight) error {
	for {
		frame, err := wire.ReadFrame(agent, maxFrame)
		if err != nil {
			return err
		}
		in, ok := <-pending
		if !ok {
			return errors.New("response to no request")
		}
		if in.swallow {
			continue
		}
		out, err := p.rewrite(in, frame)
		if err != nil {
			return err
		}
		if out == nil {
			err = writeFrame(client, frame)
		} else {
			_, err = client.Write(out)
		}
		if err != nil {
			return err
		}
	}
}

// rewrite returns the response frame to send instead of frame (with its
// size), or nil to send frame as it is.
func (p *Proxy) rewrite(in inflight, frame []byte) ([]byte, error) {
	switch in.key {
	case 1, 3, 10, 60: // Fetch, Metadata, FindCoordinator, DescribeCluster
	default:
		return nil, nil
	}
	resp := kmsg.ResponseForKey(in.key)
	resp.SetVersion(in.version)
	r := kbin.Reader{Src: frame}
	corr := r.Int32()
	if resp.IsFlexible() {
		skipTags(&r)
	}
	if !r.Ok() {
		return nil, fmt.Errorf("kproxy: short %s response header", kmsg.NameForKey(in.key))
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("kproxy: %s v%d response: %w", kmsg.NameForKey(in.key), in.version, err)
	}
	changed := false
	var err error
	switch resp := resp.(type) {
	case *kmsg.FetchResponse:
		changed = p.rewriteFetch(resp)
	case *kmsg.MetadataResponse:
		p.learnTopicNames(resp)
		for i := range resp.Brokers {
			b := &resp.Brokers[i]
			if b.Host, b.Port, err = p.addressFor(b.Host, b.Port); err != nil {
				return nil, err
			}
		}
		changed = true
	case *kmsg.FindCoordinatorResponse:
		if resp.Host != "" {
			if resp.Host, resp.Port, err = p.addressFor(resp.Host, resp.Port); err != nil {
				return nil, err
			}
		}
		for i := range resp.Coordinators {
			c := &resp.Coordinators[i]
			if c.Host != "" {
				if c.Host, c.Port, err = p.addressFor(c.Host, c.Port); err != nil {
					return nil, err
				}
			}
		}
		changed = true
	case *kmsg.DescribeClusterResponse:
		for i := range resp.Brokers {
			b := &resp.Brokers[i]
			if b.Host, b.Port, err = p.addressFor(b.Host, b.Port); err != nil {
				return nil, err
			}
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return wire.AppendResponse(nil, corr, resp), nil
}

// addressFor returns the proxy's listener address for an agent's.
func (p *Proxy) addressFor(host string, port int32) (string, int32, error) {
	l, err := p.listen(net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return "", 0, err
	}
	a := l.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), int32(a.Port), nil
}

func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint()
		size := r.Uvarint()
		if int64(size) > int64(len(r.Src)) {
			r.Span(len(r.Src) + 1)
			return
		}
		r.Span(int(size))
	}
}

// maxTopicNames bounds Proxy.topicNames.
const maxTopicNames = 100_000

// learnTopicNames remembers the topic IDs of a Metadata answer.
func (p *Proxy) learnTopicNames(resp *kmsg.MetadataResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range resp.Topics {
		if t.Topic == nil || t.TopicID == ([16]byte{}) {
			continue
		}
		if len(p.topicNames) >= maxTopicNames {
			clear(p.topicNames)
		}
		p.topicNames[t.TopicID] = *t.Topic
	}
}

// topicName is name, or, for a request or answer that names the topic by
// ID only, the name Metadata gave for id. p.mu must be held.
func (p *Proxy) topicName(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	return p.topicNames[id]
}
