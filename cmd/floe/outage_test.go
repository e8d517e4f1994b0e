package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/metastore/embedded"
	"github.com/floe-io/floe/internal/objstore/localdir"
	"github.com/floe-io/floe/internal/produce"
	"github.com/floe-io/floe/internal/recordbatch"
)

// TestOutageFlags: usage and flag errors of floe outage.
func TestOutageFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run([]string{"outage"}, &out, &errOut); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "floe outage replay") {
		t.Fatalf("outage without a subcommand: %v\n%s", err, errOut.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"outage", "purge"}, `unknown subcommand "purge"`},
		{[]string{"outage", "list"}, "--bucket is needed"},
		{[]string{"outage", "list", "--bucket", "file:///tmp/x", "extra"}, "unexpected arguments"},
		{[]string{"outage", "replay", "--bucket", "file:///tmp/x", "--name", "a"}, "--metastore is needed"},
		{[]string{"outage", "replay", "--bucket", "file:///tmp/x", "--metastore", "embedded:///tmp/x.db"}, "one of --name NAME or --all"},
		{[]string{"outage", "replay", "--bucket", "file:///tmp/x", "--metastore", "embedded:///tmp/x.db", "--name", "a", "--all"}, "one of --name NAME or --all"},
		{[]string{"outage", "replay", "--bucket", "file:///tmp/x", "--metastore", "embedded:///tmp/x.db", "--name", "../a"}, "--name"},
		{[]string{"outage", "replay", "--bucket", "file:///tmp/x", "--metastore", "embedded:///tmp/x.db", "--name", "a", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"outage", "replay", "--bucket", "ftp://nope", "--metastore", "embedded:///tmp/x.db", "--name", "a"}, "ftp"},
	} {
		out.Reset()
		errOut.Reset()
		if err := run(c.args, &out, &errOut); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error containing %q", c.args, err, c.want)
		}
	}
	// What to replay comes from the command line only.
	for env, v := range map[string]string{"FLOE_NAME": "a", "FLOE_ALL": "true"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, v)
			args := []string{"outage", "replay", "--bucket", "file:///tmp/x", "--metastore", "embedded:///tmp/x.db"}
			if err := run(args, &out, &errOut); err == nil || !strings.Contains(err.Error(), "on the command line") {
				t.Errorf("%s=%s: %v, want a refusal", env, v, err)
			}
		})
	}
}

// downStore is a metadata store that cannot be reached for commits.
type downStore struct{ metastore.Sequencer }

func (downStore) CommitSegment(context.Context, metastore.SegmentCommit) ([]metastore.BatchResult, error) {
	return nil, fmt.Errorf("store: %w", syscall.ECONNREFUSED)
}

// TestOutageListReplay: the manifests an agent left during an outage are
// listed, then replayed by floe outage replay --name: committed in order,
// deleted; --all is refused while an agent is live, --name while a live
// agent holds the name.
func TestOutageListReplay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	dbPath, bucketDir := filepath.Join(dir, "metadata.db"), filepath.Join(dir, "bucket")
	store, err := embedded.Open(dbPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	topic, err := store.CreateTopic(ctx, metastore.TopicSpec{Name: "t", Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := localdir.Open(bucketDir)
	if err != nil {
		t.Fatal(err)
	}
	w := produce.NewWriter(bucket, downStore{store}, produce.Options{Linger: 5 * time.Millisecond, FlushTimeout: 200 * time.Millisecond,
		Outage: &produce.OutageOptions{ManifestName: "agent-3", RetryMin: time.Minute, RetryMax: time.Minute}})
	for i := range 2 {
		p := w.Append(topic.ID, "t", 0, recordbatch.Build(recordbatch.BuildOptions{}, recordbatch.Record{Value: fmt.Appendf(nil, "r%d", i)}))
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		res, err := p.Wait(wctx)
		cancel()
		if err != nil || res.BaseOffset != -1 {
			t.Fatalf("append during the outage: %+v %v", res, err)
		}
	}
	w.Close() // dies without replaying: the manifests stay
	if _, err := store.Heartbeat(ctx, metastore.AgentInfo{ID: "agent-9", NodeID: -1, Host: "h", Port: 1}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A live agent holds the name (a restarted agent-3, say).
	if _, err := store.Heartbeat(ctx, metastore.AgentInfo{ID: "agent-7", NodeID: -1, Host: "h", Port: 2, OutageManifest: "agent-3"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	store.Close()

	bucketURL, metaURL := "file://"+bucketDir, "embedded://"+dbPath
	var out, errOut bytes.Buffer
	if err := run([]string{"outage", "list", "--bucket", bucketURL}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	if !strings.Contains(out.String(), "NAME") || !strings.Contains(out.String(), "agent-3") || !strings.Contains(strings.Fields(strings.SplitN(out.String(), "\n", 3)[1])[1], "2") {
		t.Fatalf("list:\n%s", out.String())
	}

	out.Reset()
	errOut.Reset()
	err = run([]string{"outage", "replay", "--bucket", bucketURL, "--metastore", metaURL, "--all"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "agent-9") {
		t.Fatalf("--all with a live agent: %v", err)
	}

	out.Reset()
	errOut.Reset()
	replay := []string{"outage", "replay", "--bucket", bucketURL, "--metastore", metaURL, "--name", "agent-3", "--log-level", "error"}
	err = run(replay, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "live agent agent-7") || !strings.Contains(err.Error(), "restart that agent") {
		t.Fatalf("--name agent-3 while agent-7 holds it: %v", err)
	}
	// list --metastore shows the holder.
	out.Reset()
	if err := run([]string{"outage", "list", "--bucket", bucketURL, "--metastore", metaURL}, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), "HELD BY") || !strings.Contains(out.String(), "(agent-7)") {
		t.Fatalf("list --metastore while agent-7 holds agent-3: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"outage", "list", "--bucket", bucketURL, "--metastore", metaURL, "--json"}, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), `"held_by": "node `) {
		t.Fatalf("list --metastore --json: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"outage", "list", "--bucket", bucketURL}, &out, &errOut); err != nil || !strings.Contains(out.String(), "agent-3") {
		t.Fatalf("list after the refused replay: %v\n%s", err, out.String())
	}
	// Once the holder is gone (deregistered here), the name replays.
	store, err = embedded.Open(dbPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Deregister(ctx, "agent-7"); err != nil {
		t.Fatal(err)
	}
	store.Close()

	out.Reset()
	errOut.Reset()
	if err := run(replay, &out, &errOut); err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "agent-3: 2 manifests loaded, 0 left; commits committed=2") {
		t.Fatalf("summary: %q", got)
	}
	if !strings.Contains(errOut.String(), "outage replay agent-3: loading manifests") {
		t.Fatalf("progress: %q", errOut.String())
	}
	out.Reset()
	if err := run([]string{"outage", "list", "--bucket", bucketURL}, &out, &errOut); err != nil || !strings.Contains(out.String(), "no outage manifests") {
		t.Fatalf("list after the replay: %v\n%s", err, out.String())
	}

	store, err = embedded.Open(dbPath, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	exts, err := store.Extents(ctx, topic.ID, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var values []string
	for _, e := range exts {
		data, err := bucket.GetRange(ctx, e.Object, e.ByteOffset, e.ByteLength)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := recordbatch.Records(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			values = append(values, fmt.Sprintf("%d:%s", e.BaseOffset, r.Value))
		}
	}
	if got, want := fmt.Sprint(values), "[0:r0 1:r1]"; got != want {
		t.Fatalf("partition after the replay: %s, want %s", got, want)
	}
}
