package protocol_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/protocol"
)

// advertised is what README promises, API key → version range. A change
// here is a change in what clients may send, so it is spelled out.
var advertised = map[int16][2]int16{
	0:  {0, 13}, // Produce (v0-2 answered UNSUPPORTED_VERSION, as Kafka 4; v12: transaction version 2)
	1:  {4, 17}, // Fetch
	2:  {0, 10}, // ListOffsets
	3:  {0, 13}, // Metadata
	8:  {2, 10}, // OffsetCommit
	9:  {1, 10}, // OffsetFetch
	10: {0, 4},  // FindCoordinator
	11: {0, 9},  // JoinGroup
	12: {0, 4},  // Heartbeat
	13: {0, 5},  // LeaveGroup
	14: {0, 5},  // SyncGroup
	15: {0, 6},  // DescribeGroups
	16: {0, 5},  // ListGroups
	17: {0, 1},  // SaslHandshake
	18: {0, 4},  // ApiVersions
	19: {0, 7},  // CreateTopics
	20: {0, 6},  // DeleteTopics
	21: {0, 2},  // DeleteRecords
	22: {0, 5},  // InitProducerId
	23: {0, 4},  // OffsetForLeaderEpoch
	24: {0, 5},  // AddPartitionsToTxn
	25: {0, 4},  // AddOffsetsToTxn
	26: {0, 5},  // EndTxn (v5: transaction version 2)
	28: {0, 5},  // TxnOffsetCommit (v5: transaction version 2)
	29: {0, 3},  // DescribeAcls
	30: {0, 3},  // CreateAcls
	31: {0, 3},  // DeleteAcls
	32: {0, 4},  // DescribeConfigs
	33: {0, 2},  // AlterConfigs
	34: {0, 2},  // AlterReplicaLogDirs
	35: {0, 5},  // DescribeLogDirs
	36: {0, 2},  // SaslAuthenticate
	37: {0, 3},  // CreatePartitions
	42: {0, 3},  // DeleteGroups
	43: {0, 2},  // ElectLeaders
	44: {0, 1},  // IncrementalAlterConfigs
	45: {0, 1},  // AlterPartitionReassignments
	46: {0, 0},  // ListPartitionReassignments
	47: {0, 0},  // OffsetDelete
	48: {0, 1},  // DescribeClientQuotas
	49: {0, 1},  // AlterClientQuotas
	50: {0, 0},  // DescribeUserScramCredentials
	51: {0, 0},  // AlterUserScramCredentials
	57: {0, 2},  // UpdateFeatures (refuses changes: levels are agent flags)
	// 55 DescribeQuorum is not served: see TestDescribeQuorumNotServed.
	60: {0, 1}, // DescribeCluster
	61: {0, 0}, // DescribeProducers
	65: {0, 0}, // DescribeTransactions
	66: {0, 2}, // ListTransactions
	68: {0, 1}, // ConsumerGroupHeartbeat
	69: {0, 1}, // ConsumerGroupDescribe
	71: {0, 0}, // GetTelemetrySubscriptions
	72: {0, 0}, // PushTelemetry
	74: {0, 1}, // ListConfigResources
	75: {0, 0}, // DescribeTopicPartitions
	76: {1, 1}, // ShareGroupHeartbeat
	77: {1, 1}, // ShareGroupDescribe
	78: {1, 2}, // ShareFetch
	79: {1, 2}, // ShareAcknowledge
	90: {0, 1}, // DescribeShareGroupOffsets
	91: {0, 0}, // AlterShareGroupOffsets
	92: {0, 0}, // DeleteShareGroupOffsets
}

