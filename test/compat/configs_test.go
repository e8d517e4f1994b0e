package compat

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// Kafka's config sources (DescribeConfigs).
const (
	srcDynamicTopic = 1
	srcStaticBroker = 4
	srcDefault      = 5
)

// TestConfigsKafkaPython: kafka-python's admin client creates a topic
// with configs Kafka 4.x (and 3.x, message.format.version) accepts,
// describes it with synonyms, alters it, and is refused an invalid and
// an unknown value (INVALID_CONFIG) and a broker config (INVALID_REQUEST,
// Kafka's answer for configs it cannot change dynamically).
func TestConfigsKafkaPython(t *testing.T) {
	if _, err := os.Stat(debianPython); err != nil {
		testutil.MissingClient(t, "%s: %v", debianPython, err)
	}
	if out, err := exec.Command(debianPython, "-c", "import kafka").CombinedOutput(); err != nil {
		testutil.MissingClient(t, "%s cannot import kafka: %v\n%s", debianPython, err, out)
	}
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := runCmd(t, ctx, "", debianPython, "testdata/kafka_python_configs.py", a.Addr(), "py-configs")
	type entry struct {
		Value    *string `json:"value"`
		ReadOnly bool    `json:"read_only"`
		Source   int     `json:"source"`
		Synonyms [][]any `json:"synonyms"`
	}
	type described struct {
		Error   int              `json:"error"`
		Configs map[string]entry `json:"configs"`
	}
	var res struct {
		Create       [][]any   `json:"create"`
		CreateBad    *int      `json:"create_bad"`
		Describe     described `json:"describe"`
		Alter        []any     `json:"alter"`
		AfterAlter   described `json:"after_alter"`
		AlterInvalid []any     `json:"alter_invalid"`
		AlterUnknown []any     `json:"alter_unknown"`
		AlterBroker  []any     `json:"alter_broker"`
		Broker       described `json:"broker"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output: %v\n%.2000s", err, out)
	}
	code := func(v any) int16 { f, _ := v.(float64); return int16(f) }
	if len(res.Create) != 1 || code(res.Create[0][1]) != 0 {
		t.Errorf("create: %v", res.Create)
	}
	if res.CreateBad == nil || int16(*res.CreateBad) != kerr.InvalidConfig.Code {
		t.Errorf("create with min.cleanable.dirty.ratio=1.5: %v, want INVALID_CONFIG", res.CreateBad)
	}
	val := func(d described, name string) string {
		if e, ok := d.Configs[name]; ok && e.Value != nil {
			return *e.Value
		}
		return "<none>"
	}
	for name, want := range map[string]string{"compression.type": "gzip", "message.format.version": "2.8", "preallocate": "true", "retention.ms": "604800000"} {
		if got := val(res.Describe, name); got != want {
			t.Errorf("described %s = %s, want %s", name, got, want)
		}
	}
	if e := res.Describe.Configs["compression.type"]; e.Source != srcDynamicTopic || len(e.Synonyms) != 2 {
		t.Errorf("compression.type: source %d, synonyms %v; want the topic's then the broker's", e.Source, e.Synonyms)
	}
	if e := res.Describe.Configs["retention.ms"]; e.Source != srcDefault || len(e.Synonyms) != 1 || e.Synonyms[0][0] != "log.retention.hours" {
		t.Errorf("retention.ms: source %d, synonyms %v; want the default from log.retention.hours", e.Source, e.Synonyms)
	}
	if code(res.Alter[0]) != 0 || val(res.AfterAlter, "compression.type") != "lz4" || val(res.AfterAlter, "retention.ms") != "3600000" {
		t.Errorf("alter: %v, then compression.type %s retention.ms %s", res.Alter, val(res.AfterAlter, "compression.type"), val(res.AfterAlter, "retention.ms"))
	}
	// The non-incremental AlterConfigs replaced the set.
	if e := res.AfterAlter.Configs["preallocate"]; e.Source != srcDefault {
		t.Errorf("preallocate after a replacing alter: source %d, want default", e.Source)
	}
	if code(res.AlterInvalid[0]) != kerr.InvalidConfig.Code || code(res.AlterUnknown[0]) != kerr.InvalidConfig.Code {
		t.Errorf("invalid value %v, unknown config %v: want INVALID_CONFIG", res.AlterInvalid, res.AlterUnknown)
	}
	if code(res.AlterBroker[0]) != kerr.InvalidRequest.Code {
		t.Errorf("alter broker config: %v, want INVALID_REQUEST", res.AlterBroker)
	}
	for name, want := range map[string]string{"advertised.listeners": "PLAINTEXT://" + a.Addr(), "log.retention.hours": "168", "num.partitions": "1", "compression.type": "producer"} {
		if got := val(res.Broker, name); got != want {
			t.Errorf("broker %s = %s, want %s", name, got, want)
		}
	}
	if e := res.Broker.Configs["log.retention.hours"]; !e.ReadOnly || e.Source != srcDefault {
		t.Errorf("broker log.retention.hours: %+v, want read-only, default", e)
	}
	if e := res.Broker.Configs["advertised.listeners"]; e.Source != srcStaticBroker {
		t.Errorf("broker advertised.listeners: source %d, want static", e.Source)
	}
}

// TestConfigsKadm: kadm creates a topic with a config of every kind Floe
// honours or accepts, describes broker configs tools read, and is
// refused values Kafka refuses.
func TestConfigsKadm(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	configs := map[string]*string{
		"compression.type":                        strp("zstd"),
		"compression.zstd.level":                  strp("9"),
		"message.timestamp.type":                  strp("LogAppendTime"),
		"message.timestamp.difference.max.ms":     strp("60000"),
		"message.downconversion.enable":           strp("false"),
		"index.interval.bytes":                    strp("8192"),
		"leader.replication.throttled.replicas":   strp("0:1"),
		"follower.replication.throttled.replicas": strp("*"),
		"remote.storage.enable":                   strp("false"),
		"local.retention.ms":                      strp("-2"),
		"segment.bytes":                           strp("1048576"),
		"min.insync.replicas":                     strp("2"),
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, configs, "kadm-configs"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "kadm-configs")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("kadm-configs", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	for name, v := range configs {
		if c := got[name]; c.MaybeValue() != *v || c.Source != srcDynamicTopic {
			t.Errorf("%s = %q source %v, want %q set on the topic", name, c.MaybeValue(), c.Source, *v)
		}
	}
	for _, bad := range []struct{ name, value string }{
		{"segment.bytes", "1000"}, {"compression.lz4.level", "18"}, {"message.timestamp.type", "BrokerTime"},
		{"leader.replication.throttled.replicas", "0-1"}, {"cleanup.policy", "archive"}, {"no.such.config", "x"},
	} {
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: bad.name, Value: strp(bad.value)}}, "kadm-configs")
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(r[0].Err, kerr.InvalidConfig) {
			t.Errorf("%s=%s: %v, want INVALID_CONFIG", bad.name, bad.value, r[0].Err)
		}
	}
	brcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	broker := map[string]kadm.Config{}
	for _, c := range brcs[0].Configs {
		broker[c.Key] = c
	}
	for name, want := range map[string]string{
		"advertised.listeners": "PLAINTEXT://" + a.Addr(), "listeners": "PLAINTEXT://" + a.Addr(),
		"log.retention.hours": "168", "log.retention.bytes": "-1", "log.cleanup.policy": "delete",
		"num.partitions": "1", "default.replication.factor": "1", "auto.create.topics.enable": "true",
		"group.min.session.timeout.ms": "6000", "group.max.session.timeout.ms": "1800000",
		"message.max.bytes": "1048588", "compression.type": "producer",
	} {
		if c := broker[name]; c.MaybeValue() != want {
			t.Errorf("broker %s = %q, want %q", name, c.MaybeValue(), want)
		}
	}
	r, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("1000")}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r[0].Err, kerr.InvalidRequest) {
		t.Errorf("alter a broker config: %v, want INVALID_REQUEST", r[0].Err)
	}
}

// TestConfigsSarama: sarama's ClusterAdmin creates a topic with configs,
// describes it and the broker, alters it (both ways), and is refused an
// invalid value.
func TestConfigsSarama(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{})
	admin, err := sarama.NewClusterAdmin([]string{a.Addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	err = admin.CreateTopic("sarama-configs", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: map[string]*string{
		"compression.type": strp("snappy"), "preallocate": strp("true"), "retention.ms": strp("60000"),
	}}, false)
	if err != nil {
		t.Fatal(err)
	}
	describe := func() map[string]sarama.ConfigEntry {
		t.Helper()
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "sarama-configs"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]sarama.ConfigEntry{}
		for _, e := range entries {
			out[e.Name] = e
		}
		return out
	}
	got := describe()
	if got["compression.type"].Value != "snappy" || got["preallocate"].Value != "true" || got["retention.ms"].Value != "60000" {
		t.Errorf("described: compression.type %q preallocate %q retention.ms %q", got["compression.type"].Value, got["preallocate"].Value, got["retention.ms"].Value)
	}
	if got["segment.jitter.ms"].Value != "0" || got["segment.jitter.ms"].Source != sarama.SourceDefault {
		t.Errorf("segment.jitter.ms default: %+v", got["segment.jitter.ms"])
	}
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, "sarama-configs", map[string]sarama.IncrementalAlterConfigsEntry{
		"compression.type": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strp("uncompressed")},
	}, false); err != nil {
		t.Fatal(err)
	}
	if got := describe(); got["compression.type"].Value != "uncompressed" || got["preallocate"].Value != "true" {
		t.Errorf("after incremental alter: compression.type %q preallocate %q", got["compression.type"].Value, got["preallocate"].Value)
	}
	if err := admin.AlterConfig(sarama.TopicResource, "sarama-configs", map[string]*string{"compression.type": strp("lz4")}, false); err != nil {
		t.Fatal(err)
	}
	if got := describe(); got["compression.type"].Value != "lz4" || got["preallocate"].Source != sarama.SourceDefault {
		t.Errorf("after alter: compression.type %q preallocate %+v", got["compression.type"].Value, got["preallocate"])
	}
	err = admin.AlterConfig(sarama.TopicResource, "sarama-configs", map[string]*string{"compression.zstd.level": strp("23")}, false)
	if !errors.Is(err, sarama.ErrInvalidConfig) {
		t.Errorf("compression.zstd.level=23: %v, want INVALID_CONFIG", err)
	}
	brokers, _, err := admin.DescribeCluster()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: strconv.Itoa(int(brokers[0].ID()))})
	if err != nil {
		t.Fatal(err)
	}
	broker := map[string]string{}
	for _, e := range entries {
		broker[e.Name] = e.Value
	}
	if broker["advertised.listeners"] != "PLAINTEXT://"+a.Addr() || broker["log.retention.hours"] != "168" {
		t.Errorf("broker: advertised.listeners %q log.retention.hours %q", broker["advertised.listeners"], broker["log.retention.hours"])
	}
}

// TestConfigsKafkaJS: KafkaJS's admin client creates, describes (with
// synonyms) and alters topic configs, and is refused what Kafka refuses.
func TestConfigsKafkaJS(t *testing.T) {
	node := testutil.RequireClient(t, "node")
	if _, err := os.Stat(filepath.Join(kafkajsDir, "node_modules", "kafkajs", "package.json")); err != nil {
		testutil.MissingClient(t, "kafkajs is not installed (run npm ci in %s, as scripts/test does): %v", kafkajsDir, err)
	}
	a := agenttest.Start(t, agenttest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := runCmd(t, ctx, "", node, filepath.Join(kafkajsDir, "configs.js"), a.Addr(), "js-configs")
	type entry struct {
		Value    *string `json:"value"`
		ReadOnly bool    `json:"read_only"`
		Source   int     `json:"source"`
		Synonyms [][]any `json:"synonyms"`
	}
	type described struct {
		Error   int              `json:"error"`
		Configs map[string]entry `json:"configs"`
	}
	var res struct {
		Created       bool      `json:"created"`
		CreateInvalid *string   `json:"create_invalid"`
		Described     described `json:"described"`
		Alter         *string   `json:"alter"`
		AfterAlter    described `json:"after_alter"`
		AlterInvalid  *string   `json:"alter_invalid"`
		AlterUnknown  *string   `json:"alter_unknown"`
		AlterBroker   *string   `json:"alter_broker"`
		Broker        described `json:"broker"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("output: %v\n%.2000s", err, out)
	}
	val := func(d described, name string) string {
		if e, ok := d.Configs[name]; ok && e.Value != nil {
			return *e.Value
		}
		return "<none>"
	}
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	if !res.Created {
		t.Error("createTopics answered false")
	}
	if str(res.CreateInvalid) != "INVALID_CONFIG" {
		t.Errorf("create with compression.type=lzma: %s, want INVALID_CONFIG", str(res.CreateInvalid))
	}
	for name, want := range map[string]string{"compression.type": "lz4", "compression.lz4.level": "12", "flush.ms": "1000", "message.timestamp.before.max.ms": "86400000"} {
		if e := res.Described.Configs[name]; val(res.Described, name) != want || e.Source != srcDynamicTopic {
			t.Errorf("%s = %s source %d, want %s set on the topic", name, val(res.Described, name), e.Source, want)
		}
	}
	if syn := res.Described.Configs["flush.ms"].Synonyms; len(syn) != 2 || syn[1][0] != "log.flush.scheduler.interval.ms" {
		t.Errorf("flush.ms synonyms %v, want the topic's then log.flush.scheduler.interval.ms", syn)
	}
	if res.Alter != nil || val(res.AfterAlter, "compression.type") != "zstd" || val(res.AfterAlter, "cleanup.policy") != "compact" {
		t.Errorf("alter: %s, then compression.type %s cleanup.policy %s", str(res.Alter), val(res.AfterAlter, "compression.type"), val(res.AfterAlter, "cleanup.policy"))
	}
	if str(res.AlterInvalid) != "INVALID_CONFIG" || str(res.AlterUnknown) != "INVALID_CONFIG" {
		t.Errorf("min.insync.replicas=0: %s, unknown config: %s; want INVALID_CONFIG", str(res.AlterInvalid), str(res.AlterUnknown))
	}
	if str(res.AlterBroker) != "INVALID_REQUEST" {
		t.Errorf("alter a broker config: %s, want INVALID_REQUEST", str(res.AlterBroker))
	}
	if val(res.Broker, "advertised.listeners") != "PLAINTEXT://"+a.Addr() || val(res.Broker, "log.cleanup.policy") != "delete" {
		t.Errorf("broker: advertised.listeners %s log.cleanup.policy %s", val(res.Broker, "advertised.listeners"), val(res.Broker, "log.cleanup.policy"))
	}
}

