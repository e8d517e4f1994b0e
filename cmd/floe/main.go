// Command floe runs Floe: a Kafka-protocol streaming platform that keeps
// every byte of record data in object storage.
//
//	floe playground   a temporary single-process cluster, ready for any Kafka client
//	floe demo         the playground with a producer and a consumer group, shown live
//	floe agent        a production agent on a bucket and a metadata store
//	floe inspect      decode what is stored (segments, orphaned objects)
//	floe bench        produce/consume load: latency, throughput, bucket requests, cost
//	floe groups       consumer groups: state, members, committed offsets, lag
//	floe jobs         background job leases and bucket use per topic
//	floe record       record a checker workload's history against running agents
//	floe check        check a recorded history for lost, duplicated, reordered records
//	floe torture      a cluster under a seeded nemesis, its history checked
//	floe users        SASL users (SCRAM credentials) in a metadata store
//	floe config       the effective configuration: flags, FLOE_* environment, --config file
//	floe outage       list and replay the outage manifests of agents that are gone
//
// This file and its siblings only wire configuration to the internal
// packages; the behaviour lives there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `floe: Kafka-compatible streaming on object storage

Usage: floe COMMAND [ARGS] [flags]

Commands:
  playground  run a temporary single-process cluster on a local directory
  demo        run a playground with a producer and a consumer group, and watch it live
  agent       run an agent on a bucket and a metadata store (--bucket URL --metastore URL)
  inspect     print a segment object as JSON, or list objects no metadata refers to
  bench       measure produce/consume latency, throughput, bucket requests and cost
  groups      show consumer groups: state, members, committed offsets, lag
  jobs        show background job leases and bucket use per topic
  record      record a workload's history (sends, polls, commits) against running agents
  check       check a recorded history for anomalies (exit 0 only when there is none)
  torture     start a cluster, inject faults while the workload runs, check the history
  users       set, delete and list SASL users in a metadata store
  config      print the effective configuration (flags, FLOE_* environment, --config file)
  docs        print documents generated from the code (docs compatibility)
  outage      list and replay the outage manifests an agent lost during a metadata outage left
  control     serve the metadata store of many virtual clusters (--journal URL); control vcluster create|list|delete
  help        print this list

Run "floe COMMAND -h" for a command's arguments and flags. Flags can also
come from FLOE_* environment variables and a YAML file (--config FILE);
"floe config -h" says how.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "floe:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run1(ctx, args, stdout, stderr)
}

// run1 runs the command args name.
func run1(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "playground":
		return playground(ctx, args[1:], stdout, stderr)
	case "agent":
		return agentCmd(ctx, args[1:], stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "inspect":
		return inspectCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "groups":
		return groupsCmd(ctx, args[1:], stdout, stderr)
	case "jobs":
		return jobsCmd(ctx, args[1:], stdout, stderr)
	case "record":
		return recordCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdout, stderr)
	case "torture":
		return tortureCmd(ctx, args[1:], stdout, stderr)
	case "users":
		return usersCmd(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(ctx, args[1:], stdout, stderr)
	case "docs":
		return docsCmd(args[1:], stdout, stderr)
	case "control":
		return controlCmd(ctx, args[1:], stdout, stderr)
	case "outage":
		return outageCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// logFlags are the logging flags every long-running command takes.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", l.format)
	}
}
