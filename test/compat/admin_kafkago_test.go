package compat

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestKafkaGoClientAdmin drives the admin APIs segmentio/kafka-go's Client
// exposes, each with its own codec: topics, partitions, configs, offsets,
// groups, quotas, SCRAM credentials, ACLs, elections and reassignments.
// The agent runs the ACL authorizer open to everyone while no ACL
// matches, so the ACL calls are real ones.
func TestKafkaGoClientAdmin(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.ACL = &acl.AuthorizerOptions{Options: acl.Options{AllowIfNoACL: true}}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(a.Addr()), Timeout: 10 * time.Second}
	const topic, group = "kg-admin", "kg-admin-group"
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	versions, err := client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	must("api versions", err)
	if versions.Error != nil || len(versions.ApiKeys) < 40 {
		t.Fatalf("api versions: %v, %d keys", versions.Error, len(versions.ApiKeys))
	}

	created, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 2, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
	}}})
	must("create topics", err)
	must("create "+topic, created.Errors[topic])
	again, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	must("create topics again", err)
	if !errors.Is(again.Errors[topic], kafka.TopicAlreadyExists) {
		t.Errorf("create an existing topic: %v, want %v", again.Errors[topic], kafka.TopicAlreadyExists)
	}

	grown, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}}})
	must("create partitions", err)
	must("grow "+topic, grown.Errors[topic])
	shrink, err := client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 2}}})
	must("create partitions (fewer)", err)
	if !errors.Is(shrink.Errors[topic], kafka.InvalidPartitionNumber) {
		t.Errorf("fewer partitions: %v, want %v", shrink.Errors[topic], kafka.InvalidPartitionNumber)
	}
	// kafka-go's transport answers Metadata from its cache (refreshed
	// every 6s): ask through a new one.
	fresh := &kafka.Client{Addr: kafka.TCP(a.Addr()), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	md, err := fresh.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	must("metadata", err)
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata: %+v", md.Topics)
	}

	describeTopic := func() map[string]string {
		t.Helper()
		resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic},
		}})
		must("describe configs", err)
		if len(resp.Resources) != 1 || resp.Resources[0].Error != nil {
			t.Fatalf("describe configs: %+v", resp.Resources)
		}
		out := map[string]string{}
		for _, e := range resp.Resources[0].ConfigEntries {
			out[e.ConfigName] = e.ConfigValue
		}
		return out
	}
	if got := describeTopic()["retention.ms"]; got != "3600000" {
		t.Errorf("retention.ms %q, want 3600000", got)
	}
	altered, err := client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "retention.ms", Value: "7200000"}},
	}}})
	must("alter configs", err)
	for r, err := range altered.Errors {
		must("alter "+r.Name, err)
	}
	if got := describeTopic()["retention.ms"]; got != "7200000" {
		t.Errorf("after AlterConfigs: retention.ms %q, want 7200000", got)
	}
	incr, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "cleanup.policy", Value: "compact", ConfigOperation: kafka.ConfigOperationSet}},
	}}})
	must("incremental alter configs", err)
	for _, r := range incr.Resources {
		must("incremental alter "+r.ResourceName, r.Error)
	}
	if got := describeTopic(); got["cleanup.policy"] != "compact" || got["retention.ms"] != "7200000" {
		t.Errorf("after IncrementalAlterConfigs: cleanup.policy %q retention.ms %q", got["cleanup.policy"], got["retention.ms"])
	}
	broker, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeBroker, ResourceName: strconv.Itoa(md.Topics[0].Partitions[0].Leader.ID), ConfigNames: []string{"advertised.listeners"}},
	}})
	must("describe broker configs", err)
	if len(broker.Resources) != 1 || broker.Resources[0].Error != nil || len(broker.Resources[0].ConfigEntries) != 1 ||
		broker.Resources[0].ConfigEntries[0].ConfigValue != "PLAINTEXT://"+a.Addr() {
		t.Errorf("broker advertised.listeners: %+v", broker.Resources)
	}

	// Records to list offsets of (kafka-go writes with keys; compaction
	// needs them).
	w := &kafka.Writer{Addr: kafka.TCP(a.Addr()), Topic: topic, RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Key: []byte{byte('a' + i%26), byte(i)}, Value: []byte("v")})
	}
	must("write", w.WriteMessages(ctx, msgs...))
	offsets, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0), kafka.FirstOffsetOf(1), kafka.LastOffsetOf(1), kafka.FirstOffsetOf(2), kafka.LastOffsetOf(2)},
	}})
	must("list offsets", err)
	ends := map[int]int64{}
	total := int64(0)
	for _, p := range offsets.Topics[topic] {
		must("list offsets partition", p.Error)
		if p.FirstOffset != 0 {
			t.Errorf("partition %d first offset %d", p.Partition, p.FirstOffset)
		}
		ends[p.Partition] = p.LastOffset
		total += p.LastOffset
	}
	if total != 30 || len(ends) != 3 {
		t.Fatalf("end offsets %v, want 30 records over 3 partitions", ends)
	}

	// Offsets of a group without members (generation -1), read back,
	// deleted for one partition, then the group described, listed and
	// deleted.
	commit := map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: ends[0], Metadata: "kg"}, {Partition: 1, Offset: 1}}}
	committed, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: commit})
	must("offset commit", err)
	for _, p := range committed.Topics[topic] {
		must("commit partition", p.Error)
	}
	fetched, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0, 1, 2}}})
	must("offset fetch", err)
	must("offset fetch", fetched.Error)
	got := map[int]int64{}
	for _, p := range fetched.Topics[topic] {
		must("offset fetch partition", p.Error)
		got[p.Partition] = p.CommittedOffset
	}
	if got[0] != ends[0] || got[1] != 1 || got[2] != -1 {
		t.Errorf("committed %v, want 0:%d 1:1 2:-1", got, ends[0])
	}
	lag, err := client.ConsumerOffsets(ctx, kafka.TopicAndGroup{Topic: topic, GroupId: group})
	must("consumer offsets", err)
	if lag[1] != 1 {
		t.Errorf("consumer offsets %v", lag)
	}
	deletedOffsets, err := client.OffsetDelete(ctx, &kafka.OffsetDeleteRequest{GroupID: group, Topics: map[string][]int{topic: {1}}})
	must("offset delete", err)
	must("offset delete", deletedOffsets.Error)
	for _, p := range deletedOffsets.Topics[topic] {
		must("offset delete partition", p.Error)
	}
	fetched, err = client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {1}}})
	must("offset fetch after delete", err)
	if p := fetched.Topics[topic]; len(p) != 1 || p[0].CommittedOffset != -1 {
		t.Errorf("after OffsetDelete: %+v", p)
	}
	described, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	must("describe groups", err)
	if len(described.Groups) != 1 || described.Groups[0].Error != nil || described.Groups[0].GroupState != "Empty" {
		t.Errorf("describe groups: %+v", described.Groups)
	}
	listed, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	must("list groups", err)
	if !slices.ContainsFunc(listed.Groups, func(g kafka.ListGroupsResponseGroup) bool { return g.GroupID == group }) {
		t.Errorf("list groups: %+v, want %s", listed.Groups, group)
	}
	deletedGroups, err := client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group, "kg-no-such-group"}})
	must("delete groups", err)
	must("delete "+group, deletedGroups.Errors[group])
	if !errors.Is(deletedGroups.Errors["kg-no-such-group"], kafka.GroupIdNotFound) {
		t.Errorf("delete an unknown group: %v, want %v", deletedGroups.Errors["kg-no-such-group"], kafka.GroupIdNotFound)
	}

	// Quotas.
	quotaEntity := []kafka.AlterClientQuotaEntity{{EntityType: "client-id", EntityName: "kg-app"}}
	alteredQuotas, err := client.AlterClientQuotas(ctx, &kafka.AlterClientQuotasRequest{Entries: []kafka.AlterClientQuotaEntry{{
		Entities: quotaEntity, Ops: []kafka.AlterClientQuotaOps{{Key: "producer_byte_rate", Value: 1 << 20}},
	}}})
	must("alter client quotas", err)
	for _, e := range alteredQuotas.Entries {
		must("alter quota", e.Error)
	}
	quotas, err := client.DescribeClientQuotas(ctx, &kafka.DescribeClientQuotasRequest{Components: []kafka.DescribeClientQuotasRequestComponent{{EntityType: "client-id", MatchType: 0, Match: "kg-app"}}})
	must("describe client quotas", err)
	if quotas.Error != nil || len(quotas.Entries) != 1 || len(quotas.Entries[0].Values) != 1 || quotas.Entries[0].Values[0].Value != 1<<20 {
		t.Errorf("describe client quotas: %v %+v", quotas.Error, quotas.Entries)
	}

	// SCRAM credentials: kafka-go sends the salted password the client
	// computed.
	upsert, err := client.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{Upsertions: []kafka.UserScramCredentialsUpsertion{{
		Name: "kg-user", Mechanism: kafka.ScramMechanismSha512, Iterations: 8192, Salt: []byte("0123456789abcdef"), SaltedPassword: make([]byte, 64),
	}}})
	must("alter user scram credentials", err)
	for _, r := range upsert.Results {
		must("upsert "+r.User, r.Error)
	}
	creds, err := client.DescribeUserScramCredentials(ctx, &kafka.DescribeUserScramCredentialsRequest{Users: []kafka.UserScramCredentialsUser{{Name: "kg-user"}}})
	must("describe user scram credentials", err)
	if creds.Error != nil || len(creds.Results) != 1 || len(creds.Results[0].CredentialInfos) != 1 ||
		creds.Results[0].CredentialInfos[0].Mechanism != kafka.ScramMechanismSha512 || creds.Results[0].CredentialInfos[0].Iterations != 8192 {
		t.Errorf("describe user scram credentials: %v %+v", creds.Error, creds.Results)
	}

	// ACLs for another principal, so that this client stays allowed.
	entry := kafka.ACLEntry{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ResourcePatternType: kafka.PatternTypeLiteral,
		Principal: "User:kg-user", Host: "*", Operation: kafka.ACLOperationTypeRead, PermissionType: kafka.ACLPermissionTypeAllow,
	}
	createdACLs, err := client.CreateACLs(ctx, &kafka.CreateACLsRequest{ACLs: []kafka.ACLEntry{entry}})
	must("create acls", err)
	for _, err := range createdACLs.Errors {
		must("create acl", err)
	}
	acls, err := client.DescribeACLs(ctx, &kafka.DescribeACLsRequest{Filter: kafka.ACLFilter{
		ResourceTypeFilter: kafka.ResourceTypeTopic, ResourceNameFilter: topic, ResourcePatternTypeFilter: kafka.PatternTypeAny,
		Operation: kafka.ACLOperationTypeAny, PermissionType: kafka.ACLPermissionTypeAny,
	}})
	must("describe acls", err)
	if acls.Error != nil || len(acls.Resources) != 1 || len(acls.Resources[0].ACLs) != 1 || acls.Resources[0].ACLs[0].Principal != "User:kg-user" {
		t.Errorf("describe acls: %v %+v", acls.Error, acls.Resources)
	}
	deletedACLs, err := client.DeleteACLs(ctx, &kafka.DeleteACLsRequest{Filters: []kafka.DeleteACLsFilter{{
		ResourceTypeFilter: kafka.ResourceTypeTopic, ResourceNameFilter: topic, ResourcePatternTypeFilter: kafka.PatternTypeLiteral,
		PrincipalFilter: "User:kg-user", HostFilter: "*", Operation: kafka.ACLOperationTypeAny, PermissionType: kafka.ACLPermissionTypeAny,
	}}})
	must("delete acls", err)
	if len(deletedACLs.Results) != 1 || deletedACLs.Results[0].Error != nil || len(deletedACLs.Results[0].MatchingACLs) != 1 {
		t.Errorf("delete acls: %+v", deletedACLs.Results)
	}

	// Elections and reassignments: a partition's one replica is its
	// leader, so no election is needed and nothing is ever moving.
	leader := md.Topics[0].Partitions[0].Leader.ID
	elected, err := client.ElectLeaders(ctx, &kafka.ElectLeadersRequest{Topic: topic, Partitions: []int{0, 1}, Timeout: 5 * time.Second})
	must("elect leaders", err)
	for _, p := range elected.PartitionResults {
		if !errors.Is(p.Error, kafka.ElectionNotNeeded) {
			t.Errorf("elect partition %d: %v, want %v", p.Partition, p.Error, kafka.ElectionNotNeeded)
		}
	}
	if len(elected.PartitionResults) != 2 {
		t.Errorf("elect leaders: %+v", elected)
	}
	reassigned, err := client.AlterPartitionReassignments(ctx, &kafka.AlterPartitionReassignmentsRequest{Topic: topic, Timeout: 5 * time.Second,
		Assignments: []kafka.AlterPartitionReassignmentsRequestAssignment{{PartitionID: 0, BrokerIDs: []int{leader}}}})
	must("alter partition reassignments", err)
	must("alter partition reassignments", reassigned.Error)
	for _, p := range reassigned.PartitionResults {
		must("reassign partition", p.Error)
	}
	moving, err := client.ListPartitionReassignments(ctx, &kafka.ListPartitionReassignmentsRequest{Timeout: 5 * time.Second,
		Topics: map[string]kafka.ListPartitionReassignmentsRequestTopic{topic: {PartitionIndexes: []int{0, 1}}}})
	must("list partition reassignments", err)
	if moving.Error != nil || len(moving.Topics) != 0 {
		t.Errorf("list partition reassignments: %v %+v, want none in progress", moving.Error, moving.Topics)
	}

	deleted, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic, "kg-no-such-topic"}})
	must("delete topics", err)
	must("delete "+topic, deleted.Errors[topic])
	if !errors.Is(deleted.Errors["kg-no-such-topic"], kafka.UnknownTopicOrPartition) {
		t.Errorf("delete an unknown topic: %v, want %v", deleted.Errors["kg-no-such-topic"], kafka.UnknownTopicOrPartition)
	}
}
