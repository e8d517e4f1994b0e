package protocol

// UpdateFeatures v0-v2 (KIP-584; v1 UpgradeType and ValidateOnly, KIP-778;
// v2 drops the per-feature results).
//
// The finalized feature levels are cluster state in the metadata store
// (internal/features, metastore.FeatureStore): an update validated as
// Kafka's controller validates it is written there (compare-and-set on
// the levels' epoch, so concurrent updates on several agents apply one
// after the other, each validated against the levels the previous one
// left), answered by ApiVersions at once on this agent and within the
// refresh interval on the others. Kafka's checks: a feature Floe does not
// know, a level above the supported range, a downgrade without the safe
// or unsafe downgrade type (v0: AllowDowngrade), an upgrade with a
// downgrade type, and an unknown upgrade type are INVALID_UPDATE_VERSION
// with Kafka's reason; a level below 1 removes the feature (level 0).
// ValidateOnly validates against the current levels and writes nothing.
// The levels are read by clients (transaction.version: KIP-890 part 2)
// and by the handlers (group.version 0 turns ConsumerGroupHeartbeat and
// ConsumerGroupDescribe into UNSUPPORTED_VERSION, as in Kafka).
//
// With a store that does not keep them (Config.Features nil) each agent
// finalizes its flags: asking for the finalized level succeeds, and a
// change is INVALID_UPDATE_VERSION with a message saying how to make it.
//
// As Kafka's controller: the updates are applied all or none, so the
// first failing update's error is the request's, and (v0-v1) every
// feature's result carries it. No updates, or the same feature twice, is
// INVALID_REQUEST. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
	"github.com/floe-io/floe/internal/features"
	"github.com/floe-io/floe/internal/metastore"
	"github.com/floe-io/floe/internal/wire"
)

func init() { register(57, 0, 2, (*Handler).updateFeatures) }

// UpgradeType values (v1+).
const (
	featureUpgrade         = 1
	featureSafeDowngrade   = 2
	featureUnsafeDowngrade = 3
)

func (h *Handler) updateFeatures(_ context.Context, req *wire.Request) (Reply, error) {
	r := req.Req.(*kmsg.UpdateFeaturesRequest)
	return func(ctx context.Context) kmsg.Response {
		resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		code, msg := h.applyFeatureUpdates(ctx, req, r)
		if code != 0 {
			resp.ErrorCode, resp.ErrorMessage = code, &msg
		}
		if r.Version < 2 {
			for _, u := range r.FeatureUpdates {
				res := kmsg.NewUpdateFeaturesResponseResult()
				res.Feature, res.ErrorCode = u.Feature, code
				if code != 0 {
					res.ErrorMessage = &msg
				}
				resp.Results = append(resp.Results, res)
			}
		}
		return resp
	}, nil
}

// applyFeatureUpdates validates the updates against the finalized levels
// and, unless validate-only, writes the new levels.
func (h *Handler) applyFeatureUpdates(ctx context.Context, req *wire.Request, r *kmsg.UpdateFeaturesRequest) (int16, string) {
	if !h.allowedOnCluster(req, acl.Alter) {
		return kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Description
	}
	if len(r.FeatureUpdates) == 0 {
		return kerr.InvalidRequest.Code, "No feature updates were given."
	}
	seen := make(map[string]bool, len(r.FeatureUpdates))
	for _, u := range r.FeatureUpdates {
		if seen[u.Feature] {
			return kerr.InvalidRequest.Code, fmt.Sprintf("Feature %s was specified more than once.", u.Feature)
		}
		seen[u.Feature] = true
	}
	validateOnly := r.Version >= 1 && r.ValidateOnly
	if h.cfg.Features == nil {
		code, msg, next := h.checkFeatureUpdates(r, h.finalizedLevels())
		if code == 0 && !maps.Equal(next, metastore.PositiveLevels(h.finalizedLevels())) {
			return h.flagsOnly(r, next)
		}
		return code, msg
	}
	var code int16
	var msg string
	_, err := h.cfg.Features.Update(ctx, func(cur metastore.FinalizedFeatures) (map[string]int16, error) {
		var next map[string]int16
		code, msg, next = h.checkFeatureUpdates(r, cur.Levels)
		if code != 0 || validateOnly || maps.Equal(next, metastore.PositiveLevels(cur.Levels)) {
			return nil, features.ErrNoChange
		}
		return next, nil
	})
	switch {
	case err == nil, errors.Is(err, features.ErrNoChange):
		return code, msg
	case ctx.Err() != nil:
		return kerr.RequestTimedOut.Code, "The feature levels could not be updated in time."
	default:
		h.log.Warn("UpdateFeatures failed", "err", err)
		return kerr.UnknownServerError.Code, "The feature levels could not be updated: " + err.Error()
	}
}

