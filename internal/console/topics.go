package console

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/jobs"
)

type topicRow struct {
	Name       string
	ID         string
	Partitions int
	Records    int64
	Bytes      int64
	InPerSec   float64
	// Out is what Fetch served of the topic per second over the last
	// minute, on the agents of Fetched.
	Out Served
	Err string
}

type topicsData struct {
	Topics  []topicRow
	Warm    bool
	Fetched fetchRates
	Error   string
}

// usage reads the bytes each topic takes in the bucket.
func (c *Console) usage(r *http.Request) (map[string]jobs.TopicUsage, error) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	st, err := jobs.ReadStatus(ctx, c.opts.Store)
	if err != nil {
		return nil, err
	}
	out := map[string]jobs.TopicUsage{}
	for _, t := range st.Topics {
		out[t.Name] = t
	}
	return out, nil
}

func (c *Console) topics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.ctx(r)
	defer cancel()
	d := topicsData{Warm: c.samples.warm()}
	td, err := c.admin.ListTopics(ctx)
	if err != nil {
		d.Error = "listing topics: " + err.Error()
		c.render(w, r, "topics", page{Title: "Topics", Nav: "topics", Data: d})
		return
	}
	starts, _ := c.admin.ListStartOffsets(ctx, td.Names()...)
	ends, _ := c.admin.ListEndOffsets(ctx, td.Names()...)
	usage, err := c.usage(r)
	if err != nil {
		c.log.Warn("console: bucket usage", "err", err)
	}
	rates := c.samples.topicRates()
	d.Fetched = c.clusterFetchRates(ctx)
	for _, t := range td.Sorted() {
		row := topicRow{Name: t.Topic, ID: t.ID.String(), Partitions: len(t.Partitions), InPerSec: rates[t.Topic], Out: d.Fetched.ByTopic[t.Topic]}
		if t.Err != nil {
			row.Err = t.Err.Error()
		}
		for p := range t.Partitions {
			s, ok1 := starts.Lookup(t.Topic, p)
			e, ok2 := ends.Lookup(t.Topic, p)
			if ok1 && ok2 && s.Err == nil && e.Err == nil {
				row.Records += e.Offset - s.Offset
			}
		}
		row.Bytes = usage[t.Topic].Bytes
		d.Topics = append(d.Topics, row)
	}
	c.render(w, r, "topics", page{Title: "Topics", Nav: "topics", Refresh: true, Data: d})
}

func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	if !validTopic(name) {
		c.redirect(w, r, "/topics", false, "a topic name is 1 to 249 of a-z A-Z 0-9 . _ -")
		return
	}
	parts, err := intParam(f.Get("partitions"), 1, 1, 100_000)
	if err != nil {
		c.redirect(w, r, "/topics", false, "partitions: "+err.Error())
		return
	}
	configs := map[string]*string{}
	for _, line := range strings.Split(f.Get("configs"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !configName.MatchString(k) || len(configs) >= 64 {
			c.redirect(w, r, "/topics", false, fmt.Sprintf("configs: %q is not NAME=VALUE", line))
			return
		}
		v = strings.TrimSpace(v)
		configs[k] = &v
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	resp, err := c.admin.CreateTopic(ctx, int32(parts), -1, configs, name)
	if err == nil {
		err = resp.Err
		if resp.ErrMessage != "" && err != nil {
			err = fmt.Errorf("%w: %s", err, resp.ErrMessage)
		}
	}
	if err != nil {
		c.redirect(w, r, "/topics", false, "create topic "+name+": "+err.Error())
		return
	}
	c.redirect(w, r, "/topics/"+name, true, fmt.Sprintf("created topic %s with %d partitions", name, parts))
}

type partitionRow struct {
	Partition                 int32
	Start, End, Stable, Count int64
	Bytes                     int64
	Err                       string
}

type configRow struct {
	Name, Value, Source string
	Sensitive           bool
}

type topicData struct {
	Name       string
	ID         string
	Partitions []partitionRow
	Configs    []configRow
	Records    int64
	Bytes      int64
	InPerSec   float64
	Out        Served
	Fetched    fetchRates
	Messages   messagesData
	Error      string
}

// topicPath reads and checks the topic name of a /topics/NAME path.
func topicPath(r *http.Request) (string, bool) {
	name := r.PathValue("name")
	return name, validTopic(name)
}

func (c *Console) topic(w http.ResponseWriter, r *http.Request) {
	name, ok := topicPath(r)
	if !ok {
		http.Error(w, "invalid topic name", http.StatusBadRequest)
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	td, err := c.admin.ListTopics(ctx, name)
	if err != nil {
		c.render(w, r, "topic", page{Title: name, Nav: "topics", Data: topicData{Name: name, Error: err.Error()}})
		return
	}
	t, ok := td[name]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		c.render(w, r, "topic", page{Title: name, Nav: "topics", Status: http.StatusNotFound, Data: topicData{Name: name, Error: "no topic " + name}})
		return
	}
	d := topicData{Name: name, ID: t.ID.String(), InPerSec: c.samples.topicRates()[name], Fetched: c.clusterFetchRates(ctx)}
	d.Out = d.Fetched.ByTopic[name]
	starts, err1 := c.admin.ListStartOffsets(ctx, name)
	ends, err2 := c.admin.ListEndOffsets(ctx, name)
	stable, err3 := c.admin.ListCommittedOffsets(ctx, name)
	if err := errors.Join(err1, err2, err3); err != nil {
		d.Error = "listing offsets: " + err.Error()
	}
	ctxU, cancelU := c.ctx(r)
	defer cancelU()
	perPart := map[int32]int64{}
	if tu, err := c.opts.Store.Topic(ctxU, name); err == nil {
		if us, err := c.opts.Store.PartitionUsage(ctxU, tu.ID); err == nil {
			for _, u := range us {
				perPart[u.Partition] = u.Bytes
			}
		}
	}
	for _, p := range t.Partitions.Numbers() {
		row := partitionRow{Partition: p, Bytes: perPart[p]}
		s, _ := starts.Lookup(name, p)
		e, _ := ends.Lookup(name, p)
		l, _ := stable.Lookup(name, p)
		if err := errors.Join(s.Err, e.Err, l.Err); err != nil {
			row.Err = err.Error()
		}
		row.Start, row.End, row.Stable, row.Count = s.Offset, e.Offset, l.Offset, e.Offset-s.Offset
		d.Records += row.Count
		d.Bytes += row.Bytes
		d.Partitions = append(d.Partitions, row)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Partition < d.Partitions[j].Partition })
	if rcs, err := c.admin.DescribeTopicConfigs(ctx, name); err == nil {
		for _, rc := range rcs {
			for _, cfg := range rc.Configs {
				row := configRow{Name: cfg.Key, Source: cfg.Source.String(), Sensitive: cfg.Sensitive}
				if cfg.Value != nil && !cfg.Sensitive {
					row.Value = *cfg.Value
				}
				d.Configs = append(d.Configs, row)
			}
		}
		sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
	} else {
		d.Error = strings.TrimPrefix(d.Error+"; describing configs: "+err.Error(), "; ")
	}
	d.Messages = c.browse(r, name, d.Partitions)
	c.render(w, r, "topic", page{Title: name, Nav: "topics", Data: d})
}

