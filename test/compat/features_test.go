package compat

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// finalizedFeatures describes the feature levels of the agent a through
// kadm (ApiVersions v3+, what the Java admin client's describeFeatures
// sends): the finalized levels and their epoch.
func finalizedFeatures(t *testing.T, ctx context.Context, adm *kadm.Client, a *agenttest.Agent) (map[string]int16, int64) {
	t.Helper()
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int16{}
	epoch := int64(-2)
	versions.Each(func(v kadm.BrokerApiVersions) {
		if v.NodeID != a.NodeID() {
			return
		}
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		raw := v.Raw()
		if raw.Version < 3 {
			t.Fatalf("ApiVersions v%d, want v3+ for features", raw.Version)
		}
		for _, f := range raw.FinalizedFeatures {
			out[f.Name] = f.MaxVersionLevel
		}
		epoch = raw.FinalizedFeaturesEpoch
		supported := map[string][2]int16{}
		for _, f := range raw.SupportedFeatures {
			supported[f.Name] = [2]int16{f.MinVersion, f.MaxVersion}
		}
		if supported["transaction.version"] != [2]int16{0, 2} || supported["group.version"] != [2]int16{0, 1} {
			t.Errorf("supported features %v", supported)
		}
	})
	if epoch == -2 {
		t.Fatalf("no ApiVersions of node %d", a.NodeID())
	}
	return out, epoch
}

// TestFeatures: the finalized feature levels are cluster state. A new
// cluster finalizes its first agent's flags; kadm's UpdateFeatures (v2)
// changes them with Kafka's validation, and both agents answer the new
// levels (the other within its refresh); an agent started later with
// other flags takes the stored levels.
func TestFeatures(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.TransactionVersion = 1 }})
	b := agenttest.StartPeer(t, a, agenttest.Options{}) // its flag would finalize transaction.version 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A raw connection: franz-go's clients would cache the first answer.
	raw := testutil.Dial(t, a.Addr())
	testutil.WaitFor(t, 10*time.Second, "both agents in the metadata", func() bool {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		return len(raw.Do(req).(*kmsg.MetadataResponse).Brokers) == 2
	})
	adm := newAdmin(t, a.Addr())
	want := map[string]int16{"transaction.version": 1, "group.version": 1}
	for name, ag := range map[string]*agenttest.Agent{"first": a, "second": b} {
		if got, epoch := finalizedFeatures(t, ctx, adm, ag); !maps.Equal(got, want) || epoch != 1 {
			t.Fatalf("%s agent of a new cluster finalizes %v epoch %d, want %v epoch 1", name, got, epoch, want)
		}
	}

	epoch := int64(1)
	for _, tc := range []struct {
		name         string
		validateOnly bool
		updates      []kadm.FeatureUpdate
		want         error
		message      string           // part of the error message
		finalized    map[string]int16 // after the update
	}{
		{name: "same levels", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}},
			finalized: map[string]int16{"transaction.version": 1, "group.version": 1}},
		{name: "upgrade, validate only", validateOnly: true, updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}},
			finalized: map[string]int16{"transaction.version": 1, "group.version": 1}},
		{name: "upgrade", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}},
			finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "downgrade without downgrade type", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "safe or unsafe downgrade", finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "above supported", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 3, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "supports versions 0-2", finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "unknown feature", updates: []kadm.FeatureUpdate{{Feature: "metadata.version", MaxVersionLevel: 20, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "does not support the given feature", finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "one bad update fails all", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 2}, {Feature: "nope", MaxVersionLevel: 1, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "twice the same feature", updates: []kadm.FeatureUpdate{{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}},
			want: kerr.InvalidRequest, finalized: map[string]int16{"transaction.version": 2, "group.version": 1}},
		{name: "safe downgrade to 0", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 2}},
			finalized: map[string]int16{"group.version": 1}},
		{name: "upgrade again", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 1}},
			finalized: map[string]int16{"transaction.version": 1, "group.version": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updated, err := adm.UpdateFeatures(ctx, tc.validateOnly, tc.updates...)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tc.updates {
				if got := updated[u.Feature].Err; !errors.Is(got, tc.want) && !(got == nil && tc.want == nil) {
					t.Errorf("%s: %v, want %v", u.Feature, got, tc.want)
				}
			}
			got, gotEpoch := finalizedFeatures(t, ctx, adm, a)
			if !maps.Equal(got, tc.finalized) {
				t.Errorf("finalized %v, want %v", got, tc.finalized)
			}
			if gotEpoch < epoch || (gotEpoch == epoch) != (tc.want != nil || tc.validateOnly || tc.name == "same levels") {
				t.Errorf("epoch %d after %d", gotEpoch, epoch)
			}
			epoch = gotEpoch
			// The other agent answers the same levels within its refresh.
			testutil.WaitFor(t, 15*time.Second, "the other agent finalizing the same levels", func() bool {
				got, e := finalizedFeatures(t, ctx, adm, b)
				return maps.Equal(got, tc.finalized) && e == epoch
			})
			if tc.message == "" {
				return
			}
			// kadm keeps only the code at v2: read the message raw.
			req := kmsg.NewPtrUpdateFeaturesRequest()
			req.ValidateOnly = tc.validateOnly
			for _, u := range tc.updates {
				ru := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
				ru.Feature, ru.MaxVersionLevel, ru.UpgradeType = u.Feature, u.MaxVersionLevel, u.UpgradeType
				req.FeatureUpdates = append(req.FeatureUpdates, ru)
			}
			resp, err := req.RequestWith(ctx, newClient(t, a.Addr()))
			if err != nil {
				t.Fatal(err)
			}
			if resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, tc.message) {
				t.Errorf("message %v, want it to contain %q", resp.ErrorMessage, tc.message)
			}
		})
	}

	// An agent started later with other flags takes the stored levels.
	c := agenttest.StartPeer(t, a, agenttest.Options{Config: func(cfg *agent.Config) { cfg.TransactionVersion = -1 }})
	want = map[string]int16{"transaction.version": 1, "group.version": 1}
	if got, e := finalizedFeatures(t, ctx, newAdmin(t, c.Addr()), c); !maps.Equal(got, want) || e != epoch {
		t.Fatalf("an agent joining the cluster finalizes %v epoch %d, want %v epoch %d", got, e, want, epoch)
	}
}
