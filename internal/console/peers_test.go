package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	floecluster "github.com/floe-io/floe/internal/cluster"
	"github.com/floe-io/floe/internal/console"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/protocol"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// bearer adds the admin token to every request of a test client.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

func browserWithToken(t *testing.T, token string) *http.Client {
	hc := browser(t)
	hc.Transport = bearer{token: token, next: http.DefaultTransport}
	return hc
}

// twoAgents is agent A with the test data and agent B beside it on the
// same store and bucket, both with the same admin token and fast
// console samples, once each sees the other.
func twoAgents(t *testing.T, token string) (a, b *agenttest.Agent, c *cluster) {
	t.Helper()
	fast := func(cfg *agent.Config) {
		cfg.AdminToken = token
		cfg.ConsoleSampleInterval = 300 * time.Millisecond
		cfg.MetastoreName = "embedded (test)"
	}
	a = agenttest.Start(t, agenttest.Options{Jobs: true, Config: fast})
	c = withData(t, a)
	b = agenttest.StartPeer(t, a, agenttest.Options{Config: func(cfg *agent.Config) {
		fast(cfg)
		cfg.Outage = &produce.OutageOptions{ManifestName: "agent-b"}
	}})
	waitForEachOther(t, c, b)
	return a, b, c
}

// waitForEachOther waits until both agents registered their admin
// addresses and each lists the other.
func waitForEachOther(t *testing.T, c *cluster, b *agenttest.Agent) {
	t.Helper()
	a := c.a
	deadline := time.Now().Add(20 * time.Second)
	for {
		live, err := a.Store.LiveAgents(t.Context())
		if err == nil && len(live) == 2 && live[0].Admin != "" && live[1].Admin != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agents did not both register an admin address: %+v %v", live, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both agents' memberships must list both before groups are placed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		ma, errA := c.adm.BrokerMetadata(ctxWithOps(t))
		mb, errB := adm.BrokerMetadata(ctxWithOps(t))
		if errA == nil && errB == nil && len(ma.Brokers) == 2 && len(mb.Brokers) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agents do not see each other: %v", errors.Join(errA, errB))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentRow returns the agents table's row of node id.
func agentRow(t *testing.T, body string, node int32) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr data-node="` + fmt.Sprint(node) + `">(.*?)</tr>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no row for node %d in the agents table", node)
	}
	return m[1]
}

// TestOtherAgentsOnTheConsole: agent A's console shows agent B's
// version, uptime, health and load, read from B's registration and its
// /api/status with the shared admin token.
func TestOtherAgentsOnTheConsole(t *testing.T) {
	const token = "shared-admin-token"
	a, b, _ := twoAgents(t, token)
	hc := browserWithToken(t, token)
	code, body, _ := get(t, hc, "http://"+a.AdminAddr()+"/agents")
	if code != http.StatusOK {
		t.Fatalf("/agents: %d", code)
	}
	row := agentRow(t, body, b.NodeID())
	for _, want := range []string{
		`<td class="agent-version">` + console.BuildVersion() + `</td>`,
		`<td class="agent-outage">agent-b</td>`, // from its registration
		`<td class="agent-health good">ok</td>`,
		` conn · `, ` goroutines · CPU `, `its console</a>`,
	} {
		if !strings.Contains(row, want) {
			t.Errorf("B's row lacks %q:\n%s", want, row)
		}
	}
	if m := regexp.MustCompile(`<td class="agent-uptime">([^<]*)</td>`).FindStringSubmatch(row); m == nil || m[1] == "—" {
		t.Errorf("B's row shows no uptime:\n%s", row)
	}
	if self := agentRow(t, body, a.NodeID()); !strings.Contains(self, "this agent") || !strings.Contains(self, `agent-health good">ok<`) ||
		!strings.Contains(self, `<td class="agent-outage">—</td>`) {
		t.Errorf("A's own row:\n%s", self)
	}

	// /api/status wants the token, and answers for the agent it is asked.
	resp, err := http.Get("http://" + b.AdminAddr() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/api/status without the token: %d", resp.StatusCode)
	}
	st := status(t, hc, b)
	if st.NodeID != b.NodeID() || st.Health != "ok" || st.Version != console.BuildVersion() || st.Started.IsZero() || st.Goroutines <= 0 {
		t.Errorf("B's status: %+v", st)
	}
}

