package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
	"github.com/floe-io/floe/internal/wire"
)

// Until SASL lands, these tests name the principal of each request in
// its client id: "as:alice" is User:alice (agent.Config.TestPrincipal,
// which only tests can set). User:admin is a super user.
func principalFromClientID(req *wire.Request) string {
	if name, ok := strings.CutPrefix(req.ClientID, "as:"); ok {
		return "User:" + name
	}
	return req.Principal
}

// aclCluster starts three agents on one metadata store, each with the
// ACL authorizer, User:admin as super user, and its ACLs polled every
// second (the default).
func aclCluster(t *testing.T) []*agenttest.Agent {
	opts := agenttest.Options{Config: func(c *agent.Config) {
		c.ACL = &acl.AuthorizerOptions{Options: acl.Options{SuperUsers: []string{"User:admin"}}}
		c.TestPrincipal = principalFromClientID
	}}
	a := agenttest.Start(t, opts)
	return []*agenttest.Agent{a, agenttest.StartPeer(t, a, opts), agenttest.StartPeer(t, a, opts)}
}

// clientAs returns a franz-go client acting as User:name.
func clientAs(t *testing.T, addr, name string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("as:" + name)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// visibleTopics asks cl's seed agent for all topics' metadata.
func visibleTopics(ctx context.Context, cl *kgo.Client) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range resp.Topics {
		names = append(names, *t.Topic)
	}
	slices.Sort(names)
	return names, nil
}

