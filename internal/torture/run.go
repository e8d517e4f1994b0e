package torture

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/floe-io/floe/internal/checker"
	"github.com/floe-io/floe/internal/history"
	"github.com/floe-io/floe/internal/nemesis"
	"github.com/floe-io/floe/internal/workload"
)

// Options are one torture run.
type Options struct {
	Agents   int
	Workload string // kafka or txn (workload.Workloads)
	Faults   []string
	Duration time.Duration
	Seed     int64
	// SendPause bounds each producer's pause after a send (default
	// 10ms): larger for a slower workload.
	SendPause time.Duration
	// Overlap, if 2 or more, lets up to that many faults of different
	// kinds be active at once (nemesis.ScheduleOptions.Overlap).
	Overlap int
	// History is the file the history is written to; "" for a temporary
	// file, removed after the check unless it shows anomalies.
	History string
	Floe    string
	S3      S3
	// Log gets progress lines (nemesis steps); AgentLog the agents'
	// output (nil: dropped), logged at AgentLogLevel (default info).
	Log, AgentLog io.Writer
	AgentLogLevel string
}

// Availability is, for one fault kind (or "none"), the sends that were
// in flight at some time while a fault of that kind was active (for
// "none": those that overlapped no fault), how many of them were
// acknowledged, and the longest any of them took.
type Availability struct {
	Sends        int     `json:"sends"`
	Acknowledged int     `json:"acknowledged"`
	Fraction     float64 `json:"fraction"`
	LongestMS    int64   `json:"longest_ms"`
}

// Report is a torture run's verdict and figures.
type Report struct {
	Valid         bool     `json:"valid"`
	Seed          int64    `json:"seed"`
	Agents        int      `json:"agents"`
	Faults        []string `json:"faults"`
	Overlap       int      `json:"overlap,omitempty"`
	Duration      string   `json:"duration"`
	Operations    int      `json:"operations"`
	Sent          int      `json:"sent"`
	Acknowledged  int      `json:"acknowledged"`
	Indeterminate int      `json:"indeterminate"`
	FinalRead     bool     `json:"final_read"`
	// GroupCommits are the group consumers' acknowledged commits, and
	// Assignments the rebalances that gave a member partitions: how well
	// the consumer group kept working.
	GroupCommits    int                     `json:"group_commits"`
	Assignments     int                     `json:"assignments"`
	Anomalies       int                     `json:"anomalies"`
	AnomaliesByKind map[string]int          `json:"anomalies_by_kind"`
	NotesByKind     map[string]int          `json:"notes_by_kind"`
	Availability    map[string]Availability `json:"availability"`
	FaultsApplied   []string                `json:"faults_applied"`
	History         string                  `json:"history,omitempty"`
	// Transactions are the txn workload's transactions by how they
	// ended, and the values sent in those that did not commit.
	Transactions *Transactions `json:"transactions,omitempty"`

	// Result is the checker's full result (not in the JSON line).
	Result checker.Result `json:"-"`
}

