package console

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/floe-io/floe/internal/jobs"
)

// Prices are list prices in US dollars; the defaults are S3 Standard's
// and AWS's inter-zone transfer, as floe bench uses (internal/bench).
type Prices struct {
	PutPer1000      float64
	GetPer1000      float64
	StorageGiBMonth float64
	CrossZoneGiB    float64 // both directions together
	// CrossZoneShare is the share of produced bytes that cross a zone on
	// their way in (clients writing to an agent in another zone); Floe
	// itself moves no data between zones.
	CrossZoneShare float64
}

// DefaultPrices are the list prices the cost page starts from.
var DefaultPrices = Prices{PutPer1000: 0.005, GetPer1000: 0.0004, StorageGiBMonth: 0.023, CrossZoneGiB: 0.02}

const (
	gib          = 1 << 30
	secondsInDay = 86400
	daysInMonth  = 730.0 / 24 // AWS bills a month as 730 hours
)

func parsePrices(q url.Values) (Prices, []string) {
	p := DefaultPrices
	var errs []string
	for _, f := range []struct {
		key string
		dst *float64
		max float64
	}{
		{"put", &p.PutPer1000, 100}, {"get", &p.GetPer1000, 100}, {"storage", &p.StorageGiBMonth, 100},
		{"crosszone", &p.CrossZoneGiB, 100}, {"share", &p.CrossZoneShare, 1},
	} {
		s := strings.TrimSpace(q.Get(f.key))
		if s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > f.max || v != v {
			errs = append(errs, fmt.Sprintf("%s: a number from 0 to %g", f.key, f.max))
			continue
		}
		*f.dst = v
	}
	return p, errs
}

type costLine struct {
	Item   string
	PerDay float64
	How    string
}

type topicCost struct {
	Topic                          string
	Bytes                          int64
	Share                          float64 // of records appended
	Put, Storage, CrossZone, Total float64
}

type costData struct {
	Prices                  Prices
	Lines                   []costLine
	Total                   float64
	Topics                  []topicCost
	PutSec, GetSec, InBytes float64
	StoredBytes             int64
	Warm                    bool
	Error                   string
	// Agents of TotalAgents live agents are in the request rates.
	Agents, TotalAgents int
}

func (c *Console) cost(w http.ResponseWriter, r *http.Request) {
	prices, errs := parsePrices(r.URL.Query())
	ctx, cancel := c.ctx(r)
	defer cancel()
	s := c.samples
	// The bucket's rates are the cluster's: this agent's and those of the
	// other agents that answered.
	rates := c.clusterBucketRates(ctx, BucketTotals{
		Puts: s.rate("floe_objstore_requests_total", "op=put"), Gets: s.rate("floe_objstore_requests_total", "op=get"),
		AppendedBytes: s.rate("floe_segment_bytes_sum"),
	})
	d := costData{Prices: prices, Warm: s.warm(),
		PutSec: rates.Puts, GetSec: rates.Gets, InBytes: rates.AppendedBytes,
		Agents: rates.Agents, TotalAgents: rates.Total,
	}
	st, err := jobs.ReadStatus(ctx, c.opts.Store)
	if err != nil {
		c.log.Warn("console: cost status", "err", err)
		d.Error = "the metadata store did not answer"
	}
	d.StoredBytes = st.Objects.ReferencedBytes + st.Objects.UnreferencedBytes
	put := d.PutSec * secondsInDay * prices.PutPer1000 / 1000
	get := d.GetSec * secondsInDay * prices.GetPer1000 / 1000
	storage := float64(d.StoredBytes) / gib * prices.StorageGiBMonth / daysInMonth
	cross := d.InBytes * secondsInDay / gib * prices.CrossZoneShare * prices.CrossZoneGiB
	d.Lines = []costLine{
		{"PUT requests", put, fmt.Sprintf("%.3f PUT/s × 86,400 s × $%g/1000", d.PutSec, prices.PutPer1000)},
		{"GET requests", get, fmt.Sprintf("%.3f GET/s × 86,400 s × $%g/1000", d.GetSec, prices.GetPer1000)},
		{"Storage", storage, fmt.Sprintf("%s in the bucket × $%g/GiB-month ÷ %.2f days", humanBytes(d.StoredBytes), prices.StorageGiBMonth, daysInMonth)},
		{"Cross-zone transfer", cross, fmt.Sprintf("%s/s produced × 86,400 s × %.0f%% crossing × $%g/GiB", humanBytes(int64(d.InBytes)), prices.CrossZoneShare*100, prices.CrossZoneGiB)},
	}
	d.Total = put + get + storage + cross
	// By topic: storage is the topic's own; PUTs and the transfer are
	// shared by the topics in each object, so they are split by the
	// topics' shares of the records appended; GETs are not attributed.
	topicRates := s.topicRates()
	totalRate := 0.0
	for _, v := range topicRates {
		totalRate += v
	}
	for _, t := range st.Topics {
		tc := topicCost{Topic: t.Name, Bytes: t.Bytes}
		if totalRate > 0 {
			tc.Share = topicRates[t.Name] / totalRate
		}
		tc.Put, tc.CrossZone = put*tc.Share, cross*tc.Share
		tc.Storage = float64(t.Bytes) / gib * prices.StorageGiBMonth / daysInMonth
		tc.Total = tc.Put + tc.Storage + tc.CrossZone
		d.Topics = append(d.Topics, tc)
	}
	sort.Slice(d.Topics, func(i, j int) bool { return d.Topics[i].Total > d.Topics[j].Total })
	c.render(w, r, "cost", page{Title: "Cost", Nav: "cost", Refresh: true, Errors: errs, Data: d})
}
