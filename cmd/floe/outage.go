package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/produce"
)

const outageUsage = `Usage:
  floe outage list   --bucket URL [--metastore URL] [--json]
  floe outage replay --bucket URL --metastore URL (--name NAME | --all) [--timeout D]

An agent run with --produce-through-metastore-outage --outage-manifest-name
NAME writes each commit it queues during a metadata store outage to the
bucket under outage/NAME/ before acknowledging it, and replays them when it
starts again under NAME. list shows the names with manifests left; replay
commits them for an agent that will not come back, as that agent would at
start: in key order, each checked against the store's object ledger first
(a commit the store already holds is not applied twice), each manifest
deleted once committed. With --metastore, list also shows which live
agent holds each name (HELD BY): a held name is replayed by its agent.

Run replay only for a NAME no running agent uses: two replays of one name
at once could both apply a commit. Agents hold their name in their
registration, and --name refuses a name a live agent holds (restart that
agent instead: it replays at start); --all refuses while any agent is
live. An agent that starts under NAME while replay runs is not detected.
Progress goes to stderr, the summary to stdout; the exit status is non-zero
when anything is left.
`

// outageCmd lists and replays the outage manifests agents left in the
// bucket (docs/operations.md "An agent lost during a metadata outage").
func outageCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		fmt.Fprint(stderr, outageUsage)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("outage: unknown subcommand %q (list or replay)", args[0])
	}
	sub := args[0]
	fs := flag.NewFlagSet("outage "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, outageUsage); fs.PrintDefaults() }
	bucketURL := fs.String("bucket", "", "bucket `URL` the agents wrote to (file:///path, s3://…, gs://…, azblob://…)")
	var metaURL, name *string
	var all, asJSON *bool
	var timeout, flushTimeout *time.Duration
	var logs logFlags
	if sub == "list" {
		asJSON = fs.Bool("json", false, "print JSON")
		metaURL = fs.String("metastore", "", "also show which live agent holds each name, from this metadata store `URL` (optional)")
	} else {
		metaURL = fs.String("metastore", "", "metadata store `URL` the agents committed to (embedded:///path, postgres://…, floe://…)")
		name = fs.String("name", "", "replay the manifests of the agent run with --outage-manifest-name `NAME`")
		all = fs.Bool("all", false, "replay every name's manifests (refused while any agent is live)")
		timeout = fs.Duration("timeout", 5*time.Minute, "give up after `D` if the store stays unreachable or refuses commits (the manifests left stay)")
		flushTimeout = fs.Duration("commit-timeout", 30*time.Second, "bound on each commit attempt")
		logs.register(fs)
	}
	if err := parseFlags(ctx, fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("outage %s: unexpected arguments %q", sub, fs.Args())
	}
	if *bucketURL == "" {
		return fmt.Errorf("outage %s: --bucket is needed", sub)
	}
	if sub == "replay" {
		switch {
		case (*name != "" && !onCommandLine(args[1:], "name")) || (*all && !onCommandLine(args[1:], "all")):
			// What to replay is chosen on the command line only: a
			// FLOE_NAME or FLOE_ALL left in an environment (or a
			// --config file) must not pick a live agent's manifests.
			return errors.New("outage replay: --name or --all must be given on the command line, not by FLOE_* or --config")
		case *metaURL == "":
			return errors.New("outage replay: --metastore is needed")
		case (*name == "") == !*all:
			return errors.New("outage replay: one of --name NAME or --all is needed")
		case *name != "" && !produce.ValidManifestName(*name):
			return fmt.Errorf("outage replay: --name %q: want 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'", *name)
		case *timeout <= 0:
			return errors.New("outage replay: --timeout must be positive")
		}
	}
	bucket, err := bucketurl.Open(ctx, *bucketURL)
	if err != nil {
		return err
	}
	if sub == "list" {
		sets, err := produce.ListOutageManifests(ctx, bucket)
		if err != nil {
			return err
		}
		rows := make([]outageRow, len(sets))
		for i, s := range sets {
			rows[i].OutageManifestSet = s
		}
		if *metaURL != "" {
			if err := outageHolders(ctx, *metaURL, rows); err != nil {
				return err
			}
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		printOutageSets(stdout, rows, *metaURL != "", time.Now())
		return nil
	}
	log, err := logs.logger(stderr)
	if err != nil {
		return err
	}
	return outageReplay(ctx, bucket, *metaURL, *name, *timeout, *flushTimeout, log, stdout, stderr)
}

