package console

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "/",
		"/topics?p=1":                   "/topics?p=1",
		"//evil.example":                "/",
		"/\\evil.example":               "/",
		"https://evil":                  "/",
		"topics":                        "/",
		"/a\r\nSet-Cookie:":             "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"orders": true, "a.b_c-D9": true, "": false, ".": false, "..": false,
		"with space": false, "sl/ash": false, strings.Repeat("x", 249): true, strings.Repeat("x", 250): false, "ünï": false} {
		if validTopic(name) != ok {
			t.Errorf("validTopic(%q) = %v", name, !ok)
		}
	}
	for name, ok := range map[string]bool{"billing": true, "with space/and:colon": true, "": false, "a\x00b": false, "a\nb": false,
		strings.Repeat("g", 255): true, strings.Repeat("g", 256): false} {
		if validGroup(name) != ok {
			t.Errorf("validGroup(%q) = %v", name, !ok)
		}
	}
}

func TestParseBrowse(t *testing.T) {
	q, err := parseBrowse(url.Values{}, 3)
	if err != nil || q.From != "newest" || q.Limit != 20 || q.Format != "text" || q.Scan != 10_000 {
		t.Errorf("defaults: %+v %v", q, err)
	}
	q, err = parseBrowse(url.Values{"p": {"2"}, "from": {"offset"}, "offset": {"42"}, "limit": {"500"}, "format": {"hex"}, "q": {"k"}, "in": {"key"}, "scan": {"100000"}}, 3)
	if err != nil || q.Partition != 2 || q.Offset != 42 || q.Limit != 500 || q.Format != "hex" || q.In != "key" || q.Scan != 100_000 {
		t.Errorf("all set: %+v %v", q, err)
	}
	for _, bad := range []url.Values{{"p": {"3"}}, {"p": {"-1"}}, {"limit": {"0"}}, {"limit": {"501"}}, {"scan": {"100001"}},
		{"offset": {"x"}}, {"format": {"xml"}}, {"in": {"both"}}, {"from": {"middle"}}, {"q": {strings.Repeat("q", 1025)}}} {
		if _, err := parseBrowse(bad, 3); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	for in, want := range map[string]int64{"1700000000000": 1700000000000, "2026-01-02T03:04:05Z": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli(),
		"2026-01-02": time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC).UnixMilli()} {
		if got, err := parseTimestamp(in); err != nil || got != want {
			t.Errorf("parseTimestamp(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseTimestamp("last tuesday"); err == nil {
		t.Error("parseTimestamp accepted prose")
	}
}

func TestParsePrices(t *testing.T) {
	p, errs := parsePrices(url.Values{"put": {"0.01"}, "share": {"0.5"}})
	if len(errs) != 0 || p.PutPer1000 != 0.01 || p.CrossZoneShare != 0.5 || p.GetPer1000 != DefaultPrices.GetPer1000 {
		t.Errorf("%+v %v", p, errs)
	}
	p, errs = parsePrices(url.Values{"put": {"-1"}, "get": {"NaN"}, "share": {"1.5"}, "storage": {"1e9"}})
	if len(errs) != 4 || p != DefaultPrices {
		t.Errorf("bad prices: %+v %v", p, errs)
	}
}

func TestShow(t *testing.T) {
	if got := show([]byte(`{"a":1}`), "json"); got != "{\n  \"a\": 1\n}" {
		t.Errorf("json: %q", got)
	}
	if got := show([]byte("not json"), "json"); got != "not json" {
		t.Errorf("json fallback: %q", got)
	}
	if got := show([]byte{0xff, 0x00}, "text"); !strings.HasPrefix(got, "(not UTF-8; 2 bytes)") {
		t.Errorf("binary: %q", got)
	}
	if got := show([]byte("hi"), "hex"); !strings.Contains(got, "68 69") {
		t.Errorf("hex: %q", got)
	}
	if got := show([]byte(strings.Repeat("é", maxShown)), "text"); len(got) > maxShown+4 || !strings.HasSuffix(got, "…") {
		t.Errorf("long values are clipped on a rune boundary: %d bytes", len(got))
	}
}

func TestSamplerRatesAndTrends(t *testing.T) {
	s := newSampler(nil, 3)
	t0 := time.Now()
	for i, v := range []float64{0, 10, 30, 60} {
		s.ring = append(s.ring, sample{at: t0.Add(time.Duration(i) * 10 * time.Second), metrics: map[string]float64{
			"floe_objstore_requests_total{op=put,result=ok}":    v,
			"floe_objstore_requests_total{op=put,result=error}": 1,
			"floe_objstore_requests_total{op=get,result=ok}":    100,
			"floe_group_lag{group=g,partition=0,topic=t}":       v / 10,
		}, ends: map[string]int64{"t": int64(v)}})
		if len(s.ring) > s.max {
			s.ring = s.ring[1:]
		}
	}
	// The window is the last three samples: 10 → 60 over 20 s.
	if got := s.rate("floe_objstore_requests_total", "op=put"); got != 2.5 {
		t.Errorf("put rate = %v, want 2.5", got)
	}
	if got := s.rate("floe_objstore_requests_total", "op=put", "result=error"); got != 0 {
		t.Errorf("put error rate = %v, want 0", got)
	}
	if got := s.value("floe_objstore_requests_total", "op=get"); got != 100 {
		t.Errorf("get value = %v", got)
	}
	if got := s.topicRates()["t"]; got != 2.5 {
		t.Errorf("topic rate = %v", got)
	}
	if got := s.series("floe_group_lag{group=g,partition=0,topic=t}", 10); len(got) != 3 || got[2] != 6 {
		t.Errorf("lag series = %v", got)
	}
	if !match("floe_x{a=b}", "floe_x", "a=b") || match("floe_xy{a=b}", "floe_x") || match("floe_x{a=c}", "floe_x", "a=b") {
		t.Error("match")
	}
	if pts := sparkPoints([]int64{0, 5, 10}, 120, 24); pts != "0.0,23.0 60.0,12.0 120.0,1.0" {
		t.Errorf("spark = %q", pts)
	}
	if sparkPoints([]int64{3}, 120, 24) != "" {
		t.Error("a single point draws a line")
	}
}
