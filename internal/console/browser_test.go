package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// screenshotsEnv names a directory to keep the browser test's
// screenshots in (docs/console/ for the README); by default they go to
// the test's temporary directory.
const screenshotsEnv = "FLOE_CONSOLE_SCREENSHOTS"

// chromium finds Debian's chromium, or skips the test (fails it with
// FLOE_REQUIRE_CLIENTS=1, as scripts/test sets).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FLOE_REQUIRE_CLIENTS") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium) and FLOE_REQUIRE_CLIENTS=1")
	}
	t.Skip("chromium is not installed")
	return ""
}

// TestConsoleInABrowser drives headless Chromium through the console of
// an agent with data and a token: it logs in, loads every page (no error
// may reach the browser's console), checks what each shows, takes a
// screenshot of each, and performs the actions, checking each through a
// Kafka client.
func TestConsoleInABrowser(t *testing.T) {
	exe := chromium(t)
	c := start(t, token)
	// A second agent with the same token: the cluster page shows its
	// health, and the groups it coordinates are forwarded to it.
	b := agenttest.StartPeer(t, c.a, agenttest.Options{Config: func(cfg *agent.Config) { cfg.AdminToken = token }})
	waitForEachOther(t, c, b)
	shots := os.Getenv(screenshotsEnv)
	if shots == "" {
		shots = filepath.Join(t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	// A consumer that keeps its group Stable with lag to show: it reads
	// 2 records of orders/0 and commits them, then idles.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.a.Addr()), kgo.ConsumerGroup("shipping"), kgo.ConsumeTopics("orders"),
		kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1), kgo.DisableAutoCommit(), kgo.ClientID("shipping-1"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	deadline := time.Now().Add(30 * time.Second)
	for committed := false; !committed; {
		if time.Now().After(deadline) {
			t.Fatal("the shipping consumer did not commit in 30s")
		}
		fs := consumer.PollRecords(ctx, 2)
		if recs := fs.Records(); len(recs) > 0 {
			if err := consumer.CommitRecords(ctx, recs...); err != nil {
				t.Fatal(err)
			}
			committed = true
		}
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1400, 1000))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// Start the browser, then collect what reaches its console.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s)", m, m.URL))
				mu.Unlock()
			}
		}
	}()
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, tcancel := context.WithTimeout(bctx, 30*time.Second)
		defer tcancel()
		if err := chromedp.Do(tctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(what, sel string) string {
		t.Helper()
		tctx, tcancel := context.WithTimeout(bctx, 30*time.Second)
		defer tcancel()
		s, err := chromedp.Run(tctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	screenshot := func(name string) {
		t.Helper()
		tctx, tcancel := context.WithTimeout(bctx, 30*time.Second)
		defer tcancel()
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkProblems := func(where string) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("%s: the browser reported %s", where, p)
		}
		problems = nil
	}

	// Log in with the token.
	run("login", chromedp.Navigate(c.base+"/topics"), chromedp.WaitVisible("#token"),
		chromedp.SendKeys("#token", token), chromedp.Click("#login"),
		chromedp.WaitVisible("#topics"))
	checkProblems("login")

	// Let the sampler take a few samples so that rates and trends show.
	time.Sleep(2 * time.Second)
	for _, p := range []struct {
		path, file string
		want       []string
	}{
		{"/", "cluster", []string{"This agent", "ok", "Live agents", "produce, fetch, jobs", "put", "Produce"}},
		{"/agents", "agents", []string{"Live agents", "this agent"}},
		{"/topics", "topics", []string{"orders", "14"}},
		{"/topics/orders", "topic", []string{"customer-9", `"item": "widget-9"`, "source: test", "retention.ms", "Produce a test record"}},
		{"/topics/orders?p=1&from=oldest", "topic-partition-1", []string{"plain text 0", "plain text 3"}},
		{"/groups", "groups", []string{"billing", "shipping", "Stable", "Empty"}},
		{"/groups/shipping", "group", []string{"shipping-1", "orders/0", "Stable", "Offsets and lag"}},
		{"/groups/billing", "group-billing", []string{"Empty", "Reset offsets"}},
		{"/jobs", "jobs", []string{"Leases", "awaiting deletion", "orders"}},
		{"/cost", "cost", []string{"PUT requests", "Storage", "Total", "orders"}},
	} {
		url := c.base + p.path
		if p.path == "/topics/orders" {
			url += "?format=json"
		}
		run("load "+p.path, chromedp.Navigate(url), chromedp.WaitReady("footer"))
		shown := text(p.path, "main")
		for _, w := range p.want {
			if !strings.Contains(shown, w) {
				t.Errorf("%s: the page does not show %q", p.path, w)
			}
		}
		screenshot(p.file)
		checkProblems(p.path)
	}
	// The other agent's row, from its /api/status.
	run("agents", chromedp.Navigate(c.base+"/agents"), chromedp.WaitReady("footer"))
	if h := text("the other agent's health", fmt.Sprintf(`tr[data-node="%d"] .agent-health`, b.NodeID())); h != "ok" {
		t.Errorf("the other agent's health on /agents: %q", h)
	}
	// A group the other agent coordinates: shown as it answers, and
	// reset through it.
	forwarded := groupOwnedBy(t, c.a.Store, b, "forwarded")
	fo := kadm.Offsets{}
	fo.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 7, LeaderEpoch: -1})
	if resp, err := c.adm.CommitOffsets(ctxWithOps(t), forwarded, fo); err != nil || resp.Error() != nil {
		t.Fatalf("commit %s: %v %v", forwarded, err, resp.Error())
	}
	run("forwarded group", chromedp.Navigate(c.base+"/groups/"+forwarded), chromedp.WaitVisible("#coordinator-node"))
	if n := text("coordinator", "#coordinator-node"); n != fmt.Sprintf("node %d", b.NodeID()) {
		t.Errorf("/groups/%s names the coordinator %q", forwarded, n)
	}
	screenshot("group-forwarded")
	run("forwarded reset", chromedp.SetValue("#reset-to", "earliest"), chromedp.SendKeys("#reset-confirm", forwarded), chromedp.Click("#reset-go"))
	run("forwarded reset: result", chromedp.WaitVisible("#flash"))
	if f := text("forwarded reset", "#flash"); !strings.Contains(f, "partitions of orders to earliest") || !strings.Contains(f, fmt.Sprintf("by node %d", b.NodeID())) {
		t.Errorf("forwarded reset: %q", f)
	}
	if offs, err := c.adm.FetchOffsets(ctxWithOps(t), forwarded); err != nil {
		t.Error(err)
	} else if o, _ := offs.Lookup("orders", 0); o.At != 0 {
		t.Errorf("%s orders/0 after the forwarded reset to earliest: %d, want 0", forwarded, o.At)
	}
	checkProblems("other agent")

	// The lag of shipping on orders/0 is 10 - committed.
	run("lag", chromedp.Navigate(c.base+"/groups/shipping"))
	lag := text("lag", "#lag")
	if !strings.Contains(lag, "orders") {
		t.Errorf("/groups/shipping lag table: %q", lag)
	}

	// Each check through Kafka gets its own deadline: the browser's
	// actions between them take what a loaded machine gives them.
	flash := func(what string) string {
		run(what+": result", chromedp.WaitVisible("#flash"))
		return text(what, "#flash")
	}
	// Create a topic.
	run("create topic", chromedp.Navigate(c.base+"/topics"), chromedp.SendKeys("#new-topic", "from-browser"),
		chromedp.SetValue("#new-partitions", "2"), chromedp.Click("#create"))
	if f := flash("create topic"); !strings.Contains(f, "created topic from-browser with 2 partitions") {
		t.Errorf("create topic: %q", f)
	}
	if td, err := c.adm.ListTopics(ctxWithOps(t), "from-browser"); err != nil || len(td["from-browser"].Partitions) != 2 {
		t.Errorf("from-browser through Kafka: %v %v", td, err)
	}
	// Edit a config.
	run("edit config", chromedp.Navigate(c.base+"/topics/from-browser"), chromedp.SendKeys("#config-name", "retention.ms"),
		chromedp.SendKeys("#config-value", "3600000"), chromedp.Click("#config-go"))
	if f := flash("edit config"); !strings.Contains(f, "set retention.ms=3600000") {
		t.Errorf("edit config: %q", f)
	}
	if rc, err := c.adm.DescribeTopicConfigs(ctxWithOps(t), "from-browser"); err != nil {
		t.Error(err)
	} else if v, err := rc.On("from-browser", nil); err != nil || configValue(v, "retention.ms") != "3600000" {
		t.Errorf("retention.ms through Kafka: %q %v", configValue(v, "retention.ms"), err)
	}
	// Produce a record.
	run("produce", chromedp.Navigate(c.base+"/topics/from-browser"), chromedp.SetValue("#produce-partition", "1"),
		chromedp.SendKeys("#produce-key", "browser-key"), chromedp.SendKeys("#produce-value", `{"from":"chromium"}`),
		chromedp.Click("#produce-go"))
	if f := flash("produce"); !strings.Contains(f, "produced a record at partition 1 offset 0") {
		t.Errorf("produce: %q", f)
	}
	records := text("produced record shown", "#records")
	if !strings.Contains(records, "browser-key") {
		t.Errorf("the topic page after producing shows %q", records)
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(c.a.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"from-browser": {1: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if recs := reader.PollRecords(ctxWithOps(t), 1).Records(); len(recs) != 1 || string(recs[0].Key) != "browser-key" {
		t.Errorf("the produced record through Kafka: %v", recs)
	}
	// Reset billing's offsets to latest.
	run("reset offsets", chromedp.Navigate(c.base+"/groups/billing"), chromedp.SetValue("#reset-to", "latest"),
		chromedp.SendKeys("#reset-confirm", "billing"), chromedp.Click("#reset-go"))
	if f := flash("reset offsets"); !strings.Contains(f, "reset 2 partitions of orders to latest") {
		t.Errorf("reset offsets: %q", f)
	}
	offs, err := c.adm.FetchOffsets(ctxWithOps(t), "billing")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("orders", 0); o.At != 10 {
		t.Errorf("billing orders/0 after reset to latest: %d, want 10", o.At)
	}
	screenshot("group-after-reset")
	// Delete the group.
	run("delete group", chromedp.Navigate(c.base+"/groups/billing"), chromedp.SendKeys("#delete-group-confirm", "billing"),
		chromedp.Click("#delete-group-go"))
	if f := flash("delete group"); !strings.Contains(f, "deleted group billing") {
		t.Errorf("delete group: %q", f)
	}
	if lg, err := c.adm.ListGroups(ctxWithOps(t)); err != nil || contains(lg.Groups(), "billing") {
		t.Errorf("groups through Kafka after delete: %v %v", lg.Groups(), err)
	}
	// Delete the topic.
	run("delete topic", chromedp.Navigate(c.base+"/topics/from-browser"), chromedp.SendKeys("#delete-confirm", "from-browser"),
		chromedp.Click("#delete-go"))
	if f := flash("delete topic"); !strings.Contains(f, "deleted topic from-browser") {
		t.Errorf("delete topic: %q", f)
	}
	if td, err := c.adm.ListTopics(ctxWithOps(t)); err != nil || td.Has("from-browser") {
		t.Errorf("topics through Kafka after delete: %v %v", td.Names(), err)
	}
	// Live refresh: the topics page shows new records without a reload.
	run("live refresh", chromedp.Navigate(c.base+"/topics"), chromedp.WaitVisible("#topics"))
	if before := text("topics before", "#topics"); !strings.Contains(before, "orders\t2\t14\t") {
		t.Errorf("topics table before producing: %q", before)
	}
	var more []*kgo.Record
	for i := range 5 {
		more = append(more, &kgo.Record{Topic: "orders", Partition: 1, Value: fmt.Appendf(nil, "more %d", i)})
	}
	if err := c.kafka.ProduceSync(ctxWithOps(t), more...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	refreshed := false
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && !refreshed; {
		time.Sleep(500 * time.Millisecond)
		// The refresh replaces the table: a read racing with it may find
		// its node gone ("No node with given id"); the next one reads the
		// new table.
		tctx, tcancel := context.WithTimeout(bctx, 10*time.Second)
		shown, err := chromedp.Run(tctx, chromedp.Text("#topics"))
		tcancel()
		if err != nil {
			t.Logf("topics after: %v (read again)", err)
			continue
		}
		refreshed = strings.Contains(shown, "orders\t2\t19\t")
	}
	if !refreshed {
		t.Errorf("the topics page did not refresh to 19 records of orders in 15s: %q", text("topics after", "#topics"))
	}
	checkProblems("actions and live refresh")
	t.Logf("screenshots in %s", shots)
}

func configValue(rc kadm.ResourceConfig, name string) string {
	for _, c := range rc.Configs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}
