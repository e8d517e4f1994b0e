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
		fmt.Fprintln(stderr, "Share groups (KIP-932) follow in a second table: per share partition the start")
		fmt.Fprintln(stderr, "offset, end offset, lag, members assigned it and, from the metadata store, the")
		fmt.Fprintln(stderr, "in-flight records by state.")
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
	var shares []inspect.GroupRow
	rows = slices.DeleteFunc(rows, func(r inspect.GroupRow) bool {
		if r.Type == "share" {
			shares = append(shares, r)
		}
		return r.Type == "share"
	})
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	if len(rows) > 0 || len(shares) == 0 {
		printGroups(tw, rows)
	}
	if len(shares) > 0 {
		if len(rows) > 0 {
			fmt.Fprintln(tw)
		}
		printShareGroups(tw, shares)
	}
	return tw.Flush()
}

// printShareGroups prints share groups (KIP-932): per share partition
// its start offset, the end offset, the lag (records in between neither
// acknowledged nor archived), the in-flight records by state and their
// highest delivery count, the records not yet finished by delivery count
// ("COUNT:RECORDS,..."), when known ("-" through the Kafka protocol), and
// the members assigned it.
func printShareGroups(tw io.Writer, rows []inspect.GroupRow) {
	fmt.Fprintln(tw, "SHARE GROUP\tSTATE\tMEMBERS\tTOPIC\tPARTITION\tSTART\tEND\tLAG\tAVAILABLE\tACQUIRED\tACKNOWLEDGED\tARCHIVED\tMAX DELIVERIES\tPENDING BY DELIVERIES\tMEMBER")
	for _, r := range rows {
		if r.Topic == "" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Group, r.State, r.Members, r.Error)
			continue
		}
		counts := "-\t-\t-\t-\t-\t-"
		if f := r.InFlight; f != nil {
			counts = fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%s", f.Available, f.Acquired, f.Acknowledged, f.Archived, f.MaxDeliveryCount, f.PendingString())
		}
		member := r.Member
		if r.Error != "" {
			member = r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", r.Group, r.State, r.Members, r.Topic, r.Partition, r.Committed, r.End, r.Lag, counts, member)
	}
}

func printGroups(tw io.Writer, rows []inspect.GroupRow) {
	fmt.Fprintln(tw, "GROUP\tSTATE\tMEMBERS\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, r := range rows {
		if r.Topic == "" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t-\t-\t-\t-\t-\t%s\n", r.Group, r.State, r.Members, r.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", r.Group, r.State, r.Members, r.Topic, r.Partition, r.Committed, r.End, r.Lag, r.Member)
	}
}

// groupRows describes, through the Kafka protocol, the groups (every group when names is empty) and
// their lag per partition, sorted by group, topic and partition.
func groupRows(ctx context.Context, admin *kadm.Client, names []string) ([]inspect.GroupRow, error) {
	listed, err := admin.ListGroups(ctx)
	if err != nil && len(names) == 0 {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	if len(names) == 0 {
		names = listed.Groups()
	}
	// Share groups are described by their own APIs; a name the listing
	// does not know is asked for as a consumer group, as before.
	var shareNames []string
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool {
		if g, ok := listed[n]; ok && g.ProtocolType == "share" {
			shareNames = append(shareNames, n)
			return true
		}
		return false
	})
	shareRows, err := shareGroupRows(ctx, admin, shareNames)
	if err != nil {
		return nil, err
	}
	rows, err := consumerGroupRows(ctx, admin, names)
	return append(rows, shareRows...), err
}

func consumerGroupRows(ctx context.Context, admin *kadm.Client, names []string) ([]inspect.GroupRow, error) {
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

// shareGroupRows describes share groups through the Kafka protocol:
// ShareGroupDescribe for their state and members, DescribeShareGroupOffsets
// for each share partition's start offset and lag, ListOffsets for the
// end offsets. The in-flight records by state are not in any Kafka API.
func shareGroupRows(ctx context.Context, admin *kadm.Client, names []string) ([]inspect.GroupRow, error) {
	if len(names) == 0 {
		return nil, nil
	}
	described, err := admin.DescribeShareGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe share groups: %w", err)
	}
	offsets, err := admin.DescribeShareGroupOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe share group offsets: %w", err)
	}
	var topics []string
	offsets.Each(func(d kadm.DescribedShareGroupOffsets) {
		for t := range d.Offsets {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	})
	ends := kadm.ListedOffsets{}
	if len(topics) > 0 {
		if ends, err = admin.ListEndOffsets(ctx, topics...); err != nil {
			return nil, fmt.Errorf("end offsets: %w", err)
		}
	}
	var rows []inspect.GroupRow
	for _, name := range slices.Sorted(slices.Values(names)) {
		d := described[name]
		base := inspect.GroupRow{Group: name, Type: "share", Protocol: "share", State: d.GroupState, Members: len(d.Members)}
		// Partitions are shared when members outnumber them: name each
		// member assigned one.
		assigned := map[string]map[int32][]string{}
		for _, m := range d.Members {
			for t, ps := range m.Assignment {
				for p := range ps {
					if assigned[t] == nil {
						assigned[t] = map[int32][]string{}
					}
					assigned[t][p] = append(assigned[t][p], m.ClientID+"/"+m.MemberID)
				}
			}
		}
		o := offsets[name]
		if err := cmpErr(d.Err, o.Err); err != nil {
			base.Error = err.Error()
		}
		var groupRows []inspect.GroupRow
		o.Offsets.Each(func(so kadm.ShareOffset) {
			r := base
			r.Topic, r.Partition, r.Committed, r.Lag, r.End = so.Topic, so.Partition, so.StartOffset, so.Lag, -1
			if e, ok := ends.Lookup(so.Topic, so.Partition); ok && e.Err == nil {
				r.End = e.Offset
			}
			members := assigned[so.Topic][so.Partition]
			slices.Sort(members)
			r.Member = strings.Join(members, ",")
			if so.Err != nil {
				r.Error = so.Err.Error()
			}
			groupRows = append(groupRows, r)
		})
		if len(groupRows) == 0 {
			rows = append(rows, base)
			continue
		}
		slices.SortFunc(groupRows, func(a, b inspect.GroupRow) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition) - int(b.Partition)
		})
		rows = append(rows, groupRows...)
	}
	return rows, nil
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
		rows, err := inspect.Groups(ctx, store, names)
		if err != nil {
			return nil, err
		}
		shares, err := inspect.ShareGroups(ctx, store, names)
		return append(rows, shares...), err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ClientID("floe-groups"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return groupRows(ctx, kadm.NewClient(cl), names)
}
