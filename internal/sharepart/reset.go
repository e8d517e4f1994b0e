package sharepart

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ResetKind says where a share partition with no history starts.
type ResetKind uint8

const (
	ResetLatest ResetKind = iota
	ResetEarliest
	ResetByDuration
)

// Reset is a parsed share.auto.offset.reset.
type Reset struct {
	Kind ResetKind
	// Duration is how far back from now ResetByDuration starts.
	Duration time.Duration
}

// ParseReset parses share.auto.offset.reset: "latest" (the default, also
// for ""), "earliest", or "by_duration:" and an ISO 8601 duration
// PnDTnHnMn.nS that is not negative.
func ParseReset(s string) (Reset, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "latest":
		return Reset{Kind: ResetLatest}, nil
	case "earliest":
		return Reset{Kind: ResetEarliest}, nil
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "by_duration:")
	if !ok {
		return Reset{}, fmt.Errorf("share.auto.offset.reset %q: want latest, earliest or by_duration:PnDTnHnMn.nS", s)
	}
	d, err := parseISODuration(rest)
	if err != nil {
		return Reset{}, fmt.Errorf("share.auto.offset.reset %q: %w", s, err)
	}
	return Reset{Kind: ResetByDuration, Duration: d}, nil
}

// parseISODuration parses the day-time subset of ISO 8601 durations
// that Java's Duration.parse accepts: PnDTnHnMn.nS, each part optional
// but at least one present.
func parseISODuration(s string) (time.Duration, error) {
	if len(s) > 64 {
		return 0, fmt.Errorf("duration too long")
	}
	u := strings.ToUpper(s)
	if strings.HasPrefix(u, "-") {
		return 0, fmt.Errorf("negative duration")
	}
	u = strings.TrimPrefix(u, "+")
	body, ok := strings.CutPrefix(u, "P")
	if !ok || body == "" {
		return 0, fmt.Errorf("duration %q does not start with P", s)
	}
	datePart, timePart, hasT := strings.Cut(body, "T")
	if hasT && timePart == "" {
		return 0, fmt.Errorf("duration %q: empty time part", s)
	}
	var total float64
	parts := 0
	take := func(part, units string, scale []float64) error {
		for part != "" {
			i := strings.IndexAny(part, units)
			if i <= 0 {
				return fmt.Errorf("duration %q: bad part %q", s, part)
			}
			v, err := strconv.ParseFloat(part[:i], 64)
			if err != nil || v < 0 {
				return fmt.Errorf("duration %q: bad number %q", s, part[:i])
			}
			total += v * scale[strings.IndexByte(units, part[i])]
			parts++
			part = part[i+1:]
		}
		return nil
	}
	if err := take(datePart, "D", []float64{24 * 3600}); err != nil {
		return 0, err
	}
	if err := take(timePart, "HMS", []float64{3600, 60, 1}); err != nil {
		return 0, err
	}
	if parts == 0 {
		return 0, fmt.Errorf("duration %q has no parts", s)
	}
	if total > float64(1<<62)/float64(time.Second) {
		return 0, fmt.Errorf("duration %q too long", s)
	}
	return time.Duration(total * float64(time.Second)), nil
}

// StartOffset is where a share partition with no history starts, given
// the log's start and end offsets and, for by_duration, the first offset
// whose timestamp is at or after a time (the log end when none is).
func (r Reset) StartOffset(now time.Time, logStart, logEnd int64, offsetForTime func(ms int64) int64) int64 {
	switch r.Kind {
	case ResetEarliest:
		return logStart
	case ResetByDuration:
		if offsetForTime == nil {
			return logEnd
		}
		off := offsetForTime(now.Add(-r.Duration).UnixMilli())
		return max(logStart, min(off, logEnd))
	}
	return logEnd
}

// String is the config value: latest, earliest or by_duration:PTnS.
func (r Reset) String() string {
	switch r.Kind {
	case ResetEarliest:
		return "earliest"
	case ResetByDuration:
		return "by_duration:PT" + strconv.FormatFloat(r.Duration.Seconds(), 'f', -1, 64) + "S"
	}
	return "latest"
}
