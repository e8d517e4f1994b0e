package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/metastore"
)

// Groups are coordinated by one agent each, and the console's Kafka
// connections all lead to its own agent. For a group another agent
// coordinates, the console asks that agent's console through its admin
// API (AgentInfo.Admin) for the group's live state and members, and
// forwards resets and deletions to it. These /api/console/ endpoints
// take the admin token as a bearer token only (never the browser's
// session cookie) and JSON bodies only, so a browser cannot be made to
// call them from another site; they never forward in their turn.
const apiPrefix = "/api/console/"

// maxAPIBody bounds a forwarded action's JSON.
const maxAPIBody = 64 << 10

// actionResult answers a forwarded action.
type actionResult struct {
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

func (c *Console) apiRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/console/groups/{name}", c.apiGroup)
	m.HandleFunc("POST /api/console/groups/{name}/reset", c.apiReset)
	m.HandleFunc("POST /api/console/groups/{name}/delete", c.apiDelete)
}

// serveAPI authenticates a request to /api/console/ and serves it.
func (c *Console) serveAPI(w http.ResponseWriter, r *http.Request) {
	if c.opts.Token != "" && !bearerOK(r, c.opts.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="floe"`)
		writeJSON(w, http.StatusUnauthorized, actionResult{Message: "unauthorized"})
		return
	}
	if r.Method == http.MethodPost {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, actionResult{Message: "JSON only"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAPIBody)
	}
	c.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("bad JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("bad JSON: more after the object")
	}
	return nil
}

// apiOwned checks the group name of an API request and that this agent
// coordinates the group (409 otherwise: the agents' views of who is
// live differ for a moment, and forwarding again could loop).
func (c *Console) apiOwned(w http.ResponseWriter, r *http.Request) (string, bool) {
	name, ok := groupPath(r)
	if !ok {
		writeJSON(w, http.StatusBadRequest, actionResult{Message: "invalid group name"})
		return "", false
	}
	if !c.opts.OwnsGroup(name) {
		writeJSON(w, http.StatusConflict, actionResult{Message: "this agent does not coordinate the group (the cluster changed): try again"})
		return "", false
	}
	return name, true
}

func (c *Console) apiGroup(w http.ResponseWriter, r *http.Request) {
	name, ok := c.apiOwned(w, r)
	if !ok {
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	d, status := c.ownGroup(ctx, name)
	if status == http.StatusNotFound {
		writeJSON(w, status, actionResult{Message: "no group " + name})
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (c *Console) apiReset(w http.ResponseWriter, r *http.Request) {
	name, ok := c.apiOwned(w, r)
	if !ok {
		return
	}
	var req resetRequest
	if err := decodeBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, actionResult{Message: err.Error()})
		return
	}
	if req.Confirm != name {
		writeJSON(w, http.StatusBadRequest, actionResult{Message: "the reset is not confirmed with the group's name"})
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	msg, err := c.reset(ctx, name, req)
	c.apiResult(w, r, name, msg, err)
}

func (c *Console) apiDelete(w http.ResponseWriter, r *http.Request) {
	name, ok := c.apiOwned(w, r)
	if !ok {
		return
	}
	var req deleteRequest
	if err := decodeBody(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, actionResult{Message: err.Error()})
		return
	}
	if req.Confirm != name {
		writeJSON(w, http.StatusBadRequest, actionResult{Message: "the deletion is not confirmed with the group's name"})
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	msg, err := c.delete(ctx, name)
	c.apiResult(w, r, name, msg, err)
}

// apiResult answers and logs a forwarded action.
func (c *Console) apiResult(w http.ResponseWriter, r *http.Request, group, msg string, err error) {
	if err != nil {
		c.log.Warn("console action forwarded by another agent failed", "path", r.URL.Path, "group", group, "remote", r.RemoteAddr, "err", err)
		writeJSON(w, http.StatusOK, actionResult{Message: err.Error()})
		return
	}
	c.log.Info("console action forwarded by another agent", "path", r.URL.Path, "group", group, "remote", r.RemoteAddr, "result", msg)
	writeJSON(w, http.StatusOK, actionResult{OK: true, Message: msg})
}

// coordinator returns the agent that coordinates group when it is
// another agent with a usable admin address.
func (c *Console) coordinator(group string) (metastore.AgentInfo, error) {
	if c.opts.Coordinator == nil {
		return metastore.AgentInfo{}, errors.New("another agent coordinates this group: reset or delete it on that agent's console")
	}
	a := c.opts.Coordinator(group)
	switch {
	case a.ID == c.opts.Self().ID:
		return a, errors.New("this agent has just become the group's coordinator: try again")
	case a.Admin == "":
		return a, fmt.Errorf("node %d coordinates this group and registered no admin address (an agent without an admin listener, or one older than this console)", a.NodeID)
	}
	return a, nil
}

// forward sends an action on a group to the console of the agent that
// coordinates it, and returns its answer.
func (c *Console) forward(ctx context.Context, group, action string, body any) (string, error) {
	a, err := c.coordinator(group)
	if err != nil {
		return "", err
	}
	var res actionResult
	if err := c.peerDo(ctx, http.MethodPost, a.Admin, apiPrefix+"groups/"+urlPathEscape(group)+"/"+action, body, &res); err != nil {
		return "", fmt.Errorf("node %d, which coordinates this group: %w", a.NodeID, err)
	}
	msg := clipPeer(res.Message)
	if !res.OK {
		return "", fmt.Errorf("node %d, which coordinates this group: %s", a.NodeID, msg)
	}
	return fmt.Sprintf("%s (by node %d, which coordinates the group)", msg, a.NodeID), nil
}

// forwardedGroup shows a group another agent coordinates as that agent's
// console sees it, live; when it cannot be asked, what the metadata
// store holds (remoteGroup).
func (c *Console) forwardedGroup(w http.ResponseWriter, r *http.Request, name string) {
	a, err := c.coordinator(name)
	if err != nil {
		c.remoteGroup(w, r, name, err.Error())
		return
	}
	// The coordinator answers from its memory and a few Kafka requests
	// to itself: a page does not wait for it long.
	ctx, cancel := context.WithTimeout(r.Context(), groupAskTimeout)
	defer cancel()
	var d groupData
	if err := c.peerDo(ctx, http.MethodGet, a.Admin, apiPrefix+"groups/"+urlPathEscape(name), nil, &d); err != nil {
		// Also a 404: the group is unknown there, or its console is off;
		// the store's view tells which.
		c.remoteGroup(w, r, name, fmt.Sprintf("node %d, which coordinates this group, did not answer (%v): showing what the metadata store holds", a.NodeID, err))
		return
	}
	checkGroupData(&d, name)
	d.Coordinator = fmt.Sprintf("node %d", a.NodeID)
	c.render(w, r, "group", page{Title: name, Nav: "groups", Refresh: true, Data: d})
}

// groupAskTimeout bounds how long a group's page waits for the
// coordinating agent's console.
const groupAskTimeout = 5 * time.Second

// Bounds on a group as another agent's console describes it.
const (
	maxPeerMembers = 10_000
	maxPeerLags    = 100_000
)

// sparkChars is what a lag trend's SVG points may hold.
var sparkChars = regexp.MustCompile(`^[0-9., ]*$`)

// checkGroupData bounds and cleans what another agent said of a group,
// so that the page shows nothing it did not ask for.
func checkGroupData(d *groupData, name string) {
	d.Name, d.Elsewhere = name, false
	d.State, d.Protocol, d.Error = clipPeer(d.State), clipPeer(d.Protocol), clipPeer(d.Error)
	if len(d.Members) > maxPeerMembers {
		d.Members = d.Members[:maxPeerMembers]
	}
	for i := range d.Members {
		m := &d.Members[i]
		m.ID, m.ClientID, m.Host, m.Instance = clipPeer(m.ID), clipPeer(m.ClientID), clipPeer(m.Host), clipPeer(m.Instance)
		if len(m.Assigned) > maxPeerLags {
			m.Assigned = m.Assigned[:maxPeerLags]
		}
		for j := range m.Assigned {
			m.Assigned[j] = clipPeer(m.Assigned[j])
		}
	}
	if len(d.Lags) > maxPeerLags {
		d.Lags = d.Lags[:maxPeerLags]
	}
	d.Topics = d.Topics[:0:0]
	for i := range d.Lags {
		l := &d.Lags[i]
		if !validTopic(l.Topic) {
			l.Topic = "(invalid name)"
		} else if !contains(d.Topics, l.Topic) {
			d.Topics = append(d.Topics, l.Topic)
		}
		l.Member, l.Err = clipPeer(l.Member), clipPeer(l.Err)
		if len(l.Trend) > 4096 || !sparkChars.MatchString(l.Trend) {
			l.Trend = ""
		}
	}
	sortLags(d.Lags)
	sort.Strings(d.Topics)
}

// bearerOK reports whether r carries token as its bearer token.
func bearerOK(r *http.Request, token string) bool {
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(auth), []byte(token)) == 1
}
