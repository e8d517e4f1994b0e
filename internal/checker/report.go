package checker

import (
	"fmt"
	"io"
)

// WriteText prints the verdict for people: counts, then every anomaly and
// note with the numbers of the history lines that show it. With quote
// set, each cited line's text (quote(n) for line n) follows its anomaly.
func (r Result) WriteText(w io.Writer, quote func(line int) string) error {
	verdict := "valid: no anomalies"
	if !r.Valid {
		verdict = fmt.Sprintf("INVALID: %d anomalies", len(r.Anomalies))
	}
	aborted := ""
	if r.Aborted > 0 {
		aborted = fmt.Sprintf(", aborted %d", r.Aborted)
	}
	_, err := fmt.Fprintf(w, "%s\noperations %d, values sent %d (acknowledged %d, failed %d, indeterminate %d%s), read %d, final read %v\n",
		verdict, r.Operations, r.Sent, r.Acknowledged, r.Failed, r.Indeterminate, aborted, r.Read, r.FinalRead)
	if err != nil {
		return err
	}
	if t := r.Transactions; t != (TxnCounts{}) {
		fmt.Fprintf(w, "transactions: %d committed, %d aborted, %d indeterminate\n", t.Committed, t.Aborted, t.Indeterminate)
	}
	for _, k := range sortedKeys(toStringMap(r.AnomaliesByKind)) {
		fmt.Fprintf(w, "  %-26s %d\n", k, r.AnomaliesByKind[Kind(k)])
	}
	for _, a := range r.Anomalies {
		writeAnomaly(w, a, quote)
	}
	for _, k := range sortedKeys(toStringMap(r.NotesByKind)) {
		fmt.Fprintf(w, "note: %-26s %d\n", k, r.NotesByKind[Kind(k)])
	}
	for _, a := range r.Notes {
		writeAnomaly(w, a, quote)
	}
	for _, k := range sortedKeys(toStringMap(r.Unchecked)) {
		fmt.Fprintf(w, "unchecked: %s (%s)\n", k, r.Unchecked[Kind(k)])
	}
	return nil
}

func writeAnomaly(w io.Writer, a Anomaly, quote func(int) string) {
	where := a.Partition
	if a.Offset >= 0 {
		where = fmt.Sprintf("%s@%d", a.Partition, a.Offset)
	}
	if a.Value != "" {
		where += " " + a.Value
	}
	fmt.Fprintf(w, "%s %s: %s (lines %v)\n", a.Kind, where, a.Detail, a.Lines)
	if quote == nil {
		return
	}
	for _, n := range a.Lines {
		fmt.Fprintf(w, "  %6d  %s\n", n, quote(n))
	}
}

func toStringMap[V any](m map[Kind]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}
