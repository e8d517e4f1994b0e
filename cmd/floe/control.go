package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/floe-io/floe/internal/control"
	"github.com/floe-io/floe/internal/journal"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
)

// controlCmd is "floe control": the control plane serving the metadata
// store of many virtual clusters (docs/control-plane.md), or, with
// "vcluster", an operator's call to its admin API.
func controlCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "vcluster" {
		return vclusterCmd(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "restore" {
		return restoreCmd(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("control", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9700", "HOST:PORT agents connect to (floe://HOST:PORT/VCLUSTER?key=KEY)")
	adminListen := fs.String("admin-listen", "127.0.0.1:9701", "HOST:PORT of the admin API (vclusters); empty: none")
	journalURL := fs.String("journal", "", "PostgreSQL URL of the journal (required)")
	dataDir := fs.String("data-dir", "", "directory for the vclusters' in-memory state files (default: a temporary directory)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate for TLS on --listen (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key for TLS on --listen")
	tokenFile := fs.String("admin-token-file", "", "file holding the bearer token the admin API requires (default: $FLOE_CONTROL_ADMIN_TOKEN, else none)")
	leaseTTL := fs.Duration("lease-ttl", control.DefaultLeaseTTL, "how long a vcluster's leader lease lasts unless renewed: how long its vcluster is unavailable after its leader dies; every process sharing a journal must use the same")
	scheduleGrace := fs.Duration("schedule-grace", control.DefaultScheduleGrace, "how long an agent whose session ended keeps its jobs in the schedule, in case it reconnects (0: none); keep it below the agents' job lease TTL (30s)")
	standbyInterval := fs.Duration("standby-interval", control.DefaultStandbyInterval, "how often a warm standby of a vcluster led by another process reads the journal rows appended since (0: no warm standbys: a takeover replays the whole journal, or opens from the newest snapshot with --bucket)")
	bucketURL := fs.String("bucket", "", "bucket URL (as the agents' --bucket) for the vclusters' snapshots and journal tail (control/<vcluster>/<id>/...); vclusters open from their newest snapshot there. Empty: no backups, whole-journal replays")
	tailInterval := fs.Duration("backup-interval", control.DefaultTailInterval, "how often the journal batches not yet in the bucket are uploaded: the backup's lag behind the journal")
	snapshotBytes := fs.Int64("snapshot-bytes", control.DefaultSnapshotBytes, "journal bytes after which a vcluster writes a new snapshot to the bucket")
	snapshotInterval := fs.Duration("snapshot-interval", control.DefaultSnapshotInterval, "a vcluster that changed writes a snapshot at least this often")
	keepSnapshots := fs.Int("keep-snapshots", control.DefaultKeepSnapshots, "snapshots kept per vcluster in the bucket (at least 2), with the journal tail after the oldest; older objects are deleted")
	trimJournal := fs.Bool("trim-journal", false, "with --bucket: delete journal rows up to the oldest kept snapshot once it reads back from the bucket (opening a vcluster then needs the bucket)")
	var lf logFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe control --journal URL [--bucket URL] [--listen HOST:PORT] [--admin-listen HOST:PORT] [--lease-ttl D] [--schedule-grace D] [--standby-interval D] [--tls-cert F --tls-key F]")
		fmt.Fprintln(stderr, "       floe control vcluster create|list|delete [NAME] --control HOST:PORT")
		fmt.Fprintln(stderr, "       floe control restore --bucket URL --journal URL [--vcluster NAME [--id ID]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *journalURL == "" {
		return errors.New("--journal is required (a PostgreSQL URL)")
	}
	if *leaseTTL < time.Second {
		return fmt.Errorf("--lease-ttl %v: at least 1s", *leaseTTL)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	token, err := adminToken(*tokenFile)
	if err != nil {
		return err
	}
	var tlsConf *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if *keepSnapshots < 2 {
		return fmt.Errorf("--keep-snapshots %d: at least 2", *keepSnapshots)
	}
	if *tailInterval <= 0 || *snapshotBytes <= 0 || *snapshotInterval <= 0 {
		return errors.New("--backup-interval, --snapshot-bytes and --snapshot-interval must be positive")
	}
	backup := control.BackupOptions{TailInterval: *tailInterval, SnapshotBytes: *snapshotBytes, SnapshotInterval: *snapshotInterval, Keep: *keepSnapshots, TrimJournal: *trimJournal}
	if *bucketURL != "" {
		if backup.Bucket, err = bucketurl.Open(ctx, *bucketURL); err != nil {
			return fmt.Errorf("--bucket: %w", err)
		}
	} else if *trimJournal {
		return errors.New("--trim-journal needs --bucket")
	} else {
		log.Warn("no --bucket: virtual clusters are not backed up, and open by replaying their whole journal")
	}
	j, err := journal.Open(ctx, *journalURL, log)
	if err != nil {
		return err
	}
	defer j.Close()
	srv, err := control.New(ctx, control.Options{Journal: j, Dir: *dataDir, TLS: tlsConf, Logger: log, LeaseTTL: *leaseTTL, ScheduleGrace: graceOption(*scheduleGrace), StandbyInterval: standbyOption(*standbyInterval), Backup: backup})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(l) }()
	adminAddr := ""
	if *adminListen != "" {
		al, err := net.Listen("tcp", *adminListen)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: control.AdminHandler(srv, token, log), ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- hs.Serve(al) }()
		defer hs.Close()
		adminAddr = al.Addr().String()
	}
	log.Info("control plane listening", "listen", l.Addr().String(), "admin", adminAddr, "tls", tlsConf != nil, "vclusters", len(srv.VClusters()))
	select {
	case <-ctx.Done():
		log.Info("control plane stopping")
		return nil
	case err := <-errc:
		return err
	}
}

// restoreCmd is "floe control restore": rebuild vclusters from the bucket
// alone into a journal that does not know them.
func restoreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("control restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bucketURL := fs.String("bucket", "", "bucket URL the control plane backed up to (required)")
	journalURL := fs.String("journal", "", "PostgreSQL URL of the journal to restore into (required; must not know the vclusters)")
	name := fs.String("vcluster", "", "restore only this virtual cluster (default: every one in the bucket)")
	id := fs.String("id", "", "with --vcluster: the incarnation to restore, when the bucket holds several")
	dataDir := fs.String("data-dir", "", "scratch directory for the state being rebuilt (default: a temporary directory)")
	list := fs.Bool("list", false, "only list the backups in the bucket (name, id, snapshots, last batch); needs no --journal")
	var lf logFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe control restore --bucket URL --journal URL [--vcluster NAME [--id ID]]")
		fmt.Fprintln(stderr, "       floe control restore --bucket URL --list")
		fmt.Fprintln(stderr, "Rebuilds virtual clusters from their snapshots and journal tail in the bucket; then start floe control on that journal.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *bucketURL == "" || (*journalURL == "" && !*list) {
		fs.Usage()
		return errors.New("--bucket and --journal are required")
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	bucket, err := bucketurl.Open(ctx, *bucketURL)
	if err != nil {
		return fmt.Errorf("--bucket: %w", err)
	}
	if *list {
		infos, err := control.ListBackups(ctx, bucket)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tSNAPSHOTS\tLAST\tOBJECTS\tNEWEST")
		for _, in := range infos {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%s\n", in.Name, in.ID, in.Snapshots, in.Last, in.Objects, in.Modified.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	j, err := journal.Open(ctx, *journalURL, log)
	if err != nil {
		return err
	}
	defer j.Close()
	done, err := control.Restore(ctx, control.RestoreOptions{Bucket: bucket, Journal: j, VCluster: *name, ID: *id, Dir: *dataDir, Logger: log})
	for _, r := range done {
		fmt.Fprintf(stdout, "virtual cluster %s restored: snapshot #%d + %d batches, up to #%d (backup id %s, new id %s)\n",
			r.Name, r.Snapshot, r.Replayed, r.Last, r.FromID, r.ID)
	}
	return err
}

// adminToken reads the admin API's bearer token from file, else from
// $FLOE_CONTROL_ADMIN_TOKEN.
func adminToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("FLOE_CONTROL_ADMIN_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// vclusterCmd is "floe control vcluster create|list|delete".
func vclusterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("control vcluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("control", "127.0.0.1:9701", "HOST:PORT (or http[s]://HOST:PORT) of the control plane's admin API")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin API's bearer token (default: $FLOE_CONTROL_ADMIN_TOKEN)")
	jsonOut := fs.Bool("json", false, "list as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe control vcluster create NAME | list | delete NAME  [--control HOST:PORT]")
		fmt.Fprintln(stderr, "create prints the new virtual cluster's agent key as its last line.")
		fs.PrintDefaults()
	}
	// Flags may come before or after the positional arguments.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	token, err := adminToken(*tokenFile)
	if err != nil {
		return err
	}
	base := *addr
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	do := func(method, path string, body any, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, rd)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode >= 300 {
			var e struct{ Error string }
			if json.Unmarshal(raw, &e) == nil && e.Error != "" {
				return fmt.Errorf("%s %s: %s", method, path, e.Error)
			}
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		if out != nil {
			return json.Unmarshal(raw, out)
		}
		return nil
	}
	switch verb := pos[0]; {
	case verb == "create" && len(pos) == 2:
		var res struct{ Name, Key string }
		if err := do("POST", "/api/vclusters", map[string]string{"name": pos[1]}, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "virtual cluster %s created; agents connect with --metastore 'floe://CONTROL_HOST:PORT/%s?key=KEY'\n", res.Name, res.Name)
		fmt.Fprintln(stdout, res.Key)
		return nil
	case verb == "list" && len(pos) == 1:
		var list []control.VClusterInfo
		if err := do("GET", "/api/vclusters", nil, &list); err != nil {
			return err
		}
		if *jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED\tSESSIONS\tEPOCH")
		for _, v := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", v.Name, v.CreatedAt.UTC().Format(time.RFC3339), v.Sessions, v.Epoch)
		}
		return tw.Flush()
	case verb == "delete" && len(pos) == 2:
		if err := do("DELETE", "/api/vclusters/"+pos[1], nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "virtual cluster %s deleted\n", pos[1])
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unexpected arguments %q", pos)
}

// graceOption turns --schedule-grace into control.Options.ScheduleGrace,
// where 0 means the default and a negative value none.
func graceOption(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// standbyOption turns --standby-interval into
// control.Options.StandbyInterval, where 0 means the default and a
// negative value none.
func standbyOption(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
