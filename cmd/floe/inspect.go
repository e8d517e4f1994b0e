package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
)

// inspectFlags locate the bucket and metadata store: either a playground
// --data-dir or explicit URLs.
type inspectFlags struct {
	dataDir, bucket, metastore string
}

func (f *inspectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data-dir", "", "a playground's data `DIR` (bucket and metadata store inside)")
	fs.StringVar(&f.bucket, "bucket", "", "bucket `URL` (instead of --data-dir)")
	fs.StringVar(&f.metastore, "metastore", "", "metadata store `URL` (instead of --data-dir)")
}

func (f *inspectFlags) resolve() error {
	if f.dataDir == "" {
		return nil
	}
	dir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	if f.bucket == "" {
		f.bucket = "file://" + filepath.Join(dir, "bucket")
	}
	if f.metastore == "" {
		f.metastore = "embedded://" + filepath.Join(dir, "metadata.db")
	}
	return nil
}

func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("inspect what? segment PATH_OR_KEY, or orphans")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, inspectUsage)
		return flag.ErrHelp
	case "segment":
		return inspectSegment(ctx, args[1:], stdout, stderr)
	case "orphans":
		return inspectOrphans(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown inspect target %q (segment, orphans)", args[0])
	}
}

const inspectUsage = `Usage:
  floe inspect segment [--data-dir DIR | --bucket URL [--metastore URL]] [--records] PATH_OR_KEY
      print a segment object (a file, or a key in the bucket) as JSON; with the
      metadata store, each batch's assigned offsets and whether it is committed
  floe inspect orphans [--data-dir DIR | --bucket URL --metastore URL]
      list objects no metadata refers to (a PUT whose commit never happened)

Run "floe inspect segment -h" or "floe inspect orphans -h" for the flags.
`

func inspectSegment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect segment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f inspectFlags
	f.register(fs)
	var admin adminFlags
	admin.register(fs, "")
	withRecords := fs.Bool("records", false, "decode every record (decompressing batches)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe inspect segment [--admin HOST:PORT | --data-dir DIR | --bucket URL [--metastore URL]] [--records] PATH_OR_KEY")
		fmt.Fprintln(stderr, "\nPrints a segment object (a file, or a key in the bucket) as JSON; with the")
		fmt.Fprintln(stderr, "metadata store, each batch's assigned offsets and whether it is committed.")
		fmt.Fprintln(stderr, "With --admin, or --data-dir of a playground that is running, a running agent")
		fmt.Fprintln(stderr, "reads it through its admin API (the playground holds its metadata store's lock).")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: floe inspect segment [--admin HOST:PORT | --data-dir DIR | --bucket URL [--metastore URL]] [--records] PATH_OR_KEY")
	}
	target := fs.Arg(0)
	query := url.Values{"key": {segmentKey(target)}}
	if *withRecords {
		query.Set("records", "true")
	}
	if ok, err := admin.tryJSON(ctx, f.dataDir, "/api/segment", query, stdout); ok || err != nil {
		return err
	}
	if err := f.resolve(); err != nil {
		return err
	}
	object, key, err := readObject(ctx, f.bucket, target)
	if err != nil {
		return err
	}
	var store metastore.Store
	if f.metastore != "" {
		s, err := openMetastoreURL(ctx, f.metastore, nil)
		if err != nil {
			return fmt.Errorf("metadata store (is an agent using it? pass its --admin address): %w", err)
		}
		defer s.Close()
		store = s
	}
	var extents inspect.ExtentReader
	if store != nil {
		extents = store
	}
	out, err := inspect.DecodeSegment(ctx, key, object, extents, *withRecords)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// segmentKey is the bucket key of a segment named by its key or by a
// path to its file in a local-directory bucket.
func segmentKey(target string) string {
	if dir := filepath.Base(filepath.Dir(target)); dir == "segments" {
		return "segments/" + filepath.Base(target)
	}
	return target
}

// readObject reads target from a local file if one exists at that path,
// otherwise as a key in the bucket.
func readObject(ctx context.Context, bucketURL, target string) ([]byte, string, error) {
	if data, err := os.ReadFile(target); err == nil {
		key := filepath.Base(target)
		if dir := filepath.Base(filepath.Dir(target)); dir == "segments" {
			key = "segments/" + key
		}
		return data, key, nil
	}
	if bucketURL == "" {
		return nil, "", fmt.Errorf("%s is not a file; pass --data-dir or --bucket to read it from a bucket", target)
	}
	b, err := bucketurl.Open(ctx, bucketURL)
	if err != nil {
		return nil, "", err
	}
	data, err := b.GetRange(ctx, target, 0, -1)
	if err != nil {
		return nil, "", err
	}
	return data, target, nil
}

// referencedObjects is implemented by stores that can list the objects
// their extents point to.
type referencedObjects interface {
	Objects(ctx context.Context) ([]string, error)
}

func inspectOrphans(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect orphans", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f inspectFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe inspect orphans [--data-dir DIR | --bucket URL --metastore URL]")
		fmt.Fprintln(stderr, "\nLists objects no metadata refers to (a PUT whose commit never happened).")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, args); err != nil {
		return err
	}
	if err := f.resolve(); err != nil {
		return err
	}
	if f.bucket == "" || f.metastore == "" {
		return errors.New("usage: floe inspect orphans --data-dir DIR | --bucket URL --metastore URL")
	}
	store, err := openMetastoreURL(ctx, f.metastore, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	lister, ok := store.(referencedObjects)
	if !ok {
		return fmt.Errorf("this metadata store cannot list the objects it refers to")
	}
	refs, err := lister.Objects(ctx)
	if err != nil {
		return err
	}
	referenced := make(map[string]bool, len(refs))
	for _, k := range refs {
		referenced[k] = true
	}
	b, err := bucketurl.Open(ctx, f.bucket)
	if err != nil {
		return err
	}
	type orphan struct {
		Key      string `json:"key"`
		Size     int64  `json:"size"`
		Modified string `json:"modified"`
	}
	orphans := []orphan{}
	total := 0
	err = b.List(ctx, "segments/", func(o objstore.ObjectInfo) error {
		total++
		if !referenced[o.Key] {
			orphans = append(orphans, orphan{o.Key, o.Size, o.Modified.UTC().Format("2006-01-02T15:04:05Z")})
		}
		return nil
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"objects": total, "referenced": len(refs), "orphans": orphans})
}

// reorder moves flags before positional arguments, so that
// "inspect segment KEY --records" works as users expect.
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			if !hasValue(a) && i+1 < len(args) && needsValue(a) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}

func hasValue(flag string) bool {
	for _, c := range flag {
		if c == '=' {
			return true
		}
	}
	return false
}

func needsValue(flag string) bool {
	switch flag {
	case "--records", "-records":
		return false
	}
	return true
}
