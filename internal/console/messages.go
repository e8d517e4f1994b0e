package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// browseQuery is the messages form of a topic page, read from the query
// string (so that a view is a bookmarkable URL).
type browseQuery struct {
	Partition int32
	From      string // "newest", "oldest", "offset", "timestamp"
	Offset    int64
	Timestamp string // RFC 3339 or Unix milliseconds, as typed
	Limit     int
	Format    string // "text", "json", "hex"
	Search    string
	In        string // "any", "key", "value"
	Scan      int
}

type header struct{ Key, Value string }

type messageRow struct {
	Offset    int64
	Timestamp time.Time
	Key       string
	Value     string
	KeyNull   bool
	ValueNull bool
	Headers   []header
	Size      int
}

type messagesData struct {
	Q         browseQuery
	Rows      []messageRow
	Scanned   int
	Stopped   string // why a scan stopped early
	Error     string
	Searching bool
}

func parseBrowse(q url.Values, partitions int) (browseQuery, error) {
	b := browseQuery{From: "newest", Limit: 20, Format: "text", In: "any", Scan: 10_000}
	var errs []error
	p, err := intParam(q.Get("p"), 0, 0, int64(max(partitions-1, 0)))
	if err != nil {
		errs = append(errs, fmt.Errorf("partition: %w", err))
	}
	b.Partition = int32(p)
	if f := q.Get("from"); f != "" {
		if !contains([]string{"newest", "oldest", "offset", "timestamp"}, f) {
			errs = append(errs, errors.New("from: newest, oldest, offset or timestamp"))
		} else {
			b.From = f
		}
	}
	if b.Offset, err = intParam(q.Get("offset"), 0, 0, 1<<62); err != nil {
		errs = append(errs, fmt.Errorf("offset: %w", err))
	}
	b.Timestamp = strings.TrimSpace(q.Get("ts"))
	if len(b.Timestamp) > 64 {
		b.Timestamp = ""
		errs = append(errs, errors.New("timestamp: too long"))
	}
	n, err := intParam(q.Get("limit"), 20, 1, maxRecordsShown)
	if err != nil {
		errs = append(errs, fmt.Errorf("limit: %w", err))
	}
	b.Limit = int(n)
	if f := q.Get("format"); f != "" {
		if !contains([]string{"text", "json", "hex"}, f) {
			errs = append(errs, errors.New("format: text, json or hex"))
		} else {
			b.Format = f
		}
	}
	b.Search = q.Get("q")
	if len(b.Search) > 1024 {
		b.Search = ""
		errs = append(errs, errors.New("search: at most 1024 bytes"))
	}
	if in := q.Get("in"); in != "" {
		if !contains([]string{"any", "key", "value"}, in) {
			errs = append(errs, errors.New("search in: any, key or value"))
		} else {
			b.In = in
		}
	}
	s, err := intParam(q.Get("scan"), 10_000, 1, maxScan)
	if err != nil {
		errs = append(errs, fmt.Errorf("scan limit: %w", err))
	}
	b.Scan = int(s)
	return b, errors.Join(errs...)
}

func parseTimestamp(s string) (int64, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q: use RFC 3339 (2026-01-02T15:04:05Z) or Unix milliseconds", s)
}

