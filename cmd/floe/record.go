package main

// floe record: run the checker's workload (internal/workload) against
// running agents and write its history. floe torture will grow from
// here: the same workload with faults injected into a cluster it starts.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/history"
	"github.com/floe-io/floe/internal/workload"
)

func recordCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("record", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap addresses")
	name := fs.String("workload", "kafka", "the workload: kafka (idempotent producers, assign and group consumers, a final read) or txn (transactional producers that commit or abort, consumers at read_committed)")
	duration := fs.Duration("duration", 10*time.Second, "how long producers and consumers run before the final read")
	seed := fs.Int64("seed", 0, "seed of the schedule of operations (0: from the clock, printed)")
	out := fs.String("out", "history.jsonl", "the history file to write")
	topic := fs.String("topic", "", "a new topic to create and use (default floe-check-SEED-TIME)")
	partitions := fs.Int("partitions", 3, "partitions of the topic")
	producers := fs.Int("producers", 2, "producers (transactional in the txn workload)")
	idempotent := fs.Int("idempotent-producers", 1, "txn workload: idempotent producers beside the transactional ones (0 for none)")
	uncommitted := fs.Int("uncommitted-consumers", 1, "txn workload: assign consumers at read_uncommitted beside those at read_committed (0 for none)")
	assigned := fs.Int("assign-consumers", 1, "consumers with assigned partitions (0 for none)")
	grouped := fs.Int("group-consumers", 2, "consumers in one group that commit (0 for none)")
	opTimeout := fs.Duration("op-timeout", 5*time.Second, "past this a send is indeterminate")
	check := fs.Bool("check", false, "check the history when the run ends (as floe check does)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe record [--brokers HOST:PORT] [--duration D] [--seed N] [--out FILE] [--check]")
		fmt.Fprintln(stderr, "\nRuns producers and consumers against running agents and records every operation")
		fmt.Fprintln(stderr, "and its outcome to a history file (JSON lines) for floe check. The schedule of")
		fmt.Fprintln(stderr, "operations comes from --seed; see docs/correctness.md.")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if !workload.Known(*name) {
		return fmt.Errorf("record: unknown workload %q (known: %v)", *name, workload.Workloads)
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000_000
	}
	if *topic == "" {
		*topic = fmt.Sprintf("floe-check-%d-%d", *seed, time.Now().Unix())
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := history.NewWriter(f)
	fmt.Fprintf(stderr, "recording %s for %s with seed %d on topic %s to %s\n", *brokers, *duration, *seed, *topic, *out)
	sum, err := workload.Run(ctx, workload.Config{
		Workload:             *name,
		Brokers:              strings.Split(*brokers, ","),
		Topic:                *topic,
		Partitions:           int32(*partitions),
		Seed:                 *seed,
		Duration:             *duration,
		Producers:            *producers,
		IdempotentProducers:  noneIfZero(*idempotent),
		AssignConsumers:      noneIfZero(*assigned),
		UncommittedConsumers: noneIfZero(*uncommitted),
		GroupConsumers:       noneIfZero(*grouped),
		OpTimeout:            *opTimeout,
	}, w)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	txns := ""
	if *name == "txn" {
		txns = fmt.Sprintf(", %d transactions committed and %d aborted (as asked)", sum.TxnCommits, sum.TxnAborts)
	}
	fmt.Fprintf(stdout, "%s: %d sends, %d polls, %d commits%s (the group formed in %s); final read complete: %v\n",
		*out, sum.Sends, sum.Polls, sum.Commits, txns, sum.GroupJoinWait.Round(time.Millisecond), sum.DrainComplete)
	if !*check {
		return nil
	}
	res, _, err := checkFile(*out)
	if err != nil {
		return err
	}
	if err := res.WriteText(stdout, nil); err != nil {
		return err
	}
	if !res.Valid {
		return fmt.Errorf("%s: %w (%d)", *out, errAnomalies, len(res.Anomalies))
	}
	return nil
}

// noneIfZero maps the command line's 0 (none) to the workload's "none".
func noneIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
