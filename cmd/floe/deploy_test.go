package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"
)

const (
	dashboardFile = "../../deploy/grafana/floe.json"
	alertsFile    = "../../deploy/prometheus/alerts.yaml"
	// metricsUsedFile lists the metrics both files select, as Prometheus'
	// own parser reads them (deploy/prometheus, a module of its own).
	metricsUsedFile = "../../deploy/prometheus/testdata/metrics-used.txt"
)

// promKeywords are PromQL words that are not metric names.
var promKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true, "atan2": true,
	// aggregations, which may be followed by by (...) before their
	// argument
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// promMetricNames lexes a PromQL expression and returns the metric names
// it selects: identifiers outside strings, label matchers and range
// brackets that are not functions, aggregations, keywords or the label
// lists of by/without/on/ignoring/group_left/group_right. It fails on
// unbalanced brackets and unterminated strings.
func promMetricNames(expr string) ([]string, error) {
	var names []string
	var stack []byte
	labelList := false // inside by (...) and the like
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i = j + 1
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
			i++
		case c == ')' || c == '}' || c == ']':
			want := map[byte]byte{')': '(', '}': '{', ']': '['}[c]
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return nil, fmt.Errorf("unbalanced %q at %d", c, i)
			}
			stack = stack[:len(stack)-1]
			if c == ')' {
				labelList = false
			}
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.' || ((expr[i] == '+' || expr[i] == '-') && (expr[i-1]|0x20) == 'e')) {
				i++
			}
		case c == '$':
			for i++; i < len(expr) && isIdent(expr[i]); i++ {
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			inside := len(stack) > 0 && (stack[len(stack)-1] == '{' || stack[len(stack)-1] == '[')
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\n' || expr[k] == '\t') {
				k++
			}
			next := byte(0)
			if k < len(expr) {
				next = expr[k]
			}
			switch {
			case inside || labelList:
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, strings.ToLower(word)):
				if next == '(' {
					labelList = true
					stack = append(stack, '(')
					i = k + 1
				}
			case promKeywords[strings.ToLower(word)]:
			case next == '(':
				// a function or an aggregation
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return names, nil
}

func TestPromMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`histogram_quantile(0.99, sum by (le, instance) (rate(floe_segment_put_seconds_bucket{instance=~"$instance",op="put"}[$__rate_interval])))`: {"floe_segment_put_seconds_bucket"},
		`sum(rate(a_total[5m])) / clamp_min(sum(rate(b_total[5m])) + sum(c), 1e-9) > 0.5 and on (job) d == 0`:                                       {"a_total", "b_total", "c", "d"},
		`time() - max by (job) (floe_job_last_success_timestamp_seconds) > 1800`:                                                                    {"floe_job_last_success_timestamp_seconds"},
		`x{l="a)b{"} * 2`: {"x"},
	} {
		got, err := promMetricNames(expr)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b}`, `x)`} {
		if _, err := promMetricNames(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// alertRules is the structure of a Prometheus rules file; decoding with
// known fields only rejects any other key.
type alertRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// deployExprs reads the dashboard's and the alert rules' expressions,
// checking the files' structure on the way.
func deployExprs(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{} // expression -> where
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct{ H, W, X, Y int }
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) < 10 {
		t.Fatalf("%s: title %q, uid %q, %d panels", dashboardFile, dash.Title, dash.UID, len(dash.Panels))
	}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("dashboard: panel %q is outside the 24-column grid", p.Title)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard: panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
				t.Errorf("dashboard: panel %q has an empty query", p.Title)
			}
			exprs[tg.Expr] = "dashboard panel " + p.Title
		}
	}

	raw, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(rules.Groups) == 0 {
		t.Fatalf("%s: no rule groups", alertsFile)
	}
	// Prometheus expands annotations as Go templates with these functions.
	funcs := template.FuncMap{}
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "printf", "title", "toUpper", "toLower", "first", "value", "label", "query"} {
		funcs[f] = func(...any) string { return "" }
	}
	groupNames, alertNames := map[string]bool{}, map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || groupNames[g.Name] {
			t.Errorf("rules: group name %q empty or repeated", g.Name)
		}
		groupNames[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("rules: group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			switch {
			case (r.Alert == "") == (r.Record == ""):
				t.Errorf("rules: group %s: a rule needs exactly one of alert and record (%q, %q)", g.Name, r.Alert, r.Record)
			case r.Alert != "" && alertNames[r.Alert]:
				t.Errorf("rules: alert %s twice", r.Alert)
			case strings.TrimSpace(r.Expr) == "":
				t.Errorf("rules: %s has no expr", name)
			}
			alertNames[r.Alert] = true
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("rules: %s: for %q: %v", name, r.For, err)
				}
			}
			if r.Alert != "" {
				if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
					t.Errorf("rules: %s: severity %q", name, sev)
				}
				if r.Annotations["summary"] == "" {
					t.Errorf("rules: %s has no summary", name)
				}
			}
			for k, v := range r.Annotations {
				if _, err := template.New(k).Funcs(funcs).Parse("{{$labels := .Labels}}{{$value := .Value}}" + v); err != nil {
					t.Errorf("rules: %s: annotation %s: %v", name, k, err)
				}
			}
			exprs[r.Expr] = "alert " + name
		}
	}
	return exprs
}

// metricSamples returns the sample names an agent's /metrics shows.
func metricSamples(t *testing.T, admin string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

var adminInLog = regexp.MustCompile(`"admin":"([^"]+)"`)
var kafkaInLog = regexp.MustCompile(`"kafka":"([^"]+)"`)