func TestApiVersions(t *testing.T) {
	f := start(t)
	for _, version := range []int16{0, 1, 2, 3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "protocol-test", "1"
		resp := do[*kmsg.ApiVersionsResponse](f, version, req)
		expectCode(t, "api versions", resp.ErrorCode, 0)
		got := map[int16][2]int16{}
		prev := int16(-1)
		for _, k := range resp.ApiKeys {
			if k.ApiKey <= prev {
				t.Errorf("v%d: api keys not sorted or repeated at %d", version, k.ApiKey)
			}
			prev = k.ApiKey
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		if len(got) != len(advertised) {
			t.Errorf("v%d: %d APIs advertised, want %d", version, len(got), len(advertised))
		}
		for key, want := range advertised {
			if got[key] != want {
				t.Errorf("v%d: %s (%d) advertised %v, want %v", version, kmsg.NameForKey(key), key, got[key], want)
			}
		}
	}
	// The registry is what is advertised.
	if n := len(protocol.Supported()); n != len(advertised) {
		t.Errorf("registry has %d APIs, want %d", n, len(advertised))
	}
}

// TestApiVersionsTooNew: a version above ours is answered at v0 with
// UNSUPPORTED_VERSION and, as Kafka does (KIP-511), only ApiVersions' own
// range, so the client retries at our highest version (and reads the
// other ranges and the features there).
func TestApiVersionsTooNew(t *testing.T) {
	f := start(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(5)
	corr := f.c.Send(req)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	f.c.Receive(corr, resp)
	expectCode(t, "too new", resp.ErrorCode, kerr.UnsupportedVersion.Code)
	if k := resp.ApiKeys; len(k) != 1 || k[0].ApiKey != 18 || [2]int16{k[0].MinVersion, k[0].MaxVersion} != advertised[18] {
		t.Errorf("APIs listed %+v, want only ApiVersions %v", k, advertised[18])
	}
	// The connection stays usable.
	retry := kmsg.NewPtrApiVersionsRequest()
	retry.ClientSoftwareName, retry.ClientSoftwareVersion = "protocol-test", "1.0"
	again := do[*kmsg.ApiVersionsResponse](f, 3, retry)
	expectCode(t, "retry at v3", again.ErrorCode, 0)
}

// TestApiVersionsSoftwareName: from v3, Kafka answers INVALID_REQUEST when
// the client's software name or version is not letters, digits, '.' and
// '-' starting and ending with a letter or digit (KIP-511).
func TestApiVersionsSoftwareName(t *testing.T) {
	f := start(t)
	for _, tc := range []struct {
		name, version string
		want          int16
	}{
		{"librdkafka", "2.0.2", 0},
		{"apache-kafka-java", "4.1.0", 0},
		{"a", "1", 0},
		{"", "1", kerr.InvalidRequest.Code},
		{"kgo", "", kerr.InvalidRequest.Code},
		{"-kgo", "1", kerr.InvalidRequest.Code},
		{"kgo.", "1", kerr.InvalidRequest.Code},
		{"k go", "1", kerr.InvalidRequest.Code},
		{"kgo", "v1_2", kerr.InvalidRequest.Code},
	} {
		for _, v := range []int16{3, 4} {
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = tc.name, tc.version
			resp := do[*kmsg.ApiVersionsResponse](f, v, req)
			expectCode(t, "v"+strconv.Itoa(int(v))+" "+tc.name+"/"+tc.version, resp.ErrorCode, tc.want)
			if tc.want == 0 && len(resp.ApiKeys) != len(advertised) {
				t.Errorf("%s/%s: %d APIs listed", tc.name, tc.version, len(resp.ApiKeys))
			}
		}
	}
	// Before v3 the fields do not exist.
	resp := do[*kmsg.ApiVersionsResponse](f, 2, kmsg.NewPtrApiVersionsRequest())
	expectCode(t, "v2", resp.ErrorCode, 0)
}

// TestDescribeQuorumNotServed: DescribeQuorum describes the KRaft quorum
// that holds Kafka's metadata: its voters and observers, their log end
// offsets and fetch times. Floe's metadata is in a database (PostgreSQL,
// or the embedded file), not in a Raft log replicated by Kafka nodes,
// so there is nothing true to answer: any voter set, epoch or offset
// would be made up, and kafka-metadata-quorum.sh would print it as the
// cluster's health. A Kafka broker without a KRaft quorum (ZooKeeper
// mode) did not enable the API either: it is not advertised, admin
// clients fail before sending it (the Java client's
// UnsupportedVersionException, "The node does not support
// DESCRIBE_QUORUM"), and a request sent anyway closes the connection, as
// Kafka's socket server does for an API it has not enabled.
func TestDescribeQuorumNotServed(t *testing.T) {
	f := start(t)
	for _, k := range do[*kmsg.ApiVersionsResponse](f, 3, kmsg.NewPtrApiVersionsRequest()).ApiKeys {
		if k.ApiKey == 55 {
			t.Fatalf("DescribeQuorum advertised: %+v", k)
		}
	}
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.SetVersion(2)
	f.c.Send(req)
	if err := f.c.ExpectClosed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestApiVersionsWhateverGroupVersion: the APIs group.version gates are
// listed at every level, as Kafka's broker lists them (its ApiVersions
// list comes from the listener's APIs, the unstable-versions setting and
// client telemetry, never from finalized features): at group.version 0
// only the finalized level tells clients that ConsumerGroupHeartbeat and
// ConsumerGroupDescribe answer UNSUPPORTED_VERSION, and clients that try
// them fall back to the classic protocol (franz-go does).
func TestApiVersionsWhateverGroupVersion(t *testing.T) {
	f := start(t) // a new cluster: group.version 1
	setGroupVersion := func(level int16, upgradeType int8) {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.FeatureUpdates = []kmsg.UpdateFeaturesRequestFeatureUpdate{{Feature: protocol.FeatureGroupVersion, MaxVersionLevel: level, UpgradeType: upgradeType}}
		expectCode(t, "update group.version", do[*kmsg.UpdateFeaturesResponse](f, 2, req).ErrorCode, 0)
	}
	heartbeat := func() int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "g", "m", 10000
		req.SubscribedTopicNames, req.Topics = []string{}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return do[*kmsg.ConsumerGroupHeartbeatResponse](f, 1, req).ErrorCode
	}
	describe := func() int16 {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Groups = []string{"g"}
		resp := do[*kmsg.ConsumerGroupDescribeResponse](f, 1, req)
		if len(resp.Groups) != 1 {
			t.Fatalf("%d groups described, want 1", len(resp.Groups))
		}
		return resp.Groups[0].ErrorCode
	}
	for _, tc := range []struct {
		name      string
		level     int16
		upgrade   int8 // UpdateFeatures' upgrade type; 0: leave the level as it is
		finalized bool
		want      int16 // ConsumerGroupHeartbeat's and ConsumerGroupDescribe's code
	}{
		{"default group.version 1", 1, 0, true, 0},
		{"group.version 0", 0, 3, false, kerr.UnsupportedVersion.Code},
		{"group.version 1 again", 1, 1, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.upgrade != 0 {
				setGroupVersion(tc.level, tc.upgrade)
			}
			req := kmsg.NewPtrApiVersionsRequest()
			req.ClientSoftwareName, req.ClientSoftwareVersion = "protocol-test", "1"
			resp := do[*kmsg.ApiVersionsResponse](f, 4, req)
			expectCode(t, "api versions", resp.ErrorCode, 0)
			listed := map[int16][2]int16{}
			for _, k := range resp.ApiKeys {
				listed[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
			}
			for _, key := range []int16{68, 69} {
				if listed[key] != advertised[key] {
					t.Errorf("%s listed %v, want %v", kmsg.NameForKey(key), listed[key], advertised[key])
				}
			}
			finalized := false
			for _, ff := range resp.FinalizedFeatures {
				if ff.Name == protocol.FeatureGroupVersion {
					finalized = ff.MaxVersionLevel == tc.level
				}
			}
			if finalized != tc.finalized {
				t.Errorf("group.version %d finalized: %v, want %v (%+v)", tc.level, finalized, tc.finalized, resp.FinalizedFeatures)
			}
			if code := heartbeat(); tc.want != 0 && code != tc.want || tc.want == 0 && code == kerr.UnsupportedVersion.Code {
				t.Errorf("ConsumerGroupHeartbeat: %s, want %s", codeName(code), codeName(tc.want))
			}
			if code := describe(); tc.want != 0 && code != tc.want || tc.want == 0 && code == kerr.UnsupportedVersion.Code {
				t.Errorf("ConsumerGroupDescribe: %s, want %s", codeName(code), codeName(tc.want))
			}
		})
	}
}
