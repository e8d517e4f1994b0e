package protocol

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestQuotaBuckets(t *testing.T) {
	now := time.Unix(0, 0)
	q := newQuotas(10, func() time.Time { return now }) // burst 110
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("a new client is refused")
	}
	if d := q.record("a", 110); d != 0 {
		t.Fatalf("the burst costs a wait of %v", d)
	}
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("refused at zero credits")
	}
	if d := q.record("a", 20); d != 2*time.Second {
		t.Fatalf("20 in debt at 10/s: wait %v", d)
	}
	if ok, d := q.admit("a"); ok || d != 2*time.Second {
		t.Fatalf("in debt: admitted %v, wait %v", ok, d)
	}
	now = now.Add(time.Second)
	if ok, d := q.admit("a"); ok || d != time.Second {
		t.Fatalf("after 1s: admitted %v, wait %v", ok, d)
	}
	now = now.Add(time.Second)
	if ok, _ := q.admit("a"); !ok {
		t.Fatal("refused once the debt is paid")
	}
	// Credits never exceed the burst.
	now = now.Add(time.Hour)
	q.record("a", 111)
	if ok, _ := q.admit("a"); ok {
		t.Fatal("credits grew past the burst")
	}
	// A debt cannot be escaped by changing client ids past the bound:
	// the clients beyond it share one bucket.
	for i := range maxQuotaClients + 10 {
		q.record(fmt.Sprint("c", i), 200)
	}
	if n := len(q.clients); n > maxQuotaClients+1 {
		t.Fatalf("%d buckets", n)
	}
	if ok, _ := q.admit("yet another"); ok {
		t.Fatal("a new client id escaped the quota while the table was full of debtors")
	}
	// Unlimited.
	var none *quotas
	if ok, _ := none.admit("a"); !ok || none.record("a", 1e9) != 0 {
		t.Fatal("a nil quota limits")
	}
}

// TestCheckNamedAdminAPIs: the partition admin APIs name at most
// MaxPartitions partitions and MaxTopics topics.
func TestCheckNamedAdminAPIs(t *testing.T) {
	h := &Handler{cfg: Config{Limits: Limits{MaxPartitions: 4, MaxTopics: 2}}}
	topics := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = string(rune('a' + i))
		}
		return out
	}
	parts := func(n int) []int32 { return make([]int32, n) }
	for _, tc := range []struct {
		name string
		make func(nTopics, nPartitions int) kmsg.Request
	}{
		{"DescribeLogDirs", func(nt, np int) kmsg.Request {
			r := kmsg.NewPtrDescribeLogDirsRequest()
			for _, name := range topics(nt) {
				r.Topics = append(r.Topics, kmsg.DescribeLogDirsRequestTopic{Topic: name, Partitions: parts(np)})
			}
			return r
		}},
		{"AlterReplicaLogDirs", func(nt, np int) kmsg.Request {
			r := kmsg.NewPtrAlterReplicaLogDirsRequest()
			for _, name := range topics(nt) {
				r.Dirs = append(r.Dirs, kmsg.AlterReplicaLogDirsRequestDir{Dir: "d", Topics: []kmsg.AlterReplicaLogDirsRequestDirTopic{{Topic: name, Partitions: parts(np)}}})
			}
			return r
		}},
		{"ElectLeaders", func(nt, np int) kmsg.Request {
			r := kmsg.NewPtrElectLeadersRequest()
			for _, name := range topics(nt) {
				r.Topics = append(r.Topics, kmsg.ElectLeadersRequestTopic{Topic: name, Partitions: parts(np)})
			}
			return r
		}},
		{"AlterPartitionAssignments", func(nt, np int) kmsg.Request {
			r := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			for _, name := range topics(nt) {
				t := kmsg.AlterPartitionAssignmentsRequestTopic{Topic: name}
				for range np {
					t.Partitions = append(t.Partitions, kmsg.AlterPartitionAssignmentsRequestTopicPartition{})
				}
				r.Topics = append(r.Topics, t)
			}
			return r
		}},
		{"DescribeTopicPartitions", func(nt, np int) kmsg.Request {
			r := kmsg.NewPtrDescribeTopicPartitionsRequest()
			for _, name := range topics(nt) {
				r.Topics = append(r.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: name})
			}
			return r
		}},
	} {
		if err := h.checkNamed(tc.make(2, 2)); err != nil {
			t.Errorf("%s: 2 topics of 2 partitions: %v", tc.name, err)
		}
		if err := h.checkNamed(tc.make(3, 0)); !errors.Is(err, ErrNamesTooMany) {
			t.Errorf("%s: 3 topics: %v", tc.name, err)
		}
		if tc.name == "DescribeTopicPartitions" {
			continue // names no partitions
		}
		if err := h.checkNamed(tc.make(1, 5)); !errors.Is(err, ErrNamesTooMany) {
			t.Errorf("%s: 5 partitions: %v", tc.name, err)
		}
	}
}
