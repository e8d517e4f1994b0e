package compat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/agent"
	"github.com/floe-io/floe/internal/testutil/agenttest"
)

// TestFeatures describes the feature levels through kadm (ApiVersions
// v3+, what the Java admin client's describeFeatures sends) and updates
// them with kadm's UpdateFeatures (v2): asking for the finalized level succeeds,
// what Kafka refuses is refused with its error, and a change Kafka would
// make is refused with INVALID_UPDATE_VERSION, because the levels are
// agent flags, and changes nothing.
func TestFeatures(t *testing.T) {
	a := agenttest.Start(t, agenttest.Options{Config: func(cfg *agent.Config) { cfg.TransactionVersion = 1 }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := newAdmin(t, a.Addr())

	finalized := func() map[string]int16 {
		t.Helper()
		versions, err := adm.ApiVersions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int16{}
		versions.Each(func(v kadm.BrokerApiVersions) {
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
			supported := map[string][2]int16{}
			for _, f := range raw.SupportedFeatures {
				supported[f.Name] = [2]int16{f.MinVersion, f.MaxVersion}
			}
			if supported["transaction.version"] != [2]int16{0, 2} || supported["group.version"] != [2]int16{0, 1} {
				t.Errorf("supported features %v", supported)
			}
		})
		return out
	}
	if got := finalized(); got["transaction.version"] != 1 || got["group.version"] != 1 {
		t.Fatalf("finalized %v, want transaction.version 1, group.version 1", got)
	}

	for _, tc := range []struct {
		name         string
		validateOnly bool
		updates      []kadm.FeatureUpdate
		want         error
		message      string // part of the error message
	}{
		{name: "same levels", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}}},
		{name: "same level, validate only", validateOnly: true, updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 1, UpgradeType: 1}}},
		{name: "upgrade", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "--transaction-version 2"},
		{name: "upgrade, validate only", validateOnly: true, updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 2, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "--transaction-version 2"},
		{name: "safe downgrade", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 2}},
			want: kerr.InvalidUpdateVersion, message: "--transaction-version 0"},
		{name: "downgrade without downgrade type", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 0, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "safe or unsafe downgrade"},
		{name: "above supported", updates: []kadm.FeatureUpdate{{Feature: "transaction.version", MaxVersionLevel: 3, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "supports versions 0-2"},
		{name: "group.version off", updates: []kadm.FeatureUpdate{{Feature: "group.version", MaxVersionLevel: 0, UpgradeType: 2}},
			want: kerr.InvalidUpdateVersion, message: "always 1"},
		{name: "unknown feature", updates: []kadm.FeatureUpdate{{Feature: "metadata.version", MaxVersionLevel: 20, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion, message: "does not support the given feature"},
		{name: "one bad update fails all", updates: []kadm.FeatureUpdate{{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "nope", MaxVersionLevel: 1, UpgradeType: 1}},
			want: kerr.InvalidUpdateVersion},
		{name: "twice the same feature", updates: []kadm.FeatureUpdate{{Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}, {Feature: "group.version", MaxVersionLevel: 1, UpgradeType: 1}},
			want: kerr.InvalidRequest},
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
	if got := finalized(); got["transaction.version"] != 1 || got["group.version"] != 1 {
		t.Fatalf("after the updates: finalized %v, want them unchanged", got)
	}

}
