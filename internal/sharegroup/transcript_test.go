package sharegroup

// Transcript tests (see internal/testutil/transcript); -rewrite
// regenerates the expectations for review.
//
//	config session=45s max=200
//	topics a:3 b:1            the cluster's topics (ids from the names)
//	hb member=m epoch=0 subs=a,b rack=r
//	advance 10s               the clock; expired members are removed
//	describe

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/internal/groups/consumer"
	"github.com/floe-io/floe/internal/testutil/transcript"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata expectations")

func TestTranscripts(t *testing.T) {
	transcript.Run(t, "testdata/*.txt", *rewrite, func() func(t *testing.T, cmd string) []string {
		h := &harness{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), g: New("g", Config{}), names: map[consumer.TopicID]string{}}
		return h.run
	})
}

type harness struct {
	g     *Group
	now   time.Time
	img   consumer.Image
	names map[consumer.TopicID]string
}

func topicID(name string) consumer.TopicID {
	var id consumer.TopicID
	copy(id[:], name)
	return id
}

func codeName(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).(*kerr.Error).Message
}

func (h *harness) assignment(a consumer.Assignment) string {
	if a == nil {
		return "-"
	}
	var parts []string
	for id, ps := range a {
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("%s%d", h.names[id], p))
		}
	}
	slices.Sort(parts)
	return "[" + strings.Join(parts, " ") + "]"
}

func (h *harness) run(t *testing.T, line string) []string {
	fields := strings.Fields(line)
	a := map[string]string{}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		a[k] = v
	}
	var out []string
	switch fields[0] {
	case "config":
		session, _ := time.ParseDuration(a["session"])
		max, _ := strconv.Atoi(a["max"])
		h.g = New("g", Config{SessionTimeout: session, MaxSize: max})
	case "topics":
		var ts []consumer.Topic
		for _, f := range fields[1:] {
			name, n, _ := strings.Cut(f, ":")
			parts, err := strconv.Atoi(n)
			if err != nil {
				t.Fatal(err)
			}
			h.names[topicID(name)] = name
			ts = append(ts, consumer.Topic{ID: topicID(name), Name: name, Partitions: int32(parts)})
		}
		h.img = consumer.NewImage(ts)
	case "hb":
		epoch, err := strconv.Atoi(a["epoch"])
		if err != nil {
			t.Fatal(err)
		}
		r := HeartbeatRequest{MemberID: a["member"], MemberEpoch: int32(epoch), ClientID: "c", ClientHost: "/127.0.0.1"}
		if s, ok := a["subs"]; ok {
			r.SubscribedTopicNames = []string{}
			if s != "" {
				r.SubscribedTopicNames = strings.Split(s, ",")
			}
		}
		if rack, ok := a["rack"]; ok {
			r.RackID = &rack
		}
		resp, changed := h.g.Heartbeat(h.now, h.img, r)
		out = append(out, fmt.Sprintf("hb %s member=%s epoch=%d assignment=%s changed=%v", codeName(resp.Err), resp.MemberID, resp.MemberEpoch, h.assignment(resp.Assignment), changed))
	case "advance":
		d, err := time.ParseDuration(fields[1])
		if err != nil {
			t.Fatal(err)
		}
		h.now = h.now.Add(d)
		if gone := h.g.Tick(h.now, h.img); len(gone) > 0 {
			out = append(out, "expired "+strings.Join(gone, ","))
		}
	case "describe":
		d := h.g.Describe()
		out = append(out, fmt.Sprintf("group state=%s epoch=%d assignment-epoch=%d", d.State, d.GroupEpoch, d.AssignmentEpoch))
		for _, m := range d.Members {
			out = append(out, fmt.Sprintf("member %s epoch=%d rack=%s client=%s host=%s subs=%s assignment=%s", m.MemberID, m.MemberEpoch, m.RackID, m.ClientID, m.ClientHost, strings.Join(m.SubscribedTopicNames, ","), h.assignment(m.Assignment)))
		}
		return out
	default:
		t.Fatalf("unknown command %q", fields[0])
	}
	var members []string
	for _, m := range h.g.Describe().Members {
		members = append(members, fmt.Sprintf("%s@%d%s", m.MemberID, m.MemberEpoch, h.assignment(m.Assignment)))
	}
	next := "none"
	if d := h.g.NextDeadline(); !d.IsZero() {
		next = "+" + d.Sub(h.now).String()
	}
	return append(out, fmt.Sprintf("epoch=%d members=%s next=%s", h.g.Epoch(), strings.Join(members, " "), next))
}
