package main

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestGroupFlags: the group bounds are agent flags (Kafka's
// group.*.session.timeout.ms, group.initial.rebalance.delay.ms,
// offsets.retention.minutes), and a 3 s session timeout, refused by the
// default minimum of 6 s, joins with --group-min-session-timeout 1s.
func TestGroupFlags(t *testing.T) {
	parse := parseAgentFlags
	cfg, err := parse("--group-min-session-timeout", "1s", "--group-max-session-timeout", "1m",
		"--group-initial-rebalance-delay", "0", "--offsets-retention", "48h")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Groups.Groups
	if g.MinSessionTimeout != time.Second || g.MaxSessionTimeout != time.Minute || g.InitialRebalanceDelay != -1 || cfg.Groups.OffsetsRetention != 48*time.Hour {
		t.Fatalf("group config: %+v, offsets retention %v", g, cfg.Groups.OffsetsRetention)
	}
	if _, err := parse("--group-min-session-timeout", "2m", "--group-max-session-timeout", "1m"); err == nil {
		t.Fatal("a minimum above the maximum was accepted")
	}
	defaults, err := parse()
	if err != nil {
		t.Fatal(err)
	}

	join := func(cfg agent.Config) int16 {
		a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) { c.Groups = cfg.Groups }})
		c := testutil.Dial(t, a.Addr())
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(5)
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "g", "consumer", 3000, 3000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
		return c.Do(req).(*kmsg.JoinGroupResponse).ErrorCode
	}
	if code := join(defaults); code != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("3 s session with the defaults: error %d, want INVALID_SESSION_TIMEOUT", code)
	}
	if code := join(cfg); code != 0 && code != kerr.MemberIDRequired.Code {
		t.Fatalf("3 s session with --group-min-session-timeout 1s: error %d", code)
	}
}
