package compat

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKafkaJSAdmin runs testdata/kafkajs/admin.js: KafkaJS's admin calls
// for the cluster, partitions, topic offsets (latest, earliest, by
// timestamp), DeleteRecords, a group's offsets (set, fetch, reset),
// groups, ACLs and topic deletion. The agent runs the ACL authorizer
// open to everyone while no ACL matches.
func TestKafkaJSAdmin(t *testing.T) {
	node := testutil.RequireClient(t, "node")
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
	}
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.ACL = &acl.AuthorizerOptions{Options: acl.Options{AllowIfNoACL: true}}
		// setOffsets joins the group with a consumer of its own.
		c.Groups.Groups.InitialRebalanceDelay = 100 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := runCmd(t, ctx, "", node, filepath.Join(kafkajsDir, "admin.js"), a.Addr(), "js-admin", "js-admin-group")
	type offset struct {
		Offset string `json:"offset"`
		Low    string `json:"low"`
		High   string `json:"high"`
	}
	type fetched struct {
		Topic      string            `json:"topic"`
		Partitions map[string]offset `json:"partitions"`
	}
	var res struct {
		Cluster struct {
			Brokers    int    `json:"brokers"`
			Controller *int   `json:"controller"`
			ClusterID  string `json:"cluster_id"`
		} `json:"cluster"`
		Created               bool              `json:"created"`
		CreatePartitions      *string           `json:"create_partitions"`
		CreatePartitionsFewer *string           `json:"create_partitions_fewer"`
		Partitions            int               `json:"partitions"`
		Offsets               map[string]offset `json:"offsets"`
		OffsetsByTimestamp    map[string]offset `json:"offsets_by_timestamp"`
		DeleteRecords         *string           `json:"delete_records"`
		OffsetsAfterDelete    map[string]offset `json:"offsets_after_delete"`
		SetOffsets            *string           `json:"set_offsets"`
		Fetched               []fetched         `json:"fetched"`
		ResetOffsets          *string           `json:"reset_offsets"`
		AfterReset            []fetched         `json:"after_reset"`
		Groups                []string          `json:"groups"`
		Described             []struct {
			GroupID   string `json:"groupId"`
			State     string `json:"state"`
			ErrorCode int    `json:"errorCode"`
		} `json:"described"`
		DeleteGroups []struct {
			GroupID   string `json:"groupId"`
			ErrorCode int    `json:"errorCode"`
		} `json:"delete_groups"`
		DeleteUnknownGroup *string `json:"delete_unknown_group"`
		CreateACLs         *string `json:"create_acls"`
		ACLs               []struct {
			Name string   `json:"name"`
			ACLs []string `json:"acls"`
		} `json:"acls"`
		DeletedACLs  []int    `json:"deleted_acls"`
		DeleteTopics *string  `json:"delete_topics"`
		TopicsAfter  []string `json:"topics_after"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output: %v\n%.2000s", err, out)
	}
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if res.Cluster.Brokers != 1 || res.Cluster.Controller == nil || res.Cluster.ClusterID == "" {
		t.Errorf("describeCluster: %+v", res.Cluster)
	}
	if !res.Created || res.CreatePartitions != nil || res.Partitions != 3 {
		t.Errorf("create: %v, createPartitions: %s, %d partitions", res.Created, str(res.CreatePartitions), res.Partitions)
	}
	if str(res.CreatePartitionsFewer) != "INVALID_PARTITIONS" {
		t.Errorf("createPartitions to fewer: %s, want INVALID_PARTITIONS", str(res.CreatePartitionsFewer))
	}
	for _, p := range []string{"0", "1", "2"} {
		if o := res.Offsets[p]; o.High != "10" || o.Low != "0" || o.Offset != "10" {
			t.Errorf("fetchTopicOffsets partition %s: %+v, want low 0 high 10", p, o)
		}
		if o := res.OffsetsByTimestamp[p]; o.Offset != "0" {
			t.Errorf("fetchTopicOffsetsByTimestamp partition %s: %+v, want 0", p, o)
		}
	}
	if res.DeleteRecords != nil || res.OffsetsAfterDelete["0"].Low != "4" || res.OffsetsAfterDelete["1"].Low != "0" {
		t.Errorf("deleteTopicRecords: %s, then %+v", str(res.DeleteRecords), res.OffsetsAfterDelete)
	}
	if res.SetOffsets != nil || len(res.Fetched) != 1 || res.Fetched[0].Partitions["0"].Offset != "7" ||
		res.Fetched[0].Partitions["1"].Offset != "3" || res.Fetched[0].Partitions["2"].Offset != "-1" {
		t.Errorf("setOffsets: %s, then %+v", str(res.SetOffsets), res.Fetched)
	}
	// resetOffsets earliest commits -2 for every partition, which
	// KafkaJS then reads back as -2 and its consumers resolve.
	if res.ResetOffsets != nil || len(res.AfterReset) != 1 || res.AfterReset[0].Partitions["0"].Offset != "-2" || res.AfterReset[0].Partitions["2"].Offset != "-2" {
		t.Errorf("resetOffsets: %s, then %+v", str(res.ResetOffsets), res.AfterReset)
	}
	if !slices.Contains(res.Groups, "js-admin-group") {
		t.Errorf("listGroups: %v", res.Groups)
	}
	if len(res.Described) != 1 || res.Described[0].State != "Empty" || res.Described[0].ErrorCode != 0 {
		t.Errorf("describeGroups: %+v", res.Described)
	}
	if len(res.DeleteGroups) != 1 || res.DeleteGroups[0].ErrorCode != 0 {
		t.Errorf("deleteGroups: %+v", res.DeleteGroups)
	}
	if str(res.DeleteUnknownGroup) != "GROUP_ID_NOT_FOUND" {
		t.Errorf("deleteGroups of an unknown group: %s, want GROUP_ID_NOT_FOUND", str(res.DeleteUnknownGroup))
	}
	if res.CreateACLs != nil || len(res.ACLs) != 1 || !slices.Equal(res.ACLs[0].ACLs, []string{"User:kafkajs-user:3"}) {
		t.Errorf("createAcls: %s, describeAcls: %+v", str(res.CreateACLs), res.ACLs)
	}
	if !slices.Equal(res.DeletedACLs, []int{1}) {
		t.Errorf("deleteAcls matched %v, want [1]", res.DeletedACLs)
	}
	if res.DeleteTopics != nil || len(res.TopicsAfter) != 0 {
		t.Errorf("deleteTopics: %s, topics after: %v", str(res.DeleteTopics), res.TopicsAfter)
	}
}
