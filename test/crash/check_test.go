package crash

// Checking the log a restarted playground serves, and the bucket, read
// with `floe inspect` while the playground is stopped.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumedLog is every partition's records by offset.
type consumedLog map[tp][]string

// verify reads every partition from 0 to its high watermark and checks it
// against the ledger: offsets contiguous, every value well formed, in its
// own partition, once, in each producer's order, and every acknowledged
// record at the offset its acknowledgement reported. It reads as the
// consumer user if pg is secure.
func verify(t *testing.T, pg *playground, led *ledger, when string) consumedLog {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	admCl, err := kgo.NewClient(pg.clientOpts(consumerUser)...)
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("%s: list end offsets: %v", when, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("%s: list start offsets: %v", when, err)
	}

	hwm := map[tp]int64{}
	assign := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		hwm[tp{o.Topic, o.Partition}] = o.Offset
		if assign[o.Topic] == nil {
			assign[o.Topic] = map[int32]kgo.Offset{}
		}
		assign[o.Topic][o.Partition] = kgo.NewOffset().At(0)
	})
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("%s: %s/%d log start offset %d, want 0", when, o.Topic, o.Partition, o.Offset)
		}
	})
	if len(hwm) != len(topics)*int(partitions) {
		t.Fatalf("%s: end offsets for %d partitions, want %d", when, len(hwm), len(topics)*int(partitions))
	}

	cons, err := kgo.NewClient(append(pg.clientOpts(consumerUser), kgo.ConsumePartitions(assign), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	log := consumedLog{}
	remaining := 0
	for x, h := range hwm {
		log[x] = make([]string, 0, h)
		if h > 0 {
			remaining++
		}
	}
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 30 {
			problems = append(problems, "…")
		}
	}
	for remaining > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			for x, h := range hwm {
				if int64(len(log[x])) < h {
					report("%s: read %d of %d records before the timeout", x, len(log[x]), h)
				}
			}
			break
		}
		fs.EachError(func(topic string, p int32, err error) {
			report("fetch %s/%d: %v", topic, p, err)
		})
		if len(problems) > 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			x := tp{r.Topic, r.Partition}
			next := int64(len(log[x]))
			if next >= hwm[x] {
				report("%s: record at offset %d at or past the high watermark %d", x, r.Offset, hwm[x])
				return
			}
			if r.Offset != next {
				report("%s: offset %d follows %d (offsets must be contiguous from 0)", x, r.Offset, next-1)
			}
			log[x] = append(log[x], string(r.Value))
			if int64(len(log[x])) == hwm[x] {
				remaining--
			}
		})
	}
	if len(problems) == 0 {
		problems = checkLog(log, led)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", when, p)
	}

	total, acked, unacked := 0, 0, 0
	led.mu.Lock()
	for x, vs := range log {
		total += len(vs)
		for _, v := range vs {
			if a, ok := led.acked[v]; ok && a.tp == x {
				acked++
			} else {
				unacked++
			}
		}
	}
	ackedAll := len(led.acked)
	led.mu.Unlock()
	t.Logf("%s: read %d records in %v: %d acknowledged (of %d acknowledged in all: lost %d), %d never acknowledged",
		when, total, time.Since(start).Round(time.Millisecond), acked, ackedAll, ackedAll-acked, unacked)
	return log
}

