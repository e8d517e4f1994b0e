package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/floe-io/floe/internal/inspect"
)

type groupRow struct {
	Name, State, Protocol string
	Members               int
	Lag                   int64 // -1: not computed (Elsewhere)
	Err                   string
	Elsewhere             bool  // another agent coordinates it
	Coordinator           int32 // its node id (-1: unknown), when Elsewhere
}

type groupsData struct {
	Groups []groupRow
	Error  string
	// Shares are the share groups' partitions (KIP-932), and ShareError
	// why they could not be listed.
	Shares     []inspect.GroupRow
	ShareError string
}

func (c *Console) groups(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var d groupsData
	lags, err := c.admin.Lag(ctx)
	if err != nil {
		d.Error = "listing groups: " + err.Error()
	}
	for _, l := range lags.Sorted() {
		if !c.opts.OwnsGroup(l.Group) {
			continue // listed from the store below
		}
		row := groupRow{Name: l.Group, State: l.State, Protocol: l.Protocol, Members: len(l.Members)}
		if err := l.Error(); err != nil {
			row.Err = err.Error()
		}
		for _, ps := range l.Lag {
			for _, pl := range ps {
				if pl.Lag > 0 {
					row.Lag += pl.Lag
				}
			}
		}
		d.Groups = append(d.Groups, row)
	}
	// ListGroups reached only this agent: add the groups others
	// coordinate, from the store.
	if sums, err := c.opts.Store.ListGroups(ctx); err != nil {
		c.log.Warn("console: listing groups in the store", "err", err)
	} else {
		for _, s := range sums {
			if c.opts.OwnsGroup(s.Name) {
				continue
			}
			row := groupRow{Name: s.Name, State: s.State, Lag: -1, Elsewhere: true, Coordinator: -1}
			if c.opts.Coordinator != nil {
				row.Coordinator = c.opts.Coordinator(s.Name).NodeID
			}
			d.Groups = append(d.Groups, row)
		}
		sort.Slice(d.Groups, func(i, j int) bool { return d.Groups[i].Name < d.Groups[j].Name })
	}
	if c.opts.ShareGroups != nil {
		shares, err := c.opts.ShareGroups(ctx)
		if err != nil {
			d.ShareError = "listing share groups: " + err.Error()
		}
		d.Shares = shares
	}
	c.render(w, r, "groups", page{Title: "Consumer groups", Nav: "groups", Refresh: true, Data: d})
}

type memberRow struct {
	ID, ClientID, Host, Instance string
	Assigned                     []string
}

type lagRow struct {
	Topic      string
	Partition  int32
	Committed  int64
	Start, End int64
	Lag        int64
	Member     string
	Trend      string // SVG polyline points, "" without history
	Err        string
}

type groupData struct {
	Elsewhere bool // another agent coordinates it: read from the store
	// Coordinator names the agent that coordinates a group another agent
	// does, when its console answered ("node 2"); the page then shows
	// what that agent said and its forms are forwarded there.
	Coordinator           string
	Name, State, Protocol string
	Members               []memberRow
	Lags                  []lagRow
	Topics                []string
	Error                 string
}

// groupPath reads and checks the group name of a /groups/NAME path.
func groupPath(r *http.Request) (string, bool) {
	name := r.PathValue("name")
	return name, validGroup(name)
}

func (c *Console) group(w http.ResponseWriter, r *http.Request) {
	name, ok := groupPath(r)
	if !ok {
		http.Error(w, "invalid group name", http.StatusBadRequest)
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if !c.opts.OwnsGroup(name) {
		c.forwardedGroup(w, r, name)
		return
	}
	d, status := c.ownGroup(ctx, name)
	c.render(w, r, "group", page{Title: name, Nav: "groups", Refresh: true, Status: status, Data: d})
}

// ownGroup reads a group this agent coordinates through Kafka, with its
// lag trend from this agent's samples; status is the page's HTTP status
// (0: 200).
func (c *Console) ownGroup(ctx context.Context, name string) (d groupData, status int) {
	d = groupData{Name: name}
	lags, err := c.admin.Lag(ctx, name)
	l, found := lags[name]
	switch {
	case err != nil:
		d.Error = err.Error()
	case !found:
		d.Error = "no group " + name
	default:
		d.State, d.Protocol = l.State, l.Protocol
		if err := l.Error(); err != nil {
			d.Error = err.Error()
		}
	}
	if d.State == "Dead" {
		status = http.StatusNotFound
		d.Error = "no group " + name
	}
	for _, m := range l.Members {
		mr := memberRow{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			mr.Instance = *m.InstanceID
		}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				for _, p := range t.Partitions {
					mr.Assigned = append(mr.Assigned, t.Topic+"/"+strconv.Itoa(int(p)))
				}
			}
		}
		d.Members = append(d.Members, mr)
	}
	for topic, ps := range l.Lag {
		d.Topics = append(d.Topics, topic)
		for p, pl := range ps {
			row := lagRow{Topic: topic, Partition: p, Committed: pl.Commit.At, Start: pl.Start.Offset, End: pl.End.Offset, Lag: pl.Lag}
			if pl.Member != nil {
				row.Member = pl.Member.ClientID + " " + pl.Member.ClientHost
			}
			if pl.Err != nil {
				row.Err = pl.Err.Error()
			}
			key := fmt.Sprintf("floe_group_lag{group=%s,partition=%d,topic=%s}", name, p, topic)
			row.Trend = sparkPoints(c.samples.series(key, 60), 120, 24)
			d.Lags = append(d.Lags, row)
		}
	}
	sort.Strings(d.Topics)
	sortLags(d.Lags)
	return d, status
}

