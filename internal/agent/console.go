package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/floe-io/floe/internal/console"
	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/sharecoord"
)

// ConsolePrincipal is the principal of the console's Kafka requests. With
// --authorizer acl it needs ACLs (or a place in super.users) for what
// operators do through the console (docs/console.md).
const ConsolePrincipal = "User:floe-console"

// mountConsole serves the web console at / of the admin mux. The console
// speaks Kafka to this agent through in-process connections (dialConsole),
// so its actions pass the same handlers, validation and ACLs as a client's.
func (a *Agent) mountConsole(mux *http.ServeMux) error {
	logDir := a.cfg.LogDir
	if logDir == "" {
		logDir = "bucket://" + a.cfg.ClusterID // protocol's default
	}
	c, err := console.New(console.Options{
		Dial:          a.dialConsole,
		Store:         a.store,
		Gatherer:      a.reg,
		Token:         a.cfg.AdminToken,
		Logger:        a.log,
		MetastoreName: a.cfg.MetastoreName,
		Bucket:        logDir,
		Self:          a.consoleSelf,
		OwnsGroup:     func(group string) bool { return protocol.OwnsGroup(clusterView{m: a.members}, group) },
		Coordinator:   func(group string) metastore.AgentInfo { return a.members.Owner(protocol.GroupKey(group)) },
		PeerTLS:       a.cfg.AdminClientTLS,
		Health:        a.consoleHealth,
		ShareGroups:   a.consoleShareGroups,

		SampleInterval: a.cfg.ConsoleSampleInterval,
	})
	if err != nil {
		return err
	}
	mux.Handle("/", c)
	a.actors.add("console", c.Close)
	// /jobs is floe jobs' JSON; a browser, which asks for HTML, gets the
	// console's page there.
	json := a.authorized(http.HandlerFunc(a.jobsStatus))
	mux.Handle("/jobs", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			c.ServeHTTP(w, r)
			return
		}
		json.ServeHTTP(w, r)
	}))
	return nil
}

func (a *Agent) consoleSelf() console.Self {
	s := console.Self{ID: a.members.Self().ID, NodeID: a.members.Self().NodeID, Zone: a.cfg.Zone, Roles: a.cfg.Roles}
	if a.serving.Load() { // started is written before serving
		s.Started = a.started
	}
	return s
}

// consoleHealth is the agent's health as the console and /api/status
// tell it: draining, or whether the metadata store answers.
func (a *Agent) consoleHealth(ctx context.Context) error {
	select {
	case <-a.draining:
		return errors.New("draining")
	default:
	}
	return a.storeHealth(ctx)
}

// statusHandler answers /api/status (console.Status), which the other
// agents' consoles read.
func (a *Agent) statusHandler() http.Handler {
	return console.StatusHandler(console.StatusOptions{Gatherer: a.reg, Self: a.consoleSelf, Health: a.consoleHealth, Logger: a.log})
}

// adminURL is the base URL other agents use for this agent's admin API
// (Config.AdminAdvertise), "" without an admin listener.
func (a *Agent) adminURL() string {
	if a.adminLn == nil {
		return ""
	}
	if a.cfg.AdminAdvertise != "" {
		return strings.TrimSuffix(a.cfg.AdminAdvertise, "/")
	}
	scheme := "http://"
	if a.cfg.AdminTLS != nil {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(a.adminLn.Addr().String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = a.listeners[0].advertise.Host
	}
	return scheme + net.JoinHostPort(host, port)
}

// announce puts the admin URL and the start time in the agent's
// registration; a failure is logged and the next heartbeat carries them.
func (a *Agent) announce(ctx context.Context) {
	if err := a.members.Announce(ctx, a.adminURL(), a.started); err != nil {
		a.log.Warn("announcing the admin address failed; the next heartbeat carries it", "err", err)
	}
}

// errNotServing answers the console's dials before the agent serves and
// once it drains.
var errNotServing = errors.New("agent is not serving Kafka requests")

// dialConsole opens an in-process Kafka connection to this agent for the
// console: one end of a pipe is served like a client connection on the
// CONSOLE pseudo-listener, as ConsolePrincipal, and drained with the
// others.
func (a *Agent) dialConsole(context.Context) (net.Conn, error) {
	if !a.serving.Load() {
		return nil, errNotServing
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.draining:
		return nil, errNotServing
	default:
	}
	client, server := net.Pipe()
	c := newConn(a, a.consoleListener, server)
	c.principal = ConsolePrincipal
	a.conns[c] = struct{}{}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		c.serve()
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
	}()
	return client, nil
}

// consoleShareGroups lists the share groups for the console: the stored
// states with this agent's live view laid over them.
func (a *Agent) consoleShareGroups(ctx context.Context) ([]inspect.GroupRow, error) {
	var live func(string) sharecoord.LiveGroup
	if a.shares != nil {
		live = a.shares.Live
	}
	return inspect.ShareGroupsLive(ctx, a.store, nil, live)
}