func status(t *testing.T, hc *http.Client, a *agenttest.Agent) console.Status {
	t.Helper()
	resp, err := hc.Get("http://" + a.AdminAddr() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st console.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/status of node %d: %d %v", a.NodeID(), resp.StatusCode, err)
	}
	return st
}

// TestFetchRatesAcrossAgents: after a consumer reads orders, the topic's
// out rate on A's console is not zero and adds up both agents, whose
// counters together saw every record.
func TestFetchRatesAcrossAgents(t *testing.T) {
	a, b, _ := twoAgents(t, "")
	hc := browser(t)
	base := "http://" + a.AdminAddr()
	// A first look: the other agent's counters before the reads.
	get(t, hc, base+"/topics")
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	got := 0
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for got < 14 && ctx.Err() == nil {
		got += consumer.PollFetches(ctx).NumRecords()
	}
	if got < 14 {
		t.Fatalf("consumed %d of 14 records", got)
	}
	sa, sb := status(t, hc, a), status(t, hc, b)
	if n := sa.Fetch["orders"].Records + sb.Fetch["orders"].Records; n < 14 || sa.Fetch["orders"].Bytes+sb.Fetch["orders"].Bytes <= 0 {
		t.Fatalf("the agents counted %v+%v records of orders fetched, want at least 14", sa.Fetch["orders"], sb.Fetch["orders"])
	}
	outRecords := regexp.MustCompile(`(?s)<tr data-topic="orders">.*?<td class="out-records">([0-9.]+)</td>`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body, _ := get(t, hc, base+"/topics")
		m := outRecords.FindStringSubmatch(body)
		if m != nil && m[1] != "0.00" && strings.Contains(body, "summed over all 2 live agents") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/topics shows no out rate for orders over both agents: %v\n%s", m, body)
		}
		time.Sleep(300 * time.Millisecond)
	}
	_, body, _ := get(t, hc, base+"/topics/orders")
	if m := regexp.MustCompile(`<span id="topic-out">([0-9.]+)</span>`).FindStringSubmatch(body); m == nil || m[1] == "0.00" {
		t.Errorf("/topics/orders shows no out rate: %v", m)
	}
}

// TestCostAcrossAgents: the cost page prices the cluster's bucket
// requests, this agent's and the other agents' (their /api/status), not
// only its own: records produced through B alone show as PUTs on A's
// page.
func TestCostAcrossAgents(t *testing.T) {
	// No jobs and no data through A: every PUT the page counts is B's.
	fast := func(cfg *agent.Config) { cfg.ConsoleSampleInterval = 300 * time.Millisecond }
	a := agenttest.Start(t, agenttest.Options{Config: fast})
	b := agenttest.StartPeer(t, a, agenttest.Options{Config: fast})
	deadline := time.Now().Add(20 * time.Second)
	for {
		live, err := a.Store.LiveAgents(t.Context())
		if err == nil && len(live) == 2 && live[0].Admin != "" && live[1].Admin != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agents did not both register an admin address: %+v %v", live, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.Store.CreateTopic(t.Context(), metastore.TopicSpec{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	hc := browser(t)
	base := "http://" + a.AdminAddr()
	// Every connection goes to B, whichever agent Metadata names as the
	// partition's leader (any agent takes any produce).
	toB := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, b.Addr())
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.Dialer(toB))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	putRate := regexp.MustCompile(`([0-9.]+) PUT/s`)
	deadline = time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		// Keep B's PUTs going while A's page warms up.
		if err := producer.ProduceSync(t.Context(), &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("cost-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		_, body, _ := get(t, hc, base+"/cost")
		m := putRate.FindStringSubmatch(body)
		if m != nil && m[1] != "0.000" && strings.Contains(body, "summed over all 2 live agents") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/cost shows no PUT rate summed over both agents: %v\n%s", m, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st := status(t, hc, b); st.Bucket.Puts <= 0 || st.Bucket.AppendedBytes <= 0 {
		t.Errorf("B's status counts %+v of the bucket, want its PUTs and appended bytes", st.Bucket)
	}
}

// groupOwnedBy returns a group name that agent owner coordinates.
func groupOwnedBy(t *testing.T, store metastore.AgentRegistry, owner *agenttest.Agent, prefix string) string {
	t.Helper()
	live, err := store.LiveAgents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		g := fmt.Sprintf("%s-%d", prefix, i)
		if floecluster.Owner(live, protocol.GroupKey(g)).NodeID == owner.NodeID() {
			return g
		}
	}
	t.Fatalf("no group of %d names falls to node %d", 1000, owner.NodeID())
	return ""
}

