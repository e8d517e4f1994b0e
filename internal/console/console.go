// Package console is the web console every agent serves on its admin
// listener: server-rendered pages for the cluster, topics and their
// messages, consumer groups, background jobs and the bucket's cost.
//
// It never reaches the metadata store or the bucket around the agent for
// anything that changes state: every action (create a topic, alter a
// config, reset a group's offsets, produce a record) is a Kafka request
// sent to the agent through an in-process connection (Options.Dial), so
// it passes the same handlers, validation and ACLs as any client's. It
// reads the store only for what Kafka cannot tell (agents, leases, bytes
// in the bucket).
//
// Everything that arrives over HTTP is hostile: path values, query
// strings and forms are validated and bounded, pages are rendered with
// html/template, state-changing requests are POSTs that carry a CSRF
// token and a typed confirmation for destructive ones, and with an admin
// token every request but the login form and the static files must be
// authenticated (docs/console.md).
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/metastore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the console reads from the metadata store directly.
type Store interface {
	jobs.StatusStore
	LiveAgents(ctx context.Context) ([]metastore.AgentInfo, error)
	Topic(ctx context.Context, name string) (metastore.Topic, error)
	// For groups another agent coordinates.
	ListGroups(ctx context.Context) ([]metastore.GroupSummary, error)
	FetchOffsets(ctx context.Context, group string) ([]metastore.CommittedOffset, error)
}

// Self is what the agent serving the console tells about itself.
type Self struct {
	ID      string
	NodeID  int32
	Zone    string
	Roles   []string
	Started time.Time // zero until the agent serves
}

// Options configure a Console.
type Options struct {
	// Dial opens a Kafka connection to the agent (required).
	Dial func(ctx context.Context) (net.Conn, error)
	// Store is the metadata store, for reading (required).
	Store Store
	// Gatherer is the agent's metrics registry (required): rates,
	// errors and the cost page come from its counters.
	Gatherer prometheus.Gatherer
	// Token, if set, is the admin token: requests must carry it as a
	// bearer token or hold the session cookie the login form sets.
	Token string
	// Self describes the serving agent (required).
	Self func() Self
	// OwnsGroup reports whether this agent coordinates a group: the
	// console's Kafka connections all lead to this agent, so it reads
	// other groups from the store and leaves their actions to their
	// coordinator's console. Nil: every group is this agent's.
	OwnsGroup func(group string) bool
	// Coordinator is the registration of the agent that coordinates a
	// group: the console forwards actions on a group it does not own to
	// that agent's admin API (AgentInfo.Admin). Nil: none are forwarded.
	Coordinator func(group string) metastore.AgentInfo
	// PeerTLS is what the console trusts when it asks other agents'
	// https admin APIs (nil: the system's roots).
	PeerTLS *tls.Config
	// ShareGroups lists the share groups (KIP-932) with one row per share
	// partition, the agent's live view laid over the store's
	// (inspect.ShareGroupsLive). Nil: the groups page shows none.
	ShareGroups func(ctx context.Context) ([]inspect.GroupRow, error)
	// Health reports whether the agent serves and its store answers.
	Health func(ctx context.Context) error
	// MetastoreName and Bucket name what the agent runs on.
	MetastoreName, Bucket string
	// SampleInterval is how often the console samples counters and
	// offsets for rates and trends (default 5s).
	SampleInterval time.Duration
	Logger         *slog.Logger
}

// Console serves the pages. It is an http.Handler; Close stops it.
type Console struct {
	opts    Options
	log     *slog.Logger
	client  *kgo.Client
	admin   *kadm.Client
	pages   map[string]*template.Template
	mux     *http.ServeMux
	handler http.Handler
	// csrfKey signs the CSRF tokens; new each process, so a restart
	// makes open forms stale, which is harmless.
	csrfKey []byte
	version string
	samples *sampler
	// peers are the other agents' status; peerClient asks their admin
	// APIs.
	peers      *peers
	peerClient *http.Client

	stop     context.CancelFunc
	stopped  chan struct{}
	stopOnce sync.Once
}

