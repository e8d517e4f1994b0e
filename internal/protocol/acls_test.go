package protocol_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
	"github.com/floe-io/floe/internal/wire"
)

// aclFixtures start an agent with the ACL authorizer and User:admin as
// super user, and return a connection acting as User:admin and one as
// User:mallory, who has no ACLs. The principal comes from the client id
// ("as:NAME"), through the test-only agent.Config.TestPrincipal.
func aclFixtures(t *testing.T, opts acl.Options) (admin, mallory *fixture) {
	t.Helper()
	opts.SuperUsers = append(opts.SuperUsers, "User:admin")
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) {
		cfg.Groups.Groups.InitialRebalanceDelay = -1
		cfg.ACL = &acl.AuthorizerOptions{Options: opts}
		cfg.TestPrincipal = func(req *wire.Request) string {
			if name, ok := strings.CutPrefix(req.ClientID, "as:"); ok {
				return "User:" + name
			}
			return req.Principal
		}
	}})
	as := func(name string) *fixture {
		c := testutil.Dial(t, a.Addr())
		c.ClientID = "as:" + name
		return &fixture{t: t, a: a, c: c}
	}
	return as("admin"), as("mallory")
}

// TestAuthorizationPerAPI sends every API as a principal without ACLs and
// checks Kafka's authorization error where Kafka puts it (ACLs:
// docs/security.md has the table); the same request from a super user
// passes the check.
func TestAuthorizationPerAPI(t *testing.T) {
	admin, mallory := aclFixtures(t, acl.Options{})
	admin.createTopic("t", 1)
	admin.produce("t", 0, 1, 1_700_000_000_000)
	tID := admin.metadata(13, false, "t").Topics[0].TopicID
	str := kmsg.StringPtr
	topicAuth, groupAuth, clusterAuth := kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Code
	cases := []struct {
		api  string
		want int16
		run  func(f *fixture) int16
	}{
		{"Produce", topicAuth, func(f *fixture) int16 {
			return do[*kmsg.ProduceResponse](f, 9, produceRequest("t", 0, batch(1, 1))).Topics[0].Partitions[0].ErrorCode
		}},
		{"Fetch", topicAuth, func(f *fixture) int16 {
			return do[*kmsg.FetchResponse](f, 12, fetchRequest("t", 0, 0)).Topics[0].Partitions[0].ErrorCode
		}},
		{"Fetch by topic ID", topicAuth, func(f *fixture) int16 {
			return do[*kmsg.FetchResponse](f, 17, fetchByID(tID, 0, 0)).Topics[0].Partitions[0].ErrorCode
		}},
		{"Produce by topic ID", topicAuth, func(f *fixture) int16 {
			req := produceRequest("", 0, batch(1, 1))
			req.Topics[0].TopicID = tID
			return do[*kmsg.ProduceResponse](f, 13, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"ListOffsets", topicAuth, func(f *fixture) int16 { return f.listOffset("t", 0, -1).ErrorCode }},
		{"Metadata of a named topic", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: str("t")}}
			return do[*kmsg.MetadataResponse](f, 12, req).Topics[0].ErrorCode
		}},
		{"Metadata of a missing topic (no name leaks)", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: str("missing")}}
			return do[*kmsg.MetadataResponse](f, 12, req).Topics[0].ErrorCode
		}},
		{"OffsetCommit", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group, req.Generation = "g", -1
			req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
			return do[*kmsg.OffsetCommitResponse](f, 9, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"OffsetFetch", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", MemberEpoch: -1}}
			return do[*kmsg.OffsetFetchResponse](f, 8, req).Groups[0].ErrorCode
		}},
		{"FindCoordinator", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKeys = []string{"g"}
			return do[*kmsg.FindCoordinatorResponse](f, 4, req).Coordinators[0].ErrorCode
		}},
		{"JoinGroup", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
			req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
			return do[*kmsg.JoinGroupResponse](f, 9, req).ErrorCode
		}},
		{"SyncGroup", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Group, req.MemberID, req.Generation = "g", "m", 1
			return do[*kmsg.SyncGroupResponse](f, 5, req).ErrorCode
		}},
		{"Heartbeat", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrHeartbeatRequest()
			req.Group, req.MemberID, req.Generation = "g", "m", 1
			return do[*kmsg.HeartbeatResponse](f, 4, req).ErrorCode
		}},
		{"LeaveGroup", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrLeaveGroupRequest()
			req.Group, req.Members = "g", []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
			return do[*kmsg.LeaveGroupResponse](f, 5, req).ErrorCode
		}},
		{"DescribeGroups", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g"}
			return do[*kmsg.DescribeGroupsResponse](f, 5, req).Groups[0].ErrorCode
		}},
		{"DeleteGroups", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDeleteGroupsRequest()
			req.Groups = []string{"g"}
			return do[*kmsg.DeleteGroupsResponse](f, 2, req).Groups[0].ErrorCode
		}},
		{"OffsetDelete", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrOffsetDeleteRequest()
			req.Group = "g"
			req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
			return do[*kmsg.OffsetDeleteResponse](f, 0, req).ErrorCode
		}},
		{"ConsumerGroupHeartbeat", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "cg", "member-a", 0, 10000
			req.SubscribedTopicNames, req.Topics = []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			return do[*kmsg.ConsumerGroupHeartbeatResponse](f, 0, req).ErrorCode
		}},
		{"ConsumerGroupDescribe", groupAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrConsumerGroupDescribeRequest()
			req.Groups = []string{"cg"}
			return do[*kmsg.ConsumerGroupDescribeResponse](f, 0, req).Groups[0].ErrorCode
		}},
		{"CreateTopics", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "new", NumPartitions: 1, ReplicationFactor: -1}}
			return do[*kmsg.CreateTopicsResponse](f, 7, req).Topics[0].ErrorCode
		}},
		{"CreatePartitions", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "t", Count: 2}}
			return do[*kmsg.CreatePartitionsResponse](f, 3, req).Topics[0].ErrorCode
		}},
		{"DeleteRecords", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDeleteRecordsRequest()
			req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "t", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}}}
			return do[*kmsg.DeleteRecordsResponse](f, 2, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"OffsetForLeaderEpoch", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1}}}}
			return do[*kmsg.OffsetForLeaderEpochResponse](f, 4, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"InitProducerId", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.ProducerID, req.ProducerEpoch, req.TransactionTimeoutMillis = -1, -1, 60000
			return do[*kmsg.InitProducerIDResponse](f, 4, req).ErrorCode
		}},
		{"DescribeConfigs of a topic", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDescribeConfigsRequest()
			req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"}}
			return do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].ErrorCode
		}},
		{"DescribeConfigs of the broker", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDescribeConfigsRequest()
			req.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: ""}}
			return do[*kmsg.DescribeConfigsResponse](f, 4, req).Resources[0].ErrorCode
		}},
		{"AlterConfigs", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrAlterConfigsRequest()
			req.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"}}
			return do[*kmsg.AlterConfigsResponse](f, 2, req).Resources[0].ErrorCode
		}},
		{"IncrementalAlterConfigs", topicAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t"}}
			return do[*kmsg.IncrementalAlterConfigsResponse](f, 1, req).Resources[0].ErrorCode
		}},
		{"DescribeTopicPartitions of a named topic", topicAuth, func(f *fixture) int16 {
			return f.describeTopicPartitions(10, "", 0, "t").Topics[0].ErrorCode
		}},
		{"DescribeLogDirs", clusterAuth, func(f *fixture) int16 {
			resp := do[*kmsg.DescribeLogDirsResponse](f, 4, kmsg.NewPtrDescribeLogDirsRequest())
			if len(resp.Dirs) != 0 && resp.ErrorCode != 0 {
				return -1 // dirs in an answer that is an error
			}
			return resp.ErrorCode
		}},
		{"AlterReplicaLogDirs", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrAlterReplicaLogDirsRequest()
			req.Dirs = []kmsg.AlterReplicaLogDirsRequestDir{{Dir: "bucket://floe", Topics: []kmsg.AlterReplicaLogDirsRequestDirTopic{{Topic: "t", Partitions: []int32{0}}}}}
			return do[*kmsg.AlterReplicaLogDirsResponse](f, 2, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"ListPartitionReassignments", clusterAuth, func(f *fixture) int16 {
			return do[*kmsg.ListPartitionReassignmentsResponse](f, 0, kmsg.NewPtrListPartitionReassignmentsRequest()).ErrorCode
		}},
		{"AlterPartitionReassignments", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
			req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t", Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: []int32{}}}}}
			return do[*kmsg.AlterPartitionAssignmentsResponse](f, 1, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"ElectLeaders", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrElectLeadersRequest()
			req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0}}}
			return do[*kmsg.ElectLeadersResponse](f, 2, req).Topics[0].Partitions[0].ErrorCode
		}},
		{"UpdateFeatures", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.FeatureUpdates = []kmsg.UpdateFeaturesRequestFeatureUpdate{{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}}
			return do[*kmsg.UpdateFeaturesResponse](f, 2, req).ErrorCode
		}},
		{"ListConfigResources", clusterAuth, func(f *fixture) int16 {
			return do[*kmsg.ListConfigResourcesResponse](f, 1, kmsg.NewPtrListConfigResourcesRequest()).ErrorCode
		}},
		{"DescribeAcls", clusterAuth, func(f *fixture) int16 {
			return do[*kmsg.DescribeACLsResponse](f, 3, describeAllACLs()).ErrorCode
		}},
		{"CreateAcls", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrCreateACLsRequest()
			req.Creations = []kmsg.CreateACLsRequestCreation{binding("User:mallory", acl.Topic, "t", acl.Literal, acl.All, acl.Allow)}
			return do[*kmsg.CreateACLsResponse](f, 3, req).Results[0].ErrorCode
		}},
		{"DeleteAcls", clusterAuth, func(f *fixture) int16 {
			req := kmsg.NewPtrDeleteACLsRequest()
			req.Filters = []kmsg.DeleteACLsRequestFilter{deleteAllFilter()}
			return do[*kmsg.DeleteACLsResponse](f, 3, req).Results[0].ErrorCode
		}},
	}
	for _, c := range cases {
		t.Run(c.api, func(t *testing.T) {
			mallory.t, admin.t = t, t
			expectCode(t, "without acls", c.run(mallory), c.want)
			if got := c.run(admin); got == c.want {
				t.Errorf("super user: %s, want anything else", codeName(got))
			}
		})
	}

	// Lists leave out what the principal may not see, without an error.
	t.Run("Metadata of all topics", func(t *testing.T) {
		mallory.t, admin.t = t, t
		if got := do[*kmsg.MetadataResponse](mallory, 12, kmsg.NewPtrMetadataRequest()).Topics; len(got) != 0 {
			t.Errorf("mallory sees %d topics, want none", len(got))
		}
		if got := do[*kmsg.MetadataResponse](admin, 12, kmsg.NewPtrMetadataRequest()).Topics; len(got) == 0 {
			t.Errorf("admin sees no topic")
		}
	})
	t.Run("ListGroups", func(t *testing.T) {
		mallory.t, admin.t = t, t
		resp := do[*kmsg.ListGroupsResponse](mallory, 4, kmsg.NewPtrListGroupsRequest())
		expectCode(t, "list groups", resp.ErrorCode, 0)
		if len(resp.Groups) != 0 {
			t.Errorf("mallory lists %d groups, want none", len(resp.Groups))
		}
	})
}