// TestGroupActionsForwarded: a group agent B coordinates is shown live
// on agent A's console (state, members), and a reset and a deletion
// made there are done by B, checked through franz-go.
func TestGroupActionsForwarded(t *testing.T) {
	const token = "shared-admin-token"
	a, b, c := twoAgents(t, token)
	hc := browserWithToken(t, token)
	base := "http://" + a.AdminAddr()
	g := groupOwnedBy(t, a.Store, b, "payments")

	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(g), kgo.ConsumeTopics("orders"),
		kgo.ClientID("payments-worker"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.AutoCommitInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for got := 0; got < 14 && ctx.Err() == nil; {
		got += member.PollFetches(ctx).NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	// A shows B's live view: the member and its state.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body, _ := get(t, hc, base+"/groups/"+g)
		if strings.Contains(body, `id="coordinator-node">node `+fmt.Sprint(b.NodeID())) && strings.Contains(body, "payments-worker") &&
			strings.Contains(body, `id="group-state">Stable<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's console does not show B's live view of %s:\n%s", g, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// B refuses a reset while the group has a member; A says what B said.
	if _, flash := post(t, hc, base, "/groups/"+g, "/groups/"+g+"/reset", url.Values{"confirm": {g}, "to": {"earliest"}}); !strings.Contains(flash, "err: node ") || !strings.Contains(flash, "Stable with 1 members") {
		t.Errorf("reset of a group with a member: flash %q", flash)
	}
	member.Close() // leaves the group
	_, flash := post(t, hc, base, "/groups/"+g, "/groups/"+g+"/reset", url.Values{"confirm": {g}, "to": {"offset"}, "offset": {"3"}})
	if !strings.HasPrefix(flash, "ok: reset ") || !strings.Contains(flash, fmt.Sprintf("by node %d", b.NodeID())) {
		t.Fatalf("reset through A: flash %q", flash)
	}
	offs, err := c.adm.FetchOffsets(ctxWithOps(t), g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 1} {
		o, ok := offs.Lookup("orders", p)
		if !ok || o.At != 3 {
			t.Errorf("after the reset to 3, orders/%d is at %+v", p, o)
		}
	}
	// An unconfirmed deletion is stopped on A; a confirmed one is done by B.
	if _, flash := post(t, hc, base, "/groups/"+g, "/groups/"+g+"/delete", url.Values{"confirm": {"wrong"}}); !strings.Contains(flash, "to confirm its deletion") {
		t.Errorf("unconfirmed delete: flash %q", flash)
	}
	if _, flash := post(t, hc, base, "/groups/"+g, "/groups/"+g+"/delete", url.Values{"confirm": {g}}); !strings.HasPrefix(flash, "ok: deleted group "+g) {
		t.Fatalf("delete through A: flash %q", flash)
	}
	listed, err := c.adm.ListGroups(ctxWithOps(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[g]; ok {
		t.Errorf("group %s is still listed after its deletion: %+v", g, listed[g])
	}
	if offs, err := c.adm.FetchOffsets(ctxWithOps(t), g); err == nil && len(offs) != 0 {
		t.Errorf("group %s still has offsets after its deletion: %v", g, offs)
	}
}

// TestConsoleAPIGuards: the endpoints other agents' consoles call want
// the bearer token (a session cookie is not enough), JSON, a confirmed
// name, and never act on a group their agent does not coordinate.
func TestConsoleAPIGuards(t *testing.T) {
	const token = "shared-admin-token"
	a, b, _ := twoAgents(t, token)
	g := groupOwnedBy(t, a.Store, b, "guarded")
	do := func(auth, method, path, ctype, body string) int {
		req, _ := http.NewRequest(method, "http://"+b.AdminAddr()+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return resp.StatusCode
	}
	reset := "/api/console/groups/" + g + "/reset"
	body := `{"to":"earliest","confirm":"` + g + `"}`
	for _, tc := range []struct {
		name, auth, method, path, ctype, body string
		want                                  int
	}{
		{"no token", "", "POST", reset, "application/json", body, http.StatusUnauthorized},
		{"wrong token", "Bearer nope", "POST", reset, "application/json", body, http.StatusUnauthorized},
		{"a form", "Bearer " + token, "POST", reset, "application/x-www-form-urlencoded", "to=earliest&confirm=" + g, http.StatusUnsupportedMediaType},
		{"bad JSON", "Bearer " + token, "POST", reset, "application/json", `{"to":`, http.StatusBadRequest},
		{"unknown field", "Bearer " + token, "POST", reset, "application/json", `{"to":"earliest","confirm":"` + g + `","x":1}`, http.StatusBadRequest},
		{"not confirmed", "Bearer " + token, "POST", reset, "application/json", `{"to":"earliest","confirm":"x"}`, http.StatusBadRequest},
		{"too large", "Bearer " + token, "POST", reset, "application/json", `{"to":"` + strings.Repeat("a", 100<<10) + `"}`, http.StatusBadRequest},
		{"invalid name", "Bearer " + token, "GET", "/api/console/groups/%01bad", "", "", http.StatusBadRequest},
		{"not its group", "Bearer " + token, "GET", "/api/console/groups/" + groupOwnedBy(t, a.Store, a, "other"), "", "", http.StatusConflict},
		{"its group", "Bearer " + token, "GET", "/api/console/groups/" + g, "", "", http.StatusNotFound}, // no such group yet
	} {
		if got := do(tc.auth, tc.method, tc.path, tc.ctype, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestUnreachableAgents: agents whose admin API hangs, answers garbage,
// answers too much, answers for another agent or has no address are
// shown as such, and the page does not wait for them long.
func TestUnreachableAgents(t *testing.T) {
	c := start(t, "")
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>not json") }))
	defer garbage.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"id":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for range 100 { // 6.4 MiB, more than an answer may hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"someone-else","health":"ok","version":"evil"}`)
	}))
	defer impostor.Close()
	fakes := []struct {
		id, admin, want string
	}{
		{"fake-hang", hang.URL, "unreachable: no answer in time"},
		{"fake-garbage", garbage.URL, "unreachable: answer is not what an agent answers"},
		{"fake-huge", huge.URL, "unreachable: answer too large"},
		{"fake-impostor", impostor.URL, "unreachable: answered for another agent"},
		{"fake-none", "", "no admin address registered"},
		{"fake-javascript", "javascript:alert(1)", "no admin address registered"},
	}
	nodes := map[string]int32{}
	for i, f := range fakes {
		got, err := c.a.Store.Heartbeat(t.Context(), metastore.AgentInfo{ID: f.id, NodeID: -1, Host: "127.0.0.1", Port: int32(1 + i), Admin: f.admin}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		nodes[f.id] = got.NodeID
	}
	hc := browser(t)
	start := time.Now()
	code, body, _ := get(t, hc, c.base+"/agents")
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("/agents took %v with unreachable agents", took)
	}
	if code != http.StatusOK {
		t.Fatalf("/agents: %d", code)
	}
	for _, f := range fakes {
		row := agentRow(t, body, nodes[f.id])
		if !strings.Contains(row, `agent-health bad">`+f.want) {
			t.Errorf("%s: row does not say %q:\n%s", f.id, f.want, row)
		}
		if strings.Contains(row, "evil") || strings.Contains(row, "javascript:") {
			t.Errorf("%s: row shows what it should not:\n%s", f.id, row)
		}
	}
}