func (c *Console) alterConfig(w http.ResponseWriter, r *http.Request) {
	name, ok := topicPath(r)
	if !ok {
		http.Error(w, "invalid topic name", http.StatusBadRequest)
		return
	}
	back := "/topics/" + name + "#configs"
	f := r.PostForm
	key := strings.TrimSpace(f.Get("config"))
	if !configName.MatchString(key) {
		c.redirect(w, r, back, false, "a config name is lower-case letters, digits and dots")
		return
	}
	value := strings.TrimSpace(f.Get("value"))
	if len(value) > 4096 {
		c.redirect(w, r, back, false, "config values are at most 4096 bytes")
		return
	}
	ac := kadm.AlterConfig{Op: kadm.SetConfig, Name: key, Value: &value}
	verb := fmt.Sprintf("set %s=%s", key, value)
	if f.Get("op") == "delete" {
		ac = kadm.AlterConfig{Op: kadm.DeleteConfig, Name: key}
		verb = "reset " + key + " to its default"
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	resps, err := c.admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{ac}, name)
	if err == nil {
		for _, rr := range resps {
			if rr.Err != nil {
				err = rr.Err
				if rr.ErrMessage != "" {
					err = fmt.Errorf("%w: %s", err, rr.ErrMessage)
				}
			}
		}
	}
	if err != nil {
		c.redirect(w, r, back, false, verb+": "+err.Error())
		return
	}
	c.redirect(w, r, back, true, verb)
}

func (c *Console) addPartitions(w http.ResponseWriter, r *http.Request) {
	name, ok := topicPath(r)
	if !ok {
		http.Error(w, "invalid topic name", http.StatusBadRequest)
		return
	}
	back := "/topics/" + name
	total, err := intParam(r.PostForm.Get("total"), 0, 1, 100_000)
	if err != nil || total == 0 {
		c.redirect(w, r, back, false, "the new partition count: a whole number from 1 to 100000")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	resps, err := c.admin.UpdatePartitions(ctx, int(total), name)
	if err == nil {
		for _, rr := range resps {
			if rr.Err != nil {
				err = rr.Err
				if rr.ErrMessage != "" {
					err = fmt.Errorf("%w: %s", err, rr.ErrMessage)
				}
			}
		}
	}
	if err != nil {
		c.redirect(w, r, back, false, "add partitions: "+err.Error())
		return
	}
	c.redirect(w, r, back, true, "topic "+name+" now has "+strconv.FormatInt(total, 10)+" partitions")
}

func (c *Console) deleteTopic(w http.ResponseWriter, r *http.Request) {
	name, ok := topicPath(r)
	if !ok {
		http.Error(w, "invalid topic name", http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("confirm") != name {
		c.redirect(w, r, "/topics/"+name+"#danger", false, "type the topic's name to confirm its deletion")
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	resp, err := c.admin.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.redirect(w, r, "/topics/"+name, false, "delete topic: "+err.Error())
		return
	}
	c.redirect(w, r, "/topics", true, "deleted topic "+name)
}
