package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// In a cluster, the console's Kafka requests all reach its own agent,
// which coordinates only some groups: the others are shown as their
// coordinator's console answers (TestGroupActionsForwarded does their
// actions), and when the coordinator cannot be asked, from the store,
// quickly, without actions.
func TestGroupsCoordinatedElsewhere(t *testing.T) {
	c := start(t, "")
	b := agenttest.StartPeer(t, c.a, agenttest.Options{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// Both agents must see each other before groups are placed.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range []string{c.a.Addr(), b.Addr()} {
		for brokersSeenBy(t, addr) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("the second agent is not seen by %s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// 32 groups: the chance that one agent coordinates all is 2^-31, and
	// that the third one below coordinates none (2/3)^32 (2e-6).
	const n = 32
	for i := range n {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1, LeaderEpoch: -1})
		if resp, err := adm.CommitOffsets(ctxWithOps(t), fmt.Sprintf("g%02d", i), offs); err != nil || resp.Error() != nil {
			t.Fatalf("commit g%02d: %v %v", i, err, resp.Error())
		}
	}
	hc := browser(t)
	check := func(wantStore bool) {
		t.Helper()
		_, list, _ := get(t, hc, c.base+"/groups")
		forwarded, store, local := 0, 0, 0
		for i := range n {
			g := fmt.Sprintf("g%02d", i)
			if !strings.Contains(list, `href="/groups/`+g+`"`) {
				t.Errorf("/groups does not list %s", g)
			}
			start := time.Now()
			code, body, _ := get(t, hc, c.base+"/groups/"+g)
			took := time.Since(start)
			if code != http.StatusOK || !strings.Contains(body, `<td class="lagv">9</td>`) {
				t.Errorf("/groups/%s: %d, lag 9 not shown", g, code)
			}
			if strings.Contains(body, "NOT_COORDINATOR") {
				t.Errorf("/groups/%s shows NOT_COORDINATOR", g)
			}
			switch {
			case strings.Contains(body, `id="coordinator"`):
				forwarded++
				if !strings.Contains(body, "reset-form") || !strings.Contains(body, `id="group-state">Empty<`) {
					t.Errorf("/groups/%s (coordinated elsewhere, forwarded) lacks the reset form or its state", g)
				}
			case strings.Contains(body, `id="elsewhere"`):
				store++
				if took > 2*time.Second {
					t.Errorf("/groups/%s (coordinated elsewhere) took %v", g, took)
				}
				if strings.Contains(body, "reset-form") || !strings.Contains(body, "registered no admin address") {
					t.Errorf("/groups/%s (coordinator without an admin address) offers a reset or does not say why", g)
				}
				if _, flash := post(t, hc, c.base, "/topics", "/groups/"+g+"/delete", url.Values{"confirm": {g}}); !strings.Contains(flash, "registered no admin address") {
					t.Errorf("delete %s (coordinator without an admin address): flash %q", g, flash)
				}
			default:
				local++
			}
		}
		if local == 0 || forwarded == 0 || (store > 0) != wantStore {
			t.Errorf("%d groups coordinated here, %d forwarded, %d from the store: want some of each (store: %v)", local, forwarded, store, wantStore)
		}
	}
	check(false)
	// A third agent registers without an admin address (one older than
	// this console): the groups it coordinates are read from the store.
	if _, err := c.a.Store.Heartbeat(t.Context(), metastore.AgentInfo{ID: "no-admin", NodeID: -1, Host: "127.0.0.1", Port: 1, Roles: []string{"produce", "fetch"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Each agent's own view must hold it (a client's metadata may come
	// from either agent), or the two disagree on who coordinates.
	deadline = time.Now().Add(10 * time.Second)
	for _, addr := range []string{c.a.Addr(), b.Addr()} {
		for brokersSeenBy(t, addr) != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("the third registration is not seen by %s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check(true)
}

// brokersSeenBy is the number of brokers the agent at addr lists in its
// own Metadata answer.
func brokersSeenBy(t *testing.T, addr string) int {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	return len(testutil.Dial(t, addr).Do(req).(*kmsg.MetadataResponse).Brokers)
}
