package main

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestTransactionVersionFlag: --transaction-version sets the
// transaction.version level ApiVersions finalizes (2 by default, as Kafka
// 4 for a new cluster; 0 leaves it out, as Kafka does a level 0); other
// values are refused.
func TestTransactionVersionFlag(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		level int16 // -1: not finalized
	}{
		{nil, 2},
		{[]string{"--transaction-version", "2"}, 2},
		{[]string{"--transaction-version", "1"}, 1},
		{[]string{"--transaction-version", "0"}, -1},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			cfg, err := parseAgentFlags(tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) { c.TransactionVersion = cfg.TransactionVersion }})
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(3)
			req.ClientSoftwareName, req.ClientSoftwareVersion = "floe-test", "1"
			resp := testutil.Dial(t, a.Addr()).Do(req).(*kmsg.ApiVersionsResponse)
			level := int16(-1)
			for _, f := range resp.FinalizedFeatures {
				if f.Name == "transaction.version" {
					level = f.MaxVersionLevel
				}
			}
			if level != tc.level {
				t.Errorf("finalized transaction.version %d, want %d", level, tc.level)
			}
		})
	}
	for _, bad := range []string{"3", "-1"} {
		if _, err := parseAgentFlags("--transaction-version", bad); err == nil {
			t.Errorf("--transaction-version %s accepted", bad)
		}
	}
}
