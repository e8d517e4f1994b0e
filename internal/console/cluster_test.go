package console_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// In a cluster, the console's Kafka requests all reach its own agent,
// which coordinates only some groups: the others are listed and shown
// from the store, quickly, and their actions are refused with a pointer
// to the coordinating agent's console.
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
	for {
		ma, errA := c.adm.BrokerMetadata(ctxWithOps(t))
		mb, errB := adm.BrokerMetadata(ctxWithOps(t))
		if errA == nil && errB == nil && len(ma.Brokers) == 2 && len(mb.Brokers) == 2 {
			break
		}
		err := errors.Join(errA, errB)
		if time.Now().After(deadline) {
			t.Fatalf("the second agent did not join: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// 16 groups: the chance that one agent coordinates all is 2^-15.
	const n = 16
	for i := range n {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1, LeaderEpoch: -1})
		if resp, err := adm.CommitOffsets(ctxWithOps(t), fmt.Sprintf("g%02d", i), offs); err != nil || resp.Error() != nil {
			t.Fatalf("commit g%02d: %v %v", i, err, resp.Error())
		}
	}
	hc := browser(t)
	_, list, _ := get(t, hc, c.base+"/groups")
	remote, local := 0, 0
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
		if !strings.Contains(body, `id="elsewhere"`) {
			local++
			continue
		}
		remote++
		if took > 2*time.Second {
			t.Errorf("/groups/%s (coordinated elsewhere) took %v", g, took)
		}
		if strings.Contains(body, "reset-form") || strings.Contains(body, "NOT_COORDINATOR") {
			t.Errorf("/groups/%s (coordinated elsewhere) offers a reset or shows NOT_COORDINATOR", g)
		}
		if _, flash := post(t, hc, c.base, "/topics", "/groups/"+g+"/delete", url.Values{"confirm": {g}}); !strings.Contains(flash, "another agent coordinates this group") {
			t.Errorf("delete %s (coordinated elsewhere): flash %q", g, flash)
		}
	}
	if remote == 0 || local == 0 {
		t.Errorf("%d groups coordinated here, %d elsewhere: want both", local, remote)
	}
}