// TestCoordinatorWithoutConsole: a group coordinated by an agent whose
// console is off is shown from the store, and its actions say why they
// cannot be done.
func TestCoordinatorWithoutConsole(t *testing.T) {
	c := start(t, "")
	b := agenttest.StartPeer(t, c.a, agenttest.Options{Config: func(cfg *agent.Config) { cfg.NoConsole = true }})
	waitForEachOther(t, c, b)
	g := groupOwnedBy(t, c.a.Store, b, "headless")
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	if resp, err := c.adm.CommitOffsets(ctxWithOps(t), g, offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit %s: %v %v", g, err, resp.Error())
	}
	hc := browser(t)
	code, body, _ := get(t, hc, c.base+"/groups/"+g)
	if code != http.StatusOK || !strings.Contains(body, `id="elsewhere"`) || !strings.Contains(body, "its console is off") || !strings.Contains(body, `<td class="lagv">8</td>`) {
		t.Errorf("/groups/%s (coordinator's console off): %d\n%s", g, code, body)
	}
	if _, flash := post(t, hc, c.base, "/topics", "/groups/"+g+"/delete", url.Values{"confirm": {g}}); !strings.Contains(flash, "its console is off") {
		t.Errorf("delete %s (coordinator's console off): flash %q", g, flash)
	}
	if code, _, _ := get(t, hc, c.base+"/groups/no-such-group-"+g); code != http.StatusNotFound {
		t.Errorf("an unknown group: %d, want 404", code)
	}
}