// checkLog compares a fully read log with the ledger.
func checkLog(log consumedLog, led *ledger) []string {
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, fmt.Sprintf(format, args...))
		} else if len(problems) == 30 {
			problems = append(problems, "…")
		}
	}
	type stream struct {
		round, producer int
		x               tp
	}
	lastSeq := map[stream]int64{}
	seen := map[string]int64{}
	for _, x := range sortedTPs(log) {
		for off, v := range log[x] {
			p, err := parseValue(v)
			if err != nil {
				report("%s offset %d: corrupt record: %v", x, off, err)
				continue
			}
			if (tp{p.topic, p.partition}) != x {
				report("%s offset %d: record %q belongs to %s/%d", x, off, v, p.topic, p.partition)
			}
			if first, dup := seen[v]; dup {
				report("%s: %q at offsets %d and %d (duplicate)", x, v, first, off)
				continue
			}
			seen[v] = int64(off)
			s := stream{p.round, p.producer, x}
			if last, ok := lastSeq[s]; ok && p.seq <= last {
				report("%s offset %d: %q after seq %d of the same producer (out of order)", x, off, v, last)
			}
			lastSeq[s] = p.seq
		}
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	lost := 0
	for v, a := range led.acked {
		vs := log[a.tp]
		switch {
		case a.offset < 0 || a.offset >= int64(len(vs)):
			lost++
			report("LOST: %q acknowledged at %s offset %d, beyond the high watermark %d (found at offset %d)", v, a.tp, a.offset, len(vs), foundAt(seen, v))
		case vs[a.offset] != v:
			lost++
			report("LOST: %q acknowledged at %s offset %d, which holds %q (found at offset %d)", v, a.tp, a.offset, vs[a.offset], foundAt(seen, v))
		}
	}
	if lost > 0 {
		report("%d of %d acknowledged records are not where their acknowledgement said", lost, len(led.acked))
	}
	for e := range led.errKinds {
		if strings.HasPrefix(e, "BUG:") {
			report("%s", e)
		}
	}
	return problems
}

func foundAt(seen map[string]int64, v string) int64 {
	if off, ok := seen[v]; ok {
		return off
	}
	return -1
}

func sortedTPs(log consumedLog) []tp {
	xs := make([]tp, 0, len(log))
	for x := range log {
		xs = append(xs, x)
	}
	sort.Slice(xs, func(i, j int) bool {
		if xs[i].topic != xs[j].topic {
			return xs[i].topic < xs[j].topic
		}
		return xs[i].partition < xs[j].partition
	})
	return xs
}

type orphanList struct {
	Objects    int `json:"objects"`
	Referenced int `json:"referenced"`
	Orphans    []struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
	} `json:"orphans"`
}

