package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/objstore"
	"github.com/floe-io/floe/internal/objstore/bucketurl"
	"github.com/floe-io/floe/internal/recordbatch"
	"github.com/floe-io/floe/internal/segment"
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

func inspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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

type segmentJSON struct {
	Object     string          `json:"object"`
	Size       int             `json:"size"`
	Version    uint8           `json:"version"`
	Flags      uint16          `json:"flags"`
	IndexBytes uint32          `json:"index_bytes"`
	IndexCRC   string          `json:"index_crc32c"`
	DataBytes  uint64          `json:"data_bytes"`
	Committed  *bool           `json:"committed,omitempty"`
	Partitions []partitionJSON `json:"partitions"`
}

type partitionJSON struct {
	Topic        string      `json:"topic"`
	TopicID      string      `json:"topic_id"`
	Partition    int32       `json:"partition"`
	DataOffset   uint64      `json:"data_offset"`
	DataLength   uint64      `json:"data_length"`
	BatchCount   uint32      `json:"batch_count"`
	OffsetCount  uint64      `json:"offset_count"`
	MinTimestamp int64       `json:"min_timestamp"`
	MaxTimestamp int64       `json:"max_timestamp"`
	Batches      []batchJSON `json:"batches"`
}

type batchJSON struct {
	ByteOffset     int64        `json:"byte_offset"`
	Length         int          `json:"length"`
	BaseOffset     *int64       `json:"base_offset,omitempty"`
	LastOffset     *int64       `json:"last_offset,omitempty"`
	Committed      *bool        `json:"committed,omitempty"`
	Records        int32        `json:"record_count"`
	Compression    string       `json:"compression"`
	FirstTimestamp int64        `json:"first_timestamp"`
	MaxTimestamp   int64        `json:"max_timestamp"`
	ProducerID     int64        `json:"producer_id"`
	ProducerEpoch  int16        `json:"producer_epoch"`
	BaseSequence   int32        `json:"base_sequence"`
	CRC            string       `json:"crc32c"`
	RecordList     []recordJSON `json:"records,omitempty"`
}

type recordJSON struct {
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *bytesJSON   `json:"key"`
	Value     *bytesJSON   `json:"value"`
	Headers   []headerJSON `json:"headers,omitempty"`
}

type headerJSON struct {
	Key   string     `json:"key"`
	Value *bytesJSON `json:"value"`
}

// bytesJSON shows bytes as text when they are UTF-8, base64 otherwise.
type bytesJSON struct {
	Text   *string `json:"text,omitempty"`
	Base64 *string `json:"base64,omitempty"`
}

func showBytes(b []byte) *bytesJSON {
	if b == nil {
		return nil
	}
	s := string(b)
	if utf8.ValidString(s) {
		return &bytesJSON{Text: &s}
	}
	enc := base64.StdEncoding.EncodeToString(b)
	return &bytesJSON{Base64: &enc}
}