// TestACLsKadm: a user with no ACLs sees no topics and gets Kafka's
// authorization errors on produce, fetch, group join, offset commit and
// topic creation; one prefixed grant (topics and groups app-, created
// with kadm) opens exactly what it names; revoking it through one agent
// closes it on all three within seconds.
func TestACLsKadm(t *testing.T) {
	agents := aclCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := kadm.NewClient(clientAs(t, agents[0].Addr(), "admin"))
	for _, topic := range []string{"app-orders", "secret"} {
		if r, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("admin creates %s: %v %v", topic, err, r.Err)
		}
	}

	alice := clientAs(t, agents[0].Addr(), "alice", kgo.DisableIdempotentWrite(), kgo.RequestRetries(0),
		kgo.RecordRetries(1), kgo.ProduceRequestTimeout(5*time.Second))
	aliceAdm := kadm.NewClient(alice)
	// alice's raw requests go to the first agent; aliceAt[i] asks agent i.
	first := alice.SeedBrokers()[0]
	var aliceAt []*kgo.Client
	for _, a := range agents {
		aliceAt = append(aliceAt, clientAs(t, a.Addr(), "alice"))
	}
	produce := func(topic string) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return alice.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	fetchCode := func(topic string) int16 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10, 1, 1<<20
		// kgo sends the agent's newest Fetch, which names topics by ID
		// (v13+): the admin looks the ID up.
		described, err := admin.ListTopics(ctx, topic)
		if err != nil {
			t.Fatalf("topic id of %s: %v", topic, err)
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, described[topic].ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, first)
		if err != nil {
			t.Fatalf("fetch %s: %v", topic, err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	joinCode := func(group string) int16 {
		t.Helper()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = group, "consumer", 10000, 10000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
		resp, err := req.RequestWith(ctx, first)
		if err != nil {
			t.Fatalf("join %s: %v", group, err)
		}
		return resp.ErrorCode
	}
	// Raw commits, by name and id: kadm's CommitOffsets answers a topic
	// it cannot describe UNKNOWN_TOPIC_OR_PARTITION without asking.
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commitCode := func(group, topic string) int16 {
		t.Helper()
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, topics[topic].ID
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset, rp.LeaderEpoch = 0, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, alice)
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) {
			return ke.Code // FindCoordinator's answer: kgo asks it first
		}
		if err != nil {
			t.Fatalf("commit %s %s: %v", group, topic, err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	initProducerCode := func() int16 {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch, req.TransactionTimeoutMillis = -1, -1, 60000
		resp, err := req.RequestWith(ctx, first)
		if err != nil {
			t.Fatalf("init producer id: %v", err)
		}
		return resp.ErrorCode
	}
	createErr := func(topic string) error {
		r, err := aliceAdm.CreateTopic(ctx, 1, 1, nil, topic)
		if err != nil {
			return err
		}
		return r.Err
	}
	want := func(what string, got, want error) {
		t.Helper()
		if !errors.Is(got, want) && !(want == nil && got == nil) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	wantCode := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if code := int16(0); want != nil {
			code = want.Code
			if got != code {
				t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
			}
		} else if got != 0 {
			t.Errorf("%s: %v, want no error", what, kerr.ErrorForCode(got))
		}
	}

	// No ACLs: nothing is visible or allowed.
	if names, err := visibleTopics(ctx, alice); err != nil || len(names) != 0 {
		t.Fatalf("alice without acls sees %v (%v), want nothing", names, err)
	}
	want("produce without acls", produce("app-orders"), kerr.TopicAuthorizationFailed)
	wantCode("fetch without acls", fetchCode("app-orders"), kerr.TopicAuthorizationFailed)
	wantCode("join without acls", joinCode("app-g"), kerr.GroupAuthorizationFailed)
	wantCode("commit without acls", commitCode("app-g", "app-orders"), kerr.GroupAuthorizationFailed)
	want("create without acls", createErr("app-new"), kerr.TopicAuthorizationFailed)
	if res, err := aliceAdm.DescribeACLs(ctx, allACLs()); err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("alice describes acls: %+v, %v; want %v", res, err, kerr.ClusterAuthorizationFailed)
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster or
	// WRITE on some topic.
	wantCode("init producer id without acls", initProducerCode(), kerr.ClusterAuthorizationFailed)
	idem := clientAs(t, agents[0].Addr(), "alice", kgo.RequestRetries(0), kgo.RecordRetries(1))

	// One prefixed grant: everything on topics and groups starting app-.
	start := time.Now()
	grant := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("app-").Groups("app-").
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll)
	created, err := admin.CreateACLs(ctx, grant)
	if err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
	for _, c := range created {
		if c.Err != nil {
			t.Fatalf("CreateACLs %s %s: %v %s", c.Type, c.Name, c.Err, c.ErrMessage)
		}
	}
	described, err := admin.DescribeACLs(ctx, allACLs())
	if err != nil || len(described) != 1 || len(described[0].Described) != 2 {
		t.Fatalf("DescribeACLs: %+v, %v; want the 2 bindings", described, err)
	}

	// The agent that made the change applies it at once; the others
	// within their poll.
	if names, err := visibleTopics(ctx, alice); err != nil || !slices.Equal(names, []string{"app-orders"}) {
		t.Fatalf("alice with the grant sees %v (%v), want [app-orders]", names, err)
	}
	want("produce app-orders", produce("app-orders"), nil)
	want("produce secret", produce("secret"), kerr.TopicAuthorizationFailed)
	wantCode("fetch app-orders", fetchCode("app-orders"), nil)
	wantCode("fetch secret", fetchCode("secret"), kerr.TopicAuthorizationFailed)
	wantCode("join other-g", joinCode("other-g"), kerr.GroupAuthorizationFailed)
	wantCode("commit app-g", commitCode("app-g", "app-orders"), nil)
	wantCode("commit app-g for secret", commitCode("app-g", "secret"), kerr.TopicAuthorizationFailed)
	wantCode("commit other-g", commitCode("other-g", "app-orders"), kerr.GroupAuthorizationFailed)
	wantCode("init producer id with WRITE on app- (KIP-679)", initProducerCode(), nil)
	want("create app-new", createErr("app-new"), nil)
	want("create other-new", createErr("other-new"), kerr.TopicAuthorizationFailed)
	{
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := idem.ProduceSync(pctx, &kgo.Record{Topic: "app-orders", Value: []byte("idempotent")}).FirstErr()
		cancel()
		want("idempotent produce with WRITE on app- (KIP-679)", err, nil)
	}
	// The other agents see the grant within their poll.
	waitVisible(ctx, t, aliceAt, start, []string{"app-new", "app-orders"})

	// A consumer group in app- consumes app-orders and commits.
	cons := clientAs(t, agents[1].Addr(), "alice", kgo.ConsumerGroup("app-g"), kgo.ConsumeTopics("app-orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 2 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("group consumer: %v", err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("group commit: %v", err)
	}

	// Revoke through the first agent; measure when each agent refuses.
	start = time.Now()
	deleted, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("app-").Groups("app-").
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpAll))
	if err != nil || len(deleted) != 2 || len(deleted[0].Deleted) != 1 || len(deleted[1].Deleted) != 1 {
		t.Fatalf("DeleteACLs: %+v, %v", deleted, err)
	}
	waitVisible(ctx, t, aliceAt, start, nil)
	want("produce after revocation", produce("app-orders"), kerr.TopicAuthorizationFailed)
	wantCode("fetch after revocation", fetchCode("app-orders"), kerr.TopicAuthorizationFailed)
	wantCode("join after revocation", joinCode("app-g"), kerr.GroupAuthorizationFailed)
}