// TestConfigsAgentFlagAsTopicDefault: an agent flag that sets a topic
// config's default (--file-delete-delay, Kafka's
// log.segment.delete.delay.ms) shows in the topic's config with source
// STATIC_BROKER_CONFIG and its value, as a broker's server.properties
// would, and in the broker's configs.
func TestConfigsAgentFlagAsTopicDefault(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Jobs: true}) // --file-delete-delay 200ms
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := newAdmin(t, a.Addr())
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "flag-default"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "flag-default")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("flag-default", nil)
	for _, c := range rc.Configs {
		if c.Key != "file.delete.delay.ms" {
			continue
		}
		if c.MaybeValue() != "200" || c.Source != srcStaticBroker || len(c.Synonyms) != 1 ||
			c.Synonyms[0].Key != "log.segment.delete.delay.ms" || c.Synonyms[0].Value == nil || *c.Synonyms[0].Value != "200" {
			t.Errorf("file.delete.delay.ms: %+v", c)
		}
		return
	}
	t.Error("file.delete.delay.ms not described")
}

// TestCreatePartitionsAssignmentsKadm: on two agents, kadm's
// CreatePartitions with assignments is checked as Kafka checks them, with
// Kafka's messages: one live agent per new partition is accepted, two
// replicas are not (every Floe partition has one), nor an unknown agent
// or too few assignments.
func TestCreatePartitionsAssignmentsKadm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, b := twoAgents(t, ctx)
	adm := newAdmin(t, a.Addr())
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "grow"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	ida, idb := a.NodeID(), b.NodeID()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tc := range []struct {
		name       string
		count      int
		assignment [][]int32
		want       error
		msg        string
	}{
		{"two replicas", 2, [][]int32{{ida, idb}}, kerr.InvalidReplicaAssignment, "a partition with 2 replica(s), but this is not consistent with previous partitions, which have 1 replica(s)"},
		{"unknown agent", 2, [][]int32{{idb + 1000}}, kerr.InvalidReplicaAssignment, "no broker with that ID is registered"},
		{"too few", 3, [][]int32{{ida}}, kerr.InvalidReplicaAssignment, "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."},
		{"one agent each", 3, [][]int32{{idb}, {ida}}, nil, ""},
	} {
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "grow", int32(tc.count)
		for _, r := range tc.assignment {
			rt.Assignment = append(rt.Assignment, kmsg.CreatePartitionsRequestTopicAssignment{Replicas: r})
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		st := resp.Topics[0]
		if err := kerr.ErrorForCode(st.ErrorCode); !errors.Is(err, tc.want) && err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if msg := derefStr(st.ErrorMessage); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q, want it to contain %q", tc.name, msg, tc.msg)
		}
	}
	parts, err := adm.ListEndOffsets(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parts["grow"]); n != 3 {
		t.Errorf("%d partitions, want 3", n)
	}
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