// browse reads the records the query string asks for.
func (c *Console) browse(r *http.Request, topic string, parts []partitionRow) messagesData {
	q, err := parseBrowse(r.URL.Query(), len(parts))
	d := messagesData{Q: q, Searching: q.Search != ""}
	if err != nil {
		d.Error = err.Error()
		return d
	}
	if len(parts) == 0 {
		return d
	}
	var bounds partitionRow
	for _, p := range parts {
		if p.Partition == q.Partition {
			bounds = p
		}
	}
	if bounds.Err != "" {
		d.Error = bounds.Err
		return d
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	start, end := bounds.Start, bounds.End
	from := start
	switch q.From {
	case "newest":
		from = max(start, end-int64(q.Limit))
		if d.Searching {
			from = max(start, end-int64(q.Scan))
		}
	case "offset":
		from = min(max(q.Offset, start), end)
	case "timestamp":
		ms, err := parseTimestamp(q.Timestamp)
		if err != nil {
			d.Error = err.Error()
			return d
		}
		lo, err := c.admin.ListOffsetsAfterMilli(ctx, ms, topic)
		if err != nil {
			d.Error = "offset for timestamp: " + err.Error()
			return d
		}
		o, ok := lo.Lookup(topic, q.Partition)
		if !ok || o.Err != nil {
			d.Error = fmt.Sprintf("offset for timestamp: %v", o.Err)
			return d
		}
		from = o.Offset
	}
	want := q.Limit
	budget := want
	if d.Searching {
		budget = q.Scan
	}
	rows, scanned, stopped, err := c.read(ctx, topic, q.Partition, from, end, budget, func(rec *kgo.Record) bool {
		return !d.Searching || matches(rec, q.Search, q.In)
	}, want)
	d.Scanned, d.Stopped = scanned, stopped
	if err != nil {
		d.Error = err.Error()
	}
	for _, rec := range rows {
		d.Rows = append(d.Rows, render(rec, q.Format))
	}
	if q.From == "newest" {
		for i, j := 0, len(d.Rows)-1; i < j; i, j = i+1, j-1 {
			d.Rows[i], d.Rows[j] = d.Rows[j], d.Rows[i]
		}
	}
	return d
}

func matches(rec *kgo.Record, s, in string) bool {
	b := []byte(s)
	switch in {
	case "key":
		return bytes.Equal(rec.Key, b) || bytes.Contains(rec.Key, b)
	case "value":
		return bytes.Contains(rec.Value, b)
	}
	return bytes.Contains(rec.Key, b) || bytes.Contains(rec.Value, b)
}

// Fetch bounds: per request, and requests per read.
const (
	fetchBytes    = 1 << 20
	maxFetchCalls = 2000
)

// read fetches records of one partition from offset from up to end,
// looking at no more than budget records, and keeps up to want of those
// keep accepts (the newest ones when more match: the caller asked for the
// window ending at end).
func (c *Console) read(ctx context.Context, topic string, partition int32, from, end int64, budget int, keep func(*kgo.Record) bool, want int) (rows []*kgo.Record, scanned int, stopped string, err error) {
	// The client negotiates Fetch v13+ with Floe (and Kafka 3.1+), which
	// names the topic by ID only: look the ID up (kgo's cached metadata).
	td, err := c.admin.ListTopics(ctx, topic)
	if err != nil {
		return nil, 0, "", fmt.Errorf("topic id: %w", err)
	}
	detail, ok := td[topic]
	if !ok || detail.Err != nil {
		return nil, 0, "", fmt.Errorf("topic id of %s: %v", topic, detail.Err)
	}
	off := from
	for calls := 0; off < end && scanned < budget; calls++ {
		if calls >= maxFetchCalls {
			return rows, scanned, "stopped after " + strconv.Itoa(calls) + " fetches", nil
		}
		if ctx.Err() != nil {
			return rows, scanned, "stopped at the time limit", nil
		}
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, fetchBytes
		req.IsolationLevel = 0
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, detail.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = partition, off, fetchBytes, -1
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, c.client)
		if err != nil {
			return rows, scanned, "", fmt.Errorf("fetch: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return rows, scanned, "", fmt.Errorf("fetch: %w", err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return rows, scanned, "", errors.New("fetch: unexpected response shape")
		}
		fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: off, Topic: topic, Partition: partition},
			&resp.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			return rows, scanned, "", fmt.Errorf("fetch: %w", fp.Err)
		}
		next := off
		for _, rec := range fp.Records {
			if rec.Offset < off || rec.Offset >= end {
				continue
			}
			next = rec.Offset + 1
			scanned++
			if keep(rec) {
				rows = append(rows, rec)
				if len(rows) > want {
					rows = rows[1:]
				}
			}
			if scanned >= budget {
				break
			}
		}
		if next == off {
			// Only control records or an aborted range: step past what
			// the batches covered, or give up.
			if hw := fp.HighWatermark; hw > off && len(resp.Topics[0].Partitions[0].RecordBatches) > 0 {
				next = lastOffsetOf(resp.Topics[0].Partitions[0].RecordBatches, off)
			}
			if next <= off {
				return rows, scanned, "", nil
			}
		}
		off = next
	}
	if scanned >= budget && off < end {
		stopped = fmt.Sprintf("the scan limit (%d records) was reached at offset %d", budget, off)
	}
	return rows, scanned, stopped, nil
}

