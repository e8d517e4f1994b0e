package protocol

// UpdateFeatures v0-v2 (KIP-584; v1 UpgradeType and ValidateOnly, KIP-778;
// v2 drops the per-feature results).
//
// Floe's finalized feature levels (18_api_versions.go) are not stored in
// the metadata store: each agent finalizes transaction.version from its
// --transaction-version flag, and group.version is 1 on every agent
// (ConsumerGroupHeartbeat is always served). So an update is answered
// truthfully: one that asks for the level already finalized succeeds
// (nothing to change); one Kafka would refuse is refused with Kafka's
// error and reason; and a change Kafka would make is refused with
// INVALID_UPDATE_VERSION and a message saying how to make it in Floe (a
// rolling restart with another --transaction-version), since no request
// can change the flags of every agent. ValidateOnly answers the same.
// The reading side, DescribeFeatures, is ApiVersions v3+.
//
// As Kafka's controller: the updates are applied all or none, so the
// first failing update's error is the request's, and (v0-v1) every
// feature's result carries it. No updates, or the same feature twice, is
// INVALID_REQUEST. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/internal/acl"
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
	resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	code, msg := h.checkFeatureUpdates(req, r)
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
	return now(resp), nil
}

// checkFeatureUpdates returns the error of the first update that cannot
// be made (0 when every update asks for the level already finalized).
func (h *Handler) checkFeatureUpdates(req *wire.Request, r *kmsg.UpdateFeaturesRequest) (int16, string) {
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
	for _, u := range r.FeatureUpdates {
		if code, msg := h.checkFeatureUpdate(r.Version, u); code != 0 {
			return code, msg
		}
	}
	return 0, ""
}

func (h *Handler) checkFeatureUpdate(version int16, u kmsg.UpdateFeaturesRequestFeatureUpdate) (int16, string) {
	invalid := func(format string, args ...any) (int16, string) {
		return kerr.InvalidUpdateVersion.Code, fmt.Sprintf("Invalid update version %d for feature %s. ", u.MaxVersionLevel, u.Feature) + fmt.Sprintf(format, args...)
	}
	var current, maxLevel int16
	switch u.Feature {
	case FeatureTransactionVersion:
		current, maxLevel = h.transactionVersion(), MaxTransactionVersion
	case FeatureGroupVersion:
		current, maxLevel = MaxGroupVersion, MaxGroupVersion
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
	case level == current:
		return 0, ""
	case level < current && upgradeType == featureUpgrade:
		return invalid("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.")
	case level > current && upgradeType != featureUpgrade:
		return invalid("Can't downgrade to a newer version.")
	}
	if u.Feature == FeatureGroupVersion {
		return invalid("In Floe group.version is always %d: every agent serves the consumer group protocol (KIP-848).", MaxGroupVersion)
	}
	return invalid("Floe finalizes %s from each agent's --transaction-version flag (now %d on this agent), not from the metadata store: restart every agent with --transaction-version %d to change it.", u.Feature, current, level)
}
