package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/jobs"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestJobsCommand: `floe jobs` shows the leases of a running agent's jobs
// and the bytes each topic takes in the bucket.
func TestJobsCommand(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("sized"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "sized"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var st jobs.Status
	deadline := time.Now().Add(10 * time.Second)
	for len(st.Leases) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("leases %+v: want retention and cleaner", st.Leases)
		}
		var out, errOut bytes.Buffer
		if err := run([]string{"jobs", "--admin", a.AdminAddr(), "--json"}, &out, &errOut); err != nil {
			t.Fatalf("floe jobs --json: %v: %s", err, errOut.String())
		}
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(st.Topics) != 1 || st.Topics[0].Name != "sized" || st.Topics[0].Records != 3 || st.Topics[0].Bytes <= 0 ||
		st.Objects.ReferencedObjects != 3 {
		t.Fatalf("status %+v", st)
	}
	var out, errOut bytes.Buffer
	if err := run([]string{"jobs", "--admin", a.AdminAddr()}, &out, &errOut); err != nil {
		t.Fatalf("floe jobs: %v: %s", err, errOut.String())
	}
	for _, want := range []string{"cleaner", "retention", "held", "sized", "3 referenced objects"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("floe jobs output lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("floe jobs:\n%s", out.String())
}