type segmentDump struct {
	Object     string `json:"object"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Batches   []struct {
			Committed   *bool  `json:"committed"`
			BaseOffset  *int64 `json:"base_offset"`
			LastOffset  *int64 `json:"last_offset"`
			RecordCount int64  `json:"record_count"`
			Records     []struct {
				Value *struct {
					Text *string `json:"text"`
				} `json:"value"`
			} `json:"records"`
		} `json:"batches"`
	} `json:"partitions"`
}

// inspectSegments decodes objects with `floe inspect segment`, two at a
// time; withRecords says which to decode down to the records.
func inspectSegments(dataDir string, keys []string, withRecords func(key string) bool) (map[string]segmentDump, error) {
	type result struct {
		key  string
		dump segmentDump
		err  error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				args := []string{"inspect", "segment", "--data-dir", dataDir, key}
				if withRecords(key) {
					args = append(args, "--records")
				}
				r := result{key: key}
				var out []byte
				if out, r.err = runFloe(args...); r.err == nil {
					if err := json.Unmarshal(out, &r.dump); err != nil {
						r.err = fmt.Errorf("inspect segment %s: %w", key, err)
					}
				}
				results <- r
			}
		}()
	}
	go func() {
		for _, k := range keys {
			work <- k
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	dumps := map[string]segmentDump{}
	var errs []error
	for r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		dumps[r.key] = r.dump
	}
	return dumps, errors.Join(errs...)
}

func inspectOrphans(t *testing.T, dataDir string) orphanList {
	t.Helper()
	out, err := runFloe("inspect", "orphans", "--data-dir", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	var list orphanList
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("inspect orphans: %v", err)
	}
	return list
}

func runFloe(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, floeBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("floe %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// checkObjects decodes every object in the stopped playground's bucket.
// The committed batches of the referenced objects must tile every
// partition's served log exactly, from 0 to the high watermark, with no
// overlap; so every served offset comes from a referenced object. An
// orphan must decode and hold no committed batch, and each of its records
// is either in the log (a retried batch whose first attempt was
// committed) or was never acknowledged.
//
// It returns how many stored batches were duplicates of earlier commits:
// batches whose producer was not told they were committed and retried.
func checkObjects(t *testing.T, dataDir string, led *ledger, log consumedLog) (duplicates int) {
	t.Helper()
	start := time.Now()
	orphans := inspectOrphans(t, dataDir)
	orphaned := map[string]bool{}
	for _, o := range orphans.Orphans {
		orphaned[o.Key] = true
	}
	entries, err := os.ReadDir(filepath.Join(dataDir, "bucket", "segments"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != orphans.Objects {
		t.Errorf("%d files in the bucket, inspect orphans counted %d objects", len(entries), orphans.Objects)
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = "segments/" + e.Name()
	}
	dumps, err := inspectSegments(dataDir, keys, func(key string) bool { return orphaned[key] })
	if err != nil {
		t.Fatalf("decode objects: %v", err)
	}

	inLog := map[string]bool{}
	for _, vs := range log {
		for _, v := range vs {
			inLog[v] = true
		}
	}
	type span struct {
		base, last int64
		object     string
	}
	spans := map[tp][]span{}
	orphanRecords, orphanInLog, droppedBatches, orphanBatchesInLog := 0, 0, 0, 0
	shown := 0 // orphan batches logged
	led.mu.Lock()
	defer led.mu.Unlock()
	for _, key := range keys {
		for _, p := range dumps[key].Partitions {
			x := tp{p.Topic, p.Partition}
			for _, b := range p.Batches {
				committed := b.Committed != nil && *b.Committed
				switch {
				case orphaned[key] && committed:
					t.Errorf("orphan %s has a committed batch in %s", key, x)
				case committed && (b.BaseOffset == nil || b.LastOffset == nil):
					t.Errorf("%s: committed batch in %s without offsets", key, x)
				case committed:
					if n := *b.LastOffset - *b.BaseOffset + 1; n != b.RecordCount {
						t.Errorf("%s: batch at %s offsets %d..%d holds %d records", key, x, *b.BaseOffset, *b.LastOffset, b.RecordCount)
					}
					spans[x] = append(spans[x], span{*b.BaseOffset, *b.LastOffset, key})
				case !orphaned[key]:
					droppedBatches++ // a duplicate the sequence checks dropped
				}
				if !orphaned[key] {
					continue
				}
				batchInLog := false
				for _, r := range b.Records {
					if r.Value == nil || r.Value.Text == nil {
						t.Errorf("orphan %s %s: record without a text value", key, x)
						continue
					}
					v := *r.Value.Text
					if _, err := parseValue(v); err != nil {
						t.Errorf("orphan %s %s: corrupt record: %v", key, x, err)
					}
					orphanRecords++
					if inLog[v] {
						orphanInLog++
						batchInLog = true
						continue
					}
					if a, ok := led.acked[v]; ok {
						t.Errorf("%q is only in orphan %s but was acknowledged at %s offset %d", v, key, a.tp, a.offset)
					}
				}
				if batchInLog {
					orphanBatchesInLog++
				}
				if shown++; shown <= 10 && len(b.Records) > 0 && b.Records[0].Value != nil && b.Records[0].Value.Text != nil {
					t.Logf("orphan %s: batch of %d records in %s, first %q (in the log: %v)",
						key, len(b.Records), x, *b.Records[0].Value.Text, batchInLog)
				}
			}
		}
	}
	for _, x := range sortedTPs(log) {
		ss := spans[x]
		sort.Slice(ss, func(i, j int) bool { return ss[i].base < ss[j].base })
		next := int64(0)
		for _, s := range ss {
			if s.base != next {
				t.Errorf("%s: committed batch %d..%d in %s, expected one starting at %d (gap or overlap)", x, s.base, s.last, s.object, next)
			}
			next = s.last + 1
		}
		if hwm := int64(len(log[x])); next != hwm {
			t.Errorf("%s: committed batches end at %d, the served log at %d", x, next, hwm)
		}
	}
	tmp, _ := os.ReadDir(filepath.Join(dataDir, "bucket", ".tmp"))
	t.Logf("bucket: %d objects, %d referenced, %d orphaned holding %d records (%d of them retried into the log, %d never acknowledged); "+
		"%d duplicate batches dropped inside referenced objects; %d unfinished PUTs in .tmp; checked in %v",
		orphans.Objects, orphans.Referenced, len(orphans.Orphans), orphanRecords, orphanInLog, orphanRecords-orphanInLog,
		droppedBatches, len(tmp), time.Since(start).Round(time.Millisecond))
	return droppedBatches + orphanBatchesInLog
}
