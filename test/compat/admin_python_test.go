package compat

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKafkaPythonAdmin runs testdata/kafka_python_admin.py: kafka-python's
// describe_cluster, create_partitions, describe_topics, commits of a
// consumer that never joins, list/describe/delete consumer groups,
// list_consumer_group_offsets and delete_topics. (kafka-python 2.0.2 has
// no delete_records.)
func TestKafkaPythonAdmin(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import kafka").CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import kafka: %v\n%s", debianPython, err, out)
	}
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := runCmd(t, ctx, "", debianPython, "testdata/kafka_python_admin.py", a.Addr(), "py-admin", "py-admin-group")
	var res struct {
		Cluster struct {
			Brokers      int    `json:"brokers"`
			ControllerID *int   `json:"controller_id"`
			ClusterID    string `json:"cluster_id"`
		} `json:"cluster"`
		Create                [][]any          `json:"create"`
		CreatePartitions      [][]any          `json:"create_partitions"`
		CreatePartitionsFewer *string          `json:"create_partitions_fewer"`
		Partitions            int              `json:"partitions"`
		EndOffsets            map[string]int64 `json:"end_offsets"`
		BeginningOffsets      map[string]int64 `json:"beginning_offsets"`
		Groups                []string         `json:"groups"`
		Described             []struct {
			Group        string `json:"group"`
			State        string `json:"state"`
			ProtocolType string `json:"protocol_type"`
		} `json:"described"`
		Offsets            map[string][]any `json:"offsets"`
		DeleteGroups       [][]string       `json:"delete_groups"`
		DeleteUnknownGroup [][]string       `json:"delete_unknown_group"`
		DeleteTopics       [][]any          `json:"delete_topics"`
		TopicsAfter        []string         `json:"topics_after"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output: %v\n%.2000s", err, out)
	}
	code := func(v [][]any) int16 {
		if len(v) != 1 || len(v[0]) != 2 {
			return -100
		}
		f, _ := v[0][1].(float64)
		return int16(f)
	}
	if res.Cluster.Brokers != 1 || res.Cluster.ControllerID == nil || res.Cluster.ClusterID == "" {
		t.Errorf("describe_cluster: %+v", res.Cluster)
	}
	if code(res.Create) != 0 || code(res.CreatePartitions) != 0 || res.Partitions != 3 {
		t.Errorf("create %v, create_partitions %v, %d partitions", res.Create, res.CreatePartitions, res.Partitions)
	}
	if res.CreatePartitionsFewer == nil || *res.CreatePartitionsFewer != "InvalidPartitionsError" {
		t.Errorf("create_partitions to fewer: %v, want INVALID_PARTITIONS", res.CreatePartitionsFewer)
	}
	for _, p := range []string{"0", "1", "2"} {
		if res.EndOffsets[p] != 5 || res.BeginningOffsets[p] != 0 {
			t.Errorf("partition %s: offsets %d..%d, want 0..5", p, res.BeginningOffsets[p], res.EndOffsets[p])
		}
	}
	if !slices.Contains(res.Groups, "py-admin-group") {
		t.Errorf("list_consumer_groups: %v", res.Groups)
	}
	if len(res.Described) != 1 || res.Described[0].State != "Empty" {
		t.Errorf("describe_consumer_groups: %+v", res.Described)
	}
	off := func(k string) float64 {
		if v := res.Offsets[k]; len(v) == 2 {
			f, _ := v[0].(float64)
			return f
		}
		return -100
	}
	if off("py-admin/0") != 5 || off("py-admin/1") != 2 || len(res.Offsets) != 2 {
		t.Errorf("list_consumer_group_offsets: %v, want py-admin/0 at 5 and py-admin/1 at 2", res.Offsets)
	}
	if len(res.DeleteGroups) != 1 || res.DeleteGroups[0][1] != "NoError" {
		t.Errorf("delete_consumer_groups: %v", res.DeleteGroups)
	}
	if len(res.DeleteUnknownGroup) != 1 || res.DeleteUnknownGroup[0][1] != "GroupIdNotFoundError" {
		t.Errorf("delete_consumer_groups of an unknown group: %v", res.DeleteUnknownGroup)
	}
	if code(res.DeleteTopics) != 0 || len(res.TopicsAfter) != 0 {
		t.Errorf("delete_topics: %v, topics after %v", res.DeleteTopics, res.TopicsAfter)
	}
}
