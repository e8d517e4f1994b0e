package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// A client over its request_percentage quota gets throttle times in its
// responses and is muted; one without a quota is not.
func TestRequestPercentageQuota(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.QuotaSamples, cfg.QuotaSampleWindow = 5, 100*time.Millisecond
	}})
	c := testutil.Dial(t, a.Addr())
	alter := kmsg.NewPtrAlterClientQuotasRequest()
	name := "busy"
	alter.Entries = []kmsg.AlterClientQuotasRequestEntry{{
		Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "client-id", Name: &name}},
		Ops:    []kmsg.AlterClientQuotasRequestEntryOp{{Key: "request_percentage", Value: 0.01}},
	}}
	if r := c.Do(alter).(*kmsg.AlterClientQuotasResponse); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("alter: error %d", r.Entries[0].ErrorCode)
	}
	createTopic(t, c, "many", 64)

	throttledAfter := func(clientID string) (int, time.Duration) {
		rc := testutil.Dial(t, a.Addr())
		rc.ClientID = clientID
		start := time.Now()
		for i := range 200 {
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(9)
			if r := rc.Do(req).(*kmsg.MetadataResponse); r.ThrottleMillis > 0 {
				return i + 1, time.Since(start)
			}
		}
		return 0, time.Since(start)
	}
	n, took := throttledAfter("busy")
	if n == 0 {
		t.Fatalf("200 Metadata requests at 0.01%% of an agent's time were never throttled (%v)", took)
	}
	t.Logf("throttled after %d requests (%v)", n, took)
	if n, _ := throttledAfter("free"); n != 0 {
		t.Fatalf("a client without a quota was throttled after %d requests", n)
	}
}
