package checker

import (
	"fmt"
	"slices"

	"github.com/floe-io/floe/internal/history"
)

// Share-group anomalies (KIP-932; CheckShare). A share group hands each
// record to one member at a time; a record comes back (is delivered
// again, with the next delivery count) only when its member released it,
// its lock expired, or the agent leading its share partition changed.
const (
	// ShareRedeliveredAfterAck: a record was delivered by a poll that
	// began after an accept or reject of it had been confirmed.
	ShareRedeliveredAfterAck Kind = "share-redelivered-after-ack"
	// ShareDeliveryCount: a record was delivered with a delivery count
	// outside 1..share.delivery.count.limit.
	ShareDeliveryCount Kind = "share-delivery-count"
	// ShareCountRepeated: a record was delivered twice with one delivery
	// count, or by a poll that began after another delivery of it had
	// completed with a count not below it: one delivery handed out twice
	// (two agents both took themselves for the share partition's leader),
	// or a delivery count that went back (a delivery not stored).
	ShareCountRepeated Kind = "share-count-repeated"
	// ShareUndelivered: a value whose send was acknowledged was never
	// delivered, though the history's share read completed (a Drain ok).
	ShareUndelivered Kind = "share-undelivered"
	// ShareRedelivered (a note): a record delivered more than once, as a
	// release, a lock expiry or a change of leader allows.
	ShareRedelivered Kind = "share-redelivered"
)

type shareDelivery struct {
	rec       history.Record
	inv, comp *history.Op
}

// CheckShare examines the history of a share group's consumers: sends
// (history.Send), their polls (history.SharePoll, records with delivery
// counts) and acknowledgements (history.ShareAck), and a history.Drain
// that completes ok when the workload read everything. Records are
// known by value (each sent once). limit is share.delivery.count.limit.
// It proves: no record is delivered after its accept or reject was
// confirmed; delivery counts stay within 1..limit and grow with every
// delivery (none is handed out twice); with a completed read, every
// acknowledged send was delivered. Records delivered more than once are
// notes.
func CheckShare(ops []history.Op, limit int) Result {
	s := &state{ops: ops}
	s.res.Anomalies, s.res.Notes = []Anomaly{}, []Anomaly{}
	s.res.AnomaliesByKind, s.res.NotesByKind = map[Kind]int{}, map[Kind]int{}
	s.res.Unchecked = map[Kind]string{}
	s.pair()

	sends := map[string]*pair{}
	deliveries := map[string][]shareDelivery{}
	confirmed := map[string]*pair{} // value → first confirmed accept or reject
	for i := range s.pairs {
		p := &s.pairs[i]
		switch p.inv.F {
		case history.Send:
			for _, r := range p.inv.Records {
				if prev, ok := sends[r.Value]; ok {
					s.report(Anomaly{Kind: MalformedHistory, Offset: -1, Value: r.Value, Detail: "value sent twice",
						Lines: []int{prev.inv.Line(), p.inv.Line()}})
					continue
				}
				sends[r.Value] = p
				s.res.Sent++
				switch p.status() {
				case history.OK:
					s.res.Acknowledged++
				case history.Fail:
					s.res.Failed++
				default:
					s.res.Indeterminate++
				}
			}
		case history.SharePoll:
			if p.comp == nil || p.comp.Type != history.OK {
				continue
			}
			for _, r := range p.comp.Records {
				deliveries[r.Value] = append(deliveries[r.Value], shareDelivery{r, p.inv, p.comp})
			}
		case history.ShareAck:
			if p.comp == nil || p.comp.Type != history.OK || p.inv.Ack != history.AckAccept && p.inv.Ack != history.AckReject {
				continue
			}
			for _, r := range p.comp.Records {
				if c, ok := confirmed[r.Value]; !ok || p.comp.Index < c.comp.Index {
					confirmed[r.Value] = p
				}
			}
		case history.Drain:
			if p.comp != nil && p.comp.Type == history.OK {
				s.res.FinalRead = true
			}
		}
	}
	s.res.Read = len(deliveries)

	for _, v := range sortedKeys(deliveries) {
		ds := deliveries[v]
		where := func(d shareDelivery) Anomaly {
			return Anomaly{Partition: d.rec.TP().String(), Offset: d.rec.Offset, Value: v}
		}
		if send, ok := sends[v]; !ok {
			a := where(ds[0])
			a.Kind, a.Detail, a.Lines = UnexpectedValue, "delivered, never sent", []int{ds[0].comp.Line()}
			s.report(a)
		} else if send.status() == history.Fail {
			a := where(ds[0])
			a.Kind, a.Detail, a.Lines = FailedAppeared, "delivered, its send failed", []int{send.comp.Line(), ds[0].comp.Line()}
			s.report(a)
		}
		if len(ds) > 1 {
			lines := []int{}
			for _, d := range ds {
				lines = append(lines, d.comp.Line())
			}
			a := where(ds[0])
			a.Kind, a.Detail, a.Lines = ShareRedelivered, fmt.Sprintf("delivered %d times", len(ds)), lines
			s.report(a)
		}
		for i, d := range ds {
			if d.rec.DeliveryCount < 1 || int(d.rec.DeliveryCount) > limit {
				a := where(d)
				a.Kind, a.Lines = ShareDeliveryCount, []int{d.comp.Line()}
				a.Detail = fmt.Sprintf("delivery count %d, outside 1..%d", d.rec.DeliveryCount, limit)
				s.report(a)
			}
			if c, ok := confirmed[v]; ok && c.comp.Index < d.inv.Index {
				a := where(d)
				a.Kind, a.Lines = ShareRedeliveredAfterAck, []int{c.inv.Line(), c.comp.Line(), d.inv.Line(), d.comp.Line()}
				a.Detail = fmt.Sprintf("delivered (count %d) by a poll that began after its %s was confirmed", d.rec.DeliveryCount, c.inv.Ack)
				s.report(a)
			}
			for _, e := range ds[:i] {
				before, after := e, d
				if d.comp.Index < e.inv.Index {
					before, after = d, e
				}
				switch {
				case e.rec.DeliveryCount == d.rec.DeliveryCount:
				case after.inv.Index > before.comp.Index && after.rec.DeliveryCount < before.rec.DeliveryCount:
				default:
					continue
				}
				a := where(d)
				a.Kind, a.Lines = ShareCountRepeated, []int{e.inv.Line(), e.comp.Line(), d.inv.Line(), d.comp.Line()}
				a.Detail = fmt.Sprintf("delivered with count %d, and with count %d by a poll that %s", before.rec.DeliveryCount,
					after.rec.DeliveryCount, map[bool]string{true: "began after", false: "overlapped"}[after.inv.Index > before.comp.Index])
				s.report(a)
			}
		}
	}
	if s.res.FinalRead {
		for _, v := range sortedKeys(sends) {
			if p := sends[v]; p.status() == history.OK && len(deliveries[v]) == 0 {
				s.report(Anomaly{Kind: ShareUndelivered, Offset: -1, Value: v, Detail: "acknowledged send never delivered",
					Lines: []int{p.inv.Line(), p.comp.Line()}})
			}
		}
	} else {
		s.res.Unchecked[ShareUndelivered] = "no completed share read (a Drain ok)"
	}
	slices.SortStableFunc(s.res.Anomalies, byFirstLine)
	slices.SortStableFunc(s.res.Notes, byFirstLine)
	s.res.Valid = len(s.res.Anomalies) == 0
	return s.res
}
