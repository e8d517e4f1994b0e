package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sample is one scrape of a Prometheus text endpoint: every series'
// value, keyed by its name and labels as they appear on the wire
// (name{a="x",b="y"}).
type Sample map[string]float64

// Scrape fetches and parses url.
func Scrape(ctx context.Context, client *http.Client, url string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// An agent started with --admin-token-file wants the same token.
	if token := os.Getenv("FLOE_ADMIN_TOKEN"); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text exposition format. It keeps
// samples and skips comments; it is not a validator.
func ParseMetrics(r io.Reader) (Sample, error) {
	s := Sample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The value follows the series, after the closing brace if any.
		rest := line
		cut := 0
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			cut = i + 1
			rest = line[cut:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		series := line[:cut]
		valueField := fields[0]
		if cut == 0 {
			if len(fields) < 2 {
				continue
			}
			series, valueField = fields[0], fields[1]
		}
		v, err := strconv.ParseFloat(valueField, 64)
		if err != nil {
			continue
		}
		s[series] = v
	}
	return s, sc.Err()
}

// Sum adds every series of the metric name whose labels include all of
// the given name="value" pairs.
func (s Sample) Sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range s {
		base, lbl, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(lbl, labels[i]+`="`+labels[i+1]+`"`) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// Has reports whether any series of the metric exists.
func (s Sample) Has(name string) bool {
	for series := range s {
		if base, _, _ := strings.Cut(series, "{"); base == name {
			return true
		}
	}
	return false
}

// ServerFigures are what the server's own metrics say about the measured
// window: deltas of counters between two scrapes, over the window's
// length, and the largest resident memory seen by any scrape.
type ServerFigures struct {
	Seconds float64 `json:"seconds"`

	Puts        float64 `json:"puts"`
	Gets        float64 `json:"gets"`
	Errors      float64 `json:"objstore_errors"`
	PutsPerSec  float64 `json:"puts_per_sec"`
	GetsPerSec  float64 `json:"gets_per_sec"`
	PutBytes    float64 `json:"put_bytes"`
	GetBytes    float64 `json:"get_bytes"`
	PutMiBps    float64 `json:"put_mib_per_sec"`
	AvgObjectKB float64 `json:"avg_object_kib"`

	Flushes     float64 `json:"segment_flushes"` // = metadata commits
	FlushErrors float64 `json:"segment_flush_errors"`
	// EarlyFlushes are the flushes started because every producer with
	// data in the segment had its window waiting on it (the rest: linger,
	// size).
	EarlyFlushes   float64 `json:"segment_early_flushes"`
	AvgPutMillis   float64 `json:"avg_segment_put_ms"`
	AvgCommitMilli float64 `json:"avg_segment_commit_ms"`
	CacheHits      float64 `json:"cache_hits"`
	CacheMisses    float64 `json:"cache_misses"`

	CPUSeconds  float64 `json:"cpu_seconds"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
	SameProcess bool    `json:"same_process_as_clients"`
}

// serverFigures computes the figures from the scrapes that opened and
// closed the window; peakRSS is the largest RSS any scrape saw.
func serverFigures(before, after Sample, seconds, peakRSS float64) *ServerFigures {
	d := func(name string, labels ...string) float64 {
		return after.Sum(name, labels...) - before.Sum(name, labels...)
	}
	avgMillis := func(name string) float64 {
		n := d(name + "_count")
		if n == 0 {
			return 0
		}
		return d(name+"_sum") / n * 1000
	}
	f := &ServerFigures{
		Seconds:        seconds,
		Puts:           d("floe_objstore_requests_total", "op", "put"),
		Gets:           d("floe_objstore_requests_total", "op", "get"),
		Errors:         d("floe_objstore_requests_total", "result", "error"),
		PutBytes:       d("floe_objstore_bytes_total", "op", "put"),
		GetBytes:       d("floe_objstore_bytes_total", "op", "get"),
		Flushes:        d("floe_segment_flushes_total", "result", "ok"),
		FlushErrors:    d("floe_segment_flushes_total") - d("floe_segment_flushes_total", "result", "ok"),
		EarlyFlushes:   d("floe_segment_flush_triggers_total", "trigger", "early"),
		AvgPutMillis:   avgMillis("floe_segment_put_seconds"),
		AvgCommitMilli: avgMillis("floe_segment_commit_seconds"),
		CacheHits:      d("floe_cache_hits_total"),
		CacheMisses:    d("floe_cache_misses_total"),
		CPUSeconds:     d("process_cpu_seconds_total"),
		PeakRSSMiB:     peakRSS / (1 << 20),
	}
	if seconds > 0 {
		f.PutsPerSec = f.Puts / seconds
		f.GetsPerSec = f.Gets / seconds
		f.PutMiBps = f.PutBytes / seconds / (1 << 20)
	}
	if f.Puts > 0 {
		f.AvgObjectKB = f.PutBytes / f.Puts / 1024
	}
	return f
}

// isFloe reports whether a scrape looks like a Floe agent's.
func isFloe(s Sample) bool { return s.Has("floe_objstore_requests_total") }
