package main

// floe groups: consumer groups and their lag, read through the Kafka
// protocol from running agents, through an agent's admin API, or from a
// metadata store offline.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/floe-io/floe/internal/inspect"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func groupsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("groups", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap addresses of running agents (read through the Kafka protocol)")
	var admin adminFlags
	admin.register(fs, "")
	metaURL := fs.String("metastore", "", "read the metadata store `URL` directly instead (embedded:///path or postgres://…)")
	dataDir := fs.String("data-dir", "", "a playground's data `DIR`: through its admin API while it runs, else its metadata store")
	asJSON := fs.Bool("json", false, "print one JSON object per partition instead of a table")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe groups [--brokers HOST:PORT,... | --admin HOST:PORT | --data-dir DIR | --metastore URL] [--json] [GROUP ...]")
		fmt.Fprintln(stderr, "\nLists consumer groups (all, or the named ones) with their state, members and,")
		fmt.Fprintln(stderr, "per partition, the committed offset, the end offset and the lag. Through the")
		fmt.Fprintln(stderr, "Kafka protocol (--brokers, the default) states and members are live; through")
		fmt.Fprintln(stderr, "the admin API or the metadata store they are what the coordinator last saved.")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rows, err := readGroups(ctx, &admin, *brokers, *metaURL, *dataDir, fs.Args())
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

// groupRows describes, through the Kafka protocol, the groups (every group when names is empty) and
// their lag per partition, sorted by group, topic and partition.
func groupRows(ctx context.Context, admin *kadm.Client, names []string) ([]inspect.GroupRow, error) {
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
	var rows []inspect.GroupRow
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range lags {
			if !yield(n) {
				return
			}
		}
	}) {
		l := lags[name]
		base := inspect.GroupRow{Group: name, State: l.State, Protocol: l.Protocol, Members: len(l.Members)}
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

// readGroups reads the groups from where the flags say: the admin API
// (--admin, or the playground running in --data-dir), the metadata store
// (--metastore, or a stopped playground's --data-dir), or else the Kafka
// protocol (--brokers).
func readGroups(ctx context.Context, admin *adminFlags, brokers, metaURL, dataDir string, names []string) ([]inspect.GroupRow, error) {
	addr := admin.addr
	if addr == "" && metaURL == "" {
		addr = runningAdmin(dataDir)
	}
	if addr != "" {
		q := url.Values{}
		for _, n := range names {
			q.Add("group", n)
		}
		body, err := admin.get(ctx, addr, "/api/groups", q)
		var nerr *net.OpError
		switch {
		case err == nil:
			var rows []inspect.GroupRow
			if err := json.Unmarshal(body, &rows); err != nil {
				return nil, fmt.Errorf("agent admin %s/api/groups: bad answer: %w", addr, err)
			}
			return rows, nil
		case admin.addr != "" || !errors.As(err, &nerr):
			return nil, err
		}
		// The playground that wrote dataDir's admin-url is gone: read
		// its store.
	}
	if dataDir != "" && metaURL == "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return nil, err
		}
		metaURL = "embedded://" + filepath.Join(abs, "metadata.db")
	}
	if metaURL != "" {
		store, err := openMetastoreURL(ctx, metaURL, nil)
		if err != nil {
			return nil, err
		}
		defer store.Close()
		return inspect.Groups(ctx, store, names)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ClientID("floe-groups"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return groupRows(ctx, kadm.NewClient(cl), names)
}