// outageRow is a name with manifests and, with --metastore, the live
// agent holding it.
type outageRow struct {
	produce.OutageManifestSet
	// HeldBy is "node N at HOST:PORT (ID)" of the live agent whose
	// registration holds the name; "" when none does.
	HeldBy string `json:"held_by,omitempty"`
}

// outageHolders fills in which live agent holds each row's name.
func outageHolders(ctx context.Context, metaURL string, rows []outageRow) error {
	store, err := openMetastoreURL(ctx, metaURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer store.Close()
	live, err := store.LiveAgents(ctx)
	if err != nil {
		return fmt.Errorf("outage list: live agents: %w", err)
	}
	for i := range rows {
		for _, a := range live {
			if a.OutageManifest == rows[i].Name {
				rows[i].HeldBy = fmt.Sprintf("node %d at %s (%s)", a.NodeID, net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))), a.ID)
			}
		}
	}
	return nil
}

func printOutageSets(w io.Writer, rows []outageRow, holders bool, now time.Time) {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no outage manifests in the bucket")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "NAME\tMANIFESTS\tBYTES\tOLDEST"
	if holders {
		header += "\tHELD BY"
	}
	fmt.Fprintln(tw, header)
	for _, s := range rows {
		age := "?"
		if !s.Oldest.IsZero() {
			age = now.Sub(s.Oldest).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s", s.Name, s.Manifests, s.Bytes, age)
		if holders {
			fmt.Fprintf(tw, "\t%s", cmp.Or(s.HeldBy, "-"))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// outageReplay replays name's manifests, or every name's ("" with
// --all), and prints a summary per name.
func outageReplay(ctx context.Context, bucket objstore.Bucket, metaURL, name string, timeout, flushTimeout time.Duration,
	log *slog.Logger, stdout, stderr io.Writer) error {
	store, err := openMetastoreURL(ctx, metaURL, log)
	if err != nil {
		return err
	}
	defer store.Close()
	names := []string{name}
	if name != "" {
		// A live agent under the name replays its manifests itself, and
		// deletes them as it does: a second replay beside it could
		// apply a commit twice.
		live, err := store.LiveAgents(ctx)
		if err != nil {
			return fmt.Errorf("outage replay: live agents: %w", err)
		}
		for _, a := range live {
			if a.OutageManifest == name {
				return fmt.Errorf("outage replay --name %s: live agent %s (node %d at %s) holds this name and replays its manifests itself; "+
					"to have them replayed, restart that agent (it replays at start), do not run replay beside it (docs/operations.md)",
					name, a.ID, a.NodeID, net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))))
			}
		}
	} else {
		live, err := store.LiveAgents(ctx)
		if err != nil {
			return fmt.Errorf("outage replay: live agents: %w", err)
		}
		if len(live) > 0 {
			ids := make([]string, 0, len(live))
			for _, a := range live {
				ids = append(ids, a.ID)
			}
			return fmt.Errorf("outage replay --all: %d agents are live (%s); replay the names of those that are gone with --name", len(live), strings.Join(ids, ", "))
		}
		sets, err := produce.ListOutageManifests(ctx, bucket)
		if err != nil {
			return err
		}
		names = names[:0]
		for _, s := range sets {
			names = append(names, s.Name)
		}
		if len(names) == 0 {
			fmt.Fprintln(stdout, "no outage manifests in the bucket")
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var failed []string
	for _, n := range names {
		fmt.Fprintf(stderr, "outage replay %s: loading manifests\n", n)
		start := time.Now()
		rep, err := produce.ReplayOutageManifests(ctx, bucket, store, n, produce.ReplayOptions{
			FlushTimeout: flushTimeout,
			Logger:       log,
			Progress: func(left int) {
				fmt.Fprintf(stderr, "outage replay %s: %d commits left (%s)\n", n, left, time.Since(start).Round(time.Second))
			},
		})
		fmt.Fprintf(stdout, "%s: %d manifests loaded, %d left; commits %s; batches %s; lost %d\n",
			n, rep.Loaded, rep.Remaining, formatCounts(rep.Commits), formatCounts(rep.Batches), rep.Lost)
		if err != nil {
			fmt.Fprintf(stderr, "outage replay %s: %v\n", n, err)
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("outage replay: not finished for %s", strings.Join(failed, ", "))
	}
	return nil
}

// formatCounts prints a replay's counts as k=v in a fixed order.
func formatCounts(c map[string]int) string {
	var parts []string
	for _, k := range []string{"committed", "partial", "already_committed", "object_missing", "duplicate", "unchecked", "dropped", "unreachable", "error"} {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// onCommandLine reports whether flag name is set in args (before a "--").
func onCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