func binding(principal string, rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kmsg.CreateACLsRequestCreation {
	c := kmsg.NewCreateACLsRequestCreation()
	c.Principal, c.Host, c.ResourceType, c.ResourceName, c.ResourcePatternType = principal, "*", rt, name, pt
	c.Operation, c.PermissionType = op, perm
	return c
}

func describeAllACLs() *kmsg.DescribeACLsRequest {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	return req
}

func deleteAllFilter() kmsg.DeleteACLsRequestFilter {
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	return f
}

// TestACLAPIs covers CreateAcls' checks, DescribeAcls' grouping and
// filters (ANY, MATCH, v0's literal only) and DeleteAcls' per-filter
// answers.
func TestACLAPIs(t *testing.T) {
	admin, _ := aclFixtures(t, acl.Options{})
	create := kmsg.NewPtrCreateACLsRequest()
	create.Creations = []kmsg.CreateACLsRequestCreation{
		binding("User:alice", acl.Topic, "orders", acl.Literal, acl.Read, acl.Allow),
		binding("User:alice", acl.Topic, "orders", acl.Literal, acl.Write, acl.Allow),
		binding("User:alice", acl.Topic, "ord", acl.Prefixed, acl.Describe, acl.Allow),
		binding("User:*", acl.Topic, "*", acl.Literal, acl.Delete, acl.Deny),
		binding("User:alice", acl.Cluster, "kafka-cluster", acl.Literal, acl.IdempotentWrite, acl.Allow),
		binding("User:alice", acl.Cluster, "other", acl.Literal, acl.Alter, acl.Allow),               // cluster has one name
		binding("User:alice", acl.Topic, "x", kmsg.ACLResourcePatternTypeMatch, acl.Read, acl.Allow), // MATCH is a filter
		binding("alice", acl.Topic, "x", acl.Literal, acl.Read, acl.Allow),                           // no principal type
		binding("User:alice", kmsg.ACLResourceTypeAny, "x", acl.Literal, acl.Read, acl.Allow),        // ANY is a filter
		binding("User:alice", acl.Topic, "x", acl.Literal, kmsg.ACLOperationAny, acl.Allow),          // ANY is a filter
		binding("User:alice", acl.Topic, "x", acl.Literal, acl.Read, kmsg.ACLPermissionTypeAny),      // ANY is a filter
	}
	results := do[*kmsg.CreateACLsResponse](admin, 3, create).Results
	for i, r := range results {
		want := int16(0)
		if i >= 5 {
			want = kerr.InvalidRequest.Code
		}
		expectCode(t, "create "+create.Creations[i].ResourceName, r.ErrorCode, want)
	}

	described := func(v int16, edit func(*kmsg.DescribeACLsRequest)) []string {
		t.Helper()
		req := describeAllACLs()
		edit(req)
		resp := do[*kmsg.DescribeACLsResponse](admin, v, req)
		expectCode(t, "describe", resp.ErrorCode, 0)
		var out []string
		for _, r := range resp.Resources {
			for _, a := range r.ACLs {
				out = append(out, r.ResourceType.String()+":"+r.ResourcePatternType.String()+":"+r.ResourceName+":"+a.Principal+":"+a.Operation.String()+":"+a.PermissionType.String())
			}
		}
		return out
	}
	all := described(3, func(*kmsg.DescribeACLsRequest) {})
	if len(all) != 5 {
		t.Fatalf("describe all: %v", all)
	}
	match := described(3, func(r *kmsg.DescribeACLsRequest) {
		r.ResourceType, r.ResourcePatternType, r.ResourceName = acl.Topic, kmsg.ACLResourcePatternTypeMatch, kmsg.StringPtr("orders")
	})
	if want := []string{
		"TOPIC:LITERAL:*:User:*:DELETE:DENY",
		"TOPIC:PREFIXED:ord:User:alice:DESCRIBE:ALLOW",
		"TOPIC:LITERAL:orders:User:alice:READ:ALLOW",
		"TOPIC:LITERAL:orders:User:alice:WRITE:ALLOW",
	}; !slices.Equal(match, want) {
		t.Errorf("describe MATCH orders:\n got %v\nwant %v", match, want)
	}
	if v0 := described(0, func(r *kmsg.DescribeACLsRequest) {}); len(v0) != 4 || slices.ContainsFunc(v0, func(s string) bool { return strings.Contains(s, "PREFIXED") }) {
		t.Errorf("describe v0 (literal only): %v", v0)
	}
	unknown := describeAllACLs()
	unknown.Operation = kmsg.ACLOperationUnknown
	expectCode(t, "describe with UNKNOWN", do[*kmsg.DescribeACLsResponse](admin, 3, unknown).ErrorCode, kerr.InvalidRequest.Code)

	// The grants apply: alice's IDEMPOTENT_WRITE and a DENY for everyone.
	alice := testutil.Dial(t, admin.a.Addr())
	alice.ClientID = "as:alice"
	af := &fixture{t: t, a: admin.a, c: alice}
	admin.createTopic("orders", 1)
	initPID := kmsg.NewPtrInitProducerIDRequest()
	initPID.ProducerID, initPID.ProducerEpoch, initPID.TransactionTimeoutMillis = -1, -1, 60000
	expectCode(t, "alice's InitProducerId", do[*kmsg.InitProducerIDResponse](af, 4, initPID).ErrorCode, 0)
	expectCode(t, "alice's produce", do[*kmsg.ProduceResponse](af, 9, produceRequest("orders", 0, batch(1, 1))).Topics[0].Partitions[0].ErrorCode, 0)
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("orders")}}
	expectCode(t, "alice deletes orders (denied to User:*)", do[*kmsg.DeleteTopicsResponse](af, 6, del).Topics[0].ErrorCode, kerr.TopicAuthorizationFailed.Code)

	// Delete: each filter answers the bindings it removed.
	dreq := kmsg.NewPtrDeleteACLsRequest()
	byOp := deleteAllFilter()
	byOp.Operation = acl.Write
	match2 := deleteAllFilter()
	match2.ResourceType, match2.ResourcePatternType, match2.ResourceName = acl.Topic, kmsg.ACLResourcePatternTypeMatch, kmsg.StringPtr("ordinal")
	none := deleteAllFilter()
	none.Principal = kmsg.StringPtr("User:nobody")
	dreq.Filters = []kmsg.DeleteACLsRequestFilter{byOp, match2, none}
	dres := do[*kmsg.DeleteACLsResponse](admin, 3, dreq).Results
	count := func(i int) int { return len(dres[i].MatchingACLs) }
	if count(0) != 1 || count(1) != 2 || count(2) != 0 {
		t.Errorf("delete: %d by operation (want 1), %d matching ordinal (want 2: ord*, the literal *), %d of nobody", count(0), count(1), count(2))
	}
	if left := described(3, func(*kmsg.DescribeACLsRequest) {}); len(left) != 2 {
		t.Errorf("after delete: %v, want READ on orders and the cluster's IDEMPOTENT_WRITE", left)
	}
}

// TestACLAPIsWithoutAuthorizer: Kafka answers SECURITY_DISABLED without an
// authorizer, and everything else is allowed.
func TestACLAPIsWithoutAuthorizer(t *testing.T) {
	f := start(t)
	expectCode(t, "describe", do[*kmsg.DescribeACLsResponse](f, 3, describeAllACLs()).ErrorCode, kerr.SecurityDisabled.Code)
	create := kmsg.NewPtrCreateACLsRequest()
	create.Creations = []kmsg.CreateACLsRequestCreation{binding("User:a", acl.Topic, "t", acl.Literal, acl.Read, acl.Allow)}
	expectCode(t, "create", do[*kmsg.CreateACLsResponse](f, 3, create).Results[0].ErrorCode, kerr.SecurityDisabled.Code)
	del := kmsg.NewPtrDeleteACLsRequest()
	del.Filters = []kmsg.DeleteACLsRequestFilter{deleteAllFilter()}
	expectCode(t, "delete", do[*kmsg.DeleteACLsResponse](f, 3, del).Results[0].ErrorCode, kerr.SecurityDisabled.Code)
}