// Limits on what a request may ask for.
const (
	maxFormBytes    = 1 << 20 // a produced value fits in this
	maxRecordsShown = 500
	maxScan         = 100_000
	maxNameLen      = 249 // Kafka's topic name limit
	maxGroupLen     = 255
	maxFlashLen     = 400
	requestTimeout  = 15 * time.Second
)

// New builds a console and starts its sampler.
func New(o Options) (*Console, error) {
	if o.Dial == nil || o.Store == nil || o.Gatherer == nil || o.Self == nil {
		return nil, errors.New("console: Dial, Store, Gatherer and Self are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = 5 * time.Second
	}
	if o.OwnsGroup == nil {
		o.OwnsGroup = func(string) bool { return true }
	}
	if o.Health == nil {
		o.Health = func(context.Context) error { return nil }
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers("floe-console:9092"),
		// Every broker is this agent: the dialer ignores the address.
		kgo.Dialer(func(ctx context.Context, _, _ string) (net.Conn, error) { return o.Dial(ctx) }),
		kgo.ClientID("floe-console"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(0),
		// kadm answers from cached metadata younger than this; pages
		// must show topics created a moment ago.
		kgo.MetadataMinAge(10*time.Millisecond),
		kgo.RetryTimeout(5*time.Second),
		kgo.WithLogger(nil),
	)
	if err != nil {
		return nil, fmt.Errorf("console client: %w", err)
	}
	c := &Console{
		opts: o, log: o.Logger.With("part", "console"), client: cl, admin: kadm.NewClient(cl),
		csrfKey: make([]byte, 32), version: version(), stopped: make(chan struct{}),
		peerClient: newPeerClient(o.PeerTLS),
	}
	c.peers = &peers{c: c}
	if _, err := rand.Read(c.csrfKey); err != nil {
		cl.Close()
		return nil, err
	}
	if c.pages, err = parsePages(); err != nil {
		cl.Close()
		return nil, err
	}
	c.routes()
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.samples = newSampler(c, 120)
	go func() {
		defer close(c.stopped)
		c.samples.run(ctx, o.SampleInterval)
	}()
	return c, nil
}

// Close stops the sampler and the console's Kafka client.
func (c *Console) Close() {
	c.stopOnce.Do(func() {
		c.stop()
		<-c.stopped
		c.client.Close()
		c.peerClient.CloseIdleConnections()
	})
}

// BuildVersion is the running binary's module version and VCS revision,
// as the console shows it and agents register it.
func BuildVersion() string { return version() }

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v
}

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"mul30":    func(f float64) float64 { return f * daysInMonth },
	"list":     func(s ...string) []string { return s },
	"pathesc":  urlPathEscape,
	"bytesf":   func(f float64) string { return humanBytes(int64(f)) },
	"ago":      ago,
	"dur":      roundDuration,
	"rate":     func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"usd":      func(f float64) string { return fmt.Sprintf("$%.4f", f) },
	"time":     func(t time.Time) string { return fmtTime(t) },
	"ms":       func(ms int64) string { return fmtTime(time.UnixMilli(ms)) },
	"join":     strings.Join,
	"add":      func(a, b int) int { return a + b },
	"pct":      func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) },
	"spark":    sparkPoints,
	"contains": func(list []string, s string) bool { return contains(list, s) },
}