// TestACLsDisabled: without an authorizer everything is allowed and the
// ACL APIs answer SECURITY_DISABLED, as Kafka does.
func TestACLsDisabled(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	described, err := adm.DescribeACLs(ctx, allACLs())
	if err != nil || len(described) != 1 || !errors.Is(described[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("DescribeACLs: %+v, %v; want %v", described, err, kerr.SecurityDisabled)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("t").Operations(kadm.OpRead))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("CreateACLs: %+v, %v; want %v", res, err, kerr.SecurityDisabled)
	}
}

// allACLs is a filter for every allow binding.
func allACLs() *kadm.ACLBuilder {
	return kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Operations(kadm.OpAny)
}

// waitVisible waits until every agent (at[i] asks agent i) shows exactly
// the topics want,
// and logs how long after start each did.
func waitVisible(ctx context.Context, t *testing.T, at []*kgo.Client, start time.Time, want []string) {
	t.Helper()
	for i, cl := range at {
		for {
			names, err := visibleTopics(ctx, cl)
			if err != nil {
				t.Fatalf("agent %d: %v", i, err)
			}
			if slices.Equal(names, want) {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("agent %d shows %v 10s after the change, want %v", i, names, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("agent %d shows %v %v after the change", i, want, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the change took %v to reach every agent, want about the 1s poll", d)
	}
}

// TestACLsKafkaPython drives the ACL APIs with kafka-python's admin
// client (create_acls with a PREFIXED ResourcePattern, describe_acls
// with a MATCH filter, delete_acls) and checks what User:bob can do
// before the grant, with it and after it is deleted, on a 3-agent
// cluster.
func TestACLsKafkaPython(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "from kafka.admin import ACL, ResourcePattern, ACLResourcePatternType").CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import kafka-python's ACL classes: %v\n%s", debianPython, err, out)
	}
	agents := aclCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := runCmd(t, ctx, "", debianPython, "testdata/kafka_python_acls.py", agents[0].Addr(), fmt.Sprint(len(agents)))
	var res struct {
		Before map[string]any `json:"before"`
		Create struct {
			Succeeded int      `json:"succeeded"`
			Failed    []string `json:"failed"`
		} `json:"create_acls"`
		Described  []map[string]string `json:"described"`
		AfterGrant map[string]any      `json:"after_grant"`
		Deleted    int                 `json:"deleted"`
		GrantedS   float64             `json:"granted_after_s"`
		RevokedS   float64             `json:"revoked_after_s"`
		Revoked    map[string]any      `json:"after_revoke"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output: %v\n%s", err, out)
	}
	t.Logf("kafka-python: %s", out)
	check := func(stage string, got map[string]any, key string, want any) {
		t.Helper()
		g, _ := json.Marshal(got[key])
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s %s: %s, want %s", stage, key, g, w)
		}
	}
	check("before", res.Before, "topics", []string{})
	denied := map[string]int{"produce": int(kerr.TopicAuthorizationFailed.Code), "fetch": int(kerr.TopicAuthorizationFailed.Code)}
	check("before", res.Before, "wire", denied)
	check("before", res.Before, "join", "GroupAuthorizationFailedError")
	check("before", res.Before, "create", "TopicAuthorizationFailedError")
	check("before", res.Before, "describe_acls", "ClusterAuthorizationFailedError")
	if res.Create.Succeeded != 1 || len(res.Create.Failed) != 0 {
		t.Errorf("create_acls: %+v", res.Create)
	}
	if len(res.Described) != 1 || res.Described[0]["name"] != "py-app-" || res.Described[0]["pattern"] != "PREFIXED" {
		t.Errorf("describe_acls with MATCH py-app-t: %v, want the prefixed py-app- binding", res.Described)
	}
	check("with the grant", res.AfterGrant, "topics", []string{"py-app-t"})
	check("with the grant", res.AfterGrant, "produce", nil)
	check("with the grant", res.AfterGrant, "wire", map[string]int{"produce": 0, "fetch": 0})
	check("with the grant", res.AfterGrant, "wire_secret", denied)
	if n, _ := res.AfterGrant["consumed"].(float64); n < 1 {
		t.Errorf("with the grant: consumed %v records, want some", res.AfterGrant["consumed"])
	}
	check("with the grant", res.AfterGrant, "create", nil)
	check("with the grant", res.AfterGrant, "create_other", "TopicAuthorizationFailedError")
	if res.Deleted != 1 {
		t.Errorf("delete_acls deleted %d bindings, want 1", res.Deleted)
	}
	check("after revocation", res.Revoked, "topics", []string{})
	check("after revocation", res.Revoked, "wire", denied)
	t.Logf("every agent answered kafka-python's metadata with the grant %.3fs after create_acls, and with TOPIC_AUTHORIZATION_FAILED %.3fs after delete_acls", res.GrantedS, res.RevokedS)
	if res.GrantedS > 3 || res.RevokedS > 3 {
		t.Errorf("a change took more than 3s to reach every agent")
	}
}

// TestACLsByHost follows docs/security.md's walkthrough while every client
// is User:ANONYMOUS: allow-everyone-if-no-acl-found lets the first client
// claim the cluster for its host (127.0.0.1), a wildcard grant ends the
// open default for topics, and a client on another address (127.0.0.2)
// may then use only the prefix granted to its host.
func TestACLsByHost(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(c *agent.Config) {
		c.ACL = &acl.AuthorizerOptions{Options: acl.Options{AllowIfNoACL: true}}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := func(ip string) *kgo.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.Dialer(d.DialContext), kgo.RequestRetries(0), kgo.RecordRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	op, app := from("127.0.0.1"), from("127.0.0.2")
	opAdm, appAdm := kadm.NewClient(op), kadm.NewClient(app)
	for _, topic := range []string{"orders-eu", "billing"} {
		if r, err := opAdm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	mustCreate := func(b *kadm.ACLBuilder) {
		t.Helper()
		res, err := opAdm.CreateACLs(ctx, b)
		if err == nil {
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
		}
		if err != nil {
			t.Fatalf("CreateACLs: %v", err)
		}
	}
	mustCreate(kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.1").Clusters().Operations(kadm.OpAll))
	mustCreate(kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.1").Topics("*").Groups("*").Operations(kadm.OpAll))
	mustCreate(kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.2").Topics("orders-").Groups("orders-").
		ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite, kadm.OpRead, kadm.OpDescribe))

	names := func(cl *kgo.Client) []string {
		t.Helper()
		got, err := visibleTopics(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := names(op); !slices.Equal(got, []string{"billing", "orders-eu"}) {
		t.Errorf("127.0.0.1 sees %v", got)
	}
	if got := names(app); !slices.Equal(got, []string{"orders-eu"}) {
		t.Errorf("127.0.0.2 sees %v, want [orders-eu]", got)
	}
	produce := func(cl *kgo.Client, topic string) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	if err := produce(app, "orders-eu"); err != nil {
		t.Errorf("127.0.0.2 produces to orders-eu: %v", err)
	}
	if err := produce(app, "billing"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("127.0.0.2 produces to billing: %v, want %v", err, kerr.TopicAuthorizationFailed)
	}
	res, err := appAdm.CreateACLs(ctx, kadm.NewACLs().Allow("User:ANONYMOUS").AllowHosts("127.0.0.2").Topics("billing").Operations(kadm.OpAll))
	if err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("127.0.0.2 grants itself billing: %+v, %v; want %v", res, err, kerr.ClusterAuthorizationFailed)
	}
}
