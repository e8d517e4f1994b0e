package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestShareGroupsPage: the groups page lists share groups per share
// partition with their members, start and end offsets, lag, in-flight
// records by state (acquisitions included, from the agent's memory) and
// the highest delivery count.
func TestShareGroupsPage(t *testing.T) {
	c := start(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The group starts at the earliest offset (a group config).
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "jobs"
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name, cfg.Value = "share.auto.offset.reset", kmsg.StringPtr("earliest")
	rr.Configs = append(rr.Configs, cfg)
	req.Resources = append(req.Resources, rr)
	if resp, err := req.RequestWith(ctx, c.kafka); err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("set share.auto.offset.reset: %+v, %v", resp, err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.a.Addr()), kgo.ConsumeTopics("orders"), kgo.ShareGroup("jobs"),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Accept the records of partition 1 (4 of them); leave partition 0's
	// acquired.
	got := 0
	for i := 0; i < 20 && got < 14; i++ {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cons.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			got++
			if r.Partition == 1 {
				r.Ack(kgo.AckAccept)
			}
		})
		pcancel()
	}
	if got < 14 {
		t.Fatalf("consumed %d of 14", got)
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	code, body, _ := get(t, browser(t), c.base+"/groups")
	if code != http.StatusOK {
		t.Fatalf("GET /groups: %d", code)
	}
	i := strings.Index(body, `id="share-groups"`)
	if i < 0 {
		t.Fatalf("no share groups table:\n%s", body)
	}
	table := body[i:]
	// group, state, members, topic, partition, start, end, lag,
	// available, acquired, acknowledged, archived, max deliveries.
	for _, want := range []string{
		"<td>jobs</td><td>Stable</td><td>1</td><td>orders</td><td>0</td><td>0</td><td>10</td><td>10</td><td>0</td><td>10</td><td>0</td><td>0</td><td>1</td>",
		"<td>jobs</td><td>Stable</td><td>1</td><td>orders</td><td>1</td><td>4</td><td>4</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td><td>0</td>",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the share groups table lacks %s:\n%s", want, table[:min(len(table), 3000)])
		}
	}
	// Pending records by delivery count: partition 0's ten acquired
	// once; nothing pending on partition 1.
	for _, want := range []string{"<td>1:10</td></tr>", "<td>-</td></tr>"} {
		if !strings.Contains(table, want) {
			t.Errorf("the share groups table lacks the pending records %s:\n%s", want, table[:min(len(table), 3000)])
		}
	}
	// The member assigned each partition (client id/member id).
	if end := strings.Index(table, "</table>"); end < 0 || strings.Count(table[:end], "<td>kgo/") != 2 {
		t.Errorf("the share groups table does not name the member on both partitions:\n%s", table[:min(len(table), 3000)])
	}
}
