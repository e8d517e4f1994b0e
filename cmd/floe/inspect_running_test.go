package main

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/inspect"
	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/testutil"
)

// fillPlayground creates topic "orders" with 2 partitions, produces 5
// records to partition 0 and 3 to partition 1, and commits group
// "billing" at offsets 2 and 3 (lags 3 and 0).
func fillPlayground(t *testing.T, bootstrap string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		p := int32(0)
		if i >= 5 {
			p = 1
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("order-" + string(rune('a'+i)))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 3, LeaderEpoch: -1})
	if resp, err := adm.CommitOffsets(ctx, "billing", offs); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(args, &out, &errOut); err != nil {
		t.Fatalf("floe %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

func firstSegment(t *testing.T, dataDir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, "bucket", "segments"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no segment in %s: %v", dataDir, err)
	}
	return "segments/" + entries[0].Name()
}

// checkInspection runs inspect segment, groups and jobs with args and
// checks what they print of fillPlayground's data.
func checkInspection(t *testing.T, dataDir string, args ...string) {
	t.Helper()
	key := firstSegment(t, dataDir)
	var seg inspect.Segment
	if err := json.Unmarshal([]byte(runOK(t, append(append([]string{"inspect", "segment"}, args...), "--records", key)...)), &seg); err != nil {
		t.Fatal(err)
	}
	if seg.Object != key || seg.Committed == nil || !*seg.Committed || len(seg.Partitions) != 1 ||
		seg.Partitions[0].Topic != "orders" || len(seg.Partitions[0].Batches[0].RecordList) != 1 ||
		!strings.HasPrefix(*seg.Partitions[0].Batches[0].RecordList[0].Value.Text, "order-") {
		t.Errorf("inspect segment %v: %+v", args, seg)
	}

	var rows []inspect.GroupRow
	dec := json.NewDecoder(strings.NewReader(runOK(t, append(append([]string{"groups"}, args...), "--json")...)))
	for dec.More() {
		var r inspect.GroupRow
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 2 || rows[0].Group != "billing" || rows[0].Partition != 0 || rows[0].Committed != 2 || rows[0].End != 5 || rows[0].Lag != 3 ||
		rows[1].Partition != 1 || rows[1].Committed != 3 || rows[1].End != 3 || rows[1].Lag != 0 {
		t.Errorf("groups %v: %+v", args, rows)
	}
	table := runOK(t, append([]string{"groups"}, args...)...)
	if !strings.Contains(strings.Join(strings.Fields(table), " "), "billing Empty 0 orders 0 2 5 3") {
		t.Errorf("groups table %v:\n%s", args, table)
	}

	var st jobs.Status
	if err := json.Unmarshal([]byte(runOK(t, append(append([]string{"jobs"}, args...), "--json")...)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Topics) != 1 || st.Topics[0].Name != "orders" || st.Topics[0].Records != 8 {
		t.Errorf("jobs %v: %+v", args, st.Topics)
	}
}

// TestInspectWhileRunning: the commands the playground prints work while
// it runs (through its admin API: its metadata store is locked) and
// after it stopped (from its data directory), and a playground that died
// without removing its admin-url leaves them working offline.
func TestInspectWhileRunning(t *testing.T) {
	dir := t.TempDir()
	p := startPlayground(t, "--data-dir", dir)
	if !strings.Contains(p.Out.String(), "floe inspect segment --data-dir "+dir+" segments/<id>") {
		t.Errorf("the playground does not print the inspect hint:\n%s", p.Out.String())
	}
	fillPlayground(t, p.Bootstrap)

	t.Run("running, --data-dir", func(t *testing.T) { checkInspection(t, dir, "--data-dir", dir) })
	t.Run("running, --admin", func(t *testing.T) { checkInspection(t, dir, "--admin", p.Admin) })
	t.Run("bad key", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := run([]string{"inspect", "segment", "--admin", p.Admin, "../metadata.db"}, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("inspect of a key outside segments/: %v", err)
		}
	})

	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, adminURLFile)); !os.IsNotExist(err) {
		t.Fatalf("admin-url left after a clean stop: %v", err)
	}
	t.Run("stopped", func(t *testing.T) { checkInspection(t, dir, "--data-dir", dir) })
	// A playground killed before it removed the file: the address is
	// dead, so the commands read the data directory.
	if err := os.WriteFile(filepath.Join(dir, adminURLFile), []byte("http://127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("stale admin-url", func(t *testing.T) { checkInspection(t, dir, "--data-dir", dir) })
}

// TestInspectAdminSecured: through an admin listener with TLS and a
// token, the commands need the CA and the token, and work with them.
func TestInspectAdminSecured(t *testing.T) {
	certDir := t.TempDir()
	ca := testutil.NewCA(t, "admin-ca")
	certFile, keyFile := testutil.WriteCert(t, ca.Issue(t, pkix.Name{CommonName: "127.0.0.1"}, "127.0.0.1"), certDir, "admin")
	caFile := ca.WriteCA(t, certDir, "ca")
	tokenFile := filepath.Join(certDir, "token")
	if err := os.WriteFile(tokenFile, []byte("a-long-admin-token-for-tests\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := startPlayground(t, "--data-dir", dir, "--admin-tls-cert", certFile, "--admin-tls-key", keyFile, "--admin-token-file", tokenFile)
	fillPlayground(t, p.Bootstrap)
	admin := "https://" + p.Admin

	checkInspection(t, dir, "--admin", admin, "--admin-ca", caFile, "--admin-token-file", tokenFile)
	t.Setenv("FLOE_ADMIN_TOKEN", "a-long-admin-token-for-tests")
	t.Setenv("FLOE_ADMIN_CA", caFile)
	checkInspection(t, dir, "--data-dir", dir)
	os.Unsetenv("FLOE_ADMIN_TOKEN")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "--admin", admin}, "401"},
		{[]string{"jobs", "--admin", admin}, "401"},
		{[]string{"groups", "--admin", admin, "--admin-ca", ""}, "certificate"},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("floe %v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
