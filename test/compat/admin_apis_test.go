package compat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// The admin APIs that describe and move partitions, through the clients
// that send them.

// TestDescribeTopicPartitionsPaged walks every partition of the cluster
// with DescribeTopicPartitions through franz-go, page by page, as the
// Java admin client's describeTopics does: asking for more partitions
// than an answer may hold, it gets pages of 2000 and follows the
// cursor. No Go client has a call for this API; kgo negotiates the
// version from ApiVersions and sends the raw request.
func TestDescribeTopicPartitionsPaged(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopic(t, ctx, a.Addr(), "dtp-big", 4500)
	createTopic(t, ctx, a.Addr(), "dtp-small", 3)
	cl := newClient(t, a.Addr())
	md, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{}
	for _, mt := range md.Topics {
		for _, p := range mt.Partitions {
			want[fmt.Sprintf("%s/%d", *mt.Topic, p.Partition)] = p.Leader
		}
	}

	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = 10_000
	seen := map[string]bool{}
	pages := 0
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n := 0
		for _, rt := range resp.Topics {
			if rt.ErrorCode != 0 {
				t.Fatalf("%s: error %d", *rt.Topic, rt.ErrorCode)
			}
			for _, p := range rt.Partitions {
				key := fmt.Sprintf("%s/%d", *rt.Topic, p.Partition)
				if seen[key] {
					t.Fatalf("%s described twice", key)
				}
				seen[key] = true
				if leader, ok := want[key]; !ok || leader != p.LeaderID {
					t.Fatalf("%s: leader %d, Metadata says %d (known: %v)", key, p.LeaderID, leader, ok)
				}
				n++
			}
		}
		if n > 2000 {
			t.Fatalf("page %d holds %d partitions, more than 2000", pages, n)
		}
		if resp.NextCursor == nil {
			break
		}
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	if len(seen) != len(want) || pages != 3 {
		t.Fatalf("%d partitions in %d pages, want %d in 3", len(seen), pages, len(want))
	}
}
