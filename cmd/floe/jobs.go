package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/floe-io/floe/internal/jobs"
)

// jobsCmd shows the background jobs' leases and the bucket's use per
// topic, from a running agent's admin server or from a metadata store.
func jobsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var admin adminFlags
	admin.register(fs, "127.0.0.1:9644")
	metaURL := fs.String("metastore", "", "read the metadata store `URL` directly instead (embedded:///path or postgres://…)")
	dataDir := fs.String("data-dir", "", "a playground's data `DIR`: through its admin API while it runs, else its metadata store")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	st, err := readJobs(ctx, &admin, *metaURL, *dataDir)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st)
	return nil
}

// readJobs reads the jobs' status from the metadata store (--metastore),
// the playground in --data-dir (through its admin API while it runs,
// else its store), or the agent at --admin.
func readJobs(ctx context.Context, admin *adminFlags, metaURL, dataDir string) (jobs.Status, error) {
	if metaURL != "" {
		return statusFromStore(ctx, metaURL)
	}
	if dataDir == "" {
		return statusFromAdmin(ctx, admin, admin.addr)
	}
	if addr := runningAdmin(dataDir); addr != "" {
		st, err := statusFromAdmin(ctx, admin, addr)
		var nerr *net.OpError
		if err == nil || !errors.As(err, &nerr) {
			return st, err
		}
		// The playground that wrote its admin-url is gone.
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return jobs.Status{}, err
	}
	return statusFromStore(ctx, "embedded://"+filepath.Join(abs, "metadata.db"))
}

func statusFromStore(ctx context.Context, url string) (jobs.Status, error) {
	store, err := openMetastoreURL(ctx, url, nil)
	if err != nil {
		return jobs.Status{}, err
	}
	defer store.Close()
	return jobs.ReadStatus(ctx, store)
}

func statusFromAdmin(ctx context.Context, admin *adminFlags, addr string) (jobs.Status, error) {
	body, err := admin.get(ctx, addr, "/jobs", nil)
	if err != nil {
		return jobs.Status{}, err
	}
	var st jobs.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return jobs.Status{}, errors.Join(fmt.Errorf("agent admin %s/jobs: bad answer", addr), err)
	}
	return st, nil
}

func printStatus(w io.Writer, st jobs.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tHOLDER\tEPOCH\tSTATE\tSINCE\tEXPIRES")
	if len(st.Leases) == 0 {
		fmt.Fprintln(tw, "(no job has run yet)\t\t\t\t\t")
	}
	for _, l := range st.Leases {
		state := "free"
		if l.Holder != "" && st.Now.Before(l.Expires) {
			state = "held"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Name, l.Holder, l.Epoch, state,
			l.Acquired.Local().Format(time.DateTime), l.Expires.Local().Format(time.DateTime))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS\tEXTENTS\tBYTES\t")
	for _, t := range st.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", t.Name, t.Partitions, t.Records, t.Extents, humanBytes(t.Bytes))
	}
	tw.Flush()
	o := st.Objects
	fmt.Fprintf(w, "\nbucket: %d referenced objects (%s), %d unreferenced awaiting deletion (%s)\n",
		o.ReferencedObjects, humanBytes(o.ReferencedBytes), o.UnreferencedObjects, humanBytes(o.UnreferencedBytes))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