// Run starts a cluster, runs the workload under the nemesis's seeded
// schedule, heals, lets the workload run on a few seconds with nothing
// broken, runs the final read and checks the history.
func Run(ctx context.Context, o Options) (Report, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if !workload.Known(o.Workload) {
		return Report{}, fmt.Errorf("unknown workload %q (known: %v)", o.Workload, workload.Workloads)
	}
	if o.Duration <= 0 {
		o.Duration = 60 * time.Second
	}
	c, err := StartCluster(ctx, ClusterOptions{Agents: o.Agents, Floe: o.Floe, S3: o.S3, Seed: o.Seed, Log: o.AgentLog, LogLevel: o.AgentLogLevel})
	if err != nil {
		return Report{}, err
	}
	defer c.Close()
	logf("torture: %d agents on %v (clients through %v), PostgreSQL on port %d, objects under %s/%s/ through %s",
		len(c.Agents), c.Addrs, c.Brokers, c.PG.Port, o.S3.Bucket, c.Prefix, c.Bucket.URL)
	faults, err := c.Faults(o.Faults, o.Seed)
	if err != nil {
		return Report{}, err
	}
	// The nemesis stops 10s (or a quarter of the run, if less) before
	// the workload does: what follows is the quiet in which the cluster
	// must recover before the final read.
	quiet := min(10*time.Second, o.Duration/4)
	steps := nemesis.NewSchedule(o.Seed, faults, nemesis.ScheduleOptions{Duration: o.Duration - quiet, Overlap: o.Overlap})
	n := 0
	for _, s := range steps {
		n += 1 + len(s.With)
	}
	logf("torture: %d faults in %d steps scheduled over %v from seed %d", n, len(steps), o.Duration-quiet, o.Seed)

	path := o.History
	keep := path != ""
	if path == "" {
		f, err := os.CreateTemp("", "floe-torture-*.jsonl")
		if err != nil {
			return Report{}, err
		}
		path = f.Name()
		f.Close()
	}
	f, err := os.Create(path)
	if err != nil {
		return Report{}, err
	}
	began := time.Now()
	w := history.NewWriter(f)
	nctx, stopNemesis := context.WithCancel(ctx)
	defer stopNemesis()
	intervals := make(chan []nemesis.Interval, 1)
	started := make(chan struct{})
	go func() {
		// The faults start with the workload's clock, once the group
		// has formed and the producers run.
		select {
		case <-started:
		case <-nctx.Done():
		}
		intervals <- nemesis.Run(nctx, steps, logf)
	}()
	sum, err := workload.Run(ctx, workload.Config{
		Workload:        o.Workload,
		Brokers:         c.Brokers,
		Topic:           fmt.Sprintf("torture-%d", o.Seed),
		Partitions:      4,
		Seed:            o.Seed,
		Duration:        o.Duration,
		Producers:       3,
		AssignConsumers: 1,
		GroupConsumers:  2,
		OpTimeout:       10 * time.Second,
		SendPause:       o.SendPause,
		DrainTimeout:    60 * time.Second,
		Started:         func() { close(started) },
	}, w)
	stopNemesis()
	ivs := <-intervals
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Report{}, fmt.Errorf("workload: %w (history in %s)", err, path)
	}
	logf("torture: %d sends, %d polls, %d commits; final read complete: %v", sum.Sends, sum.Polls, sum.Commits, sum.DrainComplete)
	rep, err := checkHistory(path)
	if err != nil {
		return rep, err
	}
	rep.Seed, rep.Agents, rep.Faults, rep.Duration, rep.Overlap = o.Seed, len(c.Agents), o.Faults, o.Duration.String(), o.Overlap
	ops, _ := readHistory(path)
	rep.Availability = availability(ops, began, ivs)
	for _, op := range ops {
		switch {
		case op.F == history.Commit && op.Type == history.OK:
			rep.GroupCommits++
		case op.F == history.Rebalance && len(op.Offsets) > 0:
			rep.Assignments++
		}
	}
	for _, iv := range ivs {
		rep.FaultsApplied = append(rep.FaultsApplied, iv.String())
	}
	if !rep.Valid || keep {
		rep.History = path
	} else {
		os.Remove(path)
	}
	return rep, nil
}

func readHistory(path string) ([]history.Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return history.Read(f)
}

func checkHistory(path string) (Report, error) {
	ops, err := readHistory(path)
	if err != nil {
		return Report{}, err
	}
	res := checker.Check(ops)
	rep := Report{
		Valid:           res.Valid,
		Operations:      res.Operations,
		Sent:            res.Sent,
		Acknowledged:    res.Acknowledged,
		Indeterminate:   res.Indeterminate,
		FinalRead:       res.FinalRead,
		Anomalies:       len(res.Anomalies),
		AnomaliesByKind: map[string]int{},
		NotesByKind:     map[string]int{},
		Result:          res,
	}
	for k, n := range res.AnomaliesByKind {
		rep.AnomaliesByKind[string(k)] = n
	}
	for k, n := range res.NotesByKind {
		rep.NotesByKind[string(k)] = n
	}
	if res.Transactions != (checker.TxnCounts{}) {
		rep.Transactions = &Transactions{TxnCounts: res.Transactions, AbortedValues: res.Aborted}
	}
	return rep, nil
}

