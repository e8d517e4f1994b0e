package acl

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
)

// DefaultPollInterval is how often an Authorizer asks the store whether
// the ACLs changed: a revocation made through any agent applies on every
// agent within about this long.
const DefaultPollInterval = time.Second

// AuthorizerOptions configure an Authorizer.
type AuthorizerOptions struct {
	Options
	// PollInterval is how often the ACL version is read (default 1s).
	PollInterval time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Authorizer is an agent's authorizer: the cluster's ACLs, cached, and
// the decisions made with them. Decisions read the current Rules with
// one atomic load; Run keeps them current by polling the store's ACL
// version and reloading when it moves, and Reload reloads at once (after
// this agent changed the ACLs). It holds no mutex: the rules in use are
// an immutable snapshot behind an atomic pointer. It is safe for
// concurrent use.
type Authorizer struct {
	store metastore.ACLStore
	opts  AuthorizerOptions
	log   *slog.Logger

	current atomic.Pointer[snapshot] // replaced only by a higher version

	denied      *prometheus.CounterVec
	lastLog     atomic.Int64 // Unix ns of the last denial logged
	unlogged    atomic.Int64 // denials not logged since
	reloadFails prometheus.Counter
}

type snapshot struct {
	rules   *Rules
	version int64
}

// NewAuthorizer loads the ACLs from store and returns an Authorizer for
// them. It fails if they cannot be read: an agent must not serve with no
// idea of its ACLs.
func NewAuthorizer(ctx context.Context, store metastore.ACLStore, opts AuthorizerOptions) (*Authorizer, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authorizer{
		store: store, opts: opts, log: opts.Logger,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_acl_denied_total",
			Help: "Operations the ACLs denied, by principal.",
		}, []string{"principal"}),
		reloadFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "floe_acl_reload_failures_total",
			Help: "Failed reads of the ACLs or their version from the metadata store; the agent keeps deciding with the ACLs it has.",
		}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(a.denied, a.reloadFails)
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	cur := a.current.Load()
	a.log.Info("authorizing with acls", "version", cur.version, "super_users", opts.SuperUsers,
		"allow_everyone_if_no_acl_found", opts.AllowIfNoACL, "poll", opts.PollInterval)
	return a, nil
}

// Reload reads the ACLs from the store if their version moved since the
// last load. It takes no lock: concurrent reloads may both read the
// store, and a snapshot replaces the current one only if its version is
// higher, so the newest always wins.
func (a *Authorizer) Reload(ctx context.Context) error {
	if cur := a.current.Load(); cur != nil {
		v, err := a.store.ACLVersion(ctx)
		if err != nil {
			return fmt.Errorf("read acl version: %w", err)
		}
		if v == cur.version {
			return nil
		}
	}
	acls, v, err := a.store.ACLs(ctx)
	if err != nil {
		return fmt.Errorf("load acls: %w", err)
	}
	next := &snapshot{rules: NewRules(acls), version: v}
	for {
		cur := a.current.Load()
		if cur != nil && cur.version >= v {
			return nil
		}
		if a.current.CompareAndSwap(cur, next) {
			a.log.Debug("acls loaded", "bindings", len(acls), "version", v)
			return nil
		}
	}
}

// Run polls the store every PollInterval until ctx ends, reloading the
// ACLs when their version moves. A failed poll keeps the ACLs it has.
func (a *Authorizer) Run(ctx context.Context) {
	t := time.NewTicker(a.opts.PollInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.Reload(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.reloadFails.Inc()
			if !failing {
				a.log.Warn("cannot refresh the acls; deciding with the last ones read", "err", err)
			}
			failing = true
		case err == nil && failing:
			a.log.Info("acls refreshed again")
			failing = false
		}
	}
}

// Rules returns the ACLs in use.
func (a *Authorizer) Rules() *Rules { return a.current.Load().rules }

// Authorize decides with the current ACLs (Rules.Authorize), and counts
// and logs a denial.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.Rules().Authorize(&a.opts.Options, principal, host, op, rt, name) {
		return true
	}
	a.deny(principal, host, op, rt, name)
	return false
}

// AuthorizeAny decides with the current ACLs (Rules.AuthorizeAny), and
// counts and logs a denial.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if a.Rules().AuthorizeAny(&a.opts.Options, principal, host, op, rt) {
		return true
	}
	a.deny(principal, host, op, rt, "(any)")
	return false
}

// Filtered reports the same decision as Authorize without counting or
// logging a denial: for lists that leave out what a principal may not
// see (Metadata for all topics, ListGroups), where Kafka does not log.
func (a *Authorizer) Filtered(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	return a.Rules().Authorize(&a.opts.Options, principal, host, op, rt, name)
}

// deny counts a denial and logs it, at most once a second with the
// number of denials left out since.
func (a *Authorizer) deny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) {
	// Prometheus panics on a label that is not UTF-8; a principal from a
	// certificate's subject or a SASL name need not be.
	a.denied.WithLabelValues(strings.ToValidUTF8(principal, "\uFFFD")).Inc()
	now := time.Now().UnixNano()
	last := a.lastLog.Load()
	if now-last < int64(time.Second) || !a.lastLog.CompareAndSwap(last, now) {
		a.unlogged.Add(1)
		return
	}
	a.log.Info("denied by acls", "principal", principal, "host", host, "operation", op.String(),
		"resource_type", rt.String(), "resource", name, "denials_not_logged", a.unlogged.Swap(0))
}