func sortLags(lags []lagRow) {
	sort.Slice(lags, func(i, j int) bool {
		if lags[i].Topic != lags[j].Topic {
			return lags[i].Topic < lags[j].Topic
		}
		return lags[i].Partition < lags[j].Partition
	})
}

// remoteGroup shows a group another agent coordinates: its committed
// offsets from the store and its lag, without members (the coordinator
// keeps them) and without actions (they need the coordinator).
func (c *Console) remoteGroup(w http.ResponseWriter, r *http.Request, name, why string) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	d := groupData{Name: name, Elsewhere: true, Error: why}
	state := "unknown"
	if sums, err := c.opts.Store.ListGroups(ctx); err == nil {
		for _, s := range sums {
			if s.Name == name {
				state = s.State
			}
		}
	}
	d.State = state
	offs, err := c.opts.Store.FetchOffsets(ctx, name)
	if err != nil {
		c.log.Warn("console: group offsets from the store", "group", name, "err", err)
		d.Error = "the metadata store did not answer"
	}
	topics, err := c.opts.Store.Topics(ctx)
	if err != nil {
		d.Error = "the metadata store did not answer"
	}
	names := map[string]string{}
	for _, t := range topics {
		names[string(t.ID[:])] = t.Name
	}
	var wanted []string
	for _, o := range offs {
		if n, ok := names[string(o.TopicID[:])]; ok && !contains(wanted, n) {
			wanted = append(wanted, n)
		}
	}
	var starts, ends kadm.ListedOffsets
	if len(wanted) > 0 {
		starts, _ = c.admin.ListStartOffsets(ctx, wanted...)
		ends, _ = c.admin.ListEndOffsets(ctx, wanted...)
	}
	for _, o := range offs {
		topic, ok := names[string(o.TopicID[:])]
		if !ok {
			continue
		}
		row := lagRow{Topic: topic, Partition: o.Partition, Committed: o.Offset, Lag: -1}
		if s, ok := starts.Lookup(topic, o.Partition); ok && s.Err == nil {
			row.Start = s.Offset
		}
		if e, ok := ends.Lookup(topic, o.Partition); ok && e.Err == nil {
			row.End, row.Lag = e.Offset, max(e.Offset-o.Offset, 0)
		}
		d.Lags = append(d.Lags, row)
	}
	sortLags(d.Lags)
	status := 0
	if len(offs) == 0 && state == "unknown" {
		status, d.Error = http.StatusNotFound, "no group "+name
	}
	c.render(w, r, "group", page{Title: name, Nav: "groups", Refresh: true, Status: status, Data: d})
}

// resetRequest is an offset reset, from the form or forwarded from
// another agent's console as JSON.
type resetRequest struct {
	Topic     string `json:"topic"`
	To        string `json:"to"`
	Timestamp string `json:"timestamp"`
	Offset    string `json:"offset"`
	Confirm   string `json:"confirm"`
}

// deleteRequest is a group deletion, forwarded as JSON.
type deleteRequest struct {
	Confirm string `json:"confirm"`
}

