package cluster

// Record values, and the ledger of what every producer was told.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

func (x tp) String() string { return x.topic + "/" + strconv.Itoa(int(x.partition)) }

// A record value is "STREAM#SEQ#" plus padding. A stream is one
// producer's sequence (a franz-go client, one kcat run, one probe); its
// sequence numbers rise in the order the producer sent them, so within a
// partition they must rise in the log too.
func makeValue(stream string, seq int64, size int) []byte {
	v := stream + "#" + strconv.FormatInt(seq, 10) + "#"
	if pad := size - len(v); pad > 0 {
		v += strings.Repeat(string(rune('a'+seq%26)), pad)
	}
	return []byte(v)
}

func parseValue(v string) (stream string, seq int64, err error) {
	stream, rest, ok1 := strings.Cut(v, "#")
	num, pad, ok2 := strings.Cut(rest, "#")
	if !ok1 || !ok2 || stream == "" {
		return "", 0, fmt.Errorf("value %.40q is not one the producers wrote", v)
	}
	seq, err = strconv.ParseInt(num, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("value %.40q: bad sequence number", v)
	}
	if strings.Trim(pad, string(rune('a'+seq%26))) != "" {
		return "", 0, fmt.Errorf("value %.40q: corrupt padding", v)
	}
	return stream, seq, nil
}

// ack is where an acknowledgement said a record went.
type ack struct {
	tp     tp
	offset int64
}

// ledger records every record sent and how its produce ended.
type ledger struct {
	mu       sync.Mutex
	sent     int
	acked    map[string]ack // value → acknowledgement
	failed   int
	errKinds map[string]int // produce error → count
	bugs     []string       // impossible acknowledgements
	lossSeen map[string]int // franz-go data-loss reports by partition
	ackedAt  map[tp]map[int64]string
}

func newLedger() *ledger {
	return &ledger{
		acked: map[string]ack{}, errKinds: map[string]int{},
		lossSeen: map[string]int{}, ackedAt: map[tp]map[int64]string{},
	}
}

func (l *ledger) send(n int) {
	l.mu.Lock()
	l.sent += n
	l.mu.Unlock()
}

// ack records that value was acknowledged at x, offset.
func (l *ledger) ack(value string, x tp, offset int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.acked[value]; ok {
		l.bugs = append(l.bugs, fmt.Sprintf("%.40q acknowledged twice: at %s offset %d and %s offset %d", value, prev.tp, prev.offset, x, offset))
	}
	l.acked[value] = ack{tp: x, offset: offset}
	if l.ackedAt[x] == nil {
		l.ackedAt[x] = map[int64]string{}
	}
	if prev, ok := l.ackedAt[x][offset]; ok && prev != value {
		l.bugs = append(l.bugs, fmt.Sprintf("%s offset %d acknowledged for %.40q and %.40q", x, offset, prev, value))
	}
	l.ackedAt[x][offset] = value
}

func (l *ledger) fail(err error) {
	l.mu.Lock()
	l.failed++
	l.errKinds[err.Error()]++
	l.mu.Unlock()
}

func (l *ledger) dataLoss(topic string, partition int32) {
	l.mu.Lock()
	l.lossSeen[tp{topic, partition}.String()]++
	l.mu.Unlock()
}

func (l *ledger) counts() (sent, acked, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, len(l.acked), l.failed
}

func (l *ledger) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("producers: %d records sent, %d acknowledged, %d failed", l.sent, len(l.acked), l.failed)
	for e, n := range l.errKinds {
		t.Logf("  produce error %d×: %s", n, e)
	}
	for _, b := range l.bugs {
		t.Errorf("BUG: %s", b)
	}
	if len(l.lossSeen) > 0 {
		t.Errorf("franz-go detected data loss (OUT_OF_ORDER_SEQUENCE after acknowledged batches): %v", l.lossSeen)
	}
}

// consumedLog is every partition's records by offset, from 0.
type consumedLog map[tp][]string

// checkLog compares a log read from offset 0 to the high watermarks with
// the ledger: every value well formed and in the log once, every stream
// in order within each partition, and every acknowledged record at the
// offset its acknowledgement named.
func checkLog(log consumedLog, led *ledger) []string {
	var p problems
	type stream struct {
		name string
		x    tp
	}
	last := map[stream]int64{}
	seen := map[string]tp{}
	for _, x := range sortedTPs(log) {
		for off, v := range log[x] {
			name, seq, err := parseValue(v)
			if err != nil {
				p.add("%s offset %d: %v", x, off, err)
				continue
			}
			if prev, dup := seen[v]; dup {
				p.add("%s offset %d: %.40q is in the log twice (also in %s)", x, off, v, prev)
				continue
			}
			seen[v] = x
			s := stream{name, x}
			if l, ok := last[s]; ok && seq <= l {
				p.add("%s offset %d: %.40q after sequence %d of the same producer (out of order)", x, off, v, l)
			}
			last[s] = seq
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
			p.add("LOST: %.40q acknowledged at %s offset %d, beyond the high watermark %d", v, a.tp, a.offset, len(vs))
		case vs[a.offset] != v:
			lost++
			p.add("LOST: %.40q acknowledged at %s offset %d, which holds %.40q", v, a.tp, a.offset, vs[a.offset])
		}
	}
	if lost > 0 {
		p.add("%d of %d acknowledged records are not where their acknowledgement said", lost, len(led.acked))
	}
	return p.list
}

// problems collects at most 30 findings.
type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	switch {
	case len(p.list) < 30:
		p.list = append(p.list, fmt.Sprintf(format, args...))
	case len(p.list) == 30:
		p.list = append(p.list, "…")
	}
}

func sortedTPs[V any](m map[tp]V) []tp {
	xs := make([]tp, 0, len(m))
	for x := range m {
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
