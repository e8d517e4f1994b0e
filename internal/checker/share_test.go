package checker_test

import (
	"fmt"
	"testing"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
)

// delivered is a record a share poll delivered: offset, value, count.
type delivered struct {
	off   int64
	val   string
	count int16
}

// sharePoll writes a share poll of proc that delivered ds (partition 0);
// it returns the completion's line.
func (b *hb) sharePoll(proc int, ds ...delivered) int {
	b.add(history.Op{Type: history.Invoke, F: history.SharePoll, Process: proc, Group: "q"})
	c := history.Op{Type: history.OK, F: history.SharePoll, Process: proc, Group: "q"}
	for _, d := range ds {
		c.Records = append(c.Records, history.Record{Topic: topic, Partition: 0, Offset: d.off, Value: d.val, DeliveryCount: d.count})
	}
	return b.add(c)
}

// shareAck writes proc's acknowledgement of values with ack, ending
// status; confirmed (on an ok end) are the values the cluster confirmed.
func (b *hb) shareAck(proc int, ack string, status history.Type, values []string, confirmed ...string) int {
	b.add(history.Op{Type: history.Invoke, F: history.ShareAck, Process: proc, Group: "q", Ack: ack, Records: recs(0, nil, values...)})
	c := history.Op{Type: status, F: history.ShareAck, Process: proc, Group: "q"}
	if status == history.OK {
		c.Records = recs(0, nil, confirmed...)
	}
	return b.add(c)
}

func (b *hb) shareDrain(proc int) int {
	b.add(history.Op{Type: history.Invoke, F: history.Drain, Process: proc, Group: "q"})
	return b.add(history.Op{Type: history.OK, F: history.Drain, Process: proc, Group: "q"})
}

func kinds(r checker.Result) string {
	s := ""
	for _, a := range r.Anomalies {
		s += fmt.Sprintf("[%s %s %v]", a.Kind, a.Value, a.Lines)
	}
	return s
}

func TestCheckShare(t *testing.T) {
	const limit = 3
	for _, c := range []struct {
		name  string
		build func(b *hb)
		want  string // anomalies: kind, value, lines
		notes int
	}{
		{"valid: delivered, accepted, the read completed", func(b *hb) {
			b.send(0, history.OK, []int64{0, 1}, "a", "b")
			b.sharePoll(1, delivered{0, "a", 1}, delivered{1, "b", 1})
			b.shareAck(1, history.AckAccept, history.OK, []string{"a", "b"}, "a", "b")
			b.shareDrain(1)
		}, "", 0},
		{"released and delivered again with the next count: a note", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.sharePoll(1, delivered{0, "a", 1})
			b.shareAck(1, history.AckRelease, history.OK, []string{"a"}, "a")
			b.sharePoll(2, delivered{0, "a", 2})
			b.shareAck(2, history.AckAccept, history.OK, []string{"a"}, "a")
		}, "", 1},
		{"an unconfirmed accept does not forbid a delivery", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.sharePoll(1, delivered{0, "a", 1})
			b.shareAck(1, history.AckAccept, history.Info, []string{"a"})
			b.shareAck(1, history.AckAccept, history.OK, []string{"a"}) // confirmed none
			b.sharePoll(2, delivered{0, "a", 2})
		}, "", 1},
		{"delivered after its accept was confirmed", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.sharePoll(1, delivered{0, "a", 1})
			b.shareAck(1, history.AckAccept, history.OK, []string{"a"}, "a") // lines 5, 6
			b.sharePoll(2, delivered{0, "a", 2})                             // lines 7, 8
		}, "[share-redelivered-after-ack a [5 6 7 8]]", 1},
		{"one delivery handed out twice (two leaders)", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.sharePoll(1, delivered{0, "a", 1}) // lines 3, 4
			b.sharePoll(2, delivered{0, "a", 1}) // lines 5, 6
		}, "[share-count-repeated a [3 4 5 6]]", 1},
		{"a count that went back", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.sharePoll(1, delivered{0, "a", 2})
			b.sharePoll(2, delivered{0, "a", 1})
		}, "[share-count-repeated a [3 4 5 6]]", 1},
		{"counts outside 1..limit", func(b *hb) {
			b.send(0, history.OK, []int64{0, 1}, "a", "b")
			b.sharePoll(1, delivered{0, "a", 0}, delivered{1, "b", limit + 1})
		}, "[share-delivery-count a [4]][share-delivery-count b [4]]", 0},
		{"never delivered though the read completed", func(b *hb) {
			b.send(0, history.OK, []int64{0}, "a")
			b.send(0, history.Info, nil, "b")
			b.shareDrain(1)
		}, "[share-undelivered a [1 2]]", 0},
		{"delivered, never sent", func(b *hb) {
			b.sharePoll(1, delivered{0, "z", 1})
		}, "[unexpected-value z [2]]", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &hb{}
			c.build(b)
			r := checker.CheckShare(b.ops, limit)
			if got := kinds(r); got != c.want || len(r.Notes) != c.notes || r.Valid != (c.want == "") {
				t.Fatalf("anomalies %s (valid %v), %d notes; want %q, %d notes", got, r.Valid, len(r.Notes), c.want, c.notes)
			}
		})
	}
}
