package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// cluster is an agent with data: topic orders (2 partitions, 10 JSON
// records on partition 0 and 4 on partition 1) and group billing, which
// committed offset 4 on orders/0 and left (lag 6 and 4).
type cluster struct {
	a     *agenttest.Agent
	kafka *kgo.Client
	adm   *kadm.Client
	base  string
}

func start(t *testing.T, token string) *cluster {
	t.Helper()
	a := agenttest.Start(t, agenttest.Options{Jobs: true, Config: func(cfg *agent.Config) {
		cfg.AdminToken = token
		cfg.MetastoreName = "embedded (test)"
	}})
	return withData(t, a)
}

// withData gives agent a the test data: topic orders and group billing.
func withData(t *testing.T, a *agenttest.Agent) *cluster {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 0, Key: fmt.Appendf(nil, "customer-%d", i),
			Value:   fmt.Appendf(nil, `{"order":%d,"item":"widget-%d"}`, i, i),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("test")}}})
	}
	for i := range 4 {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 1, Value: fmt.Appendf(nil, "plain text %d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 4, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 0, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "billing", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	return &cluster{a: a, kafka: cl, adm: adm, base: "http://" + a.AdminAddr()}
}

// browser is an HTTP client with cookies that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(b), resp.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// post submits a form the way the page's form would: with the CSRF token
// the page carries, and the browser's same-origin marker.
func post(t *testing.T, hc *http.Client, base, page, action string, form url.Values) (int, string) {
	t.Helper()
	_, body, _ := get(t, hc, base+page)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no CSRF token in the page", page)
	}
	form.Set("csrf", m[1])
	req, _ := http.NewRequest(http.MethodPost, base+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, ""
	}
	// Follow the redirect to read the flash message.
	loc, _ := resp.Location()
	_, body, _ = get(t, hc, loc.String())
	flash := regexp.MustCompile(`class="flash (ok|err)"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if flash == nil {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, flash[1] + ": " + flash[2]
}

func TestPagesShowTheCluster(t *testing.T) {
	c := start(t, "")
	hc := browser(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/", []string{"This agent", "this agent", "embedded (test)", "bucket://", "Live agents"}},
		{"/agents", []string{"Live agents", "produce, fetch, jobs"}},
		{"/topics", []string{`href="/topics/orders"`, "<td>14</td>"}},
		{"/topics/orders", []string{"customer-9", "widget-9", "<b>source</b>: test", "retention.ms", "<td>10</td>"}},
		{"/topics/orders?p=1&from=oldest&format=hex", []string{"70 6c 61 69 6e", "plain text 0"}},
		{"/topics/orders?from=oldest&limit=3&format=json", []string{"&#34;order&#34;: 0", "customer-2"}},
		{"/topics/orders?q=widget-7&in=value", []string{"Scanned 10 records, 1 matched", "customer-7"}},
		{"/groups", []string{`href="/groups/billing"`, "Empty", "<td>10</td>"}},
		{"/groups/billing", []string{"orders", `<td class="lagv">6</td>`, `<td class="lagv">4</td>`, "Reset offsets"}},
		{"/jobs", []string{"Leases", "awaiting deletion", "orders"}},
		{"/cost", []string{"PUT requests", "Storage", "Total", "orders"}},
		{"/cost?put=1&storage=2", []string{`name="put" value="1"`, `name="storage" value="2"`}},
	} {
		code, body, hdr := get(t, hc, c.base+tc.path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d", tc.path, code)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: the page lacks %q", tc.path, w)
			}
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
	}
	// Newest first: offset 9 comes before offset 0 on the default view.
	_, body, _ := get(t, hc, c.base+"/topics/orders?limit=10")
	if i, j := strings.Index(body, "customer-9"), strings.Index(body, "customer-0"); i < 0 || j < 0 || i > j {
		t.Errorf("newest first: customer-9 at %d, customer-0 at %d", i, j)
	}
	// From an offset, oldest first.
	_, body, _ = get(t, hc, c.base+"/topics/orders?from=offset&offset=5&limit=2")
	if !strings.Contains(body, "customer-5") || !strings.Contains(body, "customer-6") || strings.Contains(body, "customer-4") || strings.Contains(body, "customer-7") {
		t.Errorf("from offset 5, 2 records: wrong records shown")
	}
	// From a timestamp in the future: nothing.
	_, body, _ = get(t, hc, c.base+"/topics/orders?from=timestamp&ts=2999-01-01T00:00:00Z")
	if strings.Contains(body, "customer-") {
		t.Errorf("from a future timestamp: records shown")
	}
	// The scan limit stops a search.
	_, body, _ = get(t, hc, c.base+"/topics/orders?from=oldest&q=nothing-matches&scan=3")
	if !strings.Contains(body, "Scanned 3 records, 0 matched") || !strings.Contains(body, "scan limit (3 records)") {
		t.Errorf("scan limit 3: page does not say so")
	}
}

func TestInputValidation(t *testing.T) {
	c := start(t, "")
	hc := browser(t)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/topics/bad%20name", http.StatusBadRequest, "invalid topic name"},
		{"/topics/" + strings.Repeat("x", 250), http.StatusBadRequest, "invalid topic name"},
		{"/topics/missing", http.StatusNotFound, "no topic missing"},
		{"/topics/orders?limit=100000", http.StatusOK, "limit: &#34;100000&#34; is not a whole number from 1 to 500"},
		{"/topics/orders?p=7", http.StatusOK, "partition: &#34;7&#34; is not a whole number from 0 to 1"},
		{"/topics/orders?from=sideways", http.StatusOK, "from: newest, oldest, offset or timestamp"},
		{"/topics/orders?scan=-1", http.StatusOK, "scan limit"},
		{"/topics/orders?from=timestamp&ts=yesterday", http.StatusOK, "use RFC 3339"},
		{"/topics/orders?q=" + strings.Repeat("a", 2000), http.StatusOK, "search: at most 1024 bytes"},
		{"/groups/a%01b", http.StatusBadRequest, "invalid group name"},
		{"/groups/nobody", http.StatusNotFound, "no group nobody"},
		{"/cost?put=-1&share=2&get=NaN", http.StatusOK, "put: a number from 0 to 100"},
		{"/nowhere", http.StatusNotFound, ""},
	} {
		code, body, _ := get(t, hc, c.base+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d, want %d with %q", tc.path, code, tc.code, tc.want)
		}
	}
	// Forms: bad values are refused with a message and change nothing.
	for _, tc := range []struct {
		page, action string
		form         url.Values
		want         string
	}{
		{"/topics", "/topics", url.Values{"name": {"no spaces"}}, "err: a topic name is"},
		{"/topics", "/topics", url.Values{"name": {"t1"}, "partitions": {"0"}}, "err: partitions:"},
		{"/topics", "/topics", url.Values{"name": {"t1"}, "configs": {"not a config"}}, "err: configs:"},
		{"/topics", "/topics", url.Values{"name": {"orders"}}, "err: create topic orders: TOPIC_ALREADY_EXISTS"},
		{"/topics/orders", "/topics/orders/configs", url.Values{"config": {"retention.ms"}, "value": {"soon"}}, "err: set retention.ms=soon: INVALID_CONFIG"},
		{"/topics/orders", "/topics/orders/configs", url.Values{"config": {"Bad Name"}, "value": {"1"}}, "err: a config name is"},
		{"/topics/orders", "/topics/orders/partitions", url.Values{"total": {"1"}}, "err: add partitions: INVALID_PARTITIONS"},
		{"/topics/orders", "/topics/orders/delete", url.Values{"confirm": {"order"}}, "err: type the topic"},
		{"/topics/orders", "/topics/orders/produce", url.Values{"partition": {"9"}, "value": {"x"}}, "err: produce:"},
		{"/topics/orders", "/topics/orders/produce", url.Values{"partition": {"0"}, "headers": {"novalue"}}, "err: headers:"},
		{"/groups/billing", "/groups/billing/reset", url.Values{"to": {"latest"}, "confirm": {"wrong"}}, "err: type the group"},
		{"/groups/billing", "/groups/billing/reset", url.Values{"to": {"middle"}, "confirm": {"billing"}}, "err: reset to:"},
		{"/groups/billing", "/groups/billing/delete", url.Values{"confirm": {""}}, "err: type the group"},
	} {
		if _, flash := post(t, hc, c.base, tc.page, tc.action, tc.form); !strings.HasPrefix(flash, tc.want) {
			t.Errorf("POST %s %v: flash %q, want %q…", tc.action, tc.form, flash, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := c.adm.ListTopics(ctx)
	if err != nil || len(td) != 1 || !td.Has("orders") || len(td["orders"].Partitions) != 2 {
		t.Errorf("after refused forms: topics %v (%v), want orders with 2 partitions only", td.Names(), err)
	}
	if g, err := c.adm.DescribeGroups(ctx, "billing"); err != nil || g["billing"].State != "Empty" {
		t.Errorf("after refused forms: group billing %v %v", g, err)
	}
}

func TestActionsTakeEffect(t *testing.T) {
	c := start(t, "")
	hc := browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must := func(flash, want string) {
		t.Helper()
		if !strings.HasPrefix(flash, "ok: "+want) {
			t.Fatalf("flash %q, want ok: %s…", flash, want)
		}
	}
	// Create a topic with a config.
	_, flash := post(t, hc, c.base, "/topics", "/topics", url.Values{"name": {"audit"}, "partitions": {"3"}, "configs": {"retention.ms=3600000"}})
	must(flash, "created topic audit with 3 partitions")
	td, err := c.adm.ListTopics(ctx, "audit")
	if err != nil || len(td["audit"].Partitions) != 3 {
		t.Fatalf("audit: %v %v", td, err)
	}
	config := func(name string) string {
		rcs, err := c.adm.DescribeTopicConfigs(ctx, "audit")
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range rcs {
			for _, cf := range rc.Configs {
				if cf.Key == name && cf.Value != nil {
					return *cf.Value
				}
			}
		}
		return ""
	}
	if v := config("retention.ms"); v != "3600000" {
		t.Errorf("retention.ms after create = %q", v)
	}
	// Edit a config, then reset it.
	_, flash = post(t, hc, c.base, "/topics/audit", "/topics/audit/configs", url.Values{"config": {"retention.ms"}, "value": {"7200000"}})
	must(flash, "set retention.ms=7200000")
	if v := config("retention.ms"); v != "7200000" {
		t.Errorf("retention.ms after edit = %q", v)
	}
	_, flash = post(t, hc, c.base, "/topics/audit", "/topics/audit/configs", url.Values{"config": {"retention.ms"}, "op": {"delete"}})
	must(flash, "reset retention.ms")
	if v := config("retention.ms"); v == "7200000" {
		t.Errorf("retention.ms after reset = %q", v)
	}
	// Add partitions.
	_, flash = post(t, hc, c.base, "/topics/audit", "/topics/audit/partitions", url.Values{"total": {"5"}})
	must(flash, "topic audit now has 5 partitions")
	// kadm answers ListTopics from its metadata cache unless asked for
	// authorized operations.
	if td, _ := c.adm.ListTopics(kadm.WithAuthorizedOps(ctx), "audit"); len(td["audit"].Partitions) != 5 {
		t.Errorf("audit partitions = %d, want 5", len(td["audit"].Partitions))
	}
	// Produce a record and read it with a client.
	_, flash = post(t, hc, c.base, "/topics/audit", "/topics/audit/produce", url.Values{"partition": {"4"}, "key": {"k1"}, "value": {`{"hello":"console"}`}, "headers": {"via=console"}})
	must(flash, "produced a record at partition 4 offset 0")
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.a.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"audit": {4: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fetches := consumer.PollRecords(ctx, 1)
	if recs := fetches.Records(); len(recs) != 1 || string(recs[0].Key) != "k1" || string(recs[0].Value) != `{"hello":"console"}` ||
		len(recs[0].Headers) != 1 || recs[0].Headers[0].Key != "via" {
		t.Errorf("consumed %v (%v)", recs, fetches.Err0())
	}
	// Reset the group's offsets: to latest, then to an offset.
	_, flash = post(t, hc, c.base, "/groups/billing", "/groups/billing/reset", url.Values{"to": {"latest"}, "confirm": {"billing"}})
	must(flash, "reset 2 partitions of orders to latest")
	committed := func() map[int32]int64 {
		offs, err := c.adm.FetchOffsets(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		offs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
		return out
	}
	if got := committed(); got[0] != 10 || got[1] != 4 {
		t.Errorf("after reset to latest: %v, want 0:10 1:4", got)
	}
	_, flash = post(t, hc, c.base, "/groups/billing", "/groups/billing/reset", url.Values{"to": {"offset"}, "offset": {"7"}, "topic": {"orders"}, "confirm": {"billing"}})
	must(flash, "reset 2 partitions of orders to offset")
	if got := committed(); got[0] != 7 || got[1] != 4 {
		t.Errorf("after reset to offset 7: %v, want 0:7 1:4 (clamped to the end)", got)
	}
	_, flash = post(t, hc, c.base, "/groups/billing", "/groups/billing/reset", url.Values{"to": {"earliest"}, "confirm": {"billing"}})
	must(flash, "reset 2 partitions")
	if got := committed(); got[0] != 0 || got[1] != 0 {
		t.Errorf("after reset to earliest: %v", got)
	}
	// A group with a member refuses the reset.
	member, err := kgo.NewClient(kgo.SeedBrokers(c.a.Addr()), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	member.PollRecords(ctx, 1)
	_, flash = post(t, hc, c.base, "/groups/live", "/groups/live/reset", url.Values{"to": {"earliest"}, "confirm": {"live"}})
	if !strings.Contains(flash, "offsets can be reset only while it is empty") {
		t.Errorf("reset of a group with a member: flash %q", flash)
	}
	_, flash = post(t, hc, c.base, "/groups/live", "/groups/live/delete", url.Values{"confirm": {"live"}})
	if !strings.Contains(flash, "NON_EMPTY_GROUP") {
		t.Errorf("delete of a group with a member: flash %q", flash)
	}
	member.Close()
	// Delete a group.
	_, flash = post(t, hc, c.base, "/groups/billing", "/groups/billing/delete", url.Values{"confirm": {"billing"}})
	must(flash, "deleted group billing")
	if lg, err := c.adm.ListGroups(ctx); err != nil || contains(lg.Groups(), "billing") {
		t.Errorf("groups after delete: %v %v", lg.Groups(), err)
	}
	// Delete a topic.
	_, flash = post(t, hc, c.base, "/topics/audit", "/topics/audit/delete", url.Values{"confirm": {"audit"}})
	must(flash, "deleted topic audit")
	if td, err := c.adm.ListTopics(kadm.WithAuthorizedOps(ctx)); err != nil || td.Has("audit") {
		t.Errorf("topics after delete: %v %v", td.Names(), err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ctxWithOps(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return kadm.WithAuthorizedOps(ctx)
}

// /jobs answers floe jobs (JSON) unless a browser asks for HTML, and
// --console=false leaves / unserved.
func TestJobsJSONAndConsoleOff(t *testing.T) {
	c := start(t, "")
	resp, err := http.Get(c.base + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), `"leases"`) {
		t.Errorf("GET /jobs without Accept: %s %.80s", resp.Header.Get("Content-Type"), b)
	}
	off := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.NoConsole = true }})
	hc := browser(t)
	if code, _, _ := get(t, hc, "http://"+off.AdminAddr()+"/"); code != http.StatusNotFound {
		t.Errorf("NoConsole: GET / %d", code)
	}
	if code, body, _ := get(t, hc, "http://"+off.AdminAddr()+"/jobs"); code != http.StatusOK || !strings.Contains(body, `"leases"`) {
		t.Errorf("NoConsole: GET /jobs %d", code)
	}
}
