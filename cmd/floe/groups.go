package main

// floe groups: consumer groups and their lag, read through the Kafka
// protocol from running agents (the embedded store file is locked by the
// agent that uses it, so the admin path is the protocol).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupRow is one partition of one group in `floe groups` output.
type groupRow struct {
	Group     string `json:"group"`
	State     string `json:"state"`
	Protocol  string `json:"protocol,omitempty"`
	Members   int    `json:"members"`
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	Member    string `json:"member,omitempty"` // client id/host of the consuming member
	Error     string `json:"error,omitempty"`
}

func groupsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap addresses of running agents")
	asJSON := fs.Bool("json", false, "print one JSON object per partition instead of a table")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe groups [--brokers HOST:PORT,...] [--json] [GROUP ...]")
		fmt.Fprintln(stderr, "\nLists consumer groups (all, or the named ones) with their state, members and,")
		fmt.Fprintln(stderr, "per partition, the committed offset, the end offset and the lag.")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.ClientID("floe-groups"))
	if err != nil {
		return err
	}
	defer cl.Close()
	rows, err := groupRows(ctx, kadm.NewClient(cl), fs.Args())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATE\tMEMBERS\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, r := range rows {
		if r.Topic == "" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\t-\t-\t%s\n", r.Group, r.State, r.Members, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", r.Group, r.State, r.Members, r.Topic, r.Partition, r.Committed, r.End, r.Lag, r.Member)
	}
	return tw.Flush()
}

// groupRows describes the groups (every group when names is empty) and
// their lag per partition, sorted by group, topic and partition.
func groupRows(ctx context.Context, admin *kadm.Client, names []string) ([]groupRow, error) {
	if len(names) == 0 {
		listed, err := admin.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		names = listed.Groups()
	}
	if len(names) == 0 {
		return nil, nil
	}
	lags, err := admin.Lag(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("group lag: %w", err)
	}
	var rows []groupRow
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range lags {
			if !yield(n) {
				return
			}
		}
	}) {
		l := lags[name]
		base := groupRow{Group: name, State: l.State, Protocol: l.Protocol, Members: len(l.Members)}
		if err := l.Error(); err != nil {
			base.Error = err.Error()
		}
		sorted := l.Lag.Sorted()
		if len(sorted) == 0 {
			rows = append(rows, base)
			continue
		}
		for _, ml := range sorted {
			r := base
			r.Topic, r.Partition = ml.Topic, ml.Partition
			r.Committed, r.End, r.Lag = ml.Commit.At, ml.End.Offset, ml.Lag
			if ml.Member != nil {
				r.Member = ml.Member.ClientID + "/" + ml.Member.MemberID
			}
			if ml.Err != nil {
				r.Error = ml.Err.Error()
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}
