package protocol_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUpdateFeaturesVersions: v0 downgrades with AllowDowngrade, v0-v1
// answer per feature with the request's error (all or none), v2 only at
// the top; the finalized level is accepted at every version.
func TestUpdateFeaturesVersions(t *testing.T) {
	f := start(t) // transaction.version finalized at 2
	update := func(version int16, updates ...kmsg.UpdateFeaturesRequestFeatureUpdate) *kmsg.UpdateFeaturesResponse {
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.FeatureUpdates = updates
		return do[*kmsg.UpdateFeaturesResponse](f, version, req)
	}
	u := func(feature string, level int16, allowDowngrade bool, upgradeType int8) kmsg.UpdateFeaturesRequestFeatureUpdate {
		return kmsg.UpdateFeaturesRequestFeatureUpdate{Feature: feature, MaxVersionLevel: level, AllowDowngrade: allowDowngrade, UpgradeType: upgradeType}
	}
	for _, tc := range []struct {
		name    string
		version int16
		updates []kmsg.UpdateFeaturesRequestFeatureUpdate
		want    int16
	}{
		{"v0 finalized level", 0, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 0)}, 0},
		{"v0 downgrade without AllowDowngrade", 0, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 1, false, 0)}, kerr.InvalidUpdateVersion.Code},
		{"v0 downgrade with AllowDowngrade: a flag", 0, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 1, true, 0)}, kerr.InvalidUpdateVersion.Code},
		{"v1 unknown upgrade type", 1, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("transaction.version", 2, false, 7)}, kerr.InvalidUpdateVersion.Code},
		{"v1 all or none", 1, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 1, false, 1), u("transaction.version", 3, false, 1)}, kerr.InvalidUpdateVersion.Code},
		{"v1 no updates", 1, nil, kerr.InvalidRequest.Code},
		{"v2 finalized levels", 2, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", 1, false, 1), u("transaction.version", 2, false, 1)}, 0},
		{"v2 delete group.version", 2, []kmsg.UpdateFeaturesRequestFeatureUpdate{u("group.version", -1, false, 3)}, kerr.InvalidUpdateVersion.Code},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := update(tc.version, tc.updates...)
			expectCode(t, "request", resp.ErrorCode, tc.want)
			if (resp.ErrorMessage != nil) != (tc.want != 0) {
				t.Errorf("error message %v with %s", resp.ErrorMessage, codeName(tc.want))
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
}