// lastOffsetOf is one past the last offset the record batches in b
// cover, or off when they cannot be read.
func lastOffsetOf(b []byte, off int64) int64 {
	next := off
	for len(b) >= 61 {
		var rb kmsg.RecordBatch
		size := int(int32(uint32(b[8])<<24|uint32(b[9])<<16|uint32(b[10])<<8|uint32(b[11]))) + 12
		if size < 61 || size > len(b) {
			break
		}
		if err := rb.ReadFrom(b[:size]); err != nil {
			break
		}
		next = max(next, rb.FirstOffset+int64(rb.LastOffsetDelta)+1)
		b = b[size:]
	}
	return next
}

func render(rec *kgo.Record, format string) messageRow {
	row := messageRow{Offset: rec.Offset, Timestamp: rec.Timestamp, KeyNull: rec.Key == nil, ValueNull: rec.Value == nil,
		Size: len(rec.Key) + len(rec.Value)}
	row.Key = show(rec.Key, format)
	row.Value = show(rec.Value, format)
	for _, h := range rec.Headers {
		row.Headers = append(row.Headers, header{Key: clip(h.Key, 256), Value: show(h.Value, "text")})
	}
	return row
}

// maxShown bounds what a page shows of one key or value.
const maxShown = 16 << 10

func show(b []byte, format string) string {
	if b == nil {
		return ""
	}
	switch format {
	case "hex":
		if len(b) > maxShown/2 {
			return hex.Dump(b[:maxShown/2]) + "…"
		}
		return hex.Dump(b)
	case "json":
		var out bytes.Buffer
		if json.Valid(b) && json.Indent(&out, b, "", "  ") == nil {
			return clip(out.String(), maxShown)
		}
	}
	if !utf8.Valid(b) {
		return "(not UTF-8; " + strconv.Itoa(len(b)) + " bytes) " + clip(strings.ToValidUTF8(string(b), "�"), maxShown)
	}
	return clip(string(b), maxShown)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (c *Console) produce(w http.ResponseWriter, r *http.Request) {
	name, ok := topicPath(r)
	if !ok {
		http.Error(w, "invalid topic name", http.StatusBadRequest)
		return
	}
	back := "/topics/" + name + "#produce"
	f := r.PostForm
	p, err := intParam(f.Get("partition"), 0, 0, 1<<31-1)
	if err != nil {
		c.redirect(w, r, back, false, "partition: "+err.Error())
		return
	}
	rec := &kgo.Record{Topic: name, Partition: int32(p), Value: []byte(f.Get("value"))}
	if k := f.Get("key"); k != "" {
		rec.Key = []byte(k)
	}
	for i, line := range strings.Split(f.Get("headers"), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || i >= 64 {
			c.redirect(w, r, back, false, "headers: one KEY=VALUE a line, at most 64")
			return
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if err := c.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		c.redirect(w, r, back, false, "produce: "+err.Error())
		return
	}
	c.redirect(w, r, fmt.Sprintf("/topics/%s?p=%d#messages", name, rec.Partition), true,
		fmt.Sprintf("produced a record at partition %d offset %d", rec.Partition, rec.Offset))
}
