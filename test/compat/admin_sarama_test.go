package compat

import (
	"errors"
	"testing"

	"github.com/IBM/sarama"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestSaramaClusterAdmin drives the ClusterAdmin calls that
// TestSaramaAdmin, TestConfigsSarama, TestLogDirs and
// TestReassignmentsAndElections leave out: the cluster, partitions,
// list offsets and DeleteRecords, consumer group offsets and groups,
// ACLs, SCRAM credentials, client quotas and features. The agent runs
// the ACL authorizer open to everyone while no ACL matches.
func TestSaramaClusterAdmin(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.ACL = &acl.AuthorizerOptions{Options: acl.Options{AllowIfNoACL: true}}
	}})
	cfg := saramaConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	admin, err := sarama.NewClusterAdmin([]string{a.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	const topic, group = "sarama-admin", "sarama-admin-group"

	brokers, controller, err := admin.DescribeCluster()
	must("describe cluster", err)
	if len(brokers) != 1 || controller != brokers[0].ID() {
		t.Fatalf("describe cluster: %d brokers, controller %d", len(brokers), controller)
	}
	c, err := admin.Controller()
	must("controller", err)
	if c.ID() != controller {
		t.Errorf("controller %d, DescribeCluster says %d", c.ID(), controller)
	}

	must("create topic", admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false))
	must("create partitions (validate only)", admin.CreatePartitions(topic, 4, nil, true))
	must("create partitions", admin.CreatePartitions(topic, 3, nil, false))
	if err := admin.CreatePartitions(topic, 2, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
		t.Errorf("fewer partitions: %v, want %v", err, sarama.ErrInvalidPartitions)
	}
	md, err := admin.DescribeTopics([]string{topic})
	must("describe topics", err)
	if len(md) != 1 || len(md[0].Partitions) != 3 {
		t.Fatalf("describe topics: %+v", md)
	}

	producer := newSaramaIdempotentProducer(t, a.Addr())
	for p := range int32(3) {
		for range 10 {
			_, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.StringEncoder("v")})
			must("send", err)
		}
	}
	offsets := func(ts int64) map[int32]int64 {
		t.Helper()
		res, err := admin.ListOffsets(map[string]map[int32]int64{topic: {0: ts, 1: ts, 2: ts}}, nil)
		must("list offsets", err)
		out := map[int32]int64{}
		for p, r := range res[topic] {
			if r.Err != nil && !errors.Is(r.Err, sarama.ErrNoError) {
				t.Fatalf("list offsets partition %d: %v", p, r.Err)
			}
			out[p] = r.Offset
		}
		return out
	}
	ends := offsets(sarama.OffsetNewest)
	if ends[0]+ends[1]+ends[2] != 30 {
		t.Fatalf("end offsets %v, want 30 records", ends)
	}
	// DeleteRecords moves the log start offset of partition 0 to 5.
	var target int32 = -1
	for p, end := range ends {
		if end >= 5 && target < 0 {
			target = p
		}
	}
	must("delete records", admin.DeleteRecords(topic, map[int32]int64{target: 5}))
	if got := offsets(sarama.OffsetOldest)[target]; got != 5 {
		t.Errorf("after DeleteRecords: partition %d starts at %d, want 5", target, got)
	}

	// Group offsets without members.
	committed, err := admin.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{topic: {0: {Offset: 1, Metadata: "s"}, 1: {Offset: 2}}}, nil)
	must("alter consumer group offsets", err)
	for _, ps := range committed.Errors {
		for p, code := range ps {
			if code != sarama.ErrNoError {
				t.Errorf("commit partition %d: %v", p, code)
			}
		}
	}
	fetched, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	must("list consumer group offsets", err)
	if b := fetched.GetBlock(topic, 0); b == nil || b.Offset != 1 || b.Metadata != "s" {
		t.Errorf("offset of partition 0: %+v", b)
	}
	if b := fetched.GetBlock(topic, 2); b == nil || b.Offset != -1 {
		t.Errorf("offset of partition 2: %+v, want -1", b)
	}
	batch, err := admin.ListConsumerGroupOffsetsBatch(map[string]map[string][]int32{group: {topic: {1}}, "sarama-no-group": {topic: {1}}})
	must("list consumer group offsets batch", err)
	if g := batch[group]; g == nil || g.Blocks[topic][1] == nil || g.Blocks[topic][1].Offset != 2 {
		t.Errorf("batch offsets of %s: %+v", group, g)
	}
	must("delete consumer group offset", admin.DeleteConsumerGroupOffset(group, topic, 1))
	fetched, err = admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {1}})
	must("list consumer group offsets after delete", err)
	if b := fetched.GetBlock(topic, 1); b == nil || b.Offset != -1 {
		t.Errorf("after DeleteConsumerGroupOffset: %+v", b)
	}
	groups, err := admin.ListConsumerGroups()
	must("list consumer groups", err)
	if _, ok := groups[group]; !ok {
		t.Errorf("list consumer groups: %v, want %s", groups, group)
	}
	described, err := admin.DescribeConsumerGroups([]string{group})
	must("describe consumer groups", err)
	if len(described) != 1 || described[0].State != "Empty" {
		t.Errorf("describe consumer groups: %+v", described)
	}
	coord, err := admin.Coordinator(group)
	must("coordinator", err)
	if coord.ID() != controller {
		t.Errorf("coordinator %d, want the one agent %d", coord.ID(), controller)
	}
	must("delete consumer group", admin.DeleteConsumerGroup(group))
	if err := admin.DeleteConsumerGroup(group); !errors.Is(err, sarama.ErrGroupIDNotFound) {
		t.Errorf("delete a deleted group: %v, want %v", err, sarama.ErrGroupIDNotFound)
	}

	// ACLs, for another principal so this client stays allowed.
	res := sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: topic, ResourcePatternType: sarama.AclPatternLiteral}
	must("create acl", admin.CreateACL(res, sarama.Acl{Principal: "User:sarama-user", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}))
	name, principal := topic, "User:sarama-user"
	filter := sarama.AclFilter{ResourceType: sarama.AclResourceTopic, ResourceName: &name, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Principal: &principal, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny}
	acls, err := admin.ListAcls(filter)
	must("list acls", err)
	if len(acls) != 1 || len(acls[0].Acls) != 1 || acls[0].Acls[0].Operation != sarama.AclOperationRead {
		t.Errorf("list acls: %+v", acls)
	}
	matched, err := admin.DeleteACL(filter, false)
	must("delete acl", err)
	if len(matched) != 1 || matched[0].Err != sarama.ErrNoError {
		t.Errorf("delete acl: %+v", matched)
	}

	// SCRAM credentials.
	upserted, err := admin.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{Name: "sarama-user", Mechanism: sarama.SCRAM_MECHANISM_SHA_256, Iterations: 4096, Salt: []byte("sarama-salt-0123"), Password: []byte("secret")}})
	must("upsert user scram credentials", err)
	if len(upserted) != 1 || upserted[0].ErrorCode != sarama.ErrNoError {
		for _, u := range upserted {
			t.Errorf("upsert %s: %v %v", u.User, u.ErrorCode, strOr(u.ErrorMessage))
		}
	}
	// sarama sends an empty salt when given none; Kafka refuses it.
	unsalted, err := admin.UpsertUserScramCredentials([]sarama.AlterUserScramCredentialsUpsert{{Name: "sarama-other", Mechanism: sarama.SCRAM_MECHANISM_SHA_256, Iterations: 4096, Password: []byte("secret")}})
	must("upsert without salt", err)
	if len(unsalted) != 1 || unsalted[0].ErrorCode != sarama.KError(93) { // UNACCEPTABLE_CREDENTIAL
		t.Errorf("upsert without salt: %+v, want UNACCEPTABLE_CREDENTIAL", unsalted)
	}
	creds, err := admin.DescribeUserScramCredentials([]string{"sarama-user", "sarama-nobody"})
	must("describe user scram credentials", err)
	byUser := map[string]*sarama.DescribeUserScramCredentialsResult{}
	for _, c := range creds {
		byUser[c.User] = c
	}
	if c := byUser["sarama-user"]; c == nil || c.ErrorCode != sarama.ErrNoError || len(c.CredentialInfos) != 1 || c.CredentialInfos[0].Iterations != 4096 {
		t.Errorf("describe sarama-user: %+v", c)
	}
	if c := byUser["sarama-nobody"]; c == nil || c.ErrorCode != sarama.KError(91) {
		t.Errorf("describe an unknown user: %+v, want RESOURCE_NOT_FOUND", c)
	}
	deletedCreds, err := admin.DeleteUserScramCredentials([]sarama.AlterUserScramCredentialsDelete{{Name: "sarama-user", Mechanism: sarama.SCRAM_MECHANISM_SHA_256}})
	must("delete user scram credentials", err)
	if len(deletedCreds) != 1 || deletedCreds[0].ErrorCode != sarama.ErrNoError {
		t.Errorf("delete credentials: %+v", deletedCreds)
	}

	// Client quotas.
	entity := []sarama.QuotaEntityComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Name: "sarama-app"}}
	must("alter client quotas", admin.AlterClientQuotas(entity, sarama.ClientQuotasOp{Key: "consumer_byte_rate", Value: 2048}, false))
	quotas, err := admin.DescribeClientQuotas([]sarama.QuotaFilterComponent{{EntityType: sarama.QuotaEntityClientID, MatchType: sarama.QuotaMatchExact, Match: "sarama-app"}}, false)
	must("describe client quotas", err)
	if len(quotas) != 1 || quotas[0].Values["consumer_byte_rate"] != 2048 {
		t.Errorf("describe client quotas: %+v", quotas)
	}

	// Features (kept by the metadata store, changed by UpdateFeatures as
	// Kafka's controller changes them): the finalized level is accepted;
	// a downgrade without AllowDowngrade and a level above the supported
	// range are refused; a downgrade with it, and the upgrade back, apply.
	same, err := admin.UpdateFeatures([]sarama.FeatureUpdate{{Feature: "group.version", MaxVersionLevel: 1}})
	must("update features", err)
	if len(same) != 1 || same[0].ErrorCode != sarama.ErrNoError {
		t.Errorf("update group.version to its level: %+v", same)
	}
	refused := func(what string, u sarama.FeatureUpdate) {
		t.Helper()
		res, err := admin.UpdateFeatures([]sarama.FeatureUpdate{u})
		if err == nil && (len(res) != 1 || res[0].ErrorCode != sarama.ErrInvalidUpdateVersion) {
			t.Errorf("%s: %+v, want INVALID_UPDATE_VERSION", what, res)
		} else if err != nil && !errors.Is(err, sarama.ErrInvalidUpdateVersion) {
			t.Errorf("%s: %v, want INVALID_UPDATE_VERSION", what, err)
		}
	}
	refused("downgrade transaction.version without AllowDowngrade", sarama.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 1})
	refused("transaction.version above its range", sarama.FeatureUpdate{Feature: "transaction.version", MaxVersionLevel: 9})
	for _, u := range []sarama.FeatureUpdate{
		{Feature: "transaction.version", MaxVersionLevel: 1, AllowDowngrade: true},
		{Feature: "transaction.version", MaxVersionLevel: 2},
	} {
		res, err := admin.UpdateFeatures([]sarama.FeatureUpdate{u})
		must("update transaction.version", err)
		if len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
			t.Errorf("update %+v: %+v", u, res)
		}
	}
}

func strOr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}
