package protocol_test

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUpdateFeaturesVersions: the finalized levels are changed by
// UpdateFeatures, step by step on one cluster: v0 downgrades with
// AllowDowngrade, v1 with the upgrade type and validates only when
// asked, v0-v1 answer per feature with the request's error (all or
// none), v2 only at the top. Each change is what ApiVersions then
// finalizes, at the next epoch; group.version 0 turns the consumer group
// protocol off (UNSUPPORTED_VERSION) until it is upgraded again.
func TestUpdateFeaturesVersions(t *testing.T) {
	f := start(t) // a new cluster: transaction.version 2, group.version 1, epoch 1
	update := func(version int16, validateOnly bool, updates ...kmsg.UpdateFeaturesRequestFeatureUpdate) *kmsg.UpdateFeaturesResponse {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.FeatureUpdates, req.ValidateOnly = updates, validateOnly
		return do[*kmsg.UpdateFeaturesResponse](f, version, req)
	}
	u := func(feature string, level int16, allowDowngrade bool, upgradeType int8) kmsg.UpdateFeaturesRequestFeatureUpdate {
		return kmsg.UpdateFeaturesRequestFeatureUpdate{Feature: feature, MaxVersionLevel: level, AllowDowngrade: allowDowngrade, UpgradeType: upgradeType}
	}
	finalized := func() ([]string, int64) {
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "floe-test", "1"
		resp := do[*kmsg.ApiVersionsResponse](f, 3, req)
		_, fin := features(resp)
		return fin, resp.FinalizedFeaturesEpoch
	}
	heartbeat := func() int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "g", "m", 10000
		req.SubscribedTopicNames, req.Topics = []string{}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return do[*kmsg.ConsumerGroupHeartbeatResponse](f, 1, req).ErrorCode
	}
	for _, tc := range []struct {
		name         string
		version      int16
		validateOnly bool
		updates      []kmsg.UpdateFeaturesRequestFeatureUpdate
		want         int16
		finalized    []string // after the request
		epoch        int64
	}{
		{"v0 finalized level", 0, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 0)}, 0,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v0 downgrade without AllowDowngrade", 0, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 1, false, 0)}, kerr.InvalidUpdateVersion.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 unknown upgrade type", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 7)}, kerr.InvalidUpdateVersion.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 all or none", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 0, false, 2), u("transaction.version", 3, false, 1)}, kerr.InvalidUpdateVersion.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 unknown feature", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("metadata.version", 20, false, 1)}, kerr.InvalidUpdateVersion.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 no updates", 1, false, nil, kerr.InvalidRequest.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 the same feature twice", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 1, false, 1), u("group.version", 1, false, 1)}, kerr.InvalidRequest.Code,
			[]string{"group.version=1", "transaction.version=2"}, 1},
		{"v1 unsafe downgrade of group.version", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 0, false, 3), u("transaction.version", 2, false, 2)}, 0,
			[]string{"transaction.version=2"}, 2},
		{"v1 upgrade group.version back", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 1, false, 1)}, 0,
			[]string{"group.version=1", "transaction.version=2"}, 3},
		{"v1 validate-only downgrade", 1, true, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 1, false, 2)}, 0,
			[]string{"group.version=1", "transaction.version=2"}, 3},
		{"v0 downgrade with AllowDowngrade", 0, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 1, true, 0)}, 0,
			[]string{"group.version=1", "transaction.version=1"}, 4},
		{"v1 upgrade as a downgrade", 1, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 2)}, kerr.InvalidUpdateVersion.Code,
			[]string{"group.version=1", "transaction.version=1"}, 4},
		{"v2 finalized levels", 2, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 1, false, 1), u("transaction.version", 1, false, 1)}, 0,
			[]string{"group.version=1", "transaction.version=1"}, 4},
		{"v2 upgrade", 2, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 1)}, 0,
			[]string{"group.version=1", "transaction.version=2"}, 5},
		{"v2 delete group.version", 2, false, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", -1, false, 3)}, 0,
			[]string{"transaction.version=2"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := update(tc.version, tc.validateOnly, tc.updates...)
			expectCode(t, "request", resp.ErrorCode, tc.want)
			if (resp.ErrorMessage != nil) != (tc.want != 0) {
				t.Errorf("error message %v with %s", resp.ErrorMessage, codeName(tc.want))
			}
			if fin, epoch := finalized(); !slices.Equal(fin, tc.finalized) || epoch != tc.epoch {
				t.Errorf("finalized %v epoch %d, want %v epoch %d", fin, epoch, tc.finalized, tc.epoch)
			}
			if tc.version >= 2 {
				if len(resp.Results) != 0 {
					t.Errorf("v2: %d results, want none", len(resp.Results))
				}
				return
			}
			if len(resp.Results) != len(tc.updates) {
				t.Fatalf("%d results for %d updates", len(resp.Results), len(tc.updates))
			}
			for i, r := range resp.Results {
				if r.Feature != tc.updates[i].Feature {
					t.Errorf("result %d for %s, want %s", i, r.Feature, tc.updates[i].Feature)
				}
				expectCode(t, r.Feature, r.ErrorCode, tc.want)
			}
		})
	}
	// group.version is now 0: no consumer group protocol, as in Kafka.
	expectCode(t, "ConsumerGroupHeartbeat at group.version 0", heartbeat(), kerr.UnsupportedVersion.Code)
	update(2, false, u("group.version", 1, false, 1))
	expectCode(t, "ConsumerGroupHeartbeat at group.version 1", heartbeat(), 0)
}
