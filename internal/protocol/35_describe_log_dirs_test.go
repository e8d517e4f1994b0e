package protocol_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
)

// logDirsRequest names partitions as "topic/partition"; none means null
// topics (all of them).
func logDirsRequest(partitions ...string) *kmsg.DescribeLogDirsRequest {
	req := kmsg.NewPtrDescribeLogDirsRequest()
	if len(partitions) > 0 {
		req.Topics = []kmsg.DescribeLogDirsRequestTopic{}
	}
	for _, tp := range partitions {
		var topic string
		var p int32
		i := strings.LastIndexByte(tp, '/')
		topic = tp[:i]
		fmt.Sscan(tp[i+1:], &p)
		req.Topics = append(req.Topics, kmsg.DescribeLogDirsRequestTopic{Topic: topic, Partitions: []int32{p}})
	}
	return req
}

// sizes lists a dir's partitions as "topic/partition=size", sorted.
func sizes(dir kmsg.DescribeLogDirsResponseDir) []string {
	var out []string
	for _, rt := range dir.Topics {
		for _, p := range rt.Partitions {
			if p.OffsetLag != 0 || p.IsFuture {
				out = append(out, fmt.Sprintf("%s/%d lag %d future %v", rt.Topic, p.Partition, p.OffsetLag, p.IsFuture))
			}
			out = append(out, fmt.Sprintf("%s/%d=%d", rt.Topic, p.Partition, p.Size))
		}
	}
	slices.Sort(out)
	return out
}

func TestDescribeLogDirs(t *testing.T) {
	f := start(t)
	f.createTopic("ld", 3)
	f.createTopic("ld-empty", 1)
	// Batches are stored as sent: a partition's size is theirs.
	var p0, p1 int
	for i := range 3 {
		b := batch(5+i, 1_700_000_000_000)
		p0 += len(b)
		if resp := do[*kmsg.ProduceResponse](f, 9, produceRequest("ld", 0, b)); resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatal("produce failed")
		}
	}
	b := batch(40, 1_700_000_000_000)
	p1 = len(b)
	do[*kmsg.ProduceResponse](f, 9, produceRequest("ld", 1, b))
	all := []string{"ld-empty/0=0", fmt.Sprintf("ld/0=%d", p0), fmt.Sprintf("ld/1=%d", p1), "ld/2=0"}

	for _, tc := range []struct {
		name    string
		version int16
		req     *kmsg.DescribeLogDirsRequest
		want    []string
	}{
		{name: "all, v4", version: 4, req: logDirsRequest(), want: all},
		{name: "all, v0", version: 0, req: logDirsRequest(), want: all},
		{name: "all, v5", version: 5, req: logDirsRequest(), want: all},
		// Unknown topics and partitions are left out, named twice once.
		{name: "named", version: 4, req: logDirsRequest("ld/1", "ld/7", "ld/1", "missing/0", "ld/-1"), want: []string{fmt.Sprintf("ld/1=%d", p1)}},
		{name: "nothing known", version: 2, req: logDirsRequest("missing/0"), want: nil},
		{name: "empty list", version: 3, req: &kmsg.DescribeLogDirsRequest{Topics: []kmsg.DescribeLogDirsRequestTopic{}}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do[*kmsg.DescribeLogDirsResponse](f, tc.version, tc.req)
			expectCode(t, "describe log dirs", resp.ErrorCode, 0)
			if len(resp.Dirs) != 1 {
				t.Fatalf("%d dirs, want the one virtual dir", len(resp.Dirs))
			}
			dir := resp.Dirs[0]
			expectCode(t, "dir", dir.ErrorCode, 0)
			if dir.Dir != "bucket://floe" || dir.IsCordoned {
				t.Errorf("dir %q cordoned %v, want bucket://floe, not cordoned", dir.Dir, dir.IsCordoned)
			}
			if tc.version >= 4 && (dir.TotalBytes != -1 || dir.UsableBytes != -1) {
				t.Errorf("total %d usable %d bytes, want -1 (a bucket has no volume size)", dir.TotalBytes, dir.UsableBytes)
			}
			if got := sizes(dir); !slices.Equal(got, tc.want) {
				t.Errorf("partitions %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDescribeLogDirsTwoAgents: each agent lists the partitions it leads
// as Metadata says, so that the answers of both hold each partition once
// and add up to the bytes stored.
func TestDescribeLogDirsTwoAgents(t *testing.T) {
	f, peer := startPair(t)
	f.createTopic("ld-spread", 16)
	stored := 0
	for p := range int32(16) {
		b := batch(int(p)+1, 1_700_000_000_000)
		stored += len(b)
		do[*kmsg.ProduceResponse](f, 9, produceRequest("ld-spread", p, b))
	}
	md := f.metadata(12, false, "ld-spread")
	leaderOf := map[int32]int32{}
	for _, p := range md.Topics[0].Partitions {
		leaderOf[p.Partition] = p.Leader
	}
	other := &fixture{t: t, a: peer, c: testutil.Dial(t, peer.Addr())}
	seen := map[int32]bool{}
	total := int64(0)
	for _, g := range []*fixture{f, other} {
		self := g.metadata(12, false).ControllerID // the agent asked
		resp := do[*kmsg.DescribeLogDirsResponse](g, 4, logDirsRequest())
		for _, rt := range resp.Dirs[0].Topics {
			for _, p := range rt.Partitions {
				if seen[p.Partition] || leaderOf[p.Partition] != self {
					t.Errorf("agent %d lists partition %d (led by %d, seen %v)", self, p.Partition, leaderOf[p.Partition], seen[p.Partition])
				}
				seen[p.Partition] = true
				total += p.Size
			}
		}
	}
	if len(seen) != 16 || total != int64(stored) {
		t.Errorf("%d partitions with %d bytes listed, want 16 with %d", len(seen), total, stored)
	}
}