// TestDeployMetricsExist: every metric the Grafana dashboard and the
// alert rules name is on the /metrics of a running `floe agent` that
// has produced, served a consumer group and run its jobs; and both files
// are well formed.
func TestDeployMetricsExist(t *testing.T) {
	exprs := deployExprs(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	errOut := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run1(ctx, []string{"agent", "--bucket", "file://" + filepath.Join(dir, "bucket"), "--metastore", "embedded://" + filepath.Join(dir, "metadata.db"),
			"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--linger", "20ms", "--job-interval", "100ms", "--log-format", "json",
			"--group-initial-rebalance-delay", "0"}, io.Discard, errOut)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("floe agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("floe agent did not stop within 30s")
		}
	}()
	var admin, bootstrap string
	deadline := time.Now().Add(30 * time.Second)
	for admin == "" {
		if m := adminInLog.FindStringSubmatch(errOut.String()); m != nil {
			admin, bootstrap = m[1], kafkaInLog.FindStringSubmatch(errOut.String())[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("floe agent exited: %v\n%s", err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("floe agent did not log its addresses:\n%s", errOut.String())
		}
	}

	// Produce, and consume in a group that commits.
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic("watched"),
		kgo.ConsumerGroup("dashboards"), kgo.ConsumeTopics("watched"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(wctx, 2, 1, nil, "watched"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := cl.ProduceSync(wctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 20; {
		f := cl.PollFetches(wctx)
		if wctx.Err() != nil {
			t.Fatalf("consumed %d of 20 records", got)
		}
		got += f.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(wctx); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{}
	for expr, where := range exprs {
		names, err := promMetricNames(expr)
		if err != nil {
			t.Errorf("%s: %s: %v", where, expr, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: %s names no metric", where, expr)
		}
		for _, n := range names {
			want[n] = where
		}
	}
	// The lexer finds what Prometheus' parser finds (deploy/prometheus
	// checks the parser's names against the same list).
	rawUsed, err := os.ReadFile(metricsUsedFile)
	if err != nil {
		t.Fatal(err)
	}
	var listed, lexed []string
	for _, l := range strings.Split(string(rawUsed), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			listed = append(listed, l)
		}
	}
	for n := range want {
		lexed = append(lexed, n)
	}
	slices.Sort(listed)
	slices.Sort(lexed)
	if !slices.Equal(listed, lexed) {
		t.Errorf("%s lists\n  %v\nthe expressions name\n  %v", metricsUsedFile, listed, lexed)
	}

	var missing []string
	for wait := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		have := metricSamples(t, admin)
		missing = missing[:0]
		for n := range want {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(wait) {
			break
		}
	}
	slices.Sort(missing)
	for _, n := range missing {
		t.Errorf("%s (in %s) is not on the agent's /metrics", n, want[n])
	}
	t.Logf("%d expressions name %d metrics, all on /metrics: %v", len(exprs), len(want), len(missing) == 0)
}
