package bench

import "time"

// Pacer is a fixed-rate send schedule that does not suffer from
// coordinated omission: record i is due at start + i/rate whatever happened
// to the records before it, and its latency is measured from that intended
// time, not from when the sender got round to it. A sender that stalls for
// a second (a full client buffer, a slow broker) therefore finds a second's
// worth of records due at once, sends them back to back, and every one of
// them carries the stall in its latency, as a real client's callers would
// have felt it. A closed-loop measurement would record one slow request and
// silently skip the thousand that should have been sent during it.
//
// A Pacer is used by one goroutine.
type Pacer struct {
	start    time.Time
	interval time.Duration // 0: no schedule, every record is due when asked
	next     int64         // index of the first record not yet handed out
}

// NewPacer returns a schedule of perSecond records per second starting at
// start. perSecond ≤ 0 means no schedule (as fast as possible): a record is
// due the moment it is asked for, and its intended time is that moment.
func NewPacer(start time.Time, perSecond float64) *Pacer {
	p := &Pacer{start: start}
	if perSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / perSecond)
		if p.interval <= 0 {
			p.interval = 1
		}
	}
	return p
}

// Paced reports whether the pacer follows a fixed-rate schedule.
func (p *Pacer) Paced() bool { return p.interval > 0 }

// Intended is record i's intended send time on the schedule.
func (p *Pacer) Intended(i int64) time.Time {
	return p.start.Add(time.Duration(i) * p.interval)
}

// Due hands out the records that are due at now and not handed out yet:
// indexes first .. first+n-1. Without a schedule it hands out one record.
func (p *Pacer) Due(now time.Time) (first, n int64) {
	first = p.next
	if p.interval == 0 {
		p.next++
		return first, 1
	}
	if now.Before(p.start) {
		return first, 0
	}
	last := int64(now.Sub(p.start) / p.interval) // the newest due index
	if last < first {
		return first, 0
	}
	p.next = last + 1
	return first, p.next - first
}

// Wait is how long to sleep from now until the next record is due
// (0 if one is due already or there is no schedule).
func (p *Pacer) Wait(now time.Time) time.Duration {
	if p.interval == 0 {
		return 0
	}
	return max(p.Intended(p.next).Sub(now), 0)
}

// Missed counts the records due before end that were never handed out,
// and calls fn with each one's intended time. A run that ends while its
// sender is behind schedule uses it to count those records as waiting
// since their intended time: leaving them out would hide the stall.
func (p *Pacer) Missed(end time.Time, fn func(intended time.Time)) int64 {
	if p.interval == 0 || !end.After(p.start) {
		return 0
	}
	last := int64((end.Sub(p.start) - 1) / p.interval) // due strictly before end
	var n int64
	for i := p.next; i <= last; i++ {
		fn(p.Intended(i))
		n++
	}
	p.next = max(p.next, last+1)
	return n
}