// Transactions are a run's transactions by how they ended, and the
// values sent in those that did not commit.
type Transactions struct {
	checker.TxnCounts
	AbortedValues int `json:"aborted_values"`
}

// availability counts, per fault kind, the sends in flight while a
// fault of that kind was active ("none": the sends that overlapped no
// fault) and the acknowledged ones.
func availability(ops []history.Op, began time.Time, ivs []nemesis.Interval) map[string]Availability {
	out := map[string]Availability{}
	invoked := map[int]history.Op{}
	add := func(kind string, ok bool, took time.Duration) {
		a := out[kind]
		a.Sends++
		if ok {
			a.Acknowledged++
		}
		a.LongestMS = max(a.LongestMS, took.Milliseconds())
		out[kind] = a
	}
	for _, op := range ops {
		if op.F != history.Send {
			continue
		}
		if op.Type == history.Invoke {
			invoked[op.Process] = op
			continue
		}
		inv, ok := invoked[op.Process]
		if !ok {
			continue
		}
		delete(invoked, op.Process)
		from, to := began.Add(time.Duration(inv.Time)), began.Add(time.Duration(op.Time))
		kinds := map[string]bool{}
		for _, iv := range ivs {
			if from.Before(iv.End) && to.After(iv.Start) {
				kinds[iv.Kind] = true
			}
		}
		if len(kinds) == 0 {
			kinds["none"] = true
		}
		for k := range kinds {
			add(k, op.Type == history.OK, to.Sub(from))
		}
	}
	for k, a := range out {
		if a.Sends > 0 {
			a.Fraction = float64(a.Acknowledged) / float64(a.Sends)
		}
		out[k] = a
	}
	return out
}

// WriteText prints the verdict with its figures.
func (r Report) WriteText(w io.Writer) {
	verdict := "VALID: no anomalies"
	if !r.Valid {
		verdict = fmt.Sprintf("INVALID: %d anomalies", r.Anomalies)
	}
	overlap := ""
	if r.Overlap >= 2 {
		overlap = fmt.Sprintf(" (up to %d at once)", r.Overlap)
	}
	fmt.Fprintf(w, "torture: seed %d, %d agents, faults %v%s, %s\n", r.Seed, r.Agents, r.Faults, overlap, r.Duration)
	for _, f := range r.FaultsApplied {
		fmt.Fprintf(w, "  fault: %s\n", f)
	}
	fmt.Fprintf(w, "operations %d, values sent %d, acknowledged %d, indeterminate %d, final read complete %v\n",
		r.Operations, r.Sent, r.Acknowledged, r.Indeterminate, r.FinalRead)
	fmt.Fprintf(w, "group: %d commits acknowledged, %d assignments\n", r.GroupCommits, r.Assignments)
	for _, k := range slices.Sorted(maps.Keys(r.Availability)) {
		a := r.Availability[k]
		fmt.Fprintf(w, "availability during %s: %d/%d sends in flight acknowledged (%.1f%%), the longest took %dms\n", k, a.Acknowledged, a.Sends, 100*a.Fraction, a.LongestMS)
	}
	for _, k := range slices.Sorted(maps.Keys(r.NotesByKind)) {
		fmt.Fprintf(w, "note %s: %d\n", k, r.NotesByKind[k])
	}
	if t := r.Transactions; t != nil {
		fmt.Fprintf(w, "transactions: %d committed, %d aborted (%d values), %d indeterminate\n", t.Committed, t.Aborted, t.AbortedValues, t.Indeterminate)
	}
	kinds := slices.Sorted(maps.Keys(r.AnomaliesByKind))
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "anomaly %s: %d\n", k, r.AnomaliesByKind[k])
	}
	if !r.Valid {
		r.Result.WriteText(w, nil)
	}
	if r.History != "" {
		fmt.Fprintf(w, "history: %s\n", r.History)
	}
	fmt.Fprintln(w, verdict)
}