// parsePages builds one template set per page: the layout plus the page.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return pages, nil
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", c.loginForm)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	m.HandleFunc("GET /{$}", c.overview)
	m.HandleFunc("GET /agents", c.overview)
	m.HandleFunc("GET /topics", c.topics)
	m.HandleFunc("POST /topics", c.createTopic)
	m.HandleFunc("GET /topics/{name}", c.topic)
	m.HandleFunc("POST /topics/{name}/configs", c.alterConfig)
	m.HandleFunc("POST /topics/{name}/partitions", c.addPartitions)
	m.HandleFunc("POST /topics/{name}/delete", c.deleteTopic)
	m.HandleFunc("POST /topics/{name}/produce", c.produce)
	m.HandleFunc("GET /groups", c.groups)
	m.HandleFunc("GET /groups/{name}", c.group)
	m.HandleFunc("POST /groups/{name}/reset", c.resetOffsets)
	m.HandleFunc("POST /groups/{name}/delete", c.deleteGroup)
	m.HandleFunc("GET /jobs", c.jobs)
	m.HandleFunc("GET /cost", c.cost)
	c.apiRoutes(m)
	c.mux = m
	// Browsers send Sec-Fetch-Site (or Origin) with every POST; a
	// cross-origin one is refused before the CSRF token is looked at.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	c.handler = cop.Handler(http.HandlerFunc(c.serve))
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// A bug in one page must not take the admin listener down, nor
		// show the visitor a stack.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			c.log.Error("console page panicked", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, apiPrefix) {
		c.serveAPI(w, r)
		return
	}
	if !c.public(r) && !c.authenticated(r) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h.Set("WWW-Authenticate", `Bearer realm="floe"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes+64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if !c.validCSRF(r) {
			http.Error(w, "missing or stale CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) public(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/static/") || p == "/login"
}

// sessionCookie is the HttpOnly cookie the login form sets. It holds an
// HMAC of the token rather than the token, so that the cookie is worth
// nothing once the token changes and never shows the token itself.
const sessionCookie = "floe_session"

func (c *Console) sessionValue() string {
	m := hmac.New(sha256.New, []byte(c.opts.Token))
	m.Write([]byte("floe console session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *Console) authenticated(r *http.Request) bool {
	if c.opts.Token == "" {
		return true
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		return subtle.ConstantTimeCompare([]byte(auth), []byte("Bearer "+c.opts.Token)) == 1
	}
	ck, err := r.Cookie(sessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.sessionValue())) == 1
}

// csrfCookie holds a random value per browser; forms carry its HMAC
// under the console's key (a signed double-submit token).
const csrfCookie = "floe_csrf"

func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	v := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 32 {
		v = ck.Value
	} else {
		b := make([]byte, 16)
		rand.Read(b)
		v = hex.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *Console) validCSRF(r *http.Request) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil || len(ck.Value) != 32 {
		return false
	}
	got, err := hex.DecodeString(r.PostForm.Get("csrf"))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(ck.Value))
	return hmac.Equal(got, m.Sum(nil))
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Flash   string
	FlashOK bool
	Login   bool // a token is configured: show the logout button
	Version string
	Refresh bool // live refresh of data-live parts
	Errors  []string
	Data    any
	// Status is the HTTP status (0: 200).
	Status int
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	p.CSRF = c.csrfToken(w, r)
	p.Login = c.opts.Token != ""
	p.Version = c.version
	if f, ok := c.takeFlash(w, r); ok {
		p.Flash, p.FlashOK = f[1:], f[0] == '+'
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.log.Error("console template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if p.Status != 0 {
		w.WriteHeader(p.Status)
	}
	_, _ = w.Write([]byte(buf.String()))
}

// Flash messages survive one redirect in a cookie: "+" for success, "-"
// for an error, then the text.
const flashCookie = "floe_flash"

func (c *Console) redirect(w http.ResponseWriter, r *http.Request, to string, ok bool, msg string) {
	if len(msg) > maxFlashLen {
		msg = msg[:maxFlashLen] + "…"
	}
	sign := "-"
	if ok {
		sign = "+"
		c.log.Info("console action", "path", r.URL.Path, "result", msg)
	} else {
		c.log.Warn("console action failed", "path", r.URL.Path, "err", msg)
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(sign + msg)), Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 60})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) (string, bool) {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return "", false
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil || len(b) < 1 || len(b) > maxFlashLen+8 || (b[0] != '+' && b[0] != '-') {
		return "", false
	}
	return string(b), true
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.opts.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, "login", page{Title: "Log in", Data: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostForm.Get("next"))
	if c.opts.Token == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(c.opts.Token)) != 1 {
		c.log.Warn("console login failed", "remote", r.RemoteAddr)
		// A guess costs a second.
		time.Sleep(time.Second)
		c.redirect(w, r, "/login?next="+urlQueryEscape(next), false, "wrong token")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: c.sessionValue(), Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path, never
// "//host" or a scheme.
func safeNext(s string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") || strings.ContainsAny(s, "\r\n") {
		return "/"
	}
	return s
}

// ctx bounds a page's requests. Its metadata requests bypass the
// client's cache (kadm.WithAuthorizedOps), so lists are never stale.
func (c *Console) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(kadm.WithAuthorizedOps(r.Context()), requestTimeout)
}