// resetOffsets commits new offsets for an empty group, as
// kafka-consumer-groups --reset-offsets --execute does: Kafka refuses
// commits from outside the generation of a group with members. A group
// another agent coordinates is reset by that agent (forward).
func (c *Console) resetOffsets(w http.ResponseWriter, r *http.Request) {
	name, ok := groupPath(r)
	if !ok {
		http.Error(w, "invalid group name", http.StatusBadRequest)
		return
	}
	back := "/groups/" + urlPathEscape(name)
	f := r.PostForm
	req := resetRequest{Topic: f.Get("topic"), To: f.Get("to"), Timestamp: f.Get("timestamp"), Offset: f.Get("offset"), Confirm: f.Get("confirm")}
	if req.Confirm != name {
		c.redirect(w, r, back+"#reset", false, "type the group's name to confirm the reset")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	var msg string
	var err error
	if c.opts.OwnsGroup(name) {
		msg, err = c.reset(ctx, name, req)
	} else {
		msg, err = c.forward(ctx, name, "reset", req)
	}
	if err != nil {
		c.redirect(w, r, back, false, err.Error())
		return
	}
	c.redirect(w, r, back, true, msg)
}

// reset resets the offsets of a group this agent coordinates.
func (c *Console) reset(ctx context.Context, name string, req resetRequest) (string, error) {
	topic := req.Topic
	if topic != "" && !validTopic(topic) {
		return "", errors.New("invalid topic name")
	}
	to := req.To
	if !contains([]string{"earliest", "latest", "timestamp", "offset"}, to) {
		return "", errors.New("reset to: earliest, latest, timestamp or offset")
	}
	described, err := c.admin.DescribeGroups(ctx, name)
	if err != nil {
		return "", fmt.Errorf("describe group: %w", err)
	}
	g := described[name]
	if g.Err != nil {
		return "", fmt.Errorf("describe group: %w", g.Err)
	}
	if g.State != "Empty" && g.State != "Dead" {
		return "", fmt.Errorf("group %s is %s with %d members: offsets can be reset only while it is empty (stop its consumers first)", name, g.State, len(g.Members))
	}
	// The topics: the one named, or every topic the group has offsets for.
	topics := []string{topic}
	if topic == "" {
		fetched, err := c.admin.FetchOffsets(ctx, name)
		if err != nil {
			return "", fmt.Errorf("fetch offsets: %w", err)
		}
		topics = fetched.Offsets().TopicsSet().Topics()
		if len(topics) == 0 {
			return "", errors.New("the group has no offsets: name a topic")
		}
	}
	var listed kadm.ListedOffsets
	var target int64
	switch to {
	case "earliest":
		listed, err = c.admin.ListStartOffsets(ctx, topics...)
	case "latest":
		listed, err = c.admin.ListEndOffsets(ctx, topics...)
	case "timestamp":
		var ms int64
		if ms, err = parseTimestamp(strings.TrimSpace(req.Timestamp)); err == nil {
			listed, err = c.admin.ListOffsetsAfterMilli(ctx, ms, topics...)
		}
	case "offset":
		if target, err = intParam(req.Offset, -1, 0, 1<<62); err == nil && target < 0 {
			err = errors.New("an offset is needed")
		}
		if err == nil {
			listed, err = c.admin.ListEndOffsets(ctx, topics...)
		}
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return "", fmt.Errorf("reset offsets: %w", err)
	}
	var starts kadm.ListedOffsets
	if to == "offset" {
		if starts, err = c.admin.ListStartOffsets(ctx, topics...); err == nil {
			err = starts.Error()
		}
		if err != nil {
			return "", fmt.Errorf("reset offsets: %w", err)
		}
	}
	offsets := kadm.Offsets{}
	n := 0
	listed.Each(func(o kadm.ListedOffset) {
		at := o.Offset
		if to == "offset" {
			// Clamp into the partition's log, as Kafka's tool does.
			lo := int64(0)
			if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
				lo = s.Offset
			}
			at = min(max(target, lo), o.Offset)
		}
		offsets.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: at, LeaderEpoch: -1})
		n++
	})
	resps, err := c.admin.CommitOffsets(ctx, name, offsets)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return "", fmt.Errorf("commit offsets: %w", err)
	}
	return fmt.Sprintf("reset %d partitions of %s to %s", n, strings.Join(topics, ", "), to), nil
}

func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name, ok := groupPath(r)
	if !ok {
		http.Error(w, "invalid group name", http.StatusBadRequest)
		return
	}
	back := "/groups/" + urlPathEscape(name)
	if r.PostForm.Get("confirm") != name {
		c.redirect(w, r, back+"#danger", false, "type the group's name to confirm its deletion")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	var msg string
	var err error
	if c.opts.OwnsGroup(name) {
		msg, err = c.delete(ctx, name)
	} else {
		msg, err = c.forward(ctx, name, "delete", deleteRequest{Confirm: name})
	}
	if err != nil {
		c.redirect(w, r, back, false, err.Error())
		return
	}
	c.redirect(w, r, "/groups", true, msg)
}

// delete deletes a group this agent coordinates.
func (c *Console) delete(ctx context.Context, name string) (string, error) {
	resp, err := c.admin.DeleteGroup(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return "", fmt.Errorf("delete group: %w", err)
	}
	return "deleted group " + name, nil
}
