// Package prometheus holds the test that Floe's alert rules
// (alerts.yaml) and Grafana dashboard (../grafana/floe.json) are valid
// for Prometheus itself: the rules file is loaded by Prometheus' own rule
// parser, every expression by its PromQL parser, and the metric names
// those expressions select must be exactly testdata/metrics-used.txt.
// Floe's cmd/floe test TestDeployMetricsExist checks that every name in
// that file is on a running agent's /metrics. This is a module of its own
// so that the Prometheus server module stays out of Floe's go.mod.
package prometheus

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	rulesFile     = "alerts.yaml"
	dashboardFile = "../grafana/floe.json"
	usedFile      = "testdata/metrics-used.txt"
)

// grafanaVars replaces the dashboard's template variables with values
// Prometheus would receive.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "${instance}", ".*", "$instance", ".*")

func selected(t *testing.T, p parser.Parser, expr, where string, into map[string]bool) {
	t.Helper()
	e, err := p.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		t.Errorf("%s: %s: %v", where, expr, err)
		return
	}
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			into[vs.Name] = true
			n++
		}
		return nil
	})
	if n == 0 {
		t.Errorf("%s: %s selects no metric", where, expr)
	}
}

func TestRulesAndDashboard(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, p, nil)
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if groups == nil || len(groups.Groups) == 0 {
		t.Fatalf("%s: no rule groups", rulesFile)
	}
	used := map[string]bool{}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a recording rule %q (the file holds alerts only)", g.Name, r.Record)
			}
			if _, ok := r.Labels["severity"]; !ok {
				t.Errorf("alert %s has no severity", r.Alert)
			}
			alerts++
			selected(t, p, r.Expr, "alert "+r.Alert, used)
		}
	}

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	queries := 0
	for _, panel := range dash.Panels {
		for _, tg := range panel.Targets {
			queries++
			selected(t, p, tg.Expr, "panel "+panel.Title, used)
		}
	}

	var got []string
	for n := range used {
		got = append(got, n)
	}
	slices.Sort(got)
	rawUsed, err := os.ReadFile(usedFile)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(rawUsed), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s lists\n  %v\nthe expressions select\n  %v", usedFile, want, got)
	}
	t.Logf("%d alerts and %d dashboard queries parse; they select %d metrics", alerts, queries, len(got))
}