func inspectSegment(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect segment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f inspectFlags
	f.register(fs)
	withRecords := fs.Bool("records", false, "decode every record (decompressing batches)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: floe inspect segment [--data-dir DIR | --bucket URL [--metastore URL]] [--records] PATH_OR_KEY")
		fmt.Fprintln(stderr, "\nPrints a segment object (a file, or a key in the bucket) as JSON; with the")
		fmt.Fprintln(stderr, "metadata store, each batch's assigned offsets and whether it is committed.")
		fs.PrintDefaults()
	}
	if err := parseFlags(ctx, fs, reorder(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: floe inspect segment [--data-dir DIR | --bucket URL [--metastore URL]] [--records] PATH_OR_KEY")
	}
	if err := f.resolve(); err != nil {
		return err
	}
	target := fs.Arg(0)
	object, key, err := readObject(ctx, f.bucket, target)
	if err != nil {
		return err
	}
	seg, err := segment.Decode(object)
	if err != nil {
		return fmt.Errorf("decode %s: %w", target, err)
	}
	var store metastore.Store
	if f.metastore != "" {
		s, err := openMetastoreURL(ctx, f.metastore, nil)
		if err != nil {
			return fmt.Errorf("metadata store (is the playground still running? it holds the lock): %w", err)
		}
		defer s.Close()
		store = s
	}
	out := segmentJSON{
		Object: key, Size: len(object), Version: seg.Header.Version, Flags: seg.Header.Flags,
		IndexBytes: seg.Header.IndexLength, IndexCRC: fmt.Sprintf("%08x", seg.Header.IndexCRC), DataBytes: seg.Header.DataLength,
	}
	anyCommitted := false
	for _, p := range seg.Partitions {
		pj := partitionJSON{
			Topic: p.Topic, TopicID: hex.EncodeToString(p.TopicID[:]), Partition: p.Partition,
			DataOffset: p.DataOffset, DataLength: p.DataLength, BatchCount: p.BatchCount, OffsetCount: p.OffsetCount,
			MinTimestamp: p.MinTimestamp, MaxTimestamp: p.MaxTimestamp,
		}
		var extents []metastore.Extent
		if store != nil {
			all, err := store.Extents(ctx, p.TopicID, p.Partition, 0, 0)
			if err != nil && !errors.Is(err, metastore.ErrUnknownTopicOrPartition) {
				return err
			}
			for _, e := range all {
				if e.Object == key {
					extents = append(extents, e)
				}
			}
		}
		for _, b := range p.Batches {
			bj := batchJSON{
				ByteOffset: b.ByteOffset, Length: len(b.Data), Records: b.Header.NumRecords,
				Compression: b.Header.Compression().String(), FirstTimestamp: b.Header.FirstTimestamp,
				MaxTimestamp: b.Header.MaxTimestamp, ProducerID: b.Header.ProducerID,
				ProducerEpoch: b.Header.ProducerEpoch, BaseSequence: b.Header.BaseSequence,
				CRC: fmt.Sprintf("%08x", b.Header.CRC),
			}
			base, committed := offsetOf(extents, p.Batches, b)
			if store != nil {
				bj.Committed = &committed
				anyCommitted = anyCommitted || committed
			}
			if committed {
				last := base + int64(b.Header.LastOffsetDelta)
				bj.BaseOffset, bj.LastOffset = &base, &last
			}
			if *withRecords {
				data := append([]byte(nil), b.Data...)
				recordbatch.SetBaseOffset(data, max(base, 0))
				recs, err := recordbatch.Records(data)
				if err != nil {
					return fmt.Errorf("batch at byte %d: %w", b.ByteOffset, err)
				}
				for _, r := range recs {
					rj := recordJSON{Offset: r.Offset, Timestamp: r.Timestamp, Key: showBytes(r.Key), Value: showBytes(r.Value)}
					for _, h := range r.Headers {
						rj.Headers = append(rj.Headers, headerJSON{Key: h.Key, Value: showBytes(h.Value)})
					}
					bj.RecordList = append(bj.RecordList, rj)
				}
			}
			pj.Batches = append(pj.Batches, bj)
		}
		out.Partitions = append(out.Partitions, pj)
	}
	if store != nil {
		out.Committed = &anyCommitted
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// offsetOf finds the offset the metadata store assigned to batch b, which
// lies in one of extents (all of the same partition and object) unless it
// was never committed (an orphaned object, or a duplicate the sequence
// checks dropped).
func offsetOf(extents []metastore.Extent, batches []segment.Batch, b segment.Batch) (int64, bool) {
	for _, e := range extents {
		if b.ByteOffset < e.ByteOffset || b.ByteOffset >= e.ByteOffset+e.ByteLength {
			continue
		}
		off := e.BaseOffset
		for _, o := range batches {
			if o.ByteOffset >= e.ByteOffset && o.ByteOffset < b.ByteOffset {
				off += int64(o.Header.LastOffsetDelta) + 1
			}
		}
		return off, true
	}
	return -1, false
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