// checkFeatureUpdates validates every update against the finalized levels
// cur, returning the error of the first that cannot be made, or the new
// levels (only those above 0).
func (h *Handler) checkFeatureUpdates(r *kmsg.UpdateFeaturesRequest, cur map[string]int16) (int16, string, map[string]int16) {
	next := metastore.PositiveLevels(cur)
	for _, u := range r.FeatureUpdates {
		level, code, msg := checkFeatureUpdate(r.Version, u, cur[u.Feature])
		if code != 0 {
			return code, msg, nil
		}
		if level > 0 {
			next[u.Feature] = level
		} else {
			delete(next, u.Feature)
		}
	}
	return 0, "", next
}

// checkFeatureUpdate validates one update from the current level,
// returning the level it asks for.
func checkFeatureUpdate(version int16, u kmsg.UpdateFeaturesRequestFeatureUpdate, current int16) (int16, int16, string) {
	invalid := func(format string, args ...any) (int16, int16, string) {
		return 0, kerr.InvalidUpdateVersion.Code, fmt.Sprintf("Invalid update version %d for feature %s. ", u.MaxVersionLevel, u.Feature) + fmt.Sprintf(format, args...)
	}
	var maxLevel int16
	switch u.Feature {
	case FeatureTransactionVersion:
		maxLevel = MaxTransactionVersion
	case FeatureGroupVersion:
		maxLevel = MaxGroupVersion
	default:
		return invalid("The controller does not support the given feature.")
	}
	level := max(u.MaxVersionLevel, 0) // a level below 1 deletes the feature: level 0
	upgradeType := int8(featureUpgrade)
	switch {
	case version >= 1:
		upgradeType = u.UpgradeType
	case u.AllowDowngrade:
		upgradeType = featureSafeDowngrade
	}
	switch upgradeType {
	case featureUpgrade, featureSafeDowngrade, featureUnsafeDowngrade:
	default:
		return invalid("Unknown upgrade type %d.", upgradeType)
	}
	switch {
	case level > maxLevel:
		return invalid("Floe supports versions 0-%d.", maxLevel)
	case level < current && upgradeType == featureUpgrade:
		return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	case level > current && upgradeType != featureUpgrade:
		return invalid("Can't downgrade to a newer version.")
	}
	return level, 0, ""
}

// flagsOnly refuses a valid change on an agent whose store does not keep
// the feature levels: they are its flags.
func (h *Handler) flagsOnly(r *kmsg.UpdateFeaturesRequest, next map[string]int16) (int16, string) {
	cur := h.finalizedLevels()
	for _, u := range r.FeatureUpdates {
		if next[u.Feature] == cur[u.Feature] {
			continue
		}
		msg := fmt.Sprintf("Invalid update version %d for feature %s. ", u.MaxVersionLevel, u.Feature)
		if u.Feature == FeatureGroupVersion {
			return kerr.InvalidUpdateVersion.Code, msg + fmt.Sprintf("In Floe group.version is always %d with this metadata store.", MaxGroupVersion)
		}
		return kerr.InvalidUpdateVersion.Code, msg + fmt.Sprintf("This metadata store does not keep feature levels: Floe finalizes %s from each agent's --transaction-version flag (now %d on this agent): restart every agent with --transaction-version %d to change it.", u.Feature, cur[u.Feature], next[u.Feature])
	}
	return 0, ""
}
