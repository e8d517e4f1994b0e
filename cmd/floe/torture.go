package main

// floe torture: a cluster of agents on PostgreSQL and an S3-compatible
// server, the checker's workload under a seeded nemesis, and the
// checker's verdict (internal/torture).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/floe-io/floe/internal/torture"
)

func tortureCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("torture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	agents := fs.Int("agents", 3, "agents in the cluster")
	name := fs.String("workload", "kafka", "the workload: kafka (idempotent producers, assign and group consumers, a final read) or txn (transactional producers that commit or abort, consumers at read_committed)")
	faults := fs.String("faults", "kill,pause,db-restart,db-pause,bucket-errors,partition", "comma-separated faults the nemesis may apply: kill, pause, clock, db-restart, db-pause, db-partition, bucket-errors, bucket-partition, partition (none: no faults)")
	overlap := fs.Int("overlap", 0, "if 2 or more, up to this many faults of different kinds (on different targets) are active at once, healed together")
	duration := fs.Duration("duration", 60*time.Second, "how long the workload runs; the nemesis stops 10s before it ends")
	seed := fs.Int64("seed", 0, "seed of the workload's and the nemesis's schedules (0: from the clock, printed)")
	sendPause := fs.Duration("send-pause", 10*time.Millisecond, "each producer pauses up to this long after a send (a larger one makes a slower workload)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object on the last line")
	keep := fs.String("keep-history", "", "write the history to `FILE` and keep it (default: a temporary file, kept only if it has anomalies)")
	selfTest := fs.Bool("self-test", false, "inject known bugs through the Kafka proxy instead of faults, and pass only if the checker reports exactly them")
	verbose := fs.Bool("verbose", false, "show the agents' logs on stderr")
	agentLogLevel := fs.String("agent-log-level", "info", "the agents' --log-level (with --verbose: debug follows each consumer group's rebalances)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe torture [--agents N] [--faults kill,pause,...] [--overlap N] [--duration D] [--seed N] [--json] [--keep-history FILE] [--self-test]")
		fmt.Fprintln(stderr, "\nStarts a cluster (a PostgreSQL server of its own, floe agent processes, a bucket")
		fmt.Fprintln(stderr, "fault proxy and a Kafka proxy), runs the checker's workload while faults are")
		fmt.Fprintln(stderr, "applied on a seeded schedule, heals, checks the history and prints the verdict.")
		fmt.Fprintln(stderr, "Needs the PostgreSQL server binaries and an S3-compatible server:")
		fmt.Fprintln(stderr, `  eval "$(scripts/services postgres s3)"`)
		fmt.Fprintln(stderr, "Exits 0 only with no anomalies (with --self-test: only if every injected bug is")
		fmt.Fprintln(stderr, "found, and nothing else). See docs/correctness.md.")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if *seed == 0 {
		*seed = time.Now().UnixNano() % 1_000_000_000
	}
	s3, err := torture.S3FromEnv()
	if err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	o := torture.Options{
		Agents:    *agents,
		Workload:  *name,
		Duration:  *duration,
		Seed:      *seed,
		SendPause: *sendPause,
		Overlap:   *overlap,
		History:   *keep,
		S3:        s3,
		Log:       stderr,
	}
	if *verbose {
		o.AgentLog = stderr
	}
	o.AgentLogLevel = *agentLogLevel
	if *faults != "" && *faults != "none" {
		o.Faults = strings.Split(*faults, ",")
	}
	fmt.Fprintf(stderr, "torture: seed %d\n", *seed)
	if *selfTest {
		if !flagSet(fs, "duration") {
			o.Duration = 3 * time.Second
		}
		rep, err := torture.SelfTest(ctx, o)
		if err != nil {
			return fmt.Errorf("torture --self-test: %w", err)
		}
		for _, c := range rep.Cases {
			fmt.Fprintf(stdout, "self-test %-16s want %v, found %v: %s\n", c.Fault, c.Want, c.Found, passed(c.Passed, c.Why))
		}
		if *asJSON {
			b, _ := json.Marshal(rep)
			fmt.Fprintln(stdout, string(b))
		} else {
			fmt.Fprintf(stdout, "self-test: %s\n", passed(rep.Passed, ""))
		}
		if !rep.Passed {
			return fmt.Errorf("torture --self-test: the checker did not report exactly the injected bugs")
		}
		return nil
	}
	rep, err := torture.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	rep.WriteText(stdout)
	if *asJSON {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	}
	if !rep.Valid {
		return fmt.Errorf("torture: %w (%d)", errAnomalies, rep.Anomalies)
	}
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func passed(ok bool, why string) string {
	if ok {
		return "PASSED"
	}
	return "FAILED: " + why
}
