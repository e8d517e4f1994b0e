package console

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

type groupRow struct {
	Name, State, Protocol string
	Members               int
	Lag                   int64 // -1: not computed (Elsewhere)
	Err                   string
	Elsewhere             bool // another agent coordinates it
}

type groupsData struct {
	Groups []groupRow
	Error  string
}

// elsewhere answers an action on a group another agent coordinates.
const elsewhere = "another agent coordinates this group: reset or delete it on that agent's console"

func (c *Console) groups(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	var d groupsData
	lags, err := c.admin.Lag(ctx)
	if err != nil {
		d.Error = "listing groups: " + err.Error()
	}
	for _, l := range lags.Sorted() {
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
			if _, ok := lags[s.Name]; ok || c.opts.OwnsGroup(s.Name) {
				continue
			}
			d.Groups = append(d.Groups, groupRow{Name: s.Name, State: s.State, Lag: -1, Elsewhere: true})
		}
		sort.Slice(d.Groups, func(i, j int) bool { return d.Groups[i].Name < d.Groups[j].Name })
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
	Elsewhere             bool // another agent coordinates it: read from the store
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
		c.remoteGroup(w, r, name)
		return
	}
	d := groupData{Name: name}
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
	status := 0
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
	sort.Slice(d.Lags, func(i, j int) bool {
		if d.Lags[i].Topic != d.Lags[j].Topic {
			return d.Lags[i].Topic < d.Lags[j].Topic
		}
		return d.Lags[i].Partition < d.Lags[j].Partition
	})
	c.render(w, r, "group", page{Title: name, Nav: "groups", Refresh: true, Status: status, Data: d})
}

// remoteGroup shows a group another agent coordinates: its committed
// offsets from the store and its lag, without members (the coordinator
// keeps them) and without actions (they need the coordinator).
func (c *Console) remoteGroup(w http.ResponseWriter, r *http.Request, name string) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	d := groupData{Name: name, Elsewhere: true}
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
	sort.Slice(d.Lags, func(i, j int) bool {
		if d.Lags[i].Topic != d.Lags[j].Topic {
			return d.Lags[i].Topic < d.Lags[j].Topic
		}
		return d.Lags[i].Partition < d.Lags[j].Partition
	})
	status := 0
	if len(offs) == 0 && state == "unknown" {
		status, d.Error = http.StatusNotFound, "no group "+name
	}
	c.render(w, r, "group", page{Title: name, Nav: "groups", Refresh: true, Status: status, Data: d})
}

// resetOffsets commits new offsets for an empty group, as
// kafka-consumer-groups --reset-offsets --execute does: Kafka refuses
// commits from outside the generation of a group with members.
func (c *Console) resetOffsets(w http.ResponseWriter, r *http.Request) {
	name, ok := groupPath(r)
	if !ok {
		http.Error(w, "invalid group name", http.StatusBadRequest)
		return
	}
	back := "/groups/" + urlPathEscape(name)
	if !c.opts.OwnsGroup(name) {
		c.redirect(w, r, back, false, elsewhere)
		return
	}
	f := r.PostForm
	if f.Get("confirm") != name {
		c.redirect(w, r, back+"#reset", false, "type the group's name to confirm the reset")
		return
	}
	topic := f.Get("topic")
	if topic != "" && !validTopic(topic) {
		c.redirect(w, r, back, false, "invalid topic name")
		return
	}
	to := f.Get("to")
	if !contains([]string{"earliest", "latest", "timestamp", "offset"}, to) {
		c.redirect(w, r, back, false, "reset to: earliest, latest, timestamp or offset")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	described, err := c.admin.DescribeGroups(ctx, name)
	if err != nil {
		c.redirect(w, r, back, false, "describe group: "+err.Error())
		return
	}
	g := described[name]
	if g.Err != nil {
		c.redirect(w, r, back, false, "describe group: "+g.Err.Error())
		return
	}
	if g.State != "Empty" && g.State != "Dead" {
		c.redirect(w, r, back, false, fmt.Sprintf("group %s is %s with %d members: offsets can be reset only while it is empty (stop its consumers first)", name, g.State, len(g.Members)))
		return
	}
	// The topics: the one named, or every topic the group has offsets for.
	topics := []string{topic}
	if topic == "" {
		fetched, err := c.admin.FetchOffsets(ctx, name)
		if err != nil {
			c.redirect(w, r, back, false, "fetch offsets: "+err.Error())
			return
		}
		topics = fetched.Offsets().TopicsSet().Topics()
		if len(topics) == 0 {
			c.redirect(w, r, back, false, "the group has no offsets: name a topic")
			return
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
		if ms, err = parseTimestamp(strings.TrimSpace(f.Get("timestamp"))); err == nil {
			listed, err = c.admin.ListOffsetsAfterMilli(ctx, ms, topics...)
		}
	case "offset":
		if target, err = intParam(f.Get("offset"), -1, 0, 1<<62); err == nil && target < 0 {
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
		c.redirect(w, r, back, false, "reset offsets: "+err.Error())
		return
	}
	var starts kadm.ListedOffsets
	if to == "offset" {
		if starts, err = c.admin.ListStartOffsets(ctx, topics...); err == nil {
			err = starts.Error()
		}
		if err != nil {
			c.redirect(w, r, back, false, "reset offsets: "+err.Error())
			return
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
		c.redirect(w, r, back, false, "commit offsets: "+err.Error())
		return
	}
	c.redirect(w, r, back, true, fmt.Sprintf("reset %d partitions of %s to %s", n, strings.Join(topics, ", "), to))
}

func (c *Console) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name, ok := groupPath(r)
	if !ok {
		http.Error(w, "invalid group name", http.StatusBadRequest)
		return
	}
	back := "/groups/" + urlPathEscape(name)
	if !c.opts.OwnsGroup(name) {
		c.redirect(w, r, back, false, elsewhere)
		return
	}
	if r.PostForm.Get("confirm") != name {
		c.redirect(w, r, back+"#danger", false, "type the group's name to confirm its deletion")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	resp, err := c.admin.DeleteGroup(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.redirect(w, r, back, false, "delete group: "+err.Error())
		return
	}
	c.redirect(w, r, "/groups", true, "deleted group "+name)
}
